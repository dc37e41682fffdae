"""The usage ledger's writer: finished calls are written in batches, one transaction per batch,
off the caller's path, and a journal keeps a queued row through a crash of its process.

    usage_enqueue(entry)     async callers (the pipeline): returns at once, the row is queued
    usage_write([entries])   sync callers: the rows are written when it returns
    ledger_flush()           everything queued so far is written (tests, shutdown)
    journals_replay()        rows queued by processes that died before writing them

Why: one write transaction per call (ledger row, spend counters, reservation release) was the
largest cost of a /v1 request, and on SQLite every such transaction queues on the one writer.
Batched, N calls finishing together cost one transaction, their spend counters summed per
scope, and nobody waits for it.

How nothing is lost:
- Every queued row is first appended to this process's journal segment
  (`BILLING_USAGE_JOURNAL_DIR/<host>-<pid>-<n>.jsonl`), a file the process holds with an
  exclusive `flock` while it lives. A plain `write()`: the row survives the process being
  killed (the kernel has it), not a power cut.
- The writer takes everything queued together with the segment it was appended to (appends
  continue in a fresh one), commits it, then deletes that segment.
- At exit (`atexit`) whatever is queued is written. A process killed before that leaves its
  segments unlocked: `journals_replay` (run at start-up by `aurax_startup` and by every
  process's first write) takes each unlocked segment and writes the rows it holds whose `uid`
  is not in the ledger yet, so a crash between commit and delete does not count twice.

The writer runs on the database threads of `aurax.db_threads` (on SQLite: the one writer
thread), at most one batch at a time per process, BATCH_SECONDS after the first row of the
batch was queued; rows queued meanwhile, or while a batch is written, join the batch.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import itertools
import json
import logging
import os
import secrets
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

from django.conf import settings
from django.db import IntegrityError, connection, transaction

from accounts.models import User
from aurax import db_threads
from workspaces.models import Workspace

from .models import UsageEvent
from .quotas import (
    Reservation,
    ReservationLine,
    _retry_when_locked,
    spend_apply_after_commit,
    spend_apply_in_transaction,
)

logger = logging.getLogger(__name__)

BATCH_SECONDS = 0.05


@dataclass(slots=True)
class UsageEntry:
    """One finished call, priced, as it will stand in the ledger."""

    workspace_id: int | None  # None once the workspace is deleted (`_owners_present`)
    user_id: int | None
    api_key_id: int | None
    credential_id: int | None
    provider_kind: str
    model: str
    input_tokens: int
    output_tokens: int
    estimated: bool
    cost: Decimal
    price_known: bool
    status: str
    error_code: str
    ttft_ms: int | None
    duration_ms: int
    request_id: str
    source: str
    reference: str | None
    created_at: datetime
    period_start: date
    # Parts of the input and output totals (providers.types.Usage); absent from journal lines
    # written before they were kept.
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    cache_write_1h_tokens: int = 0  # of the writes, those kept an hour
    reservation: Reservation | None = None
    uid: str = ""

    def __post_init__(self):
        if not self.uid:
            self.uid = secrets.token_hex(16)  # a UUID's 128 bits, cheaper than uuid4()

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def to_json(self) -> str:
        data = {name: getattr(self, name) for name in self.__slots__ if name != "reservation"}
        data["cost"] = str(self.cost)
        data["created_at"] = self.created_at.isoformat()
        data["period_start"] = self.period_start.isoformat()
        r = self.reservation
        if r is not None and r.lines and not r.closed and r.lease is None:
            data["reservation"] = {
                "id": r.id,
                "lines": [[line.scope_key, str(line.cost), line.tokens] for line in r.lines],
            }
        return json.dumps(data, separators=(",", ":"))

    @classmethod
    def from_json(cls, line: str) -> UsageEntry:
        data = json.loads(line)
        held = data.pop("reservation", None)
        data["cost"] = Decimal(data["cost"])
        data["created_at"] = datetime.fromisoformat(data["created_at"])
        data["period_start"] = date.fromisoformat(data["period_start"])
        entry = cls(**data)
        if held is not None:
            entry.reservation = Reservation(
                id=held["id"],
                workspace_id=entry.workspace_id,
                user_id=entry.user_id,
                api_key_id=entry.api_key_id,
                period_start=entry.period_start,
                cost=Decimal(0),
                tokens=0,
                lines=[ReservationLine(k, Decimal(c), t) for k, c, t in held["lines"]],
            )
        return entry


# --- Writing ------------------------------------------------------------------------------


def usage_write(entries: list[UsageEntry], *, replay: bool = False) -> int:
    """Write rows in one transaction (sync, on a database thread): the ledger rows, the spend
    counters summed per scope, the reservations' release; after commit the Redis quota state
    and the budget alerts. With `replay`, rows already in the ledger are skipped. How many
    rows were written."""
    if not entries:
        return 0

    @_retry_when_locked
    def commit(todo: list[UsageEntry]) -> tuple[list[UsageEntry], dict]:
        with transaction.atomic():
            if replay:
                known = {
                    u.hex
                    for u in UsageEvent.objects.filter(
                        uid__in=[uuid.UUID(e.uid) for e in entries]
                    ).values_list("uid", flat=True)
                }
                todo = [e for e in entries if e.uid not in known]
            _events_insert(todo)
            spent = spend_apply_in_transaction(todo)
        return todo, spent

    try:
        written, spent = commit(entries)
    except IntegrityError:
        written, spent = commit(_owners_present(entries))
    spend_apply_after_commit(written)
    _alerts_check(written, spent)
    return len(written)


# Every column but the id, each filled from the entry's attribute of the same name.
_INSERT_FIELDS = [f for f in UsageEvent._meta.concrete_fields if not f.primary_key]


INSERT_ROWS_MAX = 500  # rows per INSERT: 10,000 parameters, under every backend's limit


def _events_insert(entries: list[UsageEntry]) -> None:
    """The ledger rows, in one multi-row INSERT per INSERT_ROWS_MAX rows. `bulk_create` built a
    model instance and compiled placeholders field by field for every row: most of the writer's
    time, on a thread that shares the GIL with the requests."""
    quote = connection.ops.quote_name
    head = "INSERT INTO {} ({}) VALUES ".format(
        quote(UsageEvent._meta.db_table), ", ".join(quote(f.column) for f in _INSERT_FIELDS)
    )
    row = "({})".format(", ".join(["%s"] * len(_INSERT_FIELDS)))
    with connection.cursor() as cursor:
        for start in range(0, len(entries), INSERT_ROWS_MAX):
            batch = entries[start : start + INSERT_ROWS_MAX]
            cursor.execute(
                head + ", ".join([row] * len(batch)),
                [
                    f.get_db_prep_save(getattr(e, f.attname), connection)
                    for e in batch
                    for f in _INSERT_FIELDS
                ],
            )


def _owners_present(entries: list[UsageEntry]) -> list[UsageEntry]:
    """A workspace or user deleted between the call and the write: the row is kept without
    them, as the rows already written are (the call was made and paid for; the operator's
    cost totals count it under deleted workspaces). One bad row must not block the batch, or
    replaying it, forever."""
    workspaces = set(
        Workspace.objects.filter(
            pk__in={e.workspace_id for e in entries if e.workspace_id}
        ).values_list("pk", flat=True)
    )
    users = set(
        User.objects.filter(pk__in={e.user_id for e in entries if e.user_id}).values_list(
            "pk", flat=True
        )
    )
    for e in entries:
        if e.workspace_id is not None and e.workspace_id not in workspaces:
            e.workspace_id = None
        if e.user_id is not None and e.user_id not in users:
            e.user_id = None
    return entries


def _alerts_check(entries: list[UsageEntry], spent: dict) -> None:
    from .services import budget_alerts_check

    seen = set()
    for e in entries:
        if e.workspace_id is None:  # its workspace is gone, and its budgets with it
            continue
        scopes = (e.workspace_id, e.user_id, e.api_key_id, e.period_start)
        if scopes in seen:
            continue
        seen.add(scopes)
        try:
            budget_alerts_check(
                workspace_id=e.workspace_id,
                user_id=e.user_id,
                api_key_id=e.api_key_id,
                start=e.period_start,
                spent=spent,
            )
        except Exception:  # an alert is advisory: the spend is already recorded
            logger.exception("budget alert check failed")


# --- The journal --------------------------------------------------------------------------


def _journal_dir() -> Path:
    configured = getattr(settings, "BILLING_USAGE_JOURNAL_DIR", None)
    return Path(configured) if configured else Path(settings.DATA_DIR) / "usage-journal"


class _Segment:
    """One journal file, locked by this process until its rows are written."""

    _numbers = itertools.count()

    def __init__(self, directory: Path):
        directory.mkdir(parents=True, exist_ok=True)
        name = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.path = directory / f"{name}-{next(self._numbers)}.jsonl"
        self.fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        self.used = False

    def append(self, line: str) -> None:
        os.write(self.fd, (line + "\n").encode())
        self.used = True

    def discard(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        os.close(self.fd)


class _Writer:
    """This process's queue, its journal segment, and the one batch in flight."""

    def __init__(self):
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()  # one batch at a time: the writer or `flush`
        self._queue: list[UsageEntry] = []
        self._segment: _Segment | None = None
        self._scheduled = False
        self._replayed = False
        self._due = threading.Event()
        self._timer: threading.Thread | None = None
        self._pid = os.getpid()

    def enqueue(self, entry: UsageEntry) -> None:
        line = entry.to_json()
        with self._lock:
            if self._pid != os.getpid():  # a forked child starts with an empty queue
                self.__init__()
            if self._segment is None:
                self._segment = _Segment(_journal_dir())
            self._segment.append(line)
            self._queue.append(entry)
            if self._scheduled:
                return
            self._scheduled = True
            if self._timer is None:
                self._timer = threading.Thread(
                    target=self._tick_forever, name="aurax-ledger", daemon=True
                )
                self._timer.start()
        self._due.set()

    def _tick_forever(self) -> None:
        """Start a write BATCH_SECONDS after the first row of a batch was queued: rows
        that finish meanwhile join it (nobody waits for the ledger)."""
        while True:
            self._due.wait()
            self._due.clear()
            time.sleep(getattr(settings, "BILLING_LEDGER_BATCH_SECONDS", BATCH_SECONDS))
            try:
                db_threads.db_submit(self._drain)
            except RuntimeError:  # the database threads are shut down: the process is exiting
                return

    def _take(self) -> tuple[list[UsageEntry], _Segment | None]:
        with self._lock:
            batch, self._queue = self._queue, []
            segment, self._segment = self._segment, None
            return batch, segment

    def _drain(self) -> None:
        """On a database thread: write batches until the queue is empty."""
        if not self._replayed:
            self._replayed = True
            journals_replay()
        while True:
            self._write_once()
            with self._lock:
                if not self._queue:
                    self._scheduled = False
                    return

    def _write_once(self) -> None:
        with self._write_lock:
            batch, segment = self._take()
            if not batch:
                if segment is not None:
                    segment.discard()
                return
            try:
                usage_write(batch)
            except Exception:
                # The rows stay in their (still locked) segment; the next start-up or any
                # other process's replay writes them once the database answers again.
                logger.exception(
                    "writing %d usage rows failed; kept in %s", len(batch), segment and segment.path
                )
                if segment is not None:
                    os.close(segment.fd)  # unlocked: the next replay takes it
                self._replayed = False
                return
            if segment is not None:
                segment.discard()

    def flush(self) -> None:
        while True:
            self._write_once()  # also waits for a batch the writer has in flight
            with self._lock:
                if not self._queue:
                    self._scheduled = False
                    return


