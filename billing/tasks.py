from __future__ import annotations

from celery import shared_task

from . import rollups


@shared_task(name="billing.usage_rollup")
def usage_rollup() -> dict:
    return rollups.usage_rollup_run()


@shared_task(name="billing.usage_prune")
def usage_prune() -> int:
    return rollups.usage_prune_run()


@shared_task(name="billing.budget_alert_email")
def budget_alert_email(alert_id: int) -> None:
    from .notifications import budget_alert_send

    budget_alert_send(alert_id=alert_id)


@shared_task(name="billing.budget_alerts_unsent")
def budget_alerts_unsent() -> int:
    """Every 5 minutes (beat): the alert e-mails their own task did not send."""
    from .notifications import budget_alerts_unsent_send

    return budget_alerts_unsent_send()


@shared_task(name="billing.invoices_generate")
def invoices_generate(year: int | None = None, month: int | None = None) -> dict:
    """Monthly (beat, on the 1st): invoices for the previous month; safe to re-run."""
    from .invoices import invoices_generate as generate

    return generate(year=year, month=month)
