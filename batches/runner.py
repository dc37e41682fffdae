"""Running a batch's requests: a few at a time (BATCH_CONCURRENCY), each as the batch's API
key through the one pipeline (chat completions, responses) or the embeddings gate
(gateway.embeddings), on a worker's private event loop. A watch checks every second that
the batch is still this runner's and still wanted: a cancelled or expired batch
stops at once, its requests in flight closing their upstream calls (billed for what they
produced, and left to be said not run)."""

from __future__ import annotations

import asyncio
import collections
import time

from asgiref.sync import ThreadSensitiveContext
from django.conf import settings
from django.utils import timezone

from api.auth import key_principal
from api.errors import ApiError, retry_wait
from api.handlers import (
    chat_completion_object,
    completion_stream,
    embeddings_object,
    response_object,
)
from api.schemas import ChatCompletionRequest, EmbeddingsRequest, ResponsesRequest
from aurax.db_threads import db_call
from gateway import pipeline
from gateway.embeddings import STOPPED, embed
from gateway.errors import GatewayError
from providers.http import run_blocking

from .models import Batch, BatchRequest
from .selectors import batch_requests_pending
from .services import batch_heartbeat, batch_request_finish

_STOP_WAIT = 5.0  # seconds for the requests in flight to end once stopped


def requests_run(*, batch: Batch, runner: str) -> str:
    """Run the batch's pending requests for up to BATCH_SLICE_SECONDS: "done" when none is
    left, else why it stopped ("slice" when its time is up, "cancelling", "expired", or
    "lost" when another runner took the batch over)."""
    return run_blocking(_run, batch=batch, runner=runner)


async def _collected(batch: Batch, request: BatchRequest, body, in_flight: set) -> tuple | None:
    """(text, finish, outcome) of a completion request's body run through the pipeline, or
    None when the batch stopped it (billed for what it produced)."""
    stream = completion_stream(
        body,
        principal=key_principal(batch.api_key_id, body.model),
        request_id=request.request_id,
        source="batch",
        reference=batch.public_id,
    )
    in_flight.add(stream)
    try:
        text, finish = await pipeline.stream_collect(stream)
    finally:
        in_flight.discard(stream)
    outcome = stream.outcome
    if outcome is None or outcome.status == "stopped":
        return None
    return text, finish, outcome


async def _completion(batch: Batch, request: BatchRequest, in_flight: set) -> tuple | None:
    """A chat completion request: (its answer, its token counts as `batch_request_finish`
    takes them), or None when the batch stopped it."""
    body = ChatCompletionRequest.model_validate(request.body)
    collected = await _collected(batch, request, body, in_flight)
    if collected is None:
        return None
    text, finish, outcome = collected
    completion = chat_completion_object(
        completion_id=f"chatcmpl-{request.request_id.removeprefix('batch_req_')}",
        created=int(time.time()),
        model=body.model,
        text=text,
        finish=finish,
        outcome=outcome,
    )
    return completion, _tokens(outcome)


async def _response(batch: Batch, request: BatchRequest, in_flight: set) -> tuple | None:
    """A /v1/responses request: as `_completion`, answered as that endpoint answers."""
    body = ResponsesRequest.model_validate(request.body)
    collected = await _collected(batch, request, body, in_flight)
    if collected is None:
        return None
    text, finish, outcome = collected
    suffix = request.request_id.removeprefix("batch_req_")
    answer = response_object(
        body,
        response_id=f"resp_{suffix}",
        message_id=f"msg_{suffix}",
        created=int(time.time()),
        text=text,
        finish=finish,
        outcome=outcome,
    )
    return answer, _tokens(outcome)


def _tokens(outcome) -> dict:
    return {
        "input_tokens": outcome.input_tokens,
        "output_tokens": outcome.output_tokens,
        "cached_tokens": outcome.cache_read_tokens,
        "reasoning_tokens": outcome.reasoning_tokens,
    }


