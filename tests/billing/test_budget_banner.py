from decimal import Decimal

import pytest

from billing.models import BudgetScope
from billing.services import budget_upsert
from tests.billing.conftest import record_call
from tests.factories import MembershipFactory
from workspaces.models import Membership, Role
from workspaces.selectors import CURRENT_WORKSPACE_SESSION_KEY

pytestmark = pytest.mark.django_db


def spend(user, workspace, output_tokens):
    return record_call(workspace, user, output_tokens=output_tokens, duration_ms=20)


def test_the_shell_warns_past_the_soft_threshold_and_says_when_the_budget_is_reached(
    logged_in_client, user
):
    workspace = Membership.objects.get(user=user).workspace
    first = spend(user, workspace, 1_000_000)
    assert first.cost > 0
    budget_upsert(
        scope=BudgetScope.WORKSPACE,
        workspace_id=workspace.pk,
        cost_limit=first.cost * 2,
        token_limit=None,
        soft_threshold_percent=40,
    )
    html = logged_in_client.get("/").content.decode()
    assert "budget-banner" in html and "50% used" in html
    spend(user, workspace, 1_000_000)
    html = logged_in_client.get("/").content.decode()
    assert "reached — you can raise it on the" in html and 'href="/usage/"' in html
    assert "ask an admin" not in html


def test_a_member_is_told_to_ask_an_admin_when_the_budget_is_reached(client, user):
    workspace = Membership.objects.get(user=user).workspace
    member = MembershipFactory(workspace=workspace, role=Role.MEMBER).user
    spend(user, workspace, 1_000_000)
    budget_upsert(
        scope=BudgetScope.WORKSPACE,
        workspace_id=workspace.pk,
        cost_limit=Decimal("0.01"),
        token_limit=None,
    )
    client.force_login(member)
    session = client.session
    session[CURRENT_WORKSPACE_SESSION_KEY] = workspace.pk
    session.save()

    html = client.get("/").content.decode()

    assert "reached — ask an admin." in html and "raise it" not in html


def test_no_banner_below_the_threshold(logged_in_client, user):
    workspace = Membership.objects.get(user=user).workspace
    budget_upsert(
        scope=BudgetScope.WORKSPACE,
        workspace_id=workspace.pk,
        cost_limit=Decimal("100"),
        token_limit=None,
    )
    assert "budget-banner" not in logged_in_client.get("/").content.decode()
