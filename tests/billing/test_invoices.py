import re
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.db.models import Sum
from django.utils import timezone

from billing import tasks
from billing.invoices import (
    InvoicePeriodOpen,
    invoice_generate,
    invoice_issue,
    invoice_mark_paid,
    invoices_generate,
    previous_month,
)
from billing.models import Invoice, InvoiceLine, ModelPriceOverride, UsageEvent, UsageRollup
from billing.plans import subscription_change
from billing.rollups import usage_rollup_run
from tests.billing.conftest import record_call
from tests.factories import MembershipFactory, UserFactory, WorkspaceFactory
from workspaces.models import Role

UTC = timezone.get_fixed_timezone(0)
YEAR, MONTH = previous_month()
IN_MONTH = datetime(YEAR, MONTH, 3, 10, 30, tzinfo=UTC)


def record(workspace, user, model, input_tokens, output_tokens, created_at, provider="openai"):
    event = record_call(
        workspace,
        user,
        provider_kind=provider,
        model=model,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        ttft_ms=50,
        duration_ms=400,
    )
    UsageEvent.objects.filter(pk=event.pk).update(created_at=created_at)
    return event


@pytest.fixture
def acme(db, plans):
    workspace = WorkspaceFactory(name="Acme")
    owner = MembershipFactory(workspace=workspace, role=Role.OWNER).user
    return workspace, owner


@pytest.fixture
def priced(db):
    # Round prices so the expected amounts are easy to state: $10 / $30 per million tokens.
    ModelPriceOverride.objects.create(
        provider_kind="openai", model="big", input_per_mtok=10, output_per_mtok=30
    )


