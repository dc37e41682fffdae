import csv
import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from billing.models import Budget, ModelPriceOverride, UsageEvent
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


def test_the_breakdowns_say_how_much_input_came_from_the_prompt_caches(client, team):
    workspace, admin = team
    record_call(workspace, admin, model="gpt-4o", input_tokens=5000, cache_read_tokens=4096)
    client.force_login(admin)

    body = client.get(f"/usage/?workspace={workspace.slug}&range=day").content.decode()

    def row(*cells):
        return "".join(f"<td>{cell}</td>" for cell in cells)

    # The model's row: requests, errors, from the response cache, tokens, prompt-cache reads.
    assert row("openai / gpt-4o", 1, 0, 0, 5000, 4096) in body
    assert row("openai / gpt-4o-mini", 1, 0, 0, 2000, 0) in body


def test_the_page_counts_the_answers_from_the_response_cache(client, team):
    workspace, admin = team
    for _ in range(2):
        record_call(workspace, admin, status="cached")
    client.force_login(admin)

    body = client.get(f"/usage/?workspace={workspace.slug}&range=day").content.decode()

    assert "From cache: <strong>2</strong>" in body
    assert "Requests: <strong>3</strong>" in body
    # The by-model row: requests, errors, from cache, tokens.
    assert "<td>openai / gpt-4o-mini</td><td>3</td><td>0</td><td>2</td><td>2000</td>" in body


def charts(body):
    """The SVG charts of a page, each as its text."""
    return re.findall(r'<svg class="usage-chart".*?</svg>', body, re.S)


def test_the_day_view_has_a_bar_for_every_hour_even_without_usage(client, team):
    workspace, admin = team
    client.force_login(admin)

    body = client.get(f"/usage/?workspace={workspace.slug}&range=day").content.decode()

    for chart in charts(body):
        assert chart.count('class="chart-bar"') == 24
    hours = re.findall(r"<title>([^<]*): [^<]*</title>", charts(body)[0])
    assert len(set(hours)) == 24


def test_the_week_view_has_a_bar_for_every_day(client, team):
    workspace, admin = team
    client.force_login(admin)
    end = timezone.now().replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    first = (end - timedelta(days=7)).date()
    days = ((end - timedelta(microseconds=1)).date() - first).days + 1

    body = client.get(f"/usage/?workspace={workspace.slug}&range=week").content.decode()

    assert [c.count('class="chart-bar"') for c in charts(body)] == [days] * 3
    assert re.search(r"<title>\w+ \d+: \$", charts(body)[0])  # "December 6: $0.0012"


def test_chart_axes_use_plain_figures_in_the_page_language(client, team):
    workspace, admin = team
    record_call(workspace, admin, input_tokens=10_000, output_tokens=110, ttft_ms=1)
    admin.language = "es"
    admin.save(update_fields=["language"])
    client.force_login(admin)

    body = client.get(f"/usage/?workspace={workspace.slug}&range=day").content.decode()

    cost, tokens, requests = (
        re.search(r'class="chart-label chart-axis-top"[^>]*>([^<]*)<', c).group(1)
        for c in charts(body)
    )
    assert "e-" not in cost and "e+" not in tokens
    assert re.fullmatch(r"\$0,\d+", cost), cost  # a Spanish decimal comma
    assert tokens == "15\xa0000"  # 12,110 tokens: the axis tops at a round figure above
    assert requests == "2"
    assert "$0,00" in charts(body)[0]  # the bars' values too


def test_staff_usage_has_a_titled_chart_and_translated_ranges(client, team):
    staff = UserFactory(is_staff=True, language="es")
    client.force_login(staff)

    body = client.get("/usage/all/?range=day").content.decode()

    ranges = body[body.index('class="usage-ranges"') :].split("</p>")[0]
    assert ">Día</a>" in ranges and ">Semana</a>" in ranges and ">Mes</a>" in ranges
    assert "<h2>Costo</h2>" in body or "<h2>Coste</h2>" in body
    assert charts(body)[0].count('class="chart-bar"') == 24


def test_a_plain_member_is_refused(client, team):
    workspace, _admin = team
    member = MembershipFactory(workspace=workspace, role=Role.MEMBER).user
    client.force_login(member)

    assert client.get(f"/usage/?workspace={workspace.slug}").status_code == 403


def test_a_foreign_workspace_is_not_found(client, team):
    workspace, _admin = team
    client.force_login(UserFactory())

    assert client.get(f"/usage/?workspace={workspace.slug}").status_code == 404


def test_the_csv_export_has_one_row_per_day_and_model(client, team):
    workspace, admin = team
    yesterday = timezone.now() - timedelta(days=1)
    for model, output_tokens in [("m", 15), ("m", 0), ("gpt-4o-mini", 0)]:
        event = record_call(workspace, admin, model=model, output_tokens=output_tokens)
        UsageEvent.objects.filter(pk=event.pk).update(created_at=yesterday)
    ModelPriceOverride.objects.create(
        provider_kind="openai",
        model="m",
        input_per_mtok=1,
        output_per_mtok=1,
        cache_read_per_mtok=0,
    )
    # $0.000015; of its 30 input tokens, 20 read from the provider's prompt cache (price 0).
    record_call(
        workspace,
        admin,
        model="m",
        input_tokens=30,
        output_tokens=15,
        cache_read_tokens=20,
        cache_write_tokens=4,
        cache_write_1h_tokens=3,
        reasoning_tokens=5,
    )
    record_call(workspace, admin, model="m", status="cached")  # from the response cache: $0
    client.force_login(admin)

    response = client.get(f"/usage/export.csv?workspace={workspace.slug}")

    rows = list(csv.reader(response.content.decode().splitlines()))
    assert response["Content-Type"] == "text/csv"
    assert rows[0] == [
        "day",
        "provider",
        "model",
        "requests",
        "errors",
        "cached",
        "input_tokens",
        "cache_read_tokens",
        "cache_write_tokens",
        "cache_write_1h_tokens",
        "output_tokens",
        "reasoning_tokens",
        "cost_usd",
    ]
    day, today = yesterday.date().isoformat(), timezone.now().date().isoformat()
    assert [row[:4] for row in rows[1:]] == [
        [day, "openai", "gpt-4o-mini", "1"],
        [day, "openai", "m", "2"],
        [today, "openai", "gpt-4o-mini", "1"],
        [today, "openai", "m", "2"],
    ]
    assert rows[-1][4:] == ["0", "1", "30", "20", "4", "3", "15", "5", "0.000025"]
    assert all(re.fullmatch(r"\d+\.\d{6}", row[12]) for row in rows[1:]), rows


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


def test_latency_counts_only_requests_a_provider_completed(client, team):
    workspace, admin = team  # one completed call: 100 ms to the first token, 700 ms in all
    for _ in range(3):  # refused before any provider was called
        record_call(
            workspace,
            admin,
            status="error",
            error_code="budget_reached",
            ttft_ms=None,
            duration_ms=0,
        )
    record_call(workspace, admin, status="error", ttft_ms=None, duration_ms=30_000)  # timed out
    record_call(workspace, admin, status="stopped", ttft_ms=2000, duration_ms=2100)
    client.force_login(admin)

    body = client.get(f"/usage/?workspace={workspace.slug}&range=day").content.decode()

    latency = body[body.index("TTFT p95") :]
    row = latency[latency.index("gpt-4o-mini") :].split("</tr>")[0]
    assert row.count("<td>700 ms</td>") == 2 and row.count("<td>100 ms</td>") == 2, row
