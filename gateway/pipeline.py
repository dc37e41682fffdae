"""THE completion pipeline: every model call of every caller goes through `stream` (or
`complete`, built on it). Nothing else calls a provider adapter.

    s = stream(user=..., workspace=..., model="smart", messages=[...], source="chat")
    async for event in s:          # providers.types events: TextDelta, Usage, Finish
        ...
    s.outcome                      # tokens, cost, TTFT, duration, status, who served

In order: resolve the model or alias to the candidates this user may use, check rate limits,
reserve budget, look up the response cache when the caller allows it (gateway.response_cache),
call the adapter with retry/fallback before the first token (providers.routing), relay its
events, and when the stream ends for any reason record exactly one usage event (billing) and
release what was reserved but not spent:

    finished      the upstream finished                                   status "ok"
    stopped       `s.stop()` was called (the user pressed Stop)            status "stopped"
    client gone   the caller went away: its task was cancelled, or it      status "client_gone"
                  closed the stream early (`aclose()` / break)
    error         the upstream, the budget or a rate limit failed the call status "error"
    cached        the answer came from the response cache (no tokens,     status "cached"
                  no cost), then finished

Failures reach the caller as `GatewayError` (code, user-safe message, HTTP status, retry
after). A request whose model resolves to nothing raises before anything is recorded, counted
against a rate limit or reserved: there is no provider to attribute it to (404 when the
caller may not use the model, 400 `temperature_unsupported` when none of its providers
accepts the requested temperature, 503 with Retry-After when every provider of it is skipped
because its circuit is open). A candidate whose provider does not accept the temperature is
skipped, so an alias falls back to one that does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from aurax.db_threads import db_background, db_call
from billing.ledger import usage_enqueue
from billing.pricing import Cost, cost_compute, cost_rule
from billing.quotas import quota_reserve
from billing.ratelimits import ratelimit_check_for, ratelimit_settle
from billing.services import usage_entry_build
from billing.tokens import messages_tokens_estimate, tokens_estimate
from providers import routing
from providers import services as _provider_services  # noqa: F401  (routing cache invalidation)
from providers.types import ChatRequest, Completion, Finish, Message, TextDelta, Usage

from .errors import GatewayError, model_unavailable
from .response_cache import (
    STORED_FINISH_REASONS,
    CachedAnswer,
    CachePolicy,
    cache_key,
    cached_answer_get,
    cached_answer_put,
)

logger = logging.getLogger(__name__)

# What a reservation assumes an answer may cost when the caller sets no max_tokens.
DEFAULT_RESERVED_OUTPUT_TOKENS = 4096


@dataclass
class Outcome:
    status: str = "ok"  # ok | stopped | client_gone | error | cached
    provider_kind: str = ""
    model: str = ""  # the provider's model id that served (or was last tried)
    credential_id: int | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    # Parts of the totals above, as the provider reported them (providers.types.Usage).
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    cache_write_1h_tokens: int = 0  # of the writes, those kept an hour
    estimated: bool = False
    cost: Decimal | None = None
    ttft_ms: int | None = None
    duration_ms: int = 0
    finish_reason: str = ""
    error_code: str = ""
    usage_uid: str = ""  # the ledger row's uid (written shortly after, in a batch)
    cache_age: int | None = None  # seconds since a cached answer was stored (status cached)

    def cache_parts(self) -> dict:
        """The cached parts of the input, as billing.pricing's cost rules take them."""
        return {
            "cache_read_tokens": self.cache_read_tokens,
            "cache_write_tokens": self.cache_write_tokens,
            "cache_write_1h_tokens": self.cache_write_1h_tokens,
        }

    def answer_fields(self) -> dict:
        """What an answer keeps of its call: who served it, what it used and cost, how fast."""
        return {
            "served_model": self.model,
            "provider_kind": self.provider_kind,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cache_read_tokens": self.cache_read_tokens,
            "reasoning_tokens": self.reasoning_tokens,
            "tokens_estimated": self.estimated,
            "cost": self.cost,
            "ttft_ms": self.ttft_ms,
            "duration_ms": self.duration_ms,
        }


