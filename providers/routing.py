"""From a requested model to a served stream: candidates, retries, fallback, circuit breaker.

    candidates = await candidates_resolve(user=user, workspace=workspace, model="smart")
    events = stream_with_fallback(candidates, request)
    try:
        async for event in events:            # TextDelta / Usage / Finish
            ...
    finally:
        await events.aclose()                 # closes the upstream connection at once
    events.served_by                          # the Candidate that produced the stream, or None
    events.attempts                           # [Attempt(candidate, error)] for failed tries

`model` is an alias name (`fast`, `smart`: a workspace alias shadows a global one), or
`"<credential_id>:<model_id>"`, or a bare model id (every usable credential whose catalog
lists it). Credentials are taken in precedence order — the user's own, then the workspace's,
then global ones enabled for the workspace — and those whose circuit is open are skipped, as
are those whose provider does not accept the requested temperature.

`stream_with_fallback` retries a retryable error (rate limited, overloaded, timeout, upstream
error) with exponential backoff and full jitter, waiting what Retry-After asks when it is at
most PROVIDER_RETRY_MAX_WAIT (longer: it moves on at once), up to PROVIDER_RETRY_ATTEMPTS per
candidate; then, and for an authentication error, it falls back to the next candidate. Bad
requests, context-length and content-filter errors are raised at once: another candidate would
fail the same way. Once the first event has been yielded it never retries: a later error is
raised to the caller, after whatever text was already streamed.

`served_by` is set just before the first event is yielded, so by the time the caller sees any
event (and after any error) it says which credential and model to record usage against.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import dataclasses
import logging
import random
import threading
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal

from channels.db import database_sync_to_async
from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import Q
from django.utils.translation import gettext as _

from aurax.db_threads import db_submit

from .adapters import adapter_for
from .circuit import (
    CircuitState,
    circuit_failure_async,
    circuit_key,
    circuit_state_from,
    circuit_states,
    circuit_success_async,
)
from .crypto import SecretUnreadable
from .models import CatalogModel, ModelAlias, ProviderCredential, Scope
from .selectors import (
    credentials_usable_by,
    model_label_with_credential,
    temperature_range_for,
    workspace_models_switched_off,
)
from .types import (
    ChatRequest,
    ProviderAuthenticationError,
    ProviderError,
    ProviderUpstreamError,
    StreamEvent,
    Target,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Candidate:
    credential_id: int
    credential_name: str
    kind: str
    scope: str
    model_id: str
    target: Target = dataclasses.field(repr=False)
    display_name: str = ""
    context_window: int | None = None
    input_price_per_mtok: Decimal | None = None
    output_price_per_mtok: Decimal | None = None

    @property
    def label(self) -> str:
        return model_label_with_credential(
            model_label=self.display_name or self.model_id, credential_name=self.credential_name
        )


@dataclass(frozen=True)
class Attempt:
    candidate: Candidate
    error: ProviderError


class NoCandidates(ProviderError):
    code = "model_unavailable"
    status = 404
    default_message = "No provider is available for this model."


def _target(credential: ProviderCredential) -> Target | None:
    try:
        api_key = credential.api_key
    except SecretUnreadable:
        logger.error("credential %s: API key unreadable with the configured keys", credential.id)
        return None
    private_ok = credential.allow_private_network or credential.scope == Scope.GLOBAL
    return Target(
        kind=credential.kind,
        base_url=credential.effective_base_url,
        api_key=api_key,
        credential_id=credential.id,
        name=credential.name,
        allow_private_network=private_ok,
    )


def _candidate(credential, model_id: str, catalog: CatalogModel | None) -> Candidate | None:
    target = _target(credential)
    if target is None:
        return None
    return Candidate(
        credential_id=credential.id,
        credential_name=credential.name,
        kind=credential.kind,
        scope=credential.scope,
        model_id=model_id,
        target=target,
        display_name=catalog.display_name if catalog else "",
        context_window=catalog.context_window if catalog else None,
        input_price_per_mtok=catalog.input_price_per_mtok if catalog else None,
        output_price_per_mtok=catalog.output_price_per_mtok if catalog else None,
    )


# (values found, keys read) of the round trip made by `generations_read_once`.
_generation_snapshot: contextvars.ContextVar[tuple[dict, frozenset] | None] = (
    contextvars.ContextVar("generation_snapshot", default=None)
)
_generation_keys: set[str] = set()
# Credentials whose circuit state is read in that same round trip: those this process has
# routed to (bounded), so a cached admission makes one cache call in all.
_circuits_read_along: set[int] = set()
CIRCUITS_READ_ALONG_MAX = 1000


def generation_key_register(key: str) -> None:
    """Name a generation token that `generations_read_once` should fetch."""
    _generation_keys.add(key)


@contextlib.contextmanager
def generations_read_once():
    """Within the block, every registered generation token, and the circuit state of the
    credentials this process routes to, are read from one cache round trip made at its start
    (one Redis call instead of one per cache): the same guarantee as reading each token before
    loading, since the block starts before anything is loaded."""
    keys = sorted(_generation_keys) + [circuit_key(i) for i in list(_circuits_read_along)]
    token = _generation_snapshot.set((cache.get_many(keys), frozenset(keys)))
    try:
        yield
    finally:
        _generation_snapshot.reset(token)


def generation_value(key: str, default=None):
    snapshot = _generation_snapshot.get()
    if snapshot is not None and key in snapshot[1]:
        return snapshot[0].get(key, default)
    return cache.get(key, default)


def _circuit_states_now(credential_ids: set[int]) -> dict[int, CircuitState]:
    snapshot = _generation_snapshot.get()
    if snapshot is not None and all(circuit_key(i) in snapshot[1] for i in credential_ids):
        found = snapshot[0]
        return {i: circuit_state_from(found.get(circuit_key(i))) for i in credential_ids}
    if len(_circuits_read_along) < CIRCUITS_READ_ALONG_MAX:
        _circuits_read_along.update(credential_ids)
    return circuit_states(credential_ids)


class GenerationCache:
    """A per-process cache of rarely changing rows, valid while a shared generation token
    (in the Django cache: Redis in services mode) is unchanged.

    Any change bumps the token (`generation_bump`), which empties every process's copy at
    once. The token is random rather than a counter, so a cache that lost the key (a flush,
    an eviction, a test's `cache.clear()`) can never make an old copy look current again.

    `ttl` is a safety net for a change that bumped nothing (a row edited by hand): a copy
    older than that is still served, and reloaded on a database thread in the background
    (aurax.db_threads), so that a user who sends less often than every `ttl` seconds does not
    wait for the reload before every first token; a copy older than `max_age` (6 x ttl) is
    reloaded before it is served.
    """

    def __init__(self, generation_key: str, *, ttl: float = 10.0, max_entries: int = 10_000):
        self.generation_key = generation_key
        self.ttl = ttl
        self.max_age = 6 * ttl
        self.max_entries = max_entries
        self._entries: dict = {}
        self._reloading: set = set()
        self._lock = threading.Lock()
        generation_key_register(generation_key)

    def generation(self) -> str:
        token = generation_value(self.generation_key)
        if token is None:
            cache.add(self.generation_key, uuid.uuid4().hex, timeout=None)
            token = cache.get(self.generation_key)
        return token

    def get_or_load(self, key, load, *, generation: str | None = None):
        # The generation is read before loading: a change committed meanwhile bumps it, so
        # a value loaded from before the change is never kept as current.
        generation = self.generation() if generation is None else generation
        now = time.monotonic()
        entry = self._entries.get(key)
        if entry is not None and entry[1] == generation:
            age = now - entry[2]
            if age < self.ttl:
                return entry[0]
            if age < self.max_age:
                self._reload_in_background(key, load, generation)
                return entry[0]
        value = load()
        self._store(key, value, generation, now)
        return value

    def _store(self, key, value, generation: str, loaded_at: float) -> None:
        with self._lock:
            if len(self._entries) >= self.max_entries:
                self._entries.clear()
            self._entries[key] = (value, generation, loaded_at)

    def _reload_in_background(self, key, load, generation: str) -> None:
        with self._lock:
            if key in self._reloading:
                return
            self._reloading.add(key)

        def reload():
            try:
                started = time.monotonic()
                self._store(key, load(), generation, started)
            except Exception:
                logger.exception("reloading %s for %s failed", key, self.generation_key)
            finally:
                with self._lock:
                    self._reloading.discard(key)

        try:
            db_submit(reload)
        except BaseException:  # no thread will run it (interpreter shutting down)
            with self._lock:
                self._reloading.discard(key)
            raise

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


def generation_bump(generation_key: str) -> None:
    """Invalidate every process's copies now and again after the surrounding transaction
    commits (a process reloading in between could otherwise keep pre-commit rows)."""

    def bump():
        cache.set(generation_key, uuid.uuid4().hex, timeout=None)

    bump()
    transaction.on_commit(bump)


# Credentials, catalogs, aliases, workspace switches and memberships: bumped by
# providers.services on every change (admin saves included, through model signals).
ROUTING_GENERATION = "providers:routing:generation"
_routes = GenerationCache(ROUTING_GENERATION)


def candidates_resolve_sync(
    *, user, workspace, model: str, temperature: float | None = None
) -> ResolvedCandidates:
    """Ordered candidates whose circuit allows calls. The credential/catalog/alias part is
    cached per (user, workspace, model) in this process; circuit state is read every call
    (within `generations_read_once`, from its round trip).

    `temperature`, when given, leaves out the candidates whose protocol does not accept it
    (`Adapter.temperature_range`): a fallback chain goes on with those that do. When none
    does, the result is empty with `temperature_refused` set (see `ResolvedCandidates`)."""
    key = (
        getattr(user, "pk", None) if user is not None and user.is_authenticated else None,
        getattr(workspace, "pk", None),
        model,
    )
    routed = _routes.get_or_load(
        key, lambda: _candidates_load(user=user, workspace=workspace, model=model)
    )
    if not routed:
        return ResolvedCandidates(model_name=model_name_for(model))
    if temperature is not None:
        accepting = [c for c in routed if adapter_for(c.kind).temperature_accepts(temperature)]
        if not accepting:
            refused = ResolvedCandidates(model_name=model_name_for(model, routed[0]))
            refused.temperature_refused = temperature
            refused.temperature_range = temperature_range_for(kinds=[c.kind for c in routed])
            return refused
        routed = accepting
    states = _circuit_states_now({c.credential_id for c in routed})
    resolved = ResolvedCandidates(
        (c for c in routed if states[c.credential_id].allows_calls),
        model_name=model_name_for(model, routed[0]),
    )
    resolved.circuits_clean = frozenset(
        i for i, state in states.items() if state.state == "closed" and state.failures == 0
    )
    if not resolved:
        now = time.time()
        resolved.reopens_in = max(0.0, min(s.opened_until for s in states.values()) - now)
    return resolved


class ResolvedCandidates(list):
    """Candidates, with the credentials whose circuit was closed with no failures when they
    were resolved: a success on those has nothing to reset, so `stream_with_fallback` spends
    no cache round trip (nor thread hop) on it.

    `model_name` is the requested model as its user knows it (never the internal
    "<credential_id>:<model_id>"), for messages. `reopens_in` is set when the model exists
    for the caller but every candidate's circuit is open: the seconds until the first of
    them lets calls through again.

    `temperature_refused` is set when the model exists for the caller but no candidate's
    provider accepts the requested temperature; `temperature_range` is then what they accept
    (from the lowest of their lower bounds to the highest of their upper ones)."""

    circuits_clean: frozenset[int] = frozenset()
    reopens_in: float | None = None
    temperature_refused: float | None = None
    temperature_range: tuple[float, float] | None = None

    def __init__(self, candidates=(), *, model_name: str = ""):
        super().__init__(candidates)
        self.model_name = model_name


def model_name_for(model: str, candidate: Candidate | None = None) -> str:
    """The requested model as the user knows it: an alias or a bare model id as typed; a
    menu value ("<credential_id>:<model_id>") as the menu labels it, or by its model id when
    it routes nowhere (a credential the caller may not use is not named)."""
    credential_id, _sep, model_id = model.partition(":")
    if not (model_id and credential_id.isdigit()):
        return model
    if candidate is not None and candidate.credential_id == int(credential_id):
        return candidate.label
    return model_id


def _candidates_load(*, user, workspace, model: str) -> list[Candidate]:
    credentials = credentials_usable_by(user=user, workspace=workspace)
    by_id = {c.id: c for c in credentials}
    catalog = {
        (m.credential_id, m.model_id): m
        for m in CatalogModel.objects.filter(credential_id__in=by_id)
    }

    switched_off = workspace_models_switched_off(workspace=workspace)

    def allowed(credential_id: int, model_id: str) -> bool:
        row = catalog.get((credential_id, model_id))
        return credential_id in by_id and (
            row is None or (row.enabled and row.id not in switched_off)
        )

    pairs: list[tuple[int, str]] = []
    aliases = ModelAlias.objects.filter(name=model, enabled=True).filter(
        Q(workspace=workspace) | Q(workspace__isnull=True)
    )
    # A workspace's alias shadows the global one of the same name.
    aliases = sorted(aliases.prefetch_related("targets"), key=lambda a: a.workspace_id is None)
    if aliases:
        pairs = [(t.credential_id, t.model_id) for t in aliases[0].targets.all()]
    elif ":" in model and model.split(":", 1)[0].isdigit():
        credential_id, model_id = model.split(":", 1)
        pairs = [(int(credential_id), model_id)]
    else:
        pairs = [
            (c.id, model)
            for c in credentials
            if (c.id, model) in catalog and catalog[(c.id, model)].enabled
        ]
    pairs = [p for p in pairs if allowed(*p)]
    candidates = []
    for credential_id, model_id in pairs:
        candidate = _candidate(
            by_id[credential_id], model_id, catalog.get((credential_id, model_id))
        )
        if candidate:
            candidates.append(candidate)
    return candidates


async def candidates_resolve(
    *, user, workspace, model: str, temperature: float | None = None
) -> ResolvedCandidates:
    """Ordered candidates for a model string (see the module docstring); [] when none."""
    return await database_sync_to_async(candidates_resolve_sync)(
        user=user, workspace=workspace, model=model, temperature=temperature
    )


def backoff_delay(attempt: int, retry_after: float | None) -> float | None:
    """Seconds to wait before retry number `attempt` (0-based), or None to give up on this
    candidate because the provider asks for a longer wait than we allow."""
    cap = settings.PROVIDER_RETRY_MAX_WAIT
    if retry_after is not None:
        return None if retry_after > cap else retry_after
    return random.uniform(0, min(cap, settings.PROVIDER_RETRY_BASE_DELAY * 2**attempt))


def _falls_back(error: ProviderError) -> bool:
    return error.retryable or isinstance(error, ProviderAuthenticationError)


class FallbackStream:
    """The async iterator returned by `stream_with_fallback`; see the module docstring."""

    def __init__(self, candidates: list[Candidate], request: ChatRequest, *, whole: bool = False):
        self.whole = whole  # one non-streaming call per attempt (`Adapter.answer_events`)
        self.candidates = list(candidates)
        self._clean = set(getattr(candidates, "circuits_clean", ()))
        self.request = request
        self.served_by: Candidate | None = None
        self.attempts: list[Attempt] = []
        self._events = self._run()

    def __aiter__(self) -> FallbackStream:
        return self

    async def __anext__(self) -> StreamEvent:
        return await self._events.__anext__()

    async def aclose(self) -> None:
        await self._events.aclose()

    async def _circuit_success(self, credential_id: int) -> None:
        if credential_id not in self._clean:
            await circuit_success_async(credential_id)

    async def _circuit_failure(self, credential_id: int) -> None:
        self._clean.discard(credential_id)
        await circuit_failure_async(credential_id)

    async def _run(self) -> AsyncIterator[StreamEvent]:
        if not self.candidates:
            raise NoCandidates(_("No provider is available for this model."))
        last_error: ProviderError | None = None
        for candidate in self.candidates:
            adapter = adapter_for(candidate.kind)
            request = dataclasses.replace(self.request, model=candidate.model_id)
            for attempt in range(max(1, settings.PROVIDER_RETRY_ATTEMPTS)):
                started = False
                try:
                    source = adapter.answer_events if self.whole else adapter.stream
                    async with contextlib.aclosing(source(candidate.target, request)) as events:
                        async for event in events:
                            if not started:
                                started = True
                                self.served_by = candidate
                                await self._circuit_success(candidate.credential_id)
                            yield event
                    if not started:  # an empty but complete answer
                        self.served_by = candidate
                        await self._circuit_success(candidate.credential_id)
                    return
                except ProviderError as error:
                    await self._circuit_failure(candidate.credential_id)
                    if started:
                        raise
                    self.attempts.append(Attempt(candidate, error))
                    last_error = error
                    logger.warning(
                        "provider call failed: credential=%s model=%s error=%s attempt=%s",
                        candidate.credential_id,
                        candidate.model_id,
                        error.code,
                        attempt + 1,
                    )
                    if not _falls_back(error):
                        raise
                    if not error.retryable or attempt + 1 >= settings.PROVIDER_RETRY_ATTEMPTS:
                        break
                    delay = backoff_delay(attempt, error.retry_after)
                    if delay is None:
                        break
                    await asyncio.sleep(delay)
                except Exception as exc:
                    # A bug or an unexpected library error: count it against the credential and
                    # surface a safe message rather than an exception text that might hold data.
                    await self._circuit_failure(candidate.credential_id)
                    if started:
                        raise ProviderUpstreamError() from exc
                    logger.exception(
                        "provider adapter crashed: credential=%s", candidate.credential_id
                    )
                    last_error = ProviderUpstreamError()
                    self.attempts.append(Attempt(candidate, last_error))
                    break
        assert last_error is not None
        raise last_error


def stream_with_fallback(
    candidates: list[Candidate], request: ChatRequest, *, whole: bool = False
) -> FallbackStream:
    return FallbackStream(candidates, request, whole=whole)
