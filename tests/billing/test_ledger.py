"""The batched usage ledger: rows queued by the pipeline are written in batches, summed into
the spend counters once, and a process killed before writing them loses none."""

import subprocess
import sys
import textwrap
from datetime import date
from decimal import Decimal

import pytest
from django.core.management import call_command

from billing.ledger import UsageEntry, journals_replay, ledger_flush, usage_enqueue, usage_write
from billing.models import BudgetCounter, UsageEvent
from billing.quotas import period_start_for


def entry(workspace, user, **overrides):
    from django.utils import timezone

    values = dict(
        workspace_id=workspace.pk,
        user_id=user.pk,
        api_key_id=None,
        credential_id=None,
        provider_kind="openai",
        model="gpt-4o-mini",
        input_tokens=100,
        output_tokens=50,
        estimated=False,
        cost=Decimal("0.000045"),
        price_known=True,
        status="ok",
        error_code="",
        ttft_ms=10,
        duration_ms=20,
        request_id="r",
        source="api",
        reference=None,
        created_at=timezone.now(),
        period_start=period_start_for(),
    )
    values.update(overrides)
    return UsageEntry(**values)


def counter(key: str) -> BudgetCounter:
    return BudgetCounter.objects.get(scope_key=key, period_start=period_start_for())


@pytest.mark.django_db(transaction=True)
def test_queued_rows_are_written_together_and_counted_once_per_row(workspace, owner):
    for _ in range(5):
        usage_enqueue(entry(workspace, owner))
    ledger_flush()

    assert UsageEvent.objects.filter(workspace=workspace).count() == 5
    spent = counter(f"ws:{workspace.pk}")
    assert spent.spent_tokens == 5 * 150
    assert spent.spent_cost == 5 * Decimal("0.000045")
    assert counter(f"member:{workspace.pk}:{owner.pk}").spent_tokens == 5 * 150


@pytest.mark.django_db(transaction=True)
def test_a_batch_larger_than_one_insert_is_written_whole_with_every_field(workspace, owner):
    rows = [
        entry(workspace, owner, ttft_ms=i, reference=f"chat.message:{i}", cache_read_tokens=i % 100)
        for i in range(1203)
    ]
    written = usage_write(rows)

    assert written == 1203
    stored = UsageEvent.objects.filter(workspace=workspace)
    assert sorted(stored.values_list("ttft_ms", flat=True)) == list(range(1203))
    one = stored.get(reference="chat.message:7")
    assert (one.user_id, one.provider_kind, one.model, one.source) == (
        owner.pk,
        "openai",
        "gpt-4o-mini",
        "api",
    )
    assert (one.input_tokens, one.output_tokens, one.cost, one.estimated) == (
        100,
        50,
        Decimal("0.000045"),
        False,
    )
    assert one.uid.hex == rows[7].uid and one.created_at == rows[7].created_at
    assert (one.cache_read_tokens, one.cache_write_tokens, one.reasoning_tokens) == (7, 0, 0)
    assert counter(f"ws:{workspace.pk}").spent_tokens == 1203 * 150


@pytest.fixture
def writer_paused(monkeypatch):
    """Rows stay queued until the test flushes them: the writer's runs are dropped."""
    from aurax import db_threads

    monkeypatch.setattr(db_threads, "db_submit", lambda *args, **kwargs: None)


@pytest.mark.django_db(transaction=True)
def test_a_call_whose_workspace_is_deleted_before_its_row_is_written_is_still_recorded(
    workspace, owner, writer_paused
):
    from django.utils import timezone

    from billing.selectors import top_spenders
    from tests.factories import WorkspaceFactory

    doomed = WorkspaceFactory()
    usage_enqueue(entry(doomed, owner, cost=Decimal("0.5")))
    usage_enqueue(entry(workspace, owner))
    doomed.delete()
    ledger_flush()

    rows = set(UsageEvent.objects.values_list("workspace_id", "cost"))
    assert rows == {(None, Decimal("0.5")), (workspace.pk, Decimal("0.000045"))}
    # Counted for the operator under deleted workspaces; nothing counted for the gone one.
    day = timezone.timedelta(days=1)
    spenders = top_spenders(timezone.now() - day, timezone.now() + day)
    assert {"workspace_id": None, "name": "Deleted workspaces", "cost": Decimal("0.5")} in spenders
    assert not BudgetCounter.objects.filter(scope_key__startswith=f"ws:{doomed.pk}").exists()
    assert not BudgetCounter.objects.filter(scope_key__startswith=f"member:{doomed.pk}:").exists()
    assert counter(f"ws:{workspace.pk}").spent_tokens == 150


