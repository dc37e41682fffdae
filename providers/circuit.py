"""Circuit breaker per credential, kept in the Django cache (Redis in services mode, so every
web process and worker sees the same state).

Closed: calls go through; each failure counts. After PROVIDER_CIRCUIT_FAILURES consecutive
failures the circuit opens for PROVIDER_CIRCUIT_COOLDOWN seconds and routing skips the
credential. When the cool-down has passed it is half-open: calls go through again as probes;
one success closes it, one failure re-opens it for another cool-down.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache


@dataclass(frozen=True)
class CircuitState:
    state: str  # "closed" | "open" | "half_open"
    failures: int
    opened_until: float | None

    @property
    def allows_calls(self) -> bool:
        return self.state != "open"


def circuit_key(credential_id: int) -> str:
    return f"providers:circuit:{credential_id}"


def _ttl() -> int:
    return int(max(settings.PROVIDER_CIRCUIT_COOLDOWN * 10, 600))


def circuit_state_from(raw: dict | None) -> CircuitState:
    """The state a raw cache value stands for (None: never failed)."""
    if not raw:
        return CircuitState("closed", 0, None)
    failures = int(raw.get("failures", 0))
    opened_until = raw.get("opened_until")
    if opened_until is None:
        return CircuitState("closed", failures, None)
    if time.time() < opened_until:
        return CircuitState("open", failures, opened_until)
    return CircuitState("half_open", failures, opened_until)


def _after_failure(raw: dict | None) -> dict:
    raw = dict(raw or {})
    raw["failures"] = int(raw.get("failures", 0)) + 1
    if raw["failures"] >= settings.PROVIDER_CIRCUIT_FAILURES:
        raw["opened_until"] = time.time() + settings.PROVIDER_CIRCUIT_COOLDOWN
    return raw


def circuit_state(credential_id: int) -> CircuitState:
    return circuit_state_from(cache.get(circuit_key(credential_id)))


def circuit_states(credential_ids) -> dict[int, CircuitState]:
    ids = list(credential_ids)
    found = cache.get_many([circuit_key(i) for i in ids])
    return {i: circuit_state_from(found.get(circuit_key(i))) for i in ids}


def circuit_failure(credential_id: int) -> CircuitState:
    raw = _after_failure(cache.get(circuit_key(credential_id)))
    cache.set(circuit_key(credential_id), raw, _ttl())
    return circuit_state_from(raw)


def circuit_success(credential_id: int) -> None:
    cache.delete(circuit_key(credential_id))


def circuit_reset(credential_id: int) -> None:
    cache.delete(circuit_key(credential_id))


async def circuit_failure_async(credential_id: int) -> CircuitState:
    raw = _after_failure(await cache.aget(circuit_key(credential_id)))
    await cache.aset(circuit_key(credential_id), raw, _ttl())
    return circuit_state_from(raw)


async def circuit_success_async(credential_id: int) -> None:
    if await cache.aget(circuit_key(credential_id)) is not None:
        await cache.adelete(circuit_key(credential_id))