def test_invoice_totals_match_the_rollups_to_the_cent(acme):
    workspace, owner = acme
    other = WorkspaceFactory()
    stranger = MembershipFactory(workspace=other, role=Role.OWNER).user
    for day, model, tokens in [
        (1, "gpt-4o-mini", 12_345),
        (5, "gpt-4o-mini", 777),
        (9, "gpt-4o", 4321),
    ]:
        record(workspace, owner, model, tokens, tokens // 3, IN_MONTH.replace(day=day))
    record(other, stranger, "gpt-4o", 99_999, 1, IN_MONTH)
    # Outside the month: not on this invoice.
    record(
        workspace, owner, "gpt-4o", 50_000, 50_000, IN_MONTH.replace(day=1) - timedelta(seconds=1)
    )
    usage_rollup_run()

    invoices_generate(year=YEAR, month=MONTH)

    invoice = Invoice.objects.get(workspace=workspace)
    events = UsageEvent.objects.filter(
        workspace=workspace, created_at__gte=IN_MONTH.replace(day=1, hour=0, minute=0)
    )
    assert invoice.usage_cost == events.aggregate(c=Sum("cost"))["c"]
    rolled = UsageRollup.objects.filter(
        workspace=workspace,
        granularity="hour",
        bucket_start__gte=IN_MONTH.replace(day=1, hour=0, minute=0),
    ).aggregate(c=Sum("cost"))["c"]
    assert invoice.usage_cost == rolled
    assert invoice.usage_cost > 0
    lines = {line.model: line for line in invoice.lines.all()}
    assert set(lines) == {"gpt-4o-mini", "gpt-4o"}
    mini = events.filter(model="gpt-4o-mini")
    assert lines["gpt-4o-mini"].requests == 2
    assert lines["gpt-4o-mini"].input_tokens == 12_345 + 777
    assert lines["gpt-4o-mini"].cost == mini.aggregate(c=Sum("cost"))["c"]
    assert sum(line.cost for line in lines.values()) == invoice.usage_cost
    assert invoice.number == f"INV-{YEAR}{MONTH:02d}-{workspace.id:06d}"
    assert invoice.plan_name == "Free" and invoice.status == "draft"
    assert (
        Invoice.objects.get(workspace=other).usage_cost
        == (UsageEvent.objects.filter(workspace=other).aggregate(c=Sum("cost"))["c"])
    )


def test_overage_is_usage_beyond_the_plan_allowance(acme, plans, priced):
    workspace, owner = acme
    subscription_change(workspace=workspace, plan=plans["pro"], source="test")
    # 1M input ($10) + 1M output ($30) = $40.00 of usage on Pro ($20, $20 included).
    record(workspace, owner, "big", 1_000_000, 1_000_000, IN_MONTH)
    usage_rollup_run()

    invoice = invoice_generate(workspace_id=workspace.id, year=YEAR, month=MONTH)

    assert invoice.usage_cost == Decimal("40")
    assert invoice.allowance_applied == Decimal("20")
    assert invoice.overage == Decimal("20.00")
    assert invoice.plan_price == Decimal("20.00")
    assert invoice.total == Decimal("40.00")


def test_usage_within_the_allowance_has_no_overage(acme, priced):
    workspace, owner = acme
    record(workspace, owner, "big", 50_000, 0, IN_MONTH)  # $0.50 of Free's $1.00
    usage_rollup_run()

    invoice = invoice_generate(workspace_id=workspace.id, year=YEAR, month=MONTH)

    assert invoice.usage_cost == Decimal("0.5")
    assert invoice.overage == Decimal("0") and invoice.total == Decimal("0")


def test_a_token_allowance_covers_its_share_of_the_cost(acme, plans, priced):
    workspace, owner = acme
    plan = plans["pro"]
    plan.included_cost, plan.included_tokens = Decimal(0), 250_000
    plan.save()
    subscription_change(workspace=workspace, plan=plan, source="test")
    record(workspace, owner, "big", 1_000_000, 0, IN_MONTH)  # $10 for 1M tokens
    usage_rollup_run()

    invoice = invoice_generate(workspace_id=workspace.id, year=YEAR, month=MONTH)

    assert invoice.allowance_applied == Decimal("2.5")
    assert invoice.overage == Decimal("7.50")


def test_rerunning_the_job_changes_nothing(acme, eager_celery):
    workspace, owner = acme
    record(workspace, owner, "gpt-4o-mini", 5000, 500, IN_MONTH)
    usage_rollup_run()
    tasks.invoices_generate.delay(YEAR, MONTH)
    invoice = Invoice.objects.get(workspace=workspace)
    line_ids = list(invoice.lines.values_list("id", flat=True))

    result = tasks.invoices_generate.delay(YEAR, MONTH).get()

    assert result["invoices"] == [invoice.number]
    assert Invoice.objects.count() == 1
    again = Invoice.objects.get(workspace=workspace)
    assert again.updated_at == invoice.updated_at
    assert list(again.lines.values_list("id", flat=True)) == line_ids


def test_a_rerun_recomputes_a_draft_but_leaves_an_issued_invoice(acme, priced):
    workspace, owner = acme
    record(workspace, owner, "big", 100_000, 0, IN_MONTH)  # $1
    usage_rollup_run()
    invoices_generate(year=YEAR, month=MONTH)
    record(workspace, owner, "big", 200_000, 0, IN_MONTH + timedelta(days=1))  # a late $2
    usage_rollup_run()

    invoices_generate(year=YEAR, month=MONTH)

    invoice = Invoice.objects.get(workspace=workspace)
    assert invoice.usage_cost == Decimal("3")
    assert invoice.lines.get().requests == 2
    invoice_issue(invoice=invoice)
    record(workspace, owner, "big", 300_000, 0, IN_MONTH + timedelta(days=2))
    usage_rollup_run()

    invoices_generate(year=YEAR, month=MONTH)

    invoice.refresh_from_db()
    assert invoice.status == "issued" and invoice.usage_cost == Decimal("3")
    assert InvoiceLine.objects.filter(invoice=invoice).get().requests == 2


def test_a_paying_workspace_without_usage_is_invoiced_its_plan(acme, plans):
    workspace, _owner = acme
    subscription = subscription_change(workspace=workspace, plan=plans["team"], source="test")
    type(subscription).objects.filter(pk=subscription.pk).update(created_at=IN_MONTH)
    quiet = WorkspaceFactory()

    invoices_generate(year=YEAR, month=MONTH)

    invoice = Invoice.objects.get(workspace=workspace)
    assert invoice.total == Decimal("99.00") and not invoice.lines.exists()
    assert not Invoice.objects.filter(workspace=quiet).exists()


def test_the_job_runs_on_the_first_of_each_month():
    entry = django_settings.CELERY_BEAT_SCHEDULE["billing-invoices-monthly"]

    assert entry["task"] == "billing.invoices_generate"
    assert entry["schedule"].day_of_month == {1}


@pytest.fixture
def invoice(acme):
    workspace, owner = acme
    record(workspace, owner, "gpt-4o-mini", 5000, 500, IN_MONTH)
    usage_rollup_run()
    return invoice_generate(workspace_id=workspace.id, year=YEAR, month=MONTH)


def test_an_owner_sees_the_printable_invoice(client, acme, invoice):
    workspace, owner = acme
    client.force_login(owner)

    listing = client.get(f"/usage/invoices/?workspace={workspace.slug}").content.decode()
    response = client.get(f"/usage/invoices/{invoice.number}/")

    assert f"/usage/invoices/{invoice.number}/" in listing
    body = response.content.decode()
    assert response.status_code == 200
    assert "gpt-4o-mini" in body and invoice.number in body
    assert "billing/invoice.css" in body and "<style" not in body
    assert "<script>" not in body and "onclick" not in body
    css = Path(django_settings.BASE_DIR, "billing/static/billing/invoice.css").read_text()
    assert "@media print" in css


def test_an_admin_may_open_invoices(client, acme, invoice):
    workspace, _owner = acme
    admin = MembershipFactory(workspace=workspace, role=Role.ADMIN).user
    client.force_login(admin)

    assert client.get(f"/usage/invoices/{invoice.number}/").status_code == 200


@pytest.mark.parametrize("role", [Role.MEMBER, Role.VIEWER])
def test_members_and_viewers_cannot_open_invoices(client, acme, invoice, role):
    workspace, _owner = acme
    client.force_login(MembershipFactory(workspace=workspace, role=role).user)

    assert client.get(f"/usage/invoices/{invoice.number}/").status_code == 403
    assert client.get(f"/usage/invoices/?workspace={workspace.slug}").status_code == 403


def test_an_invoice_of_another_workspace_is_not_found(client, invoice):
    other = WorkspaceFactory()
    client.force_login(MembershipFactory(workspace=other, role=Role.OWNER).user)

    assert client.get(f"/usage/invoices/{invoice.number}/").status_code == 404
    listing = client.get(f"/usage/invoices/?workspace={other.slug}").content.decode()
    assert invoice.number not in listing


def test_an_unknown_invoice_is_not_found(client, db):
    client.force_login(UserFactory())

    assert client.get("/usage/invoices/INV-000000-000000/").status_code == 404


def this_month():
    now = timezone.now().astimezone(UTC)
    return now.year, now.month


def test_an_invoice_of_the_running_month_stays_a_draft_that_later_usage_updates(acme, priced):
    workspace, owner = acme
    year, month = this_month()
    record(workspace, owner, "big", 100_000, 0, timezone.now())  # $1
    invoices_generate(year=year, month=month)
    invoice = Invoice.objects.get(workspace=workspace)

    with pytest.raises(InvoicePeriodOpen):
        invoice_issue(invoice=invoice)
    with pytest.raises(InvoicePeriodOpen):
        invoice_mark_paid(invoice=invoice)

    record(workspace, owner, "big", 200_000, 0, timezone.now())  # $2 more, same month
    invoices_generate(year=year, month=month)
    invoice.refresh_from_db()
    assert invoice.status == "draft" and invoice.issued_at is None
    assert invoice.usage_cost == Decimal("3")


def test_the_admin_issues_ended_months_and_lists_the_running_ones_it_skipped(
    staff_client, acme, invoice
):
    workspace, owner = acme
    year, month = this_month()
    record(workspace, owner, "gpt-4o-mini", 100, 10, timezone.now())
    running = invoice_generate(workspace_id=workspace.id, year=year, month=month)

    response = staff_client.post(
        "/admin/billing/invoice/",
        {"action": "issue", "_selected_action": [invoice.pk, running.pk]},
        follow=True,
    )

    invoice.refresh_from_db()
    running.refresh_from_db()
    assert invoice.status == "issued" and running.status == "draft"
    shown = [str(m) for m in response.context["messages"]]
    assert f"Invoices issued: {invoice.number}." in shown
    assert any(running.number in m and "has not ended" in m for m in shown), shown
    assert not any(invoice.number in m and "has not ended" in m for m in shown)


def test_the_admin_does_not_delete_issued_or_paid_invoices(staff_client, acme, invoice):
    changelist = staff_client.get("/admin/billing/invoice/").content.decode()
    draft_delete = staff_client.get(f"/admin/billing/invoice/{invoice.pk}/delete/")
    invoice_issue(invoice=invoice)
    issued_delete = staff_client.get(f"/admin/billing/invoice/{invoice.pk}/delete/")
    issued_delete_post = staff_client.post(
        f"/admin/billing/invoice/{invoice.pk}/delete/", {"post": "yes"}
    )
    invoice_mark_paid(invoice=invoice)
    paid_delete_post = staff_client.post(
        f"/admin/billing/invoice/{invoice.pk}/delete/", {"post": "yes"}
    )

    assert 'value="delete_selected"' not in changelist
    assert draft_delete.status_code == 200
    assert issued_delete.status_code == 403
    assert issued_delete_post.status_code == 403 and paid_delete_post.status_code == 403
    assert Invoice.objects.filter(pk=invoice.pk, status="paid").exists()


def test_the_invoice_shows_the_allowance_and_the_part_of_it_applied(client, acme, priced):
    workspace, owner = acme  # on Free: $1 included
    record(workspace, owner, "big", 10_000, 0, IN_MONTH)  # $0.10
    usage_rollup_run()
    invoice = invoice_generate(workspace_id=workspace.id, year=YEAR, month=MONTH)
    client.force_login(owner)

    body = client.get(f"/usage/invoices/{invoice.number}/").content.decode()

    totals = body[body.index('class="usage-table invoice-totals"') :].split("</table>")[0]
    rows = dict(re.findall(r"<tr[^>]*><th>([^<]*)</th><td>([^<]*)</td></tr>", totals))
    assert rows["Usage subtotal"] == "$0.1000"
    assert rows["Plan allowance for the month"] == "$1.00"
    assert rows["Allowance applied to this usage"] == "−$0.1000"
    assert rows["Overage"] == "$0.00"
