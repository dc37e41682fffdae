import pytest

from accounts.models import User
from workspaces.models import Membership, Role, Workspace
from workspaces.selectors import membership_get
from workspaces.services import workspace_create_personal

pytestmark = pytest.mark.django_db


def test_every_new_user_gets_exactly_one_personal_workspace():
    user = User.objects.create_user(email="lin@example.com", password="x")
    superuser = User.objects.create_superuser(email="root@example.com", password="x")
    for u in (user, superuser):
        assert Workspace.objects.filter(is_personal=True, memberships__user=u).count() == 1
        assert Membership.objects.get(user=u).role == Role.OWNER
    assert workspace_create_personal(user=user) == Workspace.objects.get(memberships__user=user)


def test_personal_workspace_slugs_stay_unique_for_the_same_local_part():
    a = User.objects.create_user(email="sam@one.example", password="x")
    b = User.objects.create_user(email="sam@two.example", password="x")
    assert (
        Membership.objects.get(user=a).workspace.slug
        != Membership.objects.get(user=b).workspace.slug
    )


def test_a_foreign_workspace_is_not_found_for_a_non_member():
    from django.http import Http404

    owner = User.objects.create_user(email="o@example.com", password="x")
    stranger = User.objects.create_user(email="s@example.com", password="x")
    slug = Membership.objects.get(user=owner).workspace.slug
    assert membership_get(user=owner, workspace_slug=slug).role == Role.OWNER
    with pytest.raises(Http404):
        membership_get(user=stranger, workspace_slug=slug)
