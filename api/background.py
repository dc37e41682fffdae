"""Background responses (`background: true` on /v1/responses): kept from the start, queued,
and answered by a Celery worker through the one pipeline as the response's API key, on a
private event loop. While it runs, the worker says every second that it is alive and reads
whether the response was cancelled (or deleted): then its upstream call is closed at once,
billed for what it produced. The answer is written to the stored response, which
GET /v1/responses/{id} reads. A worker that dies midway is replaced (services.background_resume).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import secrets
import time

from django.db.models import Max
from django.utils import timezone

from aurax.db_threads import db_call
from gateway.errors import GatewayError, store_unreachable
from providers.http import run_blocking
from providers.types import Finish, TextDelta

from .auth import key_principal
from .errors import ApiError, retry_wait
from .handlers import (
    cancelled_object,
    completion_stream,
    message_start_events,
    response_object,
    text_delta_event,
)
from .models import StoredResponse, StoredResponseEvent
from .schemas import ResponsesRequest
from .selectors import stored_response_turns
from .services import QUEUED_EVENTS, response_events_write

logger = logging.getLogger(__name__)

CHECK_SECONDS = 1.0
FLUSH_SECONDS = 0.2  # a background response's text reaches its stream's readers this often
ATTEMPTS = 5  # calls for one response while it is rate limited or its provider overloaded
Status = StoredResponse.Status


def response_run(*, public_id: str) -> None:
    """Answer a queued background response, unless another worker has it (or it was
    cancelled or deleted meanwhile)."""
    response = StoredResponse.objects.filter(public_id=public_id, status=Status.QUEUED).first()
    if response is None:
        return
    response.body = {**response.body, "status": Status.IN_PROGRESS}
    # Claimed with its body in one write, unless another worker (or a cancel) came first.
    claimed = StoredResponse.objects.filter(pk=response.pk, status=Status.QUEUED).update(
        status=Status.IN_PROGRESS, heartbeat_at=timezone.now(), body=response.body
    )
    if claimed:
        run_blocking(_answer, response, _stream_restart(response))


def _stream_restart(response: StoredResponse) -> int:
    """Say in its stream that the response is in progress; the number of the next event.
    What a dead worker had said of it goes: the answer starts again (a reader that followed
    it sees the text again; one that starts now, only the new one). Numbers keep rising."""
    events = StoredResponseEvent.objects.filter(response=response)
    last = events.aggregate(n=Max("sequence"))["n"] or 0
    events.filter(sequence__gte=len(QUEUED_EVENTS)).delete()
    response_events_write(
        response_id=response.pk,
        events=[
            {"type": "response.in_progress", "response": response.body, "sequence_number": last + 1}
        ],
    )
    return last + 2


class _Said:
    """What a background response has said so far, also written to its stream for the readers
    following it (GET /v1/responses/{id}?stream=true): its text in one delta per
    FLUSH_SECONDS, in the shape /v1/responses streams it."""

    def __init__(self, response_pk: int, sequence: int):
        self.pk = response_pk
        self.sequence = sequence  # the next event's number
        self.message_id = f"msg_{secrets.token_hex(12)}"
        self.parts: list[str] = []
        self.pending: list[str] = []
        self.started = False  # its message was said to begin (output_item.added)

    @property
    def text(self) -> str:
        return "".join(self.parts)

    def add(self, text: str) -> None:
        self.parts.append(text)
        self.pending.append(text)

    def _numbered(self, events: list[dict]) -> list[dict]:
        for event in events:
            event["sequence_number"] = self.sequence
            self.sequence += 1
        return events

    def start_events(self) -> list[dict]:
        """The message's beginning, once (before its first text, or its end if it said none)."""
        if self.started:
            return []
        self.started = True
        return self._numbered(message_start_events(self.message_id))

    async def flush(self) -> None:
        if not self.pending:
            return
        delta, self.pending = "".join(self.pending), []
        events = self.start_events()
        events += self._numbered([text_delta_event(self.message_id, delta)])
        await db_call(response_events_write, response_id=self.pk, events=events)

    async def flushing(self, ended: asyncio.Event) -> None:
        """Write what was said every FLUSH_SECONDS, and the rest once `ended` is set. One
        writer at a time, never cut off midway: a reader must never see an event before
        the ones numbered below it."""
        while not ended.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(ended.wait(), FLUSH_SECONDS)
            await self.flush()