@pytest.mark.django_db(transaction=True)
def test_rows_of_a_killed_process_are_replayed_once_at_start_up(
    workspace, owner, settings, tmp_path
):
    # A separate process queues a row, then dies before its writer runs: only its journal
    # file is left, unlocked.
    script = textwrap.dedent(
        f"""
        import os, django
        os.environ["DJANGO_SETTINGS_MODULE"] = "aurax.settings"
        django.setup()
        from django.conf import settings
        settings.BILLING_USAGE_JOURNAL_DIR = {str(tmp_path)!r}
        from aurax import db_threads
        db_threads.db_submit = lambda *a, **k: None  # the writer never gets to run
        from billing import ledger
        ledger.usage_enqueue(ledger.UsageEntry.from_json({entry(workspace, owner).to_json()!r}))
        os._exit(9)
        """
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=settings.BASE_DIR, timeout=60)
    assert done.returncode == 9
    assert len(list(tmp_path.glob("*.jsonl"))) == 1
    assert UsageEvent.objects.count() == 0

    settings.BILLING_USAGE_JOURNAL_DIR = str(tmp_path)
    call_command("aurax_startup")
    call_command("usage_journal_replay")  # again: nothing counted twice

    [row] = UsageEvent.objects.all()
    assert (row.workspace_id, row.input_tokens, row.output_tokens) == (workspace.pk, 100, 50)
    assert counter(f"ws:{workspace.pk}").spent_tokens == 150
    assert list(tmp_path.glob("*.jsonl")) == []


@pytest.mark.django_db(transaction=True)
def test_a_live_processs_journal_is_left_to_it(workspace, owner, settings, tmp_path, writer_paused):
    settings.BILLING_USAGE_JOURNAL_DIR = str(tmp_path)
    usage_enqueue(entry(workspace, owner))

    assert journals_replay() == 0  # this process holds its journal: not replayed
    assert UsageEvent.objects.count() == 0
    ledger_flush()
    assert UsageEvent.objects.count() == 1
    assert list(tmp_path.glob("*.jsonl")) == []


def test_a_journal_line_keeps_everything_the_ledger_and_the_reservation_need(workspace, owner):
    from billing.quotas import Reservation, ReservationLine

    original = entry(workspace, owner, period_start=date(2026, 11, 1))
    original.reservation = Reservation(
        id="abc",
        workspace_id=workspace.pk,
        user_id=owner.pk,
        api_key_id=None,
        period_start=date(2026, 11, 1),
        cost=Decimal("1"),
        tokens=10,
        lines=[ReservationLine(f"ws:{workspace.pk}", Decimal("1.5"), 10)],
    )
    copy = UsageEntry.from_json(original.to_json())

    assert copy.uid == original.uid and copy.cost == original.cost
    assert copy.created_at == original.created_at and copy.period_start == date(2026, 11, 1)
    assert copy.reservation.id == "abc"
    assert copy.reservation.lines == original.reservation.lines


@pytest.mark.django_db(transaction=True)
def test_a_journal_line_from_before_the_token_parts_replays_with_none(workspace, owner):
    import json

    line = json.loads(entry(workspace, owner, cache_read_tokens=9).to_json())
    assert line.pop("cache_read_tokens") == 9
    del line["cache_write_tokens"], line["reasoning_tokens"]

    usage_write([UsageEntry.from_json(json.dumps(line))], replay=True)

    row = UsageEvent.objects.get(uid=line["uid"])
    assert (row.input_tokens, row.cache_read_tokens, row.reasoning_tokens) == (100, 0, 0)
