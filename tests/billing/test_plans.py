from decimal import Decimal

import pytest

from billing.models import Budget, RateLimit, SubscriptionStatus
from billing.plans import plan_for_workspace, subscription_change
from tests.billing.conftest import record_call
from tests.factories import MembershipFactory, UserFactory, WorkspaceFactory
from workspaces.models import AuditEvent, Role


@pytest.fixture
def team(db, plans):
    workspace = WorkspaceFactory(name="Acme")
    admin = MembershipFactory(workspace=workspace, role=Role.ADMIN).user
    return workspace, admin


def post_budget(client, workspace, cost_limit="", token_limit=""):
    return client.post(
        "/usage/budget/",
        {
            "workspace": workspace.slug,
            "cost_limit": cost_limit,
            "token_limit": token_limit,
            "soft_threshold_percent": "80",
            "hard": "on",
        },
        follow=True,
    )


def test_a_workspace_without_subscription_is_on_free(team, plans):
    workspace, _admin = team

    assert plan_for_workspace(workspace.id) == plans["free"]


def test_a_canceled_subscription_falls_back_to_free(team, plans):
    workspace, _admin = team
    subscription_change(workspace=workspace, plan=plans["pro"], source="test")
    assert plan_for_workspace(workspace.id) == plans["pro"]

    subscription_change(workspace=workspace, status=SubscriptionStatus.CANCELED, source="test")

    assert plan_for_workspace(workspace.id) == plans["free"]


def test_a_budget_above_the_plan_cap_is_refused_with_a_clear_error(client, team, plans):
    workspace, admin = team
    client.force_login(admin)

    response = post_budget(client, workspace, cost_limit="500")

    assert not Budget.objects.filter(workspace=workspace).exists()
    assert (
        "The Free plan allows a monthly cost limit of at most $100.00." in response.content.decode()
    )


def test_a_token_budget_above_the_plan_cap_is_refused(client, team, plans):
    workspace, admin = team
    client.force_login(admin)

    post_budget(client, workspace, token_limit=str(plans["free"].max_budget_tokens + 1))

    assert not Budget.objects.filter(workspace=workspace).exists()


def test_a_higher_plan_allows_a_higher_budget(client, team, plans):
    workspace, admin = team
    subscription_change(workspace=workspace, plan=plans["pro"], source="test")
    client.force_login(admin)

    post_budget(client, workspace, cost_limit="500")

    assert Budget.objects.get(workspace=workspace).cost_limit == Decimal("500")


def test_a_budget_within_the_free_plan_is_saved(client, team):
    workspace, admin = team
    client.force_login(admin)

    post_budget(client, workspace, cost_limit="10")

    assert Budget.objects.get(workspace=workspace).cost_limit == Decimal("10")


def test_the_plan_cap_is_written_in_the_page_language(client, team):
    workspace, admin = team
    admin.language = "es"
    admin.save(update_fields=["language"])
    client.force_login(admin)

    page = client.get(f"/usage/?workspace={workspace.slug}").content.decode()
    refused = post_budget(client, workspace, cost_limit="500").content.decode()

    assert "USD al mes, como máximo 100,00." in page
    assert "como máximo $100,00." in refused


def test_staff_in_the_admin_are_not_limited_by_the_plan(client, team):
    workspace, _admin = team
    client.force_login(UserFactory(is_staff=True, is_superuser=True))

    response = client.post(
        "/admin/billing/budget/add/",
        {
            "scope": "workspace",
            "workspace": workspace.id,
            "period": "monthly",
            "cost_limit": "5000",
            "soft_threshold_percent": "80",
            "hard": "on",
        },
    )

    assert response.status_code == 302, response.content.decode()[:2000]
    assert Budget.objects.get(workspace=workspace).cost_limit == Decimal("5000")


def test_a_plan_change_is_audited_and_moves_the_default_rate_limits(team, plans):
    workspace, admin = team

    subscription_change(workspace=workspace, plan=plans["pro"], actor=admin, source="test")

    event = AuditEvent.objects.get(workspace=workspace, action="billing.plan_change")
    assert event.data["from_plan"] == "free" and event.data["to_plan"] == "pro"
    limit = RateLimit.objects.get(workspace=workspace, scope="workspace")
    assert (limit.rpm, limit.tpm) == (plans["pro"].default_rpm, plans["pro"].default_tpm)

    subscription_change(workspace=workspace, plan=plans["team"], source="test")

    limit.refresh_from_db()
    assert limit.rpm == plans["team"].default_rpm


def test_rate_limits_customised_by_an_operator_survive_a_plan_change(team, plans):
    workspace, _admin = team
    RateLimit.objects.create(scope="workspace", workspace=workspace, rpm=7, tpm=None)

    subscription_change(workspace=workspace, plan=plans["team"], source="test")

    assert RateLimit.objects.get(workspace=workspace, scope="workspace").rpm == 7


def test_the_plan_page_shows_plan_allowance_and_offers(client, team, plans):
    workspace, admin = team
    record_call(workspace, admin, input_tokens=1000, output_tokens=1000)
    client.force_login(admin)

    body = client.get(f"/usage/plan/?workspace={workspace.slug}").content.decode()

    assert "<strong>Free</strong>" in body
    assert "of $1.00 included (2000 tokens)" in body
    assert "Pro" in body and "Team" in body
    assert "Billing is managed by the operator" in body
    assert "/checkout/" not in body


def test_a_plain_member_cannot_open_the_plan_page(client, team):
    workspace, _admin = team
    member = MembershipFactory(workspace=workspace, role=Role.MEMBER).user
    client.force_login(member)

    assert client.get(f"/usage/plan/?workspace={workspace.slug}").status_code == 403


def test_checkout_is_not_found_when_stripe_is_not_configured(client, team, settings):
    settings.STRIPE_SECRET_KEY = ""
    workspace, admin = team
    client.force_login(admin)

    response = client.post("/usage/plan/pro/checkout/", {"workspace": workspace.slug})

    assert response.status_code == 404


def test_staff_changing_a_subscription_in_the_admin_is_audited(client, team, plans):
    workspace, _admin = team
    staff = UserFactory(is_staff=True, is_superuser=True)
    client.force_login(staff)

    response = client.post(
        "/admin/billing/subscription/add/",
        {"workspace": workspace.id, "plan": plans["team"].id, "status": "active"},
    )

    assert response.status_code == 302, response.content.decode()[:2000]
    assert plan_for_workspace(workspace.id) == plans["team"]
    event = AuditEvent.objects.get(workspace=workspace, action="billing.plan_change")
    assert event.actor == staff and event.data["source"] == "admin"


@pytest.mark.parametrize("model", ["plan", "subscription", "invoice"])
def test_staff_can_browse_plans_subscriptions_and_invoices_in_the_admin(client, team, plans, model):
    workspace, _admin = team
    subscription_change(workspace=workspace, plan=plans["pro"], source="test")
    client.force_login(UserFactory(is_staff=True, is_superuser=True))

    listing = client.get(f"/admin/billing/{model}/?q=a")

    assert listing.status_code == 200
