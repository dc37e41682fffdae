"""Monthly invoices, computed from the usage rollups.

`invoices_generate(year=, month=)` is idempotent: an invoice is identified by its workspace
and month (and its number is derived from both), a draft is recomputed from the rollups, and an
issued or paid invoice is never touched again.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.utils import timezone

from workspaces.models import Workspace

from .models import (
    Granularity,
    Invoice,
    InvoiceLine,
    InvoiceStatus,
    Subscription,
    SubscriptionStatus,
    UsageEvent,
    UsageRollup,
)
from .plans import allowance_covered, month_bounds, overage_for, plan_for_workspace
from .rollups import rollup_watermark
from .selectors import usage_summary

logger = logging.getLogger(__name__)


def invoice_number_for(*, workspace_id: int, period_start: datetime) -> str:
    return f"INV-{period_start:%Y%m}-{workspace_id:06d}"


def previous_month(now: datetime | None = None) -> tuple[int, int]:
    now = timezone.localtime(now or timezone.now(), timezone.get_fixed_timezone(0))
    last = now.replace(day=1) - timedelta(days=1)
    return last.year, last.month


def workspaces_to_invoice(start: datetime, end: datetime) -> list[int]:
    """Workspaces with usage in the period, and those paying for a plan."""
    ids = set(
        UsageRollup.objects.filter(
            granularity=Granularity.HOUR, bucket_start__gte=start, bucket_start__lt=end
        ).values_list("workspace_id", flat=True)
    )
    ids |= set(
        UsageEvent.objects.filter(
            id__gt=rollup_watermark(), created_at__gte=start, created_at__lt=end
        ).values_list("workspace_id", flat=True)
    )
    ids |= set(
        Subscription.objects.filter(
            plan__monthly_price__gt=0,
            status__in=[SubscriptionStatus.ACTIVE, SubscriptionStatus.PAST_DUE],
            created_at__lt=end,
        ).values_list("workspace_id", flat=True)
    )
    # Usage whose workspace was deleted is kept (for the cost totals) but billed to nobody.
    ids.discard(None)
    return sorted(ids)


def invoice_generate(*, workspace_id: int, year: int, month: int) -> Invoice:
    """Create or recompute the workspace's draft invoice for a month; leave an issued one."""
    start, end = month_bounds(year, month)
    workspace = Workspace.objects.get(pk=workspace_id)
    try:
        with transaction.atomic():
            invoice, _created = Invoice.objects.get_or_create(
                workspace=workspace,
                period_start=start,
                defaults={
                    "number": invoice_number_for(workspace_id=workspace_id, period_start=start),
                    "period_end": end,
                    "workspace_name": workspace.name,
                    "plan": plan_for_workspace(workspace_id),
                },
            )
    except IntegrityError:  # another run created it between our read and write
        invoice = Invoice.objects.get(workspace=workspace, period_start=start)

    with transaction.atomic():
        invoice = Invoice.objects.select_for_update().get(pk=invoice.pk)
        if invoice.status != InvoiceStatus.DRAFT:
            return invoice
        plan = plan_for_workspace(workspace_id)
        rows = [
            r
            for r in usage_summary(workspace_id, start, end, group_by="model")
            if r.requests or r.cost
        ]
        usage_cost = sum((r.cost for r in rows), Decimal(0))
        usage_tokens = sum(r.tokens for r in rows)
        covered = allowance_covered(
            included_cost=plan.included_cost,
            included_tokens=plan.included_tokens,
            usage_cost=usage_cost,
            usage_tokens=usage_tokens,
        )
        overage = overage_for(usage_cost=usage_cost, covered=covered)
        values = {
            "workspace_name": workspace.name,
            "period_end": end,
            "plan_id": plan.pk,
            "plan_name": plan.name,
            "plan_price": plan.monthly_price,
            "included_cost": plan.included_cost,
            "included_tokens": plan.included_tokens,
            "usage_cost": usage_cost,
            "usage_tokens": usage_tokens,
            "allowance_applied": covered,
            "overage": overage,
            "total": plan.monthly_price + overage,
        }
        lines = [
            (r.key[0], r.key[1], r.requests, r.input_tokens, r.output_tokens, r.cost) for r in rows
        ]
        existing = invoice.lines.values_list(
            "provider_kind", "model", "requests", "input_tokens", "output_tokens", "cost"
        )
        unchanged = sorted(existing) == sorted(lines) and all(
            getattr(invoice, field) == value for field, value in values.items()
        )
        if unchanged:
            return invoice  # a re-run over the same rollups writes nothing
        for field, value in values.items():
            setattr(invoice, field, value)
        invoice.save()
        invoice.lines.all().delete()
        InvoiceLine.objects.bulk_create(
            [
                InvoiceLine(
                    invoice=invoice,
                    provider_kind=kind,
                    model=model,
                    requests=requests,
                    input_tokens=input_tokens,
                    output_tokens=output_tokens,
                    cost=cost,
                )
                for kind, model, requests, input_tokens, output_tokens, cost in lines
            ]
        )
    return invoice


def invoices_generate(*, year: int | None = None, month: int | None = None) -> dict:
    """Invoices of every workspace to bill for a month (by default the previous one)."""
    if year is None or month is None:
        year, month = previous_month()
    start, end = month_bounds(year, month)
    numbers = []
    for workspace_id in workspaces_to_invoice(start, end):
        numbers.append(invoice_generate(workspace_id=workspace_id, year=year, month=month).number)
    logger.info("invoices for %04d-%02d: %d", year, month, len(numbers))
    return {"period": f"{year:04d}-{month:02d}", "invoices": numbers}


class InvoicePeriodOpen(Exception):
    """The invoice's month has not ended: issuing it would freeze it before the month's usage
    is in, and the rest of the month would never be billed."""

    def __init__(self, invoice: Invoice):
        super().__init__(f"the period of {invoice.number} ends {invoice.period_end:%Y-%m-%d}")
        self.invoice = invoice


def _refuse_open_period(invoice: Invoice) -> None:
    if invoice.period_end > timezone.now():
        raise InvoicePeriodOpen(invoice)


def invoice_issue(*, invoice: Invoice) -> Invoice:
    """Issue a draft; raises InvoicePeriodOpen while its month is still running."""
    with transaction.atomic():
        invoice = Invoice.objects.select_for_update().get(pk=invoice.pk)
        if invoice.status == InvoiceStatus.DRAFT:
            _refuse_open_period(invoice)
            invoice.status = InvoiceStatus.ISSUED
            invoice.issued_at = timezone.now()
            invoice.save(update_fields=["status", "issued_at", "updated_at"])
    return invoice


def invoice_mark_paid(*, invoice: Invoice) -> Invoice:
    """Mark an invoice paid (issuing a draft); raises InvoicePeriodOpen like invoice_issue."""
    with transaction.atomic():
        invoice = Invoice.objects.select_for_update().get(pk=invoice.pk)
        if invoice.status != InvoiceStatus.PAID:
            _refuse_open_period(invoice)
            now = timezone.now()
            invoice.status = InvoiceStatus.PAID
            invoice.issued_at = invoice.issued_at or now
            invoice.paid_at = now
            invoice.save(update_fields=["status", "issued_at", "paid_at", "updated_at"])
    return invoice