class CallerRejected(Exception):
    """The `principal` callable refused the caller; `error` is what it raised, re-raised
    unchanged to the caller of the stream (nothing is recorded: no provider was chosen)."""

    def __init__(self, error: Exception):
        super().__init__(str(error))
        self.error = error


@dataclass
class _Call:
    user: object
    workspace: object
    model: str
    messages: tuple[Message, ...]
    max_tokens: int | None
    temperature: float | None
    top_p: float | None
    stop: tuple[str, ...]
    api_key_id: int | None
    source: str
    reference: str | None
    request_id: str
    # The sampling hints given, as providers.types.ChatRequest's keywords: passed unchanged.
    hints: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)
    principal: object = None  # callable () -> (user, workspace, api_key_id), see `stream`
    whole: bool = False  # the caller reads the answer to its end: ask the upstream for it whole
    cache: CachePolicy | None = None  # what the caller allows of the response cache

    def cache_request(self) -> dict:
        """What the call asks of the model, as the response cache's key takes it."""
        return {
            "messages": [
                [m.role, m.content, [[i.url, i.media_type] for i in m.images]]
                for m in self.messages
            ],
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
            "top_p": self.top_p,
            "stop": list(self.stop),
            "hints": self.hints,
            "extra": self.extra,
        }


class PipelineStream:
    """An async iterator of normalized events with `stop()` and, once ended, `outcome`."""

    def __init__(self, call: _Call):
        self._call = call
        self._events: AsyncIterator | None = None
        self._waiting: asyncio.Task | None = None
        self._stop_requested = False
        self._ended = False
        self._parts: list[str] = []
        self._usage: Usage | None = None
        self._reservation = None
        self._ratelimit_charge = None
        self._candidates: list = []
        self._started = time.monotonic()
        self._first_token: float | None = None
        self._input_estimate = 0
        self._served = None
        self._fallback = None
        self._admitted = False
        self._admission_error: BaseException | None = None
        self._cost_rule = None
        self._cache_key: str | None = None  # set when the caller's policy stores the answer
        self._cached: CachedAnswer | None = None
        self._finish_reason = ""
        self.outcome: Outcome | None = None

    # --- Public -----------------------------------------------------------------------

    @property
    def cache_policy(self) -> CachePolicy | None:
        return self._call.cache

    @property
    def cache_age(self) -> int | None:
        """Once admitted: the age in seconds of the cached answer this stream replays; None
        when it is not served from the response cache."""
        return self._cached.age if self._cached is not None else None

    def stop(self) -> None:
        """End the stream now, closing the upstream connection; bills what was produced."""
        if self._ended:
            return
        self._stop_requested = True
        if self._waiting is not None and not self._waiting.done():
            self._waiting.cancel()

    def admit(self) -> None:
        """Run the admission (routing, rate limits, budget reservation) now, synchronously,
        on the caller's own database thread: a caller that already makes a database hop
        before streaming (the chat saves the message there) saves the pipeline's. Whatever
        it raises is kept and raised by the first iteration, exactly as if admission had
        run there (recorded, and reaching the caller as `GatewayError`)."""
        if self._admitted:
            return
        self._admitted = True
        try:
            self._admit()
        except Exception as exc:
            self._admission_error = exc

    def __aiter__(self):
        return self

    async def __anext__(self):
        if self._ended:
            raise StopAsyncIteration
        if self._stop_requested:
            await self._end("stopped")
            raise StopAsyncIteration
        task = asyncio.current_task()
        self._waiting = task
        try:
            if self._events is None:
                await self._prepare()
                self._events = self._upstream()
            event = await self._events.__anext__()
        except StopAsyncIteration:
            await self._end("ok")
            raise
        except CallerRejected as rejected:
            self._ended = True
            raise rejected.error from None
        except asyncio.CancelledError:
            if self._stop_requested:
                await self._end("stopped")
                if task is not None and task.uncancel() == 0:
                    raise StopAsyncIteration from None
                raise
            await self._end("client_gone")
            raise
        except Exception as exc:
            error = GatewayError.from_exception(exc)
            if error.code in ("internal", "unavailable"):
                logger.exception("pipeline failed")
            await self._end("error", error_code=error.code)
            raise error from exc
        finally:
            self._waiting = None
        if isinstance(event, TextDelta):
            if self._first_token is None and event.text:
                self._first_token = time.monotonic()
            self._parts.append(event.text)
        elif isinstance(event, Usage):
            self._usage = event
        elif isinstance(event, Finish):
            self._finish_reason = event.reason
        return event

    async def aclose(self) -> None:
        """The caller is done before the end: the client went away."""
        if not self._ended:
            await self._end("stopped" if self._stop_requested else "client_gone")

    # --- Steps ------------------------------------------------------------------------

    async def _prepare(self) -> None:
        # One thread hop for everything before the upstream call (none if `admit` ran).
        if not self._admitted:
            self._admitted = True
            await db_call(self._admit)
        elif self._admission_error is not None:
            error, self._admission_error = self._admission_error, None
            raise error
        if not self._candidates:
            self._ended = True
            raise model_unavailable(self._candidates)

    def _admit(self) -> None:
        with routing.generations_read_once():
            self._admit_now()

    def _admit_now(self) -> None:
        call = self._call
        if call.principal is not None:
            try:
                call.user, call.workspace, call.api_key_id = call.principal()
            except Exception as exc:
                raise CallerRejected(exc) from exc
        self._candidates = routing.candidates_resolve_sync(
            user=call.user, workspace=call.workspace, model=call.model, temperature=call.temperature
        )
        if not self._candidates:
            return
        first = self._candidates[0]
        self._served = first
        self._cost_rule = (
            (first.kind, first.model_id),
            cost_rule(provider_kind=first.kind, model=first.model_id),
        )
        self._input_estimate = messages_tokens_estimate(call.messages, model=first.model_id)
        self._ratelimit_charge, self._reservation = limits_check_and_reserve(
            workspace=call.workspace,
            user=call.user,
            api_key_id=call.api_key_id,
            candidate=first,
            input_tokens=self._input_estimate,
            max_output_tokens=call.max_tokens,
        )
        policy, workspace = call.cache, call.workspace
        if policy is not None and policy.active and workspace.response_cache_enabled:
            key = cache_key(
                workspace_id=workspace.pk, candidate=first, request=call.cache_request()
            )
            if policy.lookup:
                self._cached = cached_answer_get(
                    key, max_age=policy.max_age, not_before=workspace.response_cache_reset_at
                )
            if policy.store and self._cached is None:
                self._cache_key = key

    async def _upstream(self):
        if self._cached is not None:
            async for event in self._replayed(self._cached):
                yield event
            return
        call = self._call
        request = ChatRequest(
            model=self._candidates[0].model_id,
            messages=call.messages,
            max_tokens=call.max_tokens,
            temperature=call.temperature,
            top_p=call.top_p,
            stop=call.stop,
            **call.hints,
            extra=call.extra,
        )
        self._fallback = routing.stream_with_fallback(self._candidates, request, whole=call.whole)
        async with contextlib.aclosing(self._fallback) as events:
            async for event in events:
                yield event

    def _ttft_ms(self) -> int | None:
        if self._first_token is None:
            return None
        return round((self._first_token - self._started) * 1000)

    @staticmethod
    async def _replayed(answer: CachedAnswer):
        yield TextDelta(answer.text)
        yield Usage(input_tokens=0, output_tokens=0)
        yield Finish(answer.finish_reason)

    async def _end(self, status: str, *, error_code: str = "") -> None:
        if self._ended and self.outcome is not None:
            return
        self._ended = True
        if self._events is not None:
            with contextlib.suppress(BaseException):
                await self._events.aclose()
        if self._cached is not None:
            await self._end_cached(status)
            return
        served = self._served
        fallback = self._fallback
        if fallback is not None:
            # Who served, else the last one tried: the one to attribute the failure to.
            if fallback.served_by is not None:
                served = fallback.served_by
            elif fallback.attempts:
                served = fallback.attempts[-1].candidate
        if served is None:  # resolved to nothing: nothing to attribute
            return
        text = "".join(self._parts)
        usage = self._usage
        if usage is not None:
            input_tokens, output_tokens = usage.input_tokens, usage.output_tokens
            estimated = False
        elif _upstream_never_took_it(fallback, status):
            input_tokens, output_tokens, estimated = 0, 0, False
        else:
            input_tokens = self._input_estimate
            output_tokens = tokens_estimate(text=text, model=served.model_id)
            estimated = True
        now = time.monotonic()
        outcome = Outcome(
            status=status,
            provider_kind=served.kind,
            model=served.model_id,
            credential_id=served.credential_id,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            estimated=estimated,
            ttft_ms=self._ttft_ms(),
            duration_ms=round((now - self._started) * 1000),
            finish_reason=self._finish_reason,
            error_code=error_code,
        )
        if usage is not None:
            outcome.cache_read_tokens = usage.cache_read_tokens
            outcome.cache_write_tokens = usage.cache_write_tokens
            outcome.reasoning_tokens = usage.reasoning_tokens
            outcome.cache_write_1h_tokens = usage.cache_write_1h_tokens
        self.outcome = outcome
        if self._ratelimit_charge is not None:
            await _ratelimit_settle(self._ratelimit_charge, tokens=input_tokens + output_tokens)
        call = self._call
        rule = self._cost_rule
        if rule is not None and rule[0] == (served.kind, served.model_id):
            cost = rule[1](input_tokens, output_tokens, **outcome.cache_parts())
        else:  # a fallback served, or admission never ran: look its price up off the loop
            # Shielded: a caller being cancelled must not lose the ledger row.
            pricing = asyncio.ensure_future(
                db_background(
                    cost_compute,
                    provider_kind=served.kind,
                    model=served.model_id,
                    input_tokens=input_tokens,
                    output_tokens=output_tokens,
                    **outcome.cache_parts(),
                )
            )
            try:
                cost = await asyncio.shield(pricing)
            except asyncio.CancelledError:
                cost = await pricing
                self._enqueue(outcome, call, cost)
                raise
        self._enqueue(outcome, call, cost)
        if (
            self._cache_key is not None
            and status == "ok"
            and outcome.finish_reason in STORED_FINISH_REASONS
            and served is self._served  # routed to first: a fallback's answer is not kept
        ):
            await self._cache_store(text, served)

    async def _cache_store(self, text: str, served) -> None:
        answer = CachedAnswer(
            text=text,
            finish_reason=self._finish_reason,
            provider_kind=served.kind,
            model=served.model_id,
            credential_id=served.credential_id,
            stored_at=time.time(),
        )
        # Awaited, so that the caller's next identical request finds it; shielded, so that a
        # caller cancelled meanwhile still leaves it kept (cached_answer_put raises nothing).
        await asyncio.shield(
            db_call(
                cached_answer_put,
                self._cache_key,
                answer,
                seconds=self._call.cache.store_seconds(),
            )
        )

    async def _end_cached(self, status: str) -> None:
        """A call answered from the response cache: no tokens, no cost, attributed to the
        provider and model that produced the answer."""
        answer, now = self._cached, time.monotonic()
        outcome = Outcome(
            status="cached" if status == "ok" else status,
            provider_kind=answer.provider_kind,
            model=answer.model,
            credential_id=answer.credential_id,
            ttft_ms=self._ttft_ms(),
            duration_ms=round((now - self._started) * 1000),
            finish_reason=answer.finish_reason,
            cache_age=answer.age,
        )
        self.outcome = outcome
        if self._ratelimit_charge is not None:
            await _ratelimit_settle(self._ratelimit_charge, tokens=0)
        self._enqueue(outcome, self._call, Cost(Decimal(0), known=True))

    def _enqueue(self, outcome: Outcome, call: _Call, cost) -> None:
        # Queued, not written: the ledger writer batches rows off this path (billing.ledger).
        entry = usage_entry_build(
            workspace_id=call.workspace.pk,
            user_id=call.user.pk,
            api_key_id=call.api_key_id,
            credential_id=outcome.credential_id,
            provider_kind=outcome.provider_kind,
            model=outcome.model,
            input_tokens=outcome.input_tokens,
            output_tokens=outcome.output_tokens,
            cache_read_tokens=outcome.cache_read_tokens,
            cache_write_tokens=outcome.cache_write_tokens,
            cache_write_1h_tokens=outcome.cache_write_1h_tokens,
            reasoning_tokens=outcome.reasoning_tokens,
            estimated=outcome.estimated,
            status=outcome.status,
            error_code=outcome.error_code,
            ttft_ms=outcome.ttft_ms,
            duration_ms=outcome.duration_ms,
            request_id=call.request_id,
            source=call.source,
            reference=call.reference,
            reservation=self._reservation,
            cost=cost,
        )
        usage_enqueue(entry)
        outcome.cost = entry.cost
        outcome.usage_uid = entry.uid