_writer = _Writer()


def usage_enqueue(entry: UsageEntry) -> None:
    """Queue a finished call for the ledger; never blocks on the database."""
    _writer.enqueue(entry)


def ledger_flush() -> None:
    """Write everything queued by this process now (sync)."""
    _writer.flush()


async def aledger_flush() -> None:
    await db_threads.db_call(ledger_flush)


@atexit.register
def _flush_at_exit() -> None:
    with contextlib.suppress(Exception):
        _writer.flush()


def journals_replay() -> int:
    """Write the rows of every journal segment no live process holds; returns how many were
    new to the ledger."""
    directory = _journal_dir()
    if not directory.is_dir():
        return 0
    written = 0
    for path in sorted(directory.glob("*.jsonl")):
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            continue
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # a live process holds it
            with open(fd, closefd=False) as handle:
                lines = [line for line in handle.read().splitlines() if line.strip()]
            entries = []
            for line in lines:
                try:
                    entries.append(UsageEntry.from_json(line))
                except (ValueError, KeyError, TypeError):
                    # A line cut short by a crash mid-write: it never reached the writer.
                    logger.warning("skipping an unreadable usage journal line in %s", path)
            written += usage_write(entries, replay=True)
            path.unlink(missing_ok=True)
        finally:
            os.close(fd)
    if written:
        logger.warning("replayed %d usage rows from the journals of stopped processes", written)
    return written
