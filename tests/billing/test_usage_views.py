from decimal import Decimal

import pytest

from billing.models import Budget
from tests.billing.conftest import record_call
from tests.factories import MembershipFactory, UserFactory, WorkspaceFactory
from workspaces.models import Role


@pytest.fixture
def team(db):
    workspace = WorkspaceFactory(name="Acme")
    admin = MembershipFactory(workspace=workspace, role=Role.ADMIN).user
    record_call(
        workspace, admin, input_tokens=1000, output_tokens=1000, ttft_ms=100, duration_ms=700
    )
    return workspace, admin


def test_a_workspace_admin_sees_cost_charts_and_breakdowns(client, team):
    workspace, admin = team
    client.force_login(admin)

    response = client.get(f"/usage/?workspace={workspace.slug}&range=day")

    body = response.content.decode()
    assert response.status_code == 200
    assert body.count('class="usage-chart"') == 3
    assert 'class="chart-bar"' in body
    assert "gpt-4o-mini" in body
    assert f"<td>{admin.email}</td>" in body  # a member is named by e-mail alone


def test_a_plain_member_is_refused(client, team):
    workspace, _admin = team
    member = MembershipFactory(workspace=workspace, role=Role.MEMBER).user
    client.force_login(member)

    assert client.get(f"/usage/?workspace={workspace.slug}").status_code == 403


def test_a_foreign_workspace_is_not_found(client, team):
    workspace, _admin = team
    client.force_login(UserFactory())

    assert client.get(f"/usage/?workspace={workspace.slug}").status_code == 404


def test_the_csv_export_lists_model_totals(client, team):
    workspace, admin = team
    client.force_login(admin)

    response = client.get(f"/usage/export.csv?workspace={workspace.slug}")

    lines = response.content.decode().splitlines()
    assert response["Content-Type"] == "text/csv"
    assert lines[0].startswith("day,provider,model")
    assert any(line.startswith("total,openai,gpt-4o-mini,1,0,1000,1000,") for line in lines)


def test_an_admin_sets_the_workspace_budget(client, team):
    workspace, admin = team
    client.force_login(admin)

    response = client.post(
        "/usage/budget/",
        {
            "workspace": workspace.slug,
            "cost_limit": "50",
            "soft_threshold_percent": "80",
            "hard": "on",
        },
    )

    assert response.status_code == 302
    budget = Budget.objects.get(workspace=workspace, scope="workspace")
    assert budget.cost_limit == Decimal("50") and budget.hard
    page = client.get(f"/usage/?workspace={workspace.slug}").content.decode()
    assert "/ $50.00" in page


def test_staff_see_top_spenders_across_workspaces(client, team):
    workspace, _admin = team
    client.force_login(UserFactory(is_staff=True))

    response = client.get("/usage/all/")

    assert response.status_code == 200
    assert "Acme" in response.content.decode()


def test_the_latency_table_gives_every_figure_in_ms(client, team):
    workspace, admin = team
    record_call(workspace, admin, model="fast-one", ttft_ms=0, duration_ms=4)  # first token at once
    client.force_login(admin)

    body = client.get(f"/usage/?workspace={workspace.slug}&range=day").content.decode()

    latency = body[body.index("TTFT p95") :]
    row = latency[latency.index("gpt-4o-mini") :].split("</tr>")[0]
    assert row.count(" ms</td>") == 4 and "100 ms" in row and "700 ms" in row
    fast = latency[latency.index("fast-one") :].split("</tr>")[0]
    assert fast.count("<td>0 ms</td>") == 2  # a TTFT of 0 is a figure, not a missing one