def _upstream_never_took_it(fallback, status: str) -> bool:
    """Whether the call ended before any provider took the request, so that nothing of it is
    billed: it was never sent (refused at admission, stopped or its caller gone before the
    call), or every try was refused (an error status: providers do not bill those). A call
    stopped while waiting for its first token, or one that timed out, counts its prompt: the
    provider may have read it."""
    if fallback is None:
        return True
    if fallback.served_by is not None or status != "error" or not fallback.attempts:
        return False
    return fallback.attempts[-1].error.code != "timeout"


async def _ratelimit_settle(charge, *, tokens: int) -> None:
    """What the call counted against its rate limits becomes what it used, before its caller
    sends the next request. Embedded mode settles in memory, here; services mode makes a Redis
    round trip off the loop, which a cancelled caller does not interrupt."""
    if not charge.remote:
        ratelimit_settle(charge, tokens=tokens)
        return
    settling = asyncio.ensure_future(db_background(ratelimit_settle, charge, tokens=tokens))
    try:
        await asyncio.shield(settling)
    except asyncio.CancelledError:
        settling.add_done_callback(_ratelimit_settled)
        raise
    except Exception as exc:  # the limits count the whole charge a minute at most
        logger.warning("rate limit not settled: %r", exc)


def _ratelimit_settled(future) -> None:
    if not future.cancelled() and future.exception() is not None:
        logger.warning("rate limit not settled: %r", future.exception())


