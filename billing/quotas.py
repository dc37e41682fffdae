"""Budgets: reserve the worst case before the upstream call, settle to the real cost after.

Every check-and-reserve is one atomic step across processes and servers:
- with `REDIS_URL`, one Lua script per step over a hash (spent, reserved) and a sorted set of
  live reservations per scope and month;
- otherwise in the database: the scope's `BudgetCounter` row is locked (SELECT ... FOR UPDATE
  on PostgreSQL; SQLite's BEGIN IMMEDIATE serializes writers) while live reservations are
  summed and the new one inserted.

A request is refused when spent + reserved + its own worst case would pass a hard limit, so
parallel requests can never take spending past the limit by more than a request's actual cost
exceeding its reservation. Reservations carry an expiry, so a crashed process cannot hold
budget forever: expired ones are reclaimed by the next reservation.

Amounts in Redis are integers of micro-dollars (the ledger's 6 decimals), so no float touches
money.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import logging
import os
import random
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from django.conf import settings
from django.db import OperationalError, connection, transaction
from django.db.models import Sum
from django.utils import formats, timezone
from django.utils.translation import gettext_noop

from aurax.db_threads import db_submit
from aurax.phrases import month, number, phrase, phrase_join, phrase_say, usd

from .errors import QuotaExceeded
from .models import Budget, BudgetCounter, BudgetReservation, BudgetScope
from .pricing import BILLING_RULES_GENERATION, MICRO, cost_compute

logger = logging.getLogger(__name__)

RESERVATION_TTL_SECONDS_DEFAULT = 3600


def scope_key(*, scope: str, workspace_id: int, user_id: int | None, api_key_id: int | None) -> str:
    if scope == BudgetScope.WORKSPACE:
        return f"ws:{workspace_id}"
    if scope == BudgetScope.MEMBER:
        return f"member:{workspace_id}:{user_id}"
    return f"key:{api_key_id}"


def scope_keys_for(
    *, workspace_id: int | None, user_id: int | None, api_key_id: int | None
) -> list[str]:
    """Every scope a call counts against, budget or not (counters are kept for all). A call
    whose workspace was deleted before its row was written counts only against its key."""
    keys = []
    if workspace_id is not None:
        keys.append(f"ws:{workspace_id}")
        if user_id is not None:
            keys.append(f"member:{workspace_id}:{user_id}")
    if api_key_id is not None:
        keys.append(f"key:{api_key_id}")
    return keys


def period_start_for(moment: datetime | None = None) -> date:
    moment = timezone.localtime(moment or timezone.now(), timezone.get_fixed_timezone(0))
    return moment.date().replace(day=1)


def period_end_for(start: date) -> date:
    return (start + timedelta(days=32)).replace(day=1)


def period_label(start: date) -> str:
    return formats.date_format(start, "F Y")


def budgets_for(*, workspace_id: int, user_id: int | None, api_key_id: int | None) -> list[Budget]:
    from django.db.models import Q

    query = Q(scope=BudgetScope.WORKSPACE, workspace_id=workspace_id)
    if user_id is not None:
        query |= Q(scope=BudgetScope.MEMBER, workspace_id=workspace_id, user_id=user_id)
    if api_key_id is not None:
        query |= Q(scope=BudgetScope.API_KEY, api_key_id=api_key_id)
    return list(Budget.objects.filter(query).select_related("workspace"))


_budgets = None


def budgets_cached(
    *, workspace_id: int, user_id: int | None, api_key_id: int | None
) -> list[Budget]:
    """`budgets_for`, kept per process until any budget changes anywhere (the request path
    reads this on every call; most calls find the same few rows or none)."""
    global _budgets
    if _budgets is None:
        from providers.routing import GenerationCache

        _budgets = GenerationCache(BILLING_RULES_GENERATION)
    return _budgets.get_or_load(
        (workspace_id, user_id, api_key_id),
        lambda: budgets_for(workspace_id=workspace_id, user_id=user_id, api_key_id=api_key_id),
    )


def _micros(amount: Decimal) -> int:
    return int((amount / MICRO).to_integral_value())


def _from_micros(value: int) -> Decimal:
    return (Decimal(value) * MICRO).quantize(MICRO)


@dataclass(frozen=True, slots=True)
class ReservationLine:
    scope_key: str
    cost: Decimal
    tokens: int


@dataclass(slots=True)
class Reservation:
    """What a request holds between `quota_reserve` and `quota_settle`/`quota_release`."""

    id: str
    workspace_id: int
    user_id: int | None
    api_key_id: int | None
    period_start: date
    cost: Decimal  # worst case
    tokens: int  # worst case
    max_output_tokens: int = 0  # what the worst case assumes of the answer
    lines: list[ReservationLine] = field(default_factory=list)
    closed: bool = False
    # Drawn from this process's lease (see `_Lease`): nothing of its own in the store.
    lease: _Lease | None = None


@dataclass(frozen=True, slots=True)
class ScopeUsage:
    spent_cost: Decimal
    spent_tokens: int
    reserved_cost: Decimal
    reserved_tokens: int


def _ttl() -> int:
    return getattr(settings, "BILLING_RESERVATION_TTL_SECONDS", RESERVATION_TTL_SECONDS_DEFAULT)


def _tokens(count: int) -> dict:
    return phrase(gettext_noop("%(tokens)s tokens"), tokens=number(count))


def _refusal(
    budget: Budget, unit: str, start: date, *, reservation: Reservation, usage: ScopeUsage
) -> QuotaExceeded:
    """The refusal of `reservation` by `budget`, saying why: the budget is used up, or what
    this request may cost at worst does not fit in what is left of it. Kept as a phrase too
    (aurax.phrases): a chat answer shows it in its reader's language."""
    scope = BudgetScope(budget.scope)
    name = {
        BudgetScope.WORKSPACE: gettext_noop("Workspace budget"),
        BudgetScope.MEMBER: gettext_noop("Your budget in this workspace"),
        BudgetScope.API_KEY: gettext_noop("API key budget"),
    }[scope]
    # Who can do something about it: the message is built without knowing who reads it.
    remedy = {
        BudgetScope.WORKSPACE: gettext_noop("a workspace admin can raise it on the Usage page"),
        BudgetScope.MEMBER: gettext_noop("an administrator can raise it"),
        BudgetScope.API_KEY: gettext_noop(
            "a key with a larger budget can be created on the API keys page"
        ),
    }[scope]
    if unit == "cost":
        limit, spent, held, need = (
            budget.cost_limit,
            usage.spent_cost,
            usage.reserved_cost,
            reservation.cost,
        )
        amount, show = usd(limit), usd
    else:
        limit, spent, held, need = (
            budget.token_limit,
            usage.spent_tokens,
            usage.reserved_tokens,
            reservation.tokens,
        )
        amount, show = _tokens(limit), _tokens
    values = {"name": phrase(name), "amount": amount, "period": month(start)}
    reached = spent >= limit
    if reached:
        said = phrase(
            gettext_noop("%(name)s of %(amount)s for %(period)s reached: %(remedy)s."),
            **values,
            remedy=phrase(remedy),
        )
    else:
        left = max(limit - spent - held, 0)
        if unit == "cost":
            template = gettext_noop(
                "%(name)s of %(amount)s for %(period)s: %(left)s left, and this request could "
                "cost up to %(need)s (its prompt and up to %(max_tokens)s output tokens). Lower "
                "max tokens, or %(remedy)s."
            )
            left_said, need_said = usd(left, ROUND_FLOOR), usd(need, ROUND_CEILING)
        else:
            template = gettext_noop(
                "%(name)s of %(amount)s for %(period)s: %(left)s left, and this request could "
                "use up to %(need)s (its prompt and up to %(max_tokens)s output tokens). Lower "
                "max tokens, or %(remedy)s."
            )
            left_said, need_said = show(left), show(need)
        said = phrase(
            template,
            **values,
            left=left_said,
            need=need_said,
            max_tokens=number(reservation.max_output_tokens),
            remedy=phrase(remedy),
        )
        if held > 0:
            said = phrase_join(
                said,
                phrase(
                    gettext_noop("Requests in progress hold %(held)s of it until they finish."),
                    held=show(held),
                ),
            )
    return QuotaExceeded(
        budget.scope,
        limit,
        period_label(start),
        phrase_say(said),
        unit=unit,
        reached=reached,
        phrase=said,
    )


