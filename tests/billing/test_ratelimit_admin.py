"""Rate limits set by staff in the admin: one per target, a default only on purpose."""

import pytest

from billing.models import RateLimit
from billing.ratelimits import ratelimit_rules_for

pytestmark = pytest.mark.django_db


def add_limit(client, **fields):
    return client.post("/admin/billing/ratelimit/add/", fields)


def errors_of(response) -> dict:
    return {k: " ".join(v) for k, v in response.context["adminform"].form.errors.items()}


def test_a_user_limit_without_a_user_is_not_a_default_by_accident(staff_client, workspace):
    response = add_limit(staff_client, scope="user", workspace=workspace.id, rpm="0")

    errors = errors_of(response)
    assert errors["user"].startswith("Choose what this limit is for, or tick “Default for all”")
    assert errors["workspace"] == "Only for the Workspace scope."
    assert errors["rpm"] == "Ensure this value is greater than or equal to 1."
    assert not RateLimit.objects.exists()


def test_a_default_for_every_user_is_set_on_purpose(staff_client, workspace, owner):
    response = add_limit(staff_client, scope="user", default_for_all="on", rpm="30")

    assert response.status_code == 302
    rules = ratelimit_rules_for(workspace_id=workspace.id, user_id=owner.id)
    assert [(r.key, r.rpm) for r in rules] == [(f"user:{owner.id}", 30)]


def test_a_target_and_default_for_all_together_are_refused(staff_client, owner):
    response = add_limit(staff_client, scope="user", user=owner.id, default_for_all="on", rpm="3")

    assert "default_for_all" in errors_of(response)


def test_a_second_limit_for_the_same_workspace_is_refused_in_words(staff_client, workspace):
    add_limit(staff_client, scope="workspace", workspace=workspace.id, rpm="2")

    response = add_limit(staff_client, scope="workspace", workspace=workspace.id, rpm="100")

    assert "This workspace already has a rate limit." in str(errors_of(response))
    assert list(RateLimit.objects.values_list("rpm", flat=True)) == [2]


def test_a_second_default_of_a_scope_is_refused(staff_client):
    add_limit(staff_client, scope="user", default_for_all="on", rpm="30")

    response = add_limit(staff_client, scope="user", default_for_all="on", rpm="60")

    assert "This scope already has a default rate limit." in str(errors_of(response))


def test_a_row_naming_another_scopes_target_is_not_a_default(workspace, owner):
    # Such a row could be saved before the admin checked rows: it throttled every user.
    RateLimit.objects.create(scope="user", workspace=workspace, rpm=0)

    assert ratelimit_rules_for(workspace_id=workspace.id, user_id=owner.id) == []


def test_the_change_form_shows_a_default_as_such(staff_client):
    limit = RateLimit.objects.create(scope="user", rpm=30)

    form = (
        staff_client.get(f"/admin/billing/ratelimit/{limit.pk}/change/").context["adminform"].form
    )

    assert form["default_for_all"].initial is True
