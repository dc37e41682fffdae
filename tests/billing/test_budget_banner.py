from decimal import Decimal

import pytest

from billing.models import BudgetScope
from billing.services import budget_upsert, usage_record
from workspaces.models import Membership

pytestmark = pytest.mark.django_db


def spend(user, workspace, output_tokens):
    return usage_record(
        workspace_id=workspace.pk,
        user_id=user.pk,
        credential_id=None,
        provider_kind="openai",
        model="gpt-4o-mini",
        input_tokens=0,
        output_tokens=output_tokens,
        estimated=False,
        status="ok",
        ttft_ms=10,
        duration_ms=20,
        source="chat",
    )


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
    assert "reached — ask an admin" in html


def test_no_banner_below_the_threshold(logged_in_client, user):
    workspace = Membership.objects.get(user=user).workspace
    budget_upsert(
        scope=BudgetScope.WORKSPACE,
        workspace_id=workspace.pk,
        cost_limit=Decimal("100"),
        token_limit=None,
    )
    assert "budget-banner" not in logged_in_client.get("/").content.decode()
