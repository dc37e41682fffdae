"""Budget alert e-mails reach the workspace's admins even when they could not be queued."""

import time
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core import mail
from django.utils import timezone
from kombu.exceptions import OperationalError

from billing import services, tasks
from billing.models import BudgetAlert
from billing.notifications import budget_alerts_unsent_send
from billing.services import budget_upsert
from tests.billing.conftest import settle
from tests.billing.test_quotas import reserve

pytestmark = pytest.mark.django_db(transaction=True)


def test_an_alert_whose_e_mail_could_not_be_queued_is_sent_by_the_periodic_sweep(
    workspace, owner, member, dollar_per_mtok, celery_worker, monkeypatch
):
    def broker_away(alert_id):
        raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(services, "_alert_email_queue", broker_away)
    budget_upsert(
        workspace_id=workspace.id,
        cost_limit=Decimal("10"),
        token_limit=None,
        soft_threshold_percent=50,
    )
    settle(workspace, member, reserve(workspace, member), 3000, 3000)  # 60%: crossed
    [alert] = BudgetAlert.objects.all()
    assert alert.emailed_at is None and mail.outbox == []

    assert budget_alerts_unsent_send() == 0  # too soon: its own task may be on the way

    BudgetAlert.objects.filter(pk=alert.pk).update(created_at=timezone.now() - timedelta(minutes=3))
    tasks.budget_alerts_unsent.delay()  # as beat runs it, on a worker
    deadline = time.monotonic() + 30
    while not mail.outbox and time.monotonic() < deadline:
        time.sleep(0.1)

    assert [m.to for m in mail.outbox] == [[owner.email]]
    assert "has used 60% of its budget" in mail.outbox[0].subject
    alert.refresh_from_db()
    assert alert.emailed_at is not None
    assert budget_alerts_unsent_send() == 0  # sent once, not again
    assert len(mail.outbox) == 1