async def _said_collect(stream, said: _Said) -> str:
    """Read a stream to its end, saying its text as it comes; its finish reason."""
    reason = "stop"
    ended = asyncio.Event()
    flusher = asyncio.ensure_future(said.flushing(ended))
    try:
        async for event in stream:
            if isinstance(event, TextDelta) and event.text:
                said.add(event.text)
            elif isinstance(event, Finish):
                reason = event.reason
    finally:
        await stream.aclose()
        ended.set()
        await flusher
    return reason


def _heartbeat(pk: int) -> str | None:
    """Say the worker is alive; the response's status now (None: deleted)."""
    if StoredResponse.objects.filter(pk=pk, status=Status.IN_PROGRESS).update(
        heartbeat_at=timezone.now()
    ):
        return Status.IN_PROGRESS
    return StoredResponse.objects.filter(pk=pk).values_list("status", flat=True).first()


async def _answer(response: StoredResponse, sequence: int) -> None:
    body = ResponsesRequest.model_validate(response.request)
    context = await db_call(stored_response_turns, response)
    # Streamed from the upstream, so that its readers follow it and a cancelled response
    # keeps what it had said.
    streamed = body.model_copy(update={"stream": True})
    said = _Said(response.pk, sequence)
    for attempt in range(1, ATTEMPTS + 1):
        stream = completion_stream(
            streamed,
            principal=key_principal(response.api_key_id, body.model),
            request_id=response.public_id,
            source="api",
            messages=body.provider_messages(context),
        )
        watcher = asyncio.ensure_future(_watch(response.pk, stream.stop))
        error = None
        try:
            finish = await _said_collect(stream, said)
        except (ApiError, GatewayError) as exc:
            error = exc if isinstance(exc, ApiError) else ApiError.from_gateway(exc)
            finish = "error"
        except Exception as exc:
            if store_unreachable(exc):
                raise  # the database or Redis away: answered again once it is back
            # Anything else would fail again: the response ends failed, not retried forever.
            logger.exception("answering background response %s failed", response.public_id)
            error, finish = ApiError(500, "internal", "Internal error."), "error"
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
        # Rate limited (by our limits or the provider's), a provider overloaded: it waits and
        # asks again, as a batch's request does, unless it is cancelled meanwhile, or has
        # said something already (its readers saw it).
        retry = error is not None and attempt < ATTEMPTS and not said.started
        wait = retry_wait(error) if retry else None
        if wait is None or not await _running_after(response.pk, wait):
            break
    await db_call(_finish, response, body, said, finish, stream.outcome, error)


async def _watch(pk: int, stop) -> None:
    await _running_after(pk, math.inf)
    stop()  # cancelled, deleted, or taken over by another worker


async def _running_after(pk: int, seconds: float) -> bool:
    """Wait `seconds`, saying every CHECK_SECONDS that the worker is alive; False as soon as
    the response is no longer this worker's to answer (cancelled, deleted, taken over)."""
    end = time.monotonic() + seconds
    while await db_call(_heartbeat, pk) == Status.IN_PROGRESS:
        left = end - time.monotonic()
        if left <= 0:
            return True
        await asyncio.sleep(min(CHECK_SECONDS, left))
    return False


def _finish(response, body, said: _Said, finish: str, outcome, error: ApiError | None) -> None:
    """Write the response's end. Its stream's closing events are said from this body by its
    readers (api.handlers.closing_events); the message's beginning is written first if its
    text never came (an empty answer)."""
    text = said.text
    status = StoredResponse.objects.filter(pk=response.pk).values_list("status", flat=True).first()
    if status not in (Status.IN_PROGRESS, Status.CANCELLED):
        return  # deleted, or taken over by another worker
    if status == Status.CANCELLED and outcome is None:
        answer = {**response.body, "status": Status.CANCELLED}  # cancelled before any call
    elif error is not None and status != Status.CANCELLED:
        answer = {
            **response.body,
            "status": Status.FAILED,
            "error": {"code": error.code, "message": error.message},
        }
    else:
        answer = response_object(
            body,
            response_id=response.public_id,
            message_id=said.message_id,
            created=response.body["created_at"],
            text=text,
            finish=finish,
            outcome=outcome,
            store=True,
        )
        if status == Status.CANCELLED:
            answer = cancelled_object(answer, text)  # what it had said when stopped
    if answer["output"]:
        response_events_write(response_id=response.pk, events=said.start_events())
    StoredResponse.objects.filter(
        pk=response.pk, status__in=(Status.IN_PROGRESS, Status.CANCELLED)
    ).update(status=answer["status"], body=answer, request=None, heartbeat_at=None)