async def _embedding(batch: Batch, request: BatchRequest, in_flight: set) -> tuple | None:
    """An embeddings request: as `_completion` (input tokens only)."""
    body = EmbeddingsRequest.model_validate(request.body)
    user, workspace, key_id = await db_call(key_principal(batch.api_key_id, body.model))
    # `embed` resolves its candidates through `database_sync_to_async`: in a context of its
    # own, the requests in flight do not queue on one shared thread (as api.handlers).
    async with ThreadSensitiveContext():
        call = _EmbeddingCall(
            embed(
                user=user,
                workspace=workspace,
                model=body.model,
                inputs=body.inputs,
                api_key_id=key_id,
                source="batch",
                reference=batch.public_id,
                request_id=request.request_id,
            )
        )
        in_flight.add(call)
        try:
            result = await call.task
        except asyncio.CancelledError:
            if call.stopped and not asyncio.current_task().cancelling():
                return None  # the batch stopped it: billed, said not run
            raise
        finally:
            in_flight.discard(call)
    return embeddings_object(body, result), {"input_tokens": result.input_tokens}


class _EmbeddingCall:
    """An embeddings request in flight, which the batch's watch stops as it stops a
    completion's stream: its upstream request is closed at once."""

    def __init__(self, coroutine):
        self.task = asyncio.ensure_future(coroutine)
        self.stopped = False

    def stop(self) -> None:
        self.stopped = True
        self.task.cancel(STOPPED)


_CALLS = {
    "/v1/chat/completions": _completion,
    "/v1/embeddings": _embedding,
    "/v1/responses": _response,
}


async def _request_run(
    batch: Batch, request: BatchRequest, stopping: asyncio.Event, in_flight: set
) -> None:
    call = _CALLS[batch.endpoint]
    attempts = 0
    while True:
        try:
            answered = await call(batch, request, in_flight)
        except (ApiError, GatewayError) as exc:
            error = exc if isinstance(exc, ApiError) else ApiError.from_gateway(exc)
            wait = retry_wait(error)
            if wait is not None and attempts < settings.BATCH_REQUEST_ATTEMPTS:
                attempts += 1
                try:
                    await asyncio.wait_for(stopping.wait(), wait)
                except TimeoutError:
                    continue
                return  # the batch stops: the request stays to be said not run
            await db_call(
                batch_request_finish,
                batch_id=batch.pk,
                request_pk=request.pk,
                succeeded=False,
                status_code=error.status,
                response=error.openai_body(),
            )
            return
        if answered is None:
            return  # the batch stopped it: said not run, billed for what it produced
        response, tokens = answered
        await db_call(
            batch_request_finish,
            batch_id=batch.pk,
            request_pk=request.pk,
            succeeded=True,
            status_code=200,
            response=response,
            **tokens,
        )
        return


async def _run(*, batch: Batch, runner: str) -> str:
    queue = collections.deque(await db_call(batch_requests_pending, batch_id=batch.pk))
    stopping = asyncio.Event()
    in_flight: set = set()
    slice_end = time.monotonic() + settings.BATCH_SLICE_SECONDS
    why = "done"

    async def work():
        while queue and not stopping.is_set():
            await _request_run(batch, queue.popleft(), stopping, in_flight)
            if time.monotonic() >= slice_end:
                return

    async def watch():
        nonlocal why
        while True:
            await asyncio.sleep(settings.BATCH_CHECK_SECONDS)
            status = await db_call(batch_heartbeat, batch_id=batch.pk, runner=runner)
            if status is None:
                why = "lost"
            elif status != Batch.Status.IN_PROGRESS:
                why = "cancelling"
            elif timezone.now() >= batch.expires_at:
                why = "expired"
            else:
                continue
            stopping.set()
            # Each request in flight closes its upstream call now and ends as "stopped".
            for stream in list(in_flight):
                stream.stop()
            return

    workers = [asyncio.ensure_future(work()) for _ in range(settings.BATCH_CONCURRENCY)]
    watcher = asyncio.ensure_future(watch())
    everything = asyncio.gather(*workers)
    await asyncio.wait({everything, watcher}, return_when=asyncio.FIRST_COMPLETED)
    if watcher.done() and not everything.done():
        await asyncio.wait(workers, timeout=_STOP_WAIT)
    # Whatever has not ended by now (a request stuck before its stream began, or the rest of
    # the batch after a failure no answer says) is cancelled.
    for task in (*workers, watcher):
        if not task.done():
            task.cancel()
    results = await asyncio.gather(everything, watcher, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException) and not isinstance(result, asyncio.CancelledError):
            raise result
    return "slice" if why == "done" and queue else why