def limits_check_and_reserve(
    *, workspace, user, api_key_id, candidate, input_tokens: int, max_output_tokens: int | None
):
    """Rate limits, then the worst-case budget reservation, for a call about to be made to
    `candidate` (sync; callers run it on a database thread): (the rate limits' charge, to
    settle with the real usage, and the reservation). Raises the billing errors.

    `max_output_tokens` None: the caller set no limit. The budget then reserves
    DEFAULT_RESERVED_OUTPUT_TOKENS; the rate limits count what room they leave for it
    (billing.ratelimits.ratelimit_tokens)."""
    charge = ratelimit_check_for(
        workspace_id=workspace.pk,
        user_id=user.pk,
        api_key_id=api_key_id,
        input_tokens=input_tokens,
        max_output_tokens=max_output_tokens,
        default_output_tokens=DEFAULT_RESERVED_OUTPUT_TOKENS,
    )
    try:
        reservation = quota_reserve(
            workspace_id=workspace.pk,
            user_id=user.pk,
            api_key_id=api_key_id,
            provider_kind=candidate.kind,
            model=candidate.model_id,
            input_tokens=input_tokens,
            max_output_tokens=(
                DEFAULT_RESERVED_OUTPUT_TOKENS if max_output_tokens is None else max_output_tokens
            ),
            lease=True,
        )
    except Exception:
        ratelimit_settle(charge, tokens=0)  # refused: it uses nothing
        raise
    return charge, reservation


