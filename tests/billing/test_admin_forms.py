"""Staff editing budgets, prices and subscriptions in the admin meet the same rules as
everyone else, told in words."""

from datetime import date
from decimal import Decimal

import pytest

from billing.models import Budget, BudgetCounter, ModelPriceOverride, Subscription
from tests.factories import MembershipFactory, UserFactory, WorkspaceFactory
from workspaces.models import Role

pytestmark = pytest.mark.django_db


@pytest.fixture
def workspace(db):
    return WorkspaceFactory(name="Acme")


def add_budget(client, workspace, **fields):
    values = {
        "scope": "workspace",
        "workspace": workspace.id,
        "period": "monthly",
        "cost_limit": "10",
        "soft_threshold_percent": "80",
        "hard": "on",
    }
    values.update(fields)
    return client.post("/admin/billing/budget/add/", values)


def errors_of(response) -> str:
    form = response.context["adminform"].form
    return " ".join(str(e) for errors in form.errors.values() for e in errors)


def test_a_second_workspace_budget_is_refused_in_words(staff_client, workspace):
    add_budget(staff_client, workspace)

    response = add_budget(staff_client, workspace, cost_limit="20")

    assert "This workspace already has a workspace budget." in errors_of(response)
    assert Budget.objects.get(workspace=workspace).cost_limit == 10


def test_a_member_budget_needs_the_member(staff_client, workspace):
    response = add_budget(staff_client, workspace, scope="member")

    assert "A member budget needs the member it limits." in errors_of(response)
    assert not Budget.objects.exists()


def test_a_member_budget_for_a_member_is_saved(staff_client, workspace):
    member = MembershipFactory(workspace=workspace, role=Role.MEMBER).user

    response = add_budget(staff_client, workspace, scope="member", user=member.id)

    assert response.status_code == 302
    assert Budget.objects.get().user == member


def test_a_workspace_budget_names_no_user_or_key(staff_client, workspace):
    response = add_budget(staff_client, workspace, user=UserFactory().id, api_key_id="3")

    text = errors_of(response)
    assert "Only a member budget names a user." in text
    assert "Only an API key budget names an API key." in text


def test_an_api_key_budget_needs_the_key(staff_client, workspace):
    response = add_budget(staff_client, workspace, scope="api_key")

    assert "An API key budget needs the id of the key it limits." in errors_of(response)


def test_a_budget_without_limits_is_refused(staff_client, workspace):
    response = add_budget(staff_client, workspace, cost_limit="")

    assert "Set a cost limit, a token limit or both." in errors_of(response)
    assert not Budget.objects.exists()


def test_a_soft_threshold_past_100_percent_is_refused(staff_client, workspace):
    response = add_budget(staff_client, workspace, soft_threshold_percent="500")

    assert "Between 1 and 100." in errors_of(response)
    assert not Budget.objects.exists()


def test_the_usage_page_refuses_the_same_budgets(client, workspace):
    client.force_login(MembershipFactory(workspace=workspace, role=Role.ADMIN).user)

    for fields in ({"cost_limit": ""}, {"cost_limit": "5", "soft_threshold_percent": "500"}):
        values = {"workspace": workspace.slug, "soft_threshold_percent": "80", **fields}
        page = client.post("/usage/budget/", values, follow=True).content.decode()
        assert "Budget saved." not in page

    assert not Budget.objects.exists()


def test_a_price_override_names_a_known_provider_kind(staff_client):
    prices = {"model": "m", "input_per_mtok": "1", "output_per_mtok": "2"}
    refused = staff_client.post(
        "/admin/billing/modelpriceoverride/add/", {"provider_kind": "OpenAI ", **prices}
    )
    saved = staff_client.post(
        "/admin/billing/modelpriceoverride/add/", {"provider_kind": "openai", **prices}
    )

    assert "Select a valid choice." in errors_of(refused)
    assert saved.status_code == 302
    assert ModelPriceOverride.objects.get().provider_kind == "openai"


def test_a_subscription_period_must_end_after_it_starts(staff_client, workspace, plans):
    response = staff_client.post(
        "/admin/billing/subscription/add/",
        {
            "workspace": workspace.id,
            "plan": plans["pro"].id,
            "status": "active",
            "current_period_start_0": "2026-05-01",
            "current_period_start_1": "00:00:00",
            "current_period_end_0": "2026-04-01",
            "current_period_end_1": "00:00:00",
        },
    )

    assert "The period must end after it starts." in errors_of(response)
    assert not Subscription.objects.exists()


def test_budget_counters_cannot_be_edited_in_the_admin(staff_client, workspace):
    counter = BudgetCounter.objects.create(
        scope_key=f"workspace:{workspace.id}",
        period_start=date(2026, 5, 1),
        spent_cost=Decimal("3.5"),
        spent_tokens=1200,
    )
    url = f"/admin/billing/budgetcounter/{counter.pk}/change/"

    page = staff_client.get(url)
    posted = staff_client.post(
        url,
        {
            "scope_key": counter.scope_key,
            "period_start": "2026-05-01",
            "spent_cost": "0",
            "spent_tokens": "0",
        },
    )

    assert page.status_code == 200
    assert 'name="spent_cost"' not in page.content.decode()
    assert posted.status_code == 403
    counter.refresh_from_db()
    assert (counter.spent_cost, counter.spent_tokens) == (Decimal("3.5"), 1200)
    assert staff_client.get("/admin/billing/budgetcounter/add/").status_code == 403
    deleted = staff_client.post(f"/admin/billing/budgetcounter/{counter.pk}/delete/")
    assert deleted.status_code == 403
    assert BudgetCounter.objects.filter(pk=counter.pk).exists()


def test_a_budgets_limits_stay_editable_in_the_admin(staff_client, workspace):
    add_budget(staff_client, workspace)
    budget = Budget.objects.get()

    response = staff_client.post(
        f"/admin/billing/budget/{budget.pk}/change/",
        {
            "scope": "workspace",
            "workspace": workspace.id,
            "period": "monthly",
            "cost_limit": "25",
            "token_limit": "5000",
            "soft_threshold_percent": "80",
            "hard": "on",
        },
    )

    assert response.status_code == 302
    budget.refresh_from_db()
    assert (budget.cost_limit, budget.token_limit) == (25, 5000)
