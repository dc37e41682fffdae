"""The budget email to a workspace's admins and owners."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from workspaces.models import Membership, Role

from .models import BudgetAlert
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
            what = budget.get_scope_display()
            if budget.user_id:
                what = f"{what} ({budget.user.email})"
            limit_parts = []
            if budget.cost_limit is not None:
                limit_parts.append(f"${budget.cost_limit:,.2f}")
            if budget.token_limit is not None:
                limit_parts.append(_("%(n)s tokens") % {"n": f"{budget.token_limit:,}"})
            if alert.kind == BudgetAlert.Kind.SOFT:
                subject = _("%(workspace)s has used %(percent)s%% of its budget") % {
                    "workspace": workspace.name,
                    "percent": budget.soft_threshold_percent,
                }
            else:
                subject = _("%(workspace)s has reached its budget") % {"workspace": workspace.name}
            body = _(
                "%(what)s in %(workspace)s for %(period)s: limit %(limit)s.\n\nSee usage at %(url)s"
            ) % {
                "what": what,
                "workspace": workspace.name,
                "period": period_label(alert.period_start),
                "limit": " / ".join(limit_parts),
                "url": f"{settings.SITE_URL}/usage/?workspace={workspace.slug}",
            }
            send_mail(subject, body, None, recipients)
        alert.emailed_at = timezone.now()
        alert.save(update_fields=["emailed_at"])
    return True


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
