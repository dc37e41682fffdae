"""Prices, limits and allowances are never negative, whichever way they are entered."""

import pytest
from django.db import IntegrityError, transaction

from billing.models import Budget, ModelPriceOverride, Plan
from tests.factories import MembershipFactory, WorkspaceFactory
from workspaces.models import Role

pytestmark = pytest.mark.django_db


@pytest.fixture
def team(db):
    workspace = WorkspaceFactory(name="Acme")
    admin = MembershipFactory(workspace=workspace, role=Role.ADMIN).user
    return workspace, admin


def test_a_negative_cost_limit_on_the_usage_page_is_refused(client, team):
    workspace, admin = team
    client.force_login(admin)

    response = client.post(
        "/usage/budget/",
        {"workspace": workspace.slug, "cost_limit": "-5", "soft_threshold_percent": "80"},
        follow=True,
    )

    assert not Budget.objects.filter(workspace=workspace).exists()
    page = response.content.decode()
    assert "Budget saved." not in page
    assert "Cost limit: Ensure this value is greater than or equal to 0." in page


def test_a_negative_token_limit_on_the_usage_page_is_refused(client, team):
    workspace, admin = team
    client.force_login(admin)

    client.post(
        "/usage/budget/",
        {"workspace": workspace.slug, "token_limit": "-1000", "soft_threshold_percent": "80"},
    )

    assert not Budget.objects.filter(workspace=workspace).exists()


def test_the_budget_inputs_start_at_zero(client, team):
    workspace, admin = team
    client.force_login(admin)

    page = client.get(f"/usage/?workspace={workspace.slug}").content.decode()

    cost = page[page.index('name="cost_limit"') :].split(">")[0]
    tokens = page[page.index('name="token_limit"') :].split(">")[0]
    assert 'min="0"' in cost and 'min="0"' in tokens


def test_the_admin_refuses_a_negative_model_price(staff_client):
    response = staff_client.post(
        "/admin/billing/modelpriceoverride/add/",
        {"provider_kind": "openai", "model": "m", "input_per_mtok": "-5", "output_per_mtok": "1"},
    )

    assert response.status_code == 200
    assert "Ensure this value is greater than or equal to 0." in response.content.decode()
    assert not ModelPriceOverride.objects.exists()


def test_the_admin_refuses_a_negative_plan_price_and_allowance(staff_client):
    response = staff_client.post(
        "/admin/billing/plan/add/",
        {
            "name": "Odd",
            "slug": "odd",
            "monthly_price": "-10",
            "included_cost": "-5",
            "included_tokens": "-1",
            "position": "0",
        },
    )

    assert response.status_code == 200
    assert response.context["adminform"].form.errors.keys() >= {
        "monthly_price",
        "included_cost",
        "included_tokens",
    }
    assert not Plan.objects.filter(slug="odd").exists()


@pytest.mark.parametrize(
    "make",
    [
        lambda ws: Budget.objects.create(scope="workspace", workspace=ws, cost_limit=-5),
        lambda ws: Budget.objects.create(scope="workspace", workspace=ws, token_limit=-5),
        lambda ws: ModelPriceOverride.objects.create(
            provider_kind="openai", model="m", input_per_mtok=-5, output_per_mtok=1
        ),
        lambda ws: Plan.objects.create(name="Odd", slug="odd", monthly_price=-10),
        lambda ws: Plan.objects.create(name="Odd", slug="odd", max_budget_tokens=-10),
    ],
    ids=["cost limit", "token limit", "price", "plan price", "plan token cap"],
)
def test_the_database_refuses_negative_amounts_from_any_path(team, make):
    workspace, _admin = team

    with pytest.raises(IntegrityError), transaction.atomic():
        make(workspace)
