from django.http import Http404

from .models import Membership, Workspace


def workspace_list_for_user(*, user):
    return Workspace.objects.filter(memberships__user=user).order_by("-is_personal", "name")


def membership_get(*, user, workspace_slug: str) -> Membership:
    """The user's membership in a workspace; 404 when they are not a member, so a foreign
    workspace is indistinguishable from a missing one."""
    if not user.is_authenticated:
        raise Http404
    membership = (
        Membership.objects.select_related("workspace")
        .filter(user=user, workspace__slug=workspace_slug)
        .first()
    )
    if membership is None:
        raise Http404
    return membership


def personal_workspace_get(*, user) -> Workspace:
    return Workspace.objects.get(is_personal=True, memberships__user=user)
