"""Quota changes are audited (docs/permissions.md): a budget set on /usage/ writes one
`budget.change` event with the limits before and after."""

import pytest

from tests.factories import MembershipFactory, WorkspaceFactory
from workspaces.models import AuditEvent, Role

pytestmark = pytest.mark.django_db


@pytest.fixture
def team(db):
    workspace = WorkspaceFactory(name="Acme")
    admin = MembershipFactory(workspace=workspace, role=Role.ADMIN).user
    return workspace, admin


def post_budget(client, workspace, **fields):
    values = {"workspace": workspace.slug, "soft_threshold_percent": "80", "hard": "on"}
    values.update(fields)
    return client.post("/usage/budget/", values, REMOTE_ADDR="203.0.113.9")


def test_setting_then_changing_a_budget_is_audited_with_old_and_new_limits(client, team):
    workspace, admin = team
    client.force_login(admin)

    post_budget(client, workspace, cost_limit="50")
    post_budget(client, workspace, cost_limit="20", token_limit="1000")

    created, changed = AuditEvent.objects.filter(action="budget.change").order_by("id")
    assert created.workspace == workspace and created.actor == admin
    assert created.ip == "203.0.113.9"
    assert created.data["from"] is None
    assert created.data["to"]["cost_limit"] == "50.00"
    assert changed.data["from"]["cost_limit"] == "50.00"
    assert changed.data["to"] == {
        "cost_limit": "20.00",
        "token_limit": 1000,
        "soft_threshold_percent": 80,
        "hard": True,
    }


def test_saving_the_same_limits_again_records_nothing_new(client, team):
    workspace, admin = team
    client.force_login(admin)

    post_budget(client, workspace, cost_limit="50")
    post_budget(client, workspace, cost_limit="50.00")

    assert AuditEvent.objects.filter(action="budget.change").count() == 1


def test_a_refused_budget_is_not_audited(client, team):
    workspace, admin = team
    client.force_login(admin)

    post_budget(client, workspace, cost_limit="-5")

    assert not AuditEvent.objects.filter(action="budget.change").exists()
