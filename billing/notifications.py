"""The budget email to a workspace's admins and owners."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.utils import formats, timezone
from django.utils.translation import gettext as _

from aurax.phrases import usd_text
from workspaces.models import Membership, Role

from .models import BudgetAlert, BudgetCounter, BudgetScope
from .quotas import period_label


def budget_alert_send(*, alert_id: int) -> bool:
    with transaction.atomic():
        alert = (
            BudgetAlert.objects.select_for_update(of=("self",))
            .select_related("budget__workspace", "budget__user")
            .filter(pk=alert_id, emailed_at__isnull=True)
            .first()
        )
        if alert is None:
            return False  # already sent (a retried task) or gone
        budget = alert.budget
        workspace = budget.workspace
        recipients = list(
            Membership.objects.filter(workspace=workspace, role__in=[Role.OWNER, Role.ADMIN])
            .values_list("user__email", flat=True)
            .order_by("user__email")
        )
        if recipients:
            subject, body = _alert_email(alert)
            send_mail(subject, body, None, recipients)
        alert.emailed_at = timezone.now()
        alert.save(update_fields=["emailed_at"])
    return True


def _alert_email(alert: BudgetAlert) -> tuple[str, str]:
    """Subject and body: how much of the budget is used now (the e-mail may go out a while
    after the threshold was crossed), against which limit and threshold."""
    budget = alert.budget
    workspace = budget.workspace
    counter = BudgetCounter.objects.filter(
        scope_key=budget.scope_key, period_start=alert.period_start
    ).first()
    spent_cost = counter.spent_cost if counter else Decimal(0)
    spent_tokens = counter.spent_tokens if counter else 0
    if budget.scope == BudgetScope.MEMBER:
        what = _("Budget of %(email)s") % {"email": budget.user.email if budget.user else "?"}
    elif budget.scope == BudgetScope.API_KEY:
        what = _("API key budget")
    else:
        what = _("Workspace budget")
    used, shares = [], []
    if budget.cost_limit is not None:
        used.append(
            _("%(spent)s spent of %(limit)s")
            % {"spent": usd_text(spent_cost), "limit": usd_text(budget.cost_limit)}
        )
        if budget.cost_limit:
            shares.append(spent_cost / budget.cost_limit)
    if budget.token_limit is not None:
        used.append(
            _("%(spent)s of %(limit)s tokens used")
            % {"spent": number(spent_tokens), "limit": number(budget.token_limit)}
        )
        if budget.token_limit:
            shares.append(Decimal(spent_tokens) / budget.token_limit)
    # Rounded down, so 99.6% is not said to be 100%: the budget is only reached at 100%.
    percent = int(max(shares, default=Decimal(0)) * 100)
    if alert.kind == BudgetAlert.Kind.SOFT:
        subject = _("%(workspace)s has used %(percent)s%% of its budget") % {
            "workspace": workspace.name,
            "percent": percent,
        }
    else:
        subject = _("%(workspace)s has reached its budget") % {"workspace": workspace.name}
    body = _(
        "%(what)s in %(workspace)s for %(period)s: %(used)s (%(percent)s%%). "
        "Alerts are sent at %(threshold)s%% and at 100%%.\n\nSee usage at %(url)s"
    ) % {
        "what": what,
        "workspace": workspace.name,
        "period": period_label(alert.period_start),
        "used": "; ".join(used),
        "percent": percent,
        "threshold": budget.soft_threshold_percent,
        "url": f"{settings.SITE_URL}/usage/?workspace={workspace.slug}",
    }
    return subject, body


def number(value: int) -> str:
    return formats.number_format(value, use_l10n=True, force_grouping=True)


# An alert whose own task has not sent it by then (the broker was away when it was raised, or
# the mail server refused) is sent by the periodic sweep; older than a week it is left.
UNSENT_AFTER = timedelta(minutes=2)
UNSENT_WITHIN = timedelta(days=7)


def budget_alerts_unsent_send() -> int:
    """Send every recent alert not e-mailed yet (see UNSENT_AFTER); how many were sent."""
    now = timezone.now()
    pending = BudgetAlert.objects.filter(
        emailed_at__isnull=True,
        created_at__lt=now - UNSENT_AFTER,
        created_at__gte=now - UNSENT_WITHIN,
    ).values_list("pk", flat=True)
    return sum(budget_alert_send(alert_id=pk) for pk in list(pending))