def stream(
    *,
    user=None,
    workspace=None,
    model: str,
    messages: Sequence[Message],
    max_tokens: int | None = None,
    temperature: float | None = None,
    top_p: float | None = None,
    stop: Sequence[str] = (),
    seed: int | None = None,
    frequency_penalty: float | None = None,
    presence_penalty: float | None = None,
    top_k: int | None = None,
    logit_bias: dict[str, int] | None = None,
    reasoning_effort: str | None = None,
    end_user_id: str | None = None,
    api_key_id: int | None = None,
    source: str,
    reference: str | None = None,
    request_id: str = "",
    extra: dict | None = None,
    principal=None,
    whole: bool = False,
    cache: CachePolicy | None = None,
) -> PipelineStream:
    """The sampling hints (`seed` … `end_user_id`, as in providers.types.ChatRequest) reach
    whichever adapter serves the call unchanged; each sends those its vendor's API has, and
    drops the others (docs/providers.md, "Sampling hints").

    `principal`, when given, is a sync callable returning (user, workspace, api_key_id),
    run on the same database hop as routing and admission (the /v1 API authenticates its
    key there); what it raises reaches the caller unchanged.

    `whole`: the caller only wants the finished answer (`complete`, a non-streaming API
    call), so the upstream is asked for it in one non-streaming response, not token by token;
    the events are the same (the text arrives as one delta, so TTFT is the whole duration).

    `cache`: what the caller allows of the response cache (gateway.response_cache); None
    (the default) neither looks an answer up nor keeps one."""
    return PipelineStream(
        _Call(
            user=user,
            workspace=workspace,
            model=model,
            messages=tuple(messages),
            max_tokens=max_tokens,
            temperature=temperature,
            top_p=top_p,
            stop=tuple(stop),
            hints={
                name: value
                for name, value in (
                    ("seed", seed),
                    ("frequency_penalty", frequency_penalty),
                    ("presence_penalty", presence_penalty),
                    ("top_k", top_k),
                    ("logit_bias", logit_bias),
                    ("reasoning_effort", reasoning_effort),
                    ("end_user_id", end_user_id),
                )
                if value is not None
            },
            api_key_id=api_key_id,
            source=source,
            reference=reference,
            request_id=request_id,
            extra=extra or {},
            principal=principal,
            whole=whole,
            cache=cache,
        )
    )


async def stream_collect(s: PipelineStream) -> tuple[str, str]:
    """Read a stream to its end: (text, finish reason). `s.outcome` is set afterwards."""
    parts, reason = [], "stop"
    try:
        async for event in s:
            if isinstance(event, TextDelta):
                parts.append(event.text)
            elif isinstance(event, Finish):
                reason = event.reason
    finally:
        await s.aclose()
    return "".join(parts), reason


async def complete(**kwargs) -> Completion:
    """The whole answer at once; same arguments as `stream` (`whole` by default)."""
    kwargs.setdefault("whole", True)
    s = stream(**kwargs)
    text, reason = await stream_collect(s)
    served = s.outcome.provider_kind if s.outcome is not None else ""
    return Completion(text=text, finish_reason=reason, usage=s._usage, provider_kind=served)