def _multiple_for(room, need, multiple: int) -> int:
    """How many times `need` a lease may take from `room`: at most a quarter of it, so that
    leases of other processes never take all the room (never below 1: `need` fits)."""
    if need <= 0:
        return multiple
    return max(1, min(multiple, int(room // need) // 4))


# --- Database backend ---------------------------------------------------------------------


def _retryable(error: OperationalError) -> bool:
    """SQLite reports a busy database as an error instead of waiting in some cases (shared
    cache, a lock upgrade). PostgreSQL ends one of two transactions that wait for each other
    (a deadlock: two writers creating a new period's counters in another order than they
    update existing ones). Either way the transaction was rolled back whole: safe to retry."""
    if connection.vendor == "sqlite":
        return "locked" in str(error)
    return getattr(error.__cause__, "sqlstate", None) == DEADLOCK_DETECTED


DEADLOCK_DETECTED = "40P01"  # PostgreSQL's SQLSTATE


def _retry_when_locked(function):
    """Run a whole transaction again when the database refused it for the moment
    (`_retryable`)."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        for attempt in range(100):
            try:
                return function(*args, **kwargs)
            except OperationalError as error:
                if not _retryable(error) or attempt == 99:
                    raise
                if connection.in_atomic_block:
                    raise  # an outer transaction must be retried as a whole
                time.sleep(0.005 + random.random() * 0.02)
        raise AssertionError("unreachable")

    return wrapper


# Expired reservations are ignored by every sum; deleting them is only housekeeping, done at
# most this often per scope and process.
EXPIRED_SWEEP_SECONDS = 30.0
_last_sweep: dict[tuple[str, date], float] = {}


class DatabaseQuotaStore:
    def _lock_counters(self, keys: list[str], start: date) -> None:
        BudgetCounter.objects.bulk_create(
            [BudgetCounter(scope_key=k, period_start=start) for k in keys], ignore_conflicts=True
        )
        if connection.features.has_select_for_update:
            # Sorted, so two requests locking overlapping scopes cannot deadlock.
            list(
                BudgetCounter.objects.select_for_update()
                .filter(scope_key__in=keys, period_start=start)
                .order_by("scope_key")
                .values_list("id", flat=True)
            )
        # (SQLite: every transaction here begins IMMEDIATE, which already holds the one
        # write lock, so there is nothing more to lock.)

    def _sweep_expired(self, keys: list[str], start: date, now: datetime) -> None:
        tick = time.monotonic()
        due = [k for k in keys if tick - _last_sweep.get((k, start), -1e9) > EXPIRED_SWEEP_SECONDS]
        if due:
            BudgetReservation.objects.filter(
                scope_key__in=due, period_start=start, expires_at__lte=now
            ).delete()
            for k in due:
                _last_sweep[(k, start)] = tick

    @_retry_when_locked
    def reserve(
        self,
        reservation: Reservation,
        limits: list[tuple[Budget, str]],
        *,
        max_multiple: int = 1,
        ttl: int | None = None,
    ) -> tuple[QuotaExceeded | None, int]:
        """(refusal, 1) or (None, m): m times the reservation's lines, m ≤ max_multiple,
        at most a quarter of every hard budget's room (see `_multiple_for`)."""
        keys = [line.scope_key for line in reservation.lines]
        start = reservation.period_start
        now = timezone.now()
        multiple = max_multiple
        with transaction.atomic():
            self._lock_counters(keys, start)
            self._sweep_expired(keys, start, now)
            usage = self.usage(keys, start)
            for budget, key in limits:
                if not budget.hard:
                    continue
                u = usage[key]
                if budget.cost_limit is not None:
                    room = budget.cost_limit - u.spent_cost - u.reserved_cost
                    if room < reservation.cost:
                        return _refusal(budget, "cost", start, reservation=reservation, usage=u), 1
                    multiple = _multiple_for(room, reservation.cost, multiple)
                if budget.token_limit is not None:
                    room = budget.token_limit - u.spent_tokens - u.reserved_tokens
                    if room < reservation.tokens:
                        return _refusal(
                            budget, "tokens", start, reservation=reservation, usage=u
                        ), 1
                    multiple = _multiple_for(room, reservation.tokens, multiple)
            expires = now + timedelta(seconds=ttl or _ttl())
            BudgetReservation.objects.bulk_create(
                [
                    BudgetReservation(
                        reservation_id=reservation.id,
                        scope_key=line.scope_key,
                        period_start=start,
                        cost=line.cost * multiple,
                        tokens=line.tokens * multiple,
                        expires_at=expires,
                    )
                    for line in reservation.lines
                ]
            )
        return None, multiple

    @_retry_when_locked
    def close(self, reservation: Reservation) -> None:
        BudgetReservation.objects.filter(reservation_id=reservation.id).delete()

    def usage(self, keys: list[str], start: date) -> dict[str, ScopeUsage]:
        spent = {
            c.scope_key: c
            for c in BudgetCounter.objects.filter(scope_key__in=keys, period_start=start)
        }
        reserved = {
            row["scope_key"]: row
            for row in BudgetReservation.objects.filter(
                scope_key__in=keys, period_start=start, expires_at__gt=timezone.now()
            )
            .values("scope_key")
            .annotate(cost=Sum("cost"), tokens=Sum("tokens"))
        }
        result = {}
        for key in keys:
            counter = spent.get(key)
            held = reserved.get(key, {})
            result[key] = ScopeUsage(
                spent_cost=counter.spent_cost if counter else Decimal(0),
                spent_tokens=counter.spent_tokens if counter else 0,
                reserved_cost=held.get("cost") or Decimal(0),
                reserved_tokens=held.get("tokens") or 0,
            )
        return result


# --- Redis backend ------------------------------------------------------------------------

# KEYS: per scope a hash (spent/reserved) then a sorted set (live reservations by expiry).
# ARGV: now_ms, expires_ms, reservation id, key ttl, max multiple, then per scope 7 values:
#       cost limit, token limit (-1 = none), cost, tokens, seed cost, seed tokens (-1 = unknown),
#       hard (1/0).
# Returns {0, m} on success (m times the amounts reserved, as `_multiple_for` decides),
# {-1, i} when scope i needs seeding, {i, "cost"|"tokens"} on refusal.
RESERVE_LUA = """
local n = #KEYS / 2
local now = tonumber(ARGV[1])
local m = tonumber(ARGV[5])
local function multiple(room, need)
  if need <= 0 then return m end
  return math.max(1, math.min(m, math.floor(math.floor(room / need) / 4)))
end
for i = 1, n do
  local h, z, b = KEYS[2*i-1], KEYS[2*i], 6 + (i-1)*7
  if redis.call('EXISTS', h) == 0 then
    if tonumber(ARGV[b+4]) < 0 then return {-1, i} end
    redis.call('HSET', h, 'spent_cost', ARGV[b+4], 'spent_tokens', ARGV[b+5],
               'reserved_cost', 0, 'reserved_tokens', 0)
  end
  redis.call('EXPIRE', h, ARGV[4])
  local expired = redis.call('ZRANGEBYSCORE', z, '-inf', now)
  for _, member in ipairs(expired) do
    local c, t = string.match(member, '|(%d+)|(%d+)$')
    redis.call('HINCRBY', h, 'reserved_cost', 0 - tonumber(c))
    redis.call('HINCRBY', h, 'reserved_tokens', 0 - tonumber(t))
  end
  if #expired > 0 then redis.call('ZREMRANGEBYSCORE', z, '-inf', now) end
end
for i = 1, n do
  local h, b = KEYS[2*i-1], 6 + (i-1)*7
  if ARGV[b+6] == '1' then
    local v = redis.call('HMGET', h, 'spent_cost', 'reserved_cost',
                         'spent_tokens', 'reserved_tokens')
    local climit, tlimit = tonumber(ARGV[b]), tonumber(ARGV[b+1])
    local c, t = tonumber(ARGV[b+2]), tonumber(ARGV[b+3])
    if climit >= 0 then
      local room = climit - tonumber(v[1]) - tonumber(v[2])
      if room < c then return {i, 'cost'} end
      m = multiple(room, c)
    end
    if tlimit >= 0 then
      local room = tlimit - tonumber(v[3]) - tonumber(v[4])
      if room < t then return {i, 'tokens'} end
      m = multiple(room, t)
    end
  end
end
for i = 1, n do
  local h, z, b = KEYS[2*i-1], KEYS[2*i], 6 + (i-1)*7
  -- Formatted: Lua 5.1 numbers are doubles, which print as 1e+15 past 14 digits.
  local c = string.format('%d', tonumber(ARGV[b+2]) * m)
  local t = string.format('%d', tonumber(ARGV[b+3]) * m)
  redis.call('HINCRBY', h, 'reserved_cost', c)
  redis.call('HINCRBY', h, 'reserved_tokens', t)
  redis.call('ZADD', z, ARGV[2], ARGV[3] .. '|' .. c .. '|' .. t)
  redis.call('EXPIRE', z, ARGV[4])
end
return {0, m}
"""

# Negations are written `0 - x`: Lua's `-x` of zero is -0, which Redis refuses as an integer.
# KEYS: hash, zset per scope, then the sending process's last-step key. ARGV: reservation id,
# the step's number in its process ('-': a release without spend, which may run twice), that
# key's expiry in seconds, then per scope 4 values: reserved cost, reserved tokens, spent
# cost, spent tokens. A step numbered no higher than the last one its process got through is
# one sent again after its reply was lost (a connection dropped or timed out after Redis ran
# it): skipped, so its spend is not added twice. A reservation already reclaimed (expired) is
# not released twice; spend is added only where the hash exists (otherwise it is seeded
# later from the database counters, which already include it).
SETTLE_LUA = """
local n = (#KEYS - 1) / 2
if ARGV[2] ~= '-' then
  local last = redis.call('GET', KEYS[#KEYS])
  if last and tonumber(last) >= tonumber(ARGV[2]) then
    return 1
  end
  redis.call('SET', KEYS[#KEYS], ARGV[2], 'EX', ARGV[3])
end
for i = 1, n do
  local h, z, b = KEYS[2*i-1], KEYS[2*i], 4 + (i-1)*4
  if redis.call('ZREM', z, ARGV[1] .. '|' .. ARGV[b] .. '|' .. ARGV[b+1]) == 1 then
    redis.call('HINCRBY', h, 'reserved_cost', 0 - tonumber(ARGV[b]))
    redis.call('HINCRBY', h, 'reserved_tokens', 0 - tonumber(ARGV[b+1]))
  end
  if redis.call('EXISTS', h) == 1 then
    redis.call('HINCRBY', h, 'spent_cost', ARGV[b+2])
    redis.call('HINCRBY', h, 'spent_tokens', ARGV[b+3])
  end
end
return 0
"""

KEY_TTL_SECONDS = 40 * 24 * 3600
# How long Redis remembers a process's last settle step after it (one short key per process):
# a step kept longer than this while Redis did not answer could be counted twice, if Redis
# had run it before its reply was lost.
STEP_KEY_TTL_SECONDS = 7 * 24 * 3600


@functools.cache
def _redis(url: str):
    import redis

    return redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)


class RedisQuotaStore:
    def __init__(self, url: str):
        self.client = _redis(url)
        self.reserve_script = self.client.register_script(RESERVE_LUA)
        self.settle_script = self.client.register_script(SETTLE_LUA)
        self.db = DatabaseQuotaStore()

    @staticmethod
    def _keys(key: str, start: date) -> tuple[str, str]:
        period = start.strftime("%Y-%m")
        return f"aurax:quota:{key}:{period}", f"aurax:quota:{key}:{period}:resv"

    def reserve(
        self,
        reservation: Reservation,
        limits: list[tuple[Budget, str]],
        *,
        max_multiple: int = 1,
        ttl: int | None = None,
    ) -> tuple[QuotaExceeded | None, int]:
        start = reservation.period_start
        by_key = {key: budget for budget, key in limits}
        keys: list[str] = []
        for line in reservation.lines:
            keys.extend(self._keys(line.scope_key, start))
        now_ms = int(timezone.now().timestamp() * 1000)
        expires_ms = now_ms + (ttl or _ttl()) * 1000
        seeds: dict[str, tuple[int, int]] = {}
        for _attempt in range(3):
            args: list = [now_ms, expires_ms, reservation.id, KEY_TTL_SECONDS, max_multiple]
            for line in reservation.lines:
                budget = by_key.get(line.scope_key)
                seed = seeds.get(line.scope_key, (-1, -1))
                args += [
                    _micros(budget.cost_limit) if budget and budget.cost_limit is not None else -1,
                    budget.token_limit if budget and budget.token_limit is not None else -1,
                    _micros(line.cost),
                    line.tokens,
                    seed[0],
                    seed[1],
                    1 if budget and budget.hard else 0,
                ]
            result = self.reserve_script(keys=keys, args=args)
            if result[0] == 0:
                return None, int(result[1])
            if result[0] == -1:
                counters = self.db.usage([line.scope_key for line in reservation.lines], start)
                seeds = {k: (_micros(u.spent_cost), u.spent_tokens) for k, u in counters.items()}
                continue
            line = reservation.lines[result[0] - 1]
            unit = result[1].decode() if isinstance(result[1], bytes) else result[1]
            usage = self.usage([line.scope_key], start)[line.scope_key]
            return _refusal(
                by_key[line.scope_key], unit, start, reservation=reservation, usage=usage
            ), 1
        raise RuntimeError("could not seed quota counters")

    def settle_step(
        self, reservation: Reservation | None, keys: list[str], start: date, cost, tokens
    ) -> tuple[list[str], list]:
        """The settle script's (keys, args) for releasing `reservation` and adding the spend;
        not numbered yet (`_steps_number`: the last key and the second argument)."""
        lines = {line.scope_key: line for line in (reservation.lines if reservation else [])}
        redis_keys: list[str] = []
        args: list = [reservation.id if reservation else "-", None, STEP_KEY_TTL_SECONDS]
        for key in keys:
            redis_keys.extend(self._keys(key, start))
            line = lines.get(key)
            args += [
                _micros(line.cost) if line else 0,
                line.tokens if line else 0,
                _micros(cost),
                tokens,
            ]
        redis_keys.append("")  # the sending process's last-step key, when numbered
        return redis_keys, args

    def close(self, reservation: Reservation) -> None:
        """Release `reservation` without spend (harmless if it runs twice: not numbered)."""
        keys = [line.scope_key for line in reservation.lines]
        redis_keys, args = self.settle_step(
            reservation, keys, reservation.period_start, Decimal(0), 0
        )
        redis_keys[-1], args[1] = _step_key(), "-"
        self.settle_script(redis_keys, args)

    def usage(self, keys: list[str], start: date) -> dict[str, ScopeUsage]:
        db_usage = None
        result = {}
        pipe = self.client.pipeline(transaction=False)
        for key in keys:
            pipe.hmget(
                self._keys(key, start)[0],
                ["spent_cost", "spent_tokens", "reserved_cost", "reserved_tokens"],
            )
        for key, values in zip(keys, pipe.execute(), strict=True):
            if values[0] is None:
                db_usage = db_usage or self.db.usage(keys, start)
                result[key] = db_usage[key]
                continue
            sc, st, rc, rt = (int(v or 0) for v in values)
            result[key] = ScopeUsage(_from_micros(sc), st, _from_micros(max(rc, 0)), max(rt, 0))
        return result


@functools.cache
def _redis_store(url: str) -> RedisQuotaStore:
    return RedisQuotaStore(url)


_database_store = DatabaseQuotaStore()


def quota_store():
    if settings.REDIS_URL:
        return _redis_store(settings.REDIS_URL)
    return _database_store


# --- Leases -------------------------------------------------------------------------------
#
# One store round trip (a locked database transaction, or a Lua script) per call is the
# largest part of admitting a call. So the pipeline's calls reserve from a *lease*: one
# reservation in the shared store worth several calls' worst case (at most a quarter of the
# room left under each hard budget, see `_multiple_for`), which this process then hands out
# to its calls without asking the store. The store still counts the whole lease as reserved,
# so what every process may spend stays within the limit exactly as with one reservation per
# call; near the limit the multiple falls to 1 and calls reserve one by one again.
#
# A call drawn from a lease keeps its worst case drawn until its spend is in the counters
# (the ledger's batch has committed), then gives it back. A lease takes no new draws after
# LEASE_DRAW_SECONDS or once a call does not fit (a fresh one is taken), and is returned to
# the store when nothing is drawn from it any more: at once when retired, after
# LEASE_IDLE_SECONDS when idle. A process that dies holding a lease holds it until
# LEASE_TTL_SECONDS.

LEASE_MAX_MULTIPLE = 32
LEASE_DRAW_SECONDS = 10.0
LEASE_IDLE_SECONDS = 1.0
LEASE_TTL_SECONDS = 900


class _Lease:
    __slots__ = ("key", "held", "cost", "tokens", "used_cost", "used_tokens", "draws", "taken_at")

    def __init__(self, key, held: Reservation, multiple: int):
        self.key = key
        self.taken_at = time.monotonic()
        self.held = held  # the store's reservation, lines already multiplied
        self.cost = held.cost * multiple
        self.tokens = held.tokens * multiple
        self.used_cost = Decimal(0)
        self.used_tokens = 0
        self.draws = 0


class _Leases:
    def __init__(self):
        self._lock = threading.Lock()
        self._current: dict = {}  # key -> [(lease, taken at)], the leases taking draws
        self._idle: dict[_Lease, float] = {}  # nothing drawn since (monotonic)
        self._retired: set[_Lease] = set()
        self._reaper: threading.Thread | None = None
        self._pid = os.getpid()

    def draw(self, key, reservation: Reservation) -> bool:
        """Take the reservation's worst case from a current lease for `key`, if one has room.
        A lease that is too old, or too full for this call, takes no more draws."""
        with self._lock:
            if self._pid != os.getpid():  # a forked child holds no lease of its parent's
                self.__init__()
            current = self._current.get(key)
            if not current:
                return False
            now = time.monotonic()
            for entry in list(current):
                lease, taken_at = entry
                fits = (
                    lease.used_cost + reservation.cost <= lease.cost
                    and lease.used_tokens + reservation.tokens <= lease.tokens
                )
                if fits and now - taken_at <= LEASE_DRAW_SECONDS:
                    self._take(lease, reservation)
                    return True
                current.remove(entry)
                self._retired.add(lease)
            return False

    def add(self, key, lease: _Lease, reservation: Reservation) -> None:
        with self._lock:
            self._current.setdefault(key, []).append((lease, time.monotonic()))
            self._take(lease, reservation)
            if self._reaper is None:
                self._reaper = threading.Thread(
                    target=self._reap_forever, name="aurax-leases", daemon=True
                )
                self._reaper.start()

    def retire_others(self, key) -> None:
        """A budget of these scopes changed (`key` is new): the leases taken under the old
        rules take no more draws, and go back to the store now if nothing is drawn."""
        period, rules = key
        scopes = {rule[1] for rule in rules}
        with self._lock:
            for other in [k for k in self._current if k != key and k[0] == period]:
                if scopes & {rule[1] for rule in other[1]}:
                    for lease, _taken in self._current.pop(other):
                        self._retired.add(lease)
            done = [lease for lease in self._retired if lease.draws == 0]
        for lease in done:
            self._return(lease)

    def give_back(self, reservation: Reservation) -> None:
        lease = reservation.lease
        with self._lock:
            lease.used_cost -= reservation.cost
            lease.used_tokens -= reservation.tokens
            lease.draws -= 1
            if lease.draws == 0:
                self._idle[lease] = time.monotonic()
        if lease in self._retired and lease.draws == 0:
            self._return(lease)

    def _take(self, lease: _Lease, reservation: Reservation) -> None:
        lease.used_cost += reservation.cost
        lease.used_tokens += reservation.tokens
        lease.draws += 1
        self._idle.pop(lease, None)
        reservation.lease = lease

    def _return(self, lease: _Lease) -> None:
        with self._lock:
            if lease.draws or lease not in self._retired:
                return
            self._retired.discard(lease)
            self._idle.pop(lease, None)
        quota_release(lease.held)

    def reap(self) -> None:
        """Return the leases nobody draws from: retired and drained, or idle too long (after
        the spend of their calls is in Redis, if it did not answer before). A lease past
        LEASE_DRAW_SECONDS is retired; one held past LEASE_TTL_SECONDS with calls still drawn
        (calls that never settled: a bug) is forgotten, the store having expired it."""
        try:
            unsettled_send()
        except Exception:
            logger.exception("sending kept settle steps failed")
        now = time.monotonic()
        with self._lock:
            for key, current in list(self._current.items()):
                for entry in list(current):
                    since = self._idle.get(entry[0])
                    idle = since is not None and now - since >= LEASE_IDLE_SECONDS
                    if idle or now - entry[1] > LEASE_DRAW_SECONDS:
                        current.remove(entry)
                        self._retired.add(entry[0])
                if not current:
                    del self._current[key]
            lapsed = [x for x in self._retired if x.draws and now - x.taken_at > LEASE_TTL_SECONDS]
            for lease in lapsed:
                logger.warning(
                    "a budget lease lapsed with %d calls never settled; forgotten", lease.draws
                )
                self._retired.discard(lease)
                self._idle.pop(lease, None)
            done = [lease for lease in self._retired if lease.draws == 0]
        for lease in done:
            try:
                self._return(lease)
            except Exception:  # the store is away: it expires the lease by itself
                logger.exception("returning a budget lease failed")

    def reap_all(self) -> None:
        """Retire every lease (tests, shutdown), returning those with nothing drawn."""
        with self._lock:
            for current in self._current.values():
                self._retired.update(lease for lease, _taken in current)
            self._current.clear()
        self.reap()

    def _idle_all(self) -> bool:
        """Nothing to reap: no lease held, no kept settle step to send."""
        with self._lock:
            return not (self._current or self._retired or _unsettled)

    def _reap_forever(self) -> None:
        while True:
            time.sleep(LEASE_IDLE_SECONDS / 2)
            if self._idle_all():
                continue  # no database thread taken (nor a connection checked) for nothing
            try:
                done = db_submit(self.reap)
            except RuntimeError:  # the database threads are shut down: the process is exiting
                return
            try:
                done.result()
            except Exception:
                logger.exception("budget lease reaper failed")


_leases = _Leases()


@atexit.register
def _leases_return_at_exit() -> None:
    # Registered before the ledger's flush (billing.ledger imports this module), so it runs
    # after it: the draws are given back by the flush, then the leases can go.
    with contextlib.suppress(Exception):
        _leases.reap_all()


def leases_return() -> None:
    """Give every lease of this process back to the store (as far as nothing is drawn)."""
    _leases.reap_all()


def _reserve_leased(reservation: Reservation, limits: list[tuple[Budget, str]]) -> None:
    key = (
        reservation.period_start,
        tuple((b.pk, b.scope_key, b.cost_limit, b.token_limit, b.hard) for b, _k in limits),
    )
    if _leases.draw(key, reservation):
        return
    _leases.retire_others(key)
    held = Reservation(
        id=uuid.uuid4().hex,
        workspace_id=reservation.workspace_id,
        user_id=reservation.user_id,
        api_key_id=reservation.api_key_id,
        period_start=reservation.period_start,
        cost=reservation.cost,
        tokens=reservation.tokens,
        max_output_tokens=reservation.max_output_tokens,
        lines=reservation.lines,
    )
    refusal, multiple = quota_store().reserve(
        held, limits, max_multiple=LEASE_MAX_MULTIPLE, ttl=LEASE_TTL_SECONDS
    )
    if refusal is not None:
        reservation.closed = True
        raise refusal
    held.lines = [
        ReservationLine(line.scope_key, line.cost * multiple, line.tokens * multiple)
        for line in held.lines
    ]
    _leases.add(key, _Lease(key, held, multiple), reservation)


# --- Public API ---------------------------------------------------------------------------


def quota_reserve(
    *,
    workspace_id: int,
    user_id: int | None,
    api_key_id: int | None = None,
    provider_kind: str,
    model: str,
    input_tokens: int,
    max_output_tokens: int,
    lease: bool = False,
) -> Reservation:
    """Reserve the worst case of a call against every applicable budget, or raise
    `QuotaExceeded` with a message for the user. Always returns a Reservation (possibly
    holding nothing) to hand to `usage_record` or `quota_release`. With `lease`, from this
    process's lease when one has room (see Leases above)."""
    worst = cost_compute(
        provider_kind=provider_kind,
        model=model,
        input_tokens=input_tokens,
        output_tokens=max_output_tokens,
    ).amount
    reservation = Reservation(
        id=uuid.uuid4().hex,
        workspace_id=workspace_id,
        user_id=user_id,
        api_key_id=api_key_id,
        period_start=period_start_for(),
        cost=worst,
        tokens=input_tokens + max_output_tokens,
        max_output_tokens=max_output_tokens,
    )
    budgets = budgets_cached(workspace_id=workspace_id, user_id=user_id, api_key_id=api_key_id)
    if not budgets:
        return reservation
    limits = [(b, b.scope_key) for b in budgets]
    reservation.lines = [ReservationLine(key, worst, reservation.tokens) for _b, key in limits]
    if lease:
        _reserve_leased(reservation, limits)
        return reservation
    refusal, _multiple = quota_store().reserve(reservation, limits)
    if refusal is not None:
        reservation.closed = True
        raise refusal
    return reservation


def quota_release(reservation: Reservation | None) -> None:
    """Give a reservation back untouched (the call never reached the upstream)."""
    own = _own_open(reservation)
    _close(reservation)
    if own is not None and own.lines:
        quota_store().close(own)


@dataclass(slots=True)
class Spend:
    """Spend to add to a call's scopes, and the reservation it settles (`UsageEntry` has the
    same attributes: the ledger's batches go through the same two steps)."""

    workspace_id: int
    user_id: int | None
    api_key_id: int | None
    cost: Decimal
    tokens: int
    reservation: Reservation | None
    period_start: date


def quota_settle(reservation: Reservation, *, actual_cost: Decimal, actual_tokens: int) -> None:
    """Turn a reservation into real spend and release the rest. The ledger does this for
    every usage event; call it directly only for spend that is not a usage event."""
    spend = Spend(
        workspace_id=reservation.workspace_id,
        user_id=reservation.user_id,
        api_key_id=reservation.api_key_id,
        cost=actual_cost,
        tokens=actual_tokens,
        reservation=reservation,
        period_start=reservation.period_start,
    )
    _retry_when_locked(spend_apply_in_transaction)([spend])
    spend_apply_after_commit([spend])


def _own_open(reservation: Reservation | None) -> Reservation | None:
    """The reservation if it still holds something of its own in the store."""
    if reservation is None or reservation.closed or reservation.lease is not None:
        return None
    return reservation


def _close(reservation: Reservation | None) -> None:
    if reservation is None or reservation.closed:
        return
    reservation.closed = True
    if reservation.lease is not None:
        _leases.give_back(reservation)


def spend_apply_in_transaction(entries) -> dict[tuple[str, date], tuple[Decimal, int]]:
    """The database part of settling spend (`Spend`s, or the ledger's `UsageEntry`s): the
    durable counters, kept in both modes, and with the database store the reservations'
    rows; in the caller's transaction if there is one. The spend is summed per scope and
    period first, so a batch costs one counter update per scope, not one per call. Returns
    each updated counter's new (spent cost, spent tokens) by (scope key, period start)."""
    totals: dict[tuple[str, date], list] = {}
    for e in entries:
        keys = scope_keys_for(
            workspace_id=e.workspace_id, user_id=e.user_id, api_key_id=e.api_key_id
        )
        for key in keys:
            total = totals.setdefault((key, e.period_start), [Decimal(0), 0])
            total[0] += e.cost
            total[1] += e.tokens
    store = quota_store()
    with transaction.atomic(savepoint=False):
        spent = _counters_add(totals)
        if not isinstance(store, RedisQuotaStore):
            held = [
                e.reservation.id
                for e in entries
                if _own_open(e.reservation) is not None and e.reservation.lines
            ]
            if held:
                BudgetReservation.objects.filter(reservation_id__in=held).delete()
    if not isinstance(store, RedisQuotaStore):
        for e in entries:
            if _own_open(e.reservation) is not None:
                e.reservation.closed = True
    return spent


# The counters this process has seen exist, by period start (the latest few periods only):
# adding to those alone needs no insert first.
_counters_known: dict[date, set[str]] = {}
_counters_known_lock = threading.Lock()
COUNTER_PERIODS_KNOWN = 4


def _counters_remember(counters) -> None:
    with _counters_known_lock:
        for key, start in counters:
            _counters_known.setdefault(start, set()).add(key)
        for start in sorted(_counters_known)[:-COUNTER_PERIODS_KNOWN]:
            del _counters_known[start]


def _counters_add(
    totals: dict[tuple[str, date], list],
) -> dict[tuple[str, date], tuple[Decimal, int]]:
    """Add (cost, tokens) to each (scope, period) counter: one UPDATE per counter (plain SQL:
    the ORM's expression compiling cost more than the statement), in sorted order so two
    batches never lock the same counters in opposite orders. Counters this process has not
    seen yet (a new period, a new scope) are created first, in the same order, before any
    is locked: two writers creating them after updating others could each hold one that the
    other waits for. Each UPDATE returns the counter's new values (the budget alerts need
    them: no query of their own)."""
    table = connection.ops.quote_name(BudgetCounter._meta.db_table)
    sql = (
        f"UPDATE {table} SET spent_cost = spent_cost + %s, spent_tokens = spent_tokens + %s "
        "WHERE scope_key = %s AND period_start = %s RETURNING spent_cost, spent_tokens"
    )
    spent: dict[tuple[str, date], tuple[Decimal, int]] = {}
    missing = []
    unknown = sorted(k for k in totals if k[0] not in _counters_known.get(k[1], ()))
    if unknown:
        BudgetCounter.objects.bulk_create(
            [BudgetCounter(scope_key=k, period_start=s) for k, s in unknown],
            ignore_conflicts=True,
        )
    with connection.cursor() as cursor:
        for key, start in sorted(totals):
            cost, tokens = totals[(key, start)]
            cursor.execute(sql, [cost, tokens, key, start])
            row = cursor.fetchone()
            if row is None:
                missing.append((key, start))
            else:
                spent[(key, start)] = _spent_of(row)
        if missing:  # gone since this process saw it (deleted with its scope, say)
            BudgetCounter.objects.bulk_create(
                [BudgetCounter(scope_key=k, period_start=s) for k, s in missing],
                ignore_conflicts=True,
            )
            for key, start in missing:
                cost, tokens = totals[(key, start)]
                cursor.execute(sql, [cost, tokens, key, start])
                spent[(key, start)] = _spent_of(cursor.fetchone())
    _counters_remember(totals)
    return spent


def _spent_of(row) -> tuple[Decimal, int]:
    """(cost, tokens) of a counter row read with plain SQL: SQLite gives the decimal column
    back as a float, PostgreSQL as a Decimal."""
    cost, tokens = row
    return Decimal(str(cost)).quantize(MICRO), int(tokens)


# Settle steps Redis did not take (unreachable), sent again before the next ones (and by the
# lease reaper, before it returns a lease), oldest first; past UNSETTLED_MAX the oldest are
# dropped (their reservations lapse at expiry).
_unsettled: list[tuple[list[str], list]] = []
_unsettled_lock = threading.Lock()
_settle_failing = False  # reported once per outage
UNSETTLED_MAX = 100_000


def spend_apply_after_commit(entries) -> None:
    """The part after the database has the spend: with Redis, every call's release-and-spend
    step (one Lua script each) in one round trip; then the draws from leases are given back.

    The database has the spend already, so Redis failing here fails nothing: the steps are
    kept, and sent again until Redis takes them. Until then Redis lacks their spend, which a
    call's own reservation (held at its worst case) or its lease covers until that is
    released: the reaper sends the kept steps before it returns a lease."""
    store = quota_store()
    try:
        if isinstance(store, RedisQuotaStore):
            steps = []
            for e in entries:
                keys = scope_keys_for(
                    workspace_id=e.workspace_id, user_id=e.user_id, api_key_id=e.api_key_id
                )
                steps.append(
                    store.settle_step(
                        _own_open(e.reservation), keys, e.period_start, e.cost, e.tokens
                    )
                )
            _settle_steps(store, steps)
    finally:
        for e in entries:
            _close(e.reservation)


def unsettled_send() -> None:
    """Send the settle steps Redis did not take before, if any."""
    store = quota_store()
    if _unsettled and isinstance(store, RedisQuotaStore):
        _settle_steps(store, [])


# Settle steps are numbered in the order this process sends them, and sent one batch at a time
# (`_settle_sending`): Redis skips a step numbered no higher than the last it ran for the
# process (SETTLE_LUA), which only a step sent again can be. The number lives with the step, so
# one kept and sent again keeps it. (process id, its key in Redis, the last number given)
_step_numbering: tuple[int, str, int] = (0, "", 0)
_settle_sending = threading.Lock()


def _step_key() -> str:
    """This process's last-step key (a new one in a forked child: numbering starts again)."""
    global _step_numbering
    if _step_numbering[0] != os.getpid():
        _step_numbering = (os.getpid(), f"aurax:quota:step:{uuid.uuid4().hex}", 0)
    return _step_numbering[1]


def _steps_number(steps: list[tuple[list[str], list]]) -> None:
    """Number the steps not numbered yet (with `_settle_sending` held)."""
    global _step_numbering
    key = _step_key()
    pid, _key, last = _step_numbering
    for redis_keys, args in steps:
        if args[1] is None:
            last += 1
            redis_keys[-1], args[1] = key, last
    _step_numbering = (pid, key, last)


def _settle_steps(store: RedisQuotaStore, steps: list[tuple[list[str], list]]) -> None:
    with _settle_sending:
        _settle_steps_send(store, steps)


def _settle_steps_send(store: RedisQuotaStore, steps: list[tuple[list[str], list]]) -> None:
    global _settle_failing
    import redis

    with _unsettled_lock:
        kept = len(_unsettled)
        steps[:0] = _unsettled
        _unsettled.clear()
    if not steps:
        return
    _steps_number(steps)
    pipe = store.client.pipeline(transaction=False)
    for redis_keys, args in steps:
        store.settle_script(redis_keys, args, client=pipe)
    try:
        pipe.execute()
    except (redis.ConnectionError, redis.TimeoutError) as error:
        # Redis may have run some of them before the connection failed: sent again, those
        # are skipped by their numbers.
        with _unsettled_lock:
            _unsettled[:0] = steps
            dropped = len(_unsettled) - UNSETTLED_MAX
            if dropped > 0:
                del _unsettled[:dropped]
        if not _settle_failing:
            _settle_failing = True
            logger.error(
                "settling calls in the Redis quota state failed; their steps are kept and "
                "sent again until Redis answers: %s",
                error,
            )
        return
    if kept:
        _settle_failing = False
        logger.warning("Redis answers again: %d kept settle steps sent", kept)


def scope_usage(keys: list[str], start: date | None = None) -> dict[str, ScopeUsage]:
    return quota_store().usage(keys, start or period_start_for())
