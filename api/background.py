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

from django.utils import timezone

from aurax.db_threads import db_call
from gateway import pipeline
from gateway.errors import GatewayError, store_unreachable
from providers.http import run_blocking

from .auth import key_principal
from .errors import ApiError, retry_wait
from .handlers import cancelled_object, completion_stream, response_object
from .models import StoredResponse
from .schemas import ResponsesRequest
from .selectors import stored_response_turns

logger = logging.getLogger(__name__)

CHECK_SECONDS = 1.0
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
        run_blocking(_answer, response)


def _heartbeat(pk: int) -> str | None:
    """Say the worker is alive; the response's status now (None: deleted)."""
    if StoredResponse.objects.filter(pk=pk, status=Status.IN_PROGRESS).update(
        heartbeat_at=timezone.now()
    ):
        return Status.IN_PROGRESS
    return StoredResponse.objects.filter(pk=pk).values_list("status", flat=True).first()


async def _answer(response: StoredResponse) -> None:
    body = ResponsesRequest.model_validate(response.request)
    context = await db_call(stored_response_turns, response)
    # Streamed from the upstream, so that a cancelled response keeps what it had said.
    streamed = body.model_copy(update={"stream": True})
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
            text, finish = await pipeline.stream_collect(stream)
        except (ApiError, GatewayError) as exc:
            error = exc if isinstance(exc, ApiError) else ApiError.from_gateway(exc)
            text, finish = "", "error"
        except Exception as exc:
            if store_unreachable(exc):
                raise  # the database or Redis away: answered again once it is back
            # Anything else would fail again: the response ends failed, not retried forever.
            logger.exception("answering background response %s failed", response.public_id)
            error, text, finish = ApiError(500, "internal", "Internal error."), "", "error"
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
        # Rate limited (by our limits or the provider's), a provider overloaded: it waits and
        # asks again, as a batch's request does, unless it is cancelled meanwhile.
        wait = retry_wait(error) if error is not None and attempt < ATTEMPTS else None
        if wait is None or not await _running_after(response.pk, wait):
            break
    await db_call(_finish, response, body, text, finish, stream.outcome, error)


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


def _finish(response, body, text: str, finish: str, outcome, error: ApiError | None) -> None:
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
            message_id=f"msg_{secrets.token_hex(12)}",
            created=response.body["created_at"],
            text=text,
            finish=finish,
            outcome=outcome,
            store=True,
        )
        if status == Status.CANCELLED:
            answer = cancelled_object(answer, text)  # what it had said when stopped
    StoredResponse.objects.filter(
        pk=response.pk, status__in=(Status.IN_PROGRESS, Status.CANCELLED)
    ).update(status=answer["status"], body=answer, request=None, heartbeat_at=None)
