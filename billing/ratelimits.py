"""Requests and tokens per minute, as a sliding window over the last 60 seconds.

Each scope keeps a log of (time, tokens) entries for the window. With `REDIS_URL` the log is a
Redis sorted set and one Lua script checks and records every scope at once, so all processes
and servers share it. In embedded mode (one server process, a local-memory cache) the log is
a deque in this process under a lock, with a running token sum so the common admitted case
costs O(1); it is emptied whenever the local cache is (a marker key in it changes). When a
limit would be passed, the caller learns exactly when enough old entries leave the window.

The rules in force are read from the database once per process and scope, until any rate
limit changes anywhere (a shared generation, see billing/apps.py).
"""

from __future__ import annotations

import functools
import math
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.db.models import Q
from django.utils.translation import gettext_noop

from aurax.phrases import phrase, phrase_say
from providers.routing import GenerationCache

from .errors import RateLimited, RequestTooLarge
from .models import RateLimit, RateLimitScope
from .pricing import BILLING_RULES_GENERATION

WINDOW_MS = 60_000


@dataclass(frozen=True, slots=True)
class RateLimitRule:
    key: str  # e.g. "user:5", "ws:3", "key:9"
    rpm: int | None
    tpm: int | None
    label: str = ""


def ratelimit_rules_for(
    *, workspace_id: int, user_id: int | None, api_key_id: int | None = None
) -> list[RateLimitRule]:
    """The limits in force for a call: a row for the exact target beats the scope default
    (there is at most one of each). A row naming a target of another scope, saved before
    the admin checked, is ignored: it is neither that target's limit nor a default."""
    targets = {
        RateLimitScope.WORKSPACE: workspace_id,
        RateLimitScope.USER: user_id,
        RateLimitScope.API_KEY: api_key_id,
    }
    query = Q(pk__in=[])
    for scope, target in targets.items():
        if target is None and scope != RateLimitScope.WORKSPACE:
            continue
        others = {
            RateLimit.TARGETS[other][0] + "__isnull": True for other in targets if other != scope
        }
        own = RateLimit.TARGETS[scope][0]
        query |= Q(scope=scope, **others) & (Q(**{own: target}) | Q(**{f"{own}__isnull": True}))
    rows = {(row.scope, row.target_id is not None): row for row in RateLimit.objects.filter(query)}
    labels = {
        RateLimitScope.WORKSPACE: (f"ws:{workspace_id}", gettext_noop("the workspace's limit")),
        RateLimitScope.USER: (f"user:{user_id}", gettext_noop("your user limit")),
        RateLimitScope.API_KEY: (f"key:{api_key_id}", gettext_noop("the API key's limit")),
    }
    rules = []
    for scope, (key, label) in labels.items():
        row = rows.get((scope, True)) or rows.get((scope, False))
        if row is None or (row.rpm is None and row.tpm is None):
            continue
        rules.append(RateLimitRule(key=key, rpm=row.rpm, tpm=row.tpm, label=label))
    return rules


def _retry_after_ms(entries: list, rule: RateLimitRule, tokens: int, now: int):
    """Milliseconds until `rule` admits one more request of `tokens`, 0 if it does now.

    entries: (timestamp ms, tokens) within the window, oldest first.
    """
    wait = 0
    if rule.rpm is not None and len(entries) + 1 > rule.rpm:
        if rule.rpm == 0:
            return WINDOW_MS
        oldest_needed = entries[len(entries) - rule.rpm]
        wait = max(wait, oldest_needed[0] + WINDOW_MS - now)
    if rule.tpm is not None:
        used = sum(t for _ts, t in entries)
        if tokens > rule.tpm:  # never fits (`ratelimit_tokens` refuses such requests first)
            return WINDOW_MS
        if used + tokens > rule.tpm:
            for ts, t in entries:
                used -= t
                if used + tokens <= rule.tpm:
                    wait = max(wait, ts + WINDOW_MS - now)
                    break
    return wait


# --- Redis ----------------------------------------------------------------------------------

# KEYS: per scope a sorted set of the window's entries, then the running token sum of those
# entries. ARGV: now ms, member id, tokens, extra tokens, then per scope rpm, tpm (-1 = none).
# `tokens` must fit every limit; of `extra` as much is counted as every tpm leaves room for.
# Members are "<id>|<tokens>", scored by time. Returns {0, tokens counted} when admitted and
# recorded, else {i, wait_ms}.
# An admitted call costs O(log n) per scope: only the entries leaving the window are read (to
# take their tokens off the sum); the whole window is read only to work out a refusal's wait,
# or to rebuild a sum that expired.
RATELIMIT_LUA = """
local now, id, tokens, extra = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local horizon = now - 60000
local function tokens_of(member) return tonumber(string.match(member, '|(%d+)$')) end
local worst, worst_i = 0, 0
for i = 1, #KEYS / 2 do
  local z, s = KEYS[2*i-1], KEYS[2*i]
  local used = redis.call('GET', s)
  if used then
    used = tonumber(used)
    for _, m in ipairs(redis.call('ZRANGEBYSCORE', z, '-inf', horizon)) do
      used = used - tokens_of(m)
    end
  end
  redis.call('ZREMRANGEBYSCORE', z, '-inf', horizon)
  if not used then
    used = 0
    for _, m in ipairs(redis.call('ZRANGE', z, 0, -1)) do used = used + tokens_of(m) end
  end
  redis.call('SET', s, string.format('%d', used), 'PX', 61000)
  local count = redis.call('ZCARD', z)
  local rpm, tpm = tonumber(ARGV[3 + 2*i]), tonumber(ARGV[4 + 2*i])
  if tpm >= 0 then extra = math.max(0, math.min(extra, tpm - used - tokens)) end
  local wait = 0
  if rpm >= 0 and count + 1 > rpm then
    if rpm == 0 then wait = 60000 else
      local oldest_needed = redis.call('ZRANGE', z, count - rpm, count - rpm, 'WITHSCORES')
      wait = math.max(wait, tonumber(oldest_needed[2]) + 60000 - now)
    end
  end
  if tpm >= 0 then
    if tokens > tpm then wait = 60000
    elseif used + tokens > tpm then
      local entries = redis.call('ZRANGE', z, 0, -1, 'WITHSCORES')
      for j = 1, #entries / 2 do
        used = used - tokens_of(entries[2*j-1])
        if used + tokens <= tpm then
          wait = math.max(wait, tonumber(entries[2*j]) + 60000 - now)
          break
        end
      end
    end
  end
  if wait > worst then worst, worst_i = wait, i end
end
if worst > 0 then return {worst_i, worst} end
tokens = tokens + extra
for i = 1, #KEYS / 2 do
  local z, s = KEYS[2*i-1], KEYS[2*i]
  redis.call('ZADD', z, now, id .. '|' .. tokens)
  redis.call('PEXPIRE', z, 61000)
  redis.call('INCRBY', s, tokens)
  redis.call('PEXPIRE', s, 61000)
end
return {0, tokens}
"""


@functools.cache
def _redis_script(url: str):
    import redis

    client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
    return client.register_script(RATELIMIT_LUA)


def _check_redis(
    rules: list[RateLimitRule], tokens: int, extra: int, now: int, member: str
) -> tuple[int, int, tuple]:
    script = _redis_script(settings.REDIS_URL)
    args: list = [now, member, tokens, extra]
    for rule in rules:
        args += [rule.rpm if rule.rpm is not None else -1, rule.tpm if rule.tpm is not None else -1]
    index, value = script(keys=_keys(rules), args=args)
    return int(index), int(value), ()


def _keys(rules) -> list[str]:
    keys = []
    for rule in rules:
        keys += [f"aurax:rl:{rule.key}", f"aurax:rl:{rule.key}:sum"]
    return keys


# KEYS as RATELIMIT_LUA's; ARGV: the member as counted, the member with its settled tokens,
# the difference. An entry that already left the window is left alone.
RATELIMIT_SETTLE_LUA = """
for i = 1, #KEYS / 2 do
  local z, s = KEYS[2*i-1], KEYS[2*i]
  local score = redis.call('ZSCORE', z, ARGV[1])
  if score then
    redis.call('ZREM', z, ARGV[1])
    redis.call('ZADD', z, score, ARGV[2])
    if redis.call('EXISTS', s) == 1 then redis.call('INCRBY', s, ARGV[3]) end
  end
end
return 0
"""


@functools.cache
def _redis_settle_script(url: str):
    import redis

    client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
    return client.register_script(RATELIMIT_SETTLE_LUA)


def _settle_redis(charge: RateLimitCharge, tokens: int) -> None:
    script = _redis_settle_script(settings.REDIS_URL)
    script(
        keys=_keys(charge.rules),
        args=[
            f"{charge.member}|{charge.tokens}",
            f"{charge.member}|{tokens}",
            tokens - charge.tokens,
        ],
    )


# --- In-process (embedded) ------------------------------------------------------------------

_lock = threading.Lock()
_EPOCH_KEY = "aurax:rl:epoch"


class _WindowLog:
    __slots__ = ("entries", "tokens")

    def __init__(self):
        self.entries: deque[list] = deque()  # [time ms, tokens], oldest first
        self.tokens = 0

    def prune(self, now: int) -> None:
        horizon = now - WINDOW_MS
        entries = self.entries
        while entries and entries[0][0] <= horizon:
            entry = entries.popleft()
            self.tokens -= entry[1]
            entry[0] = None  # out of the window: a later settle leaves it alone


_logs: dict[str, _WindowLog] = {}
_epoch: list = [None]


def _local_epoch_check() -> None:
    """Forget every window when the local cache was cleared (as `cache.clear()` in tests or
    a restart of the cache would forget a log kept in it)."""
    token = cache.get(_EPOCH_KEY)
    if token is None:
        cache.add(_EPOCH_KEY, uuid.uuid4().hex, timeout=None)
        token = cache.get(_EPOCH_KEY)
    if token != _epoch[0]:
        _logs.clear()
        _epoch[0] = token


def _check_local(
    rules: list[RateLimitRule], tokens: int, extra: int, now: int, member: str
) -> tuple[int, int, tuple]:
    with _lock:
        _local_epoch_check()
        logs = []
        worst, worst_i = 0, 0
        for i, rule in enumerate(rules, start=1):
            log = _logs.get(rule.key)
            if log is None:
                log = _logs[rule.key] = _WindowLog()
            log.prune(now)
            logs.append(log)
            fits = (rule.rpm is None or len(log.entries) + 1 <= rule.rpm) and (
                rule.tpm is None or log.tokens + tokens <= rule.tpm
            )
            if rule.tpm is not None:
                extra = max(0, min(extra, rule.tpm - log.tokens - tokens))
            wait = 0 if fits else _retry_after_ms(list(log.entries), rule, tokens, now)
            if wait > worst:
                worst, worst_i = wait, i
        if worst:
            return worst_i, worst, ()
        tokens += extra
        counted = []
        for log in logs:
            entry = [now, tokens]
            log.entries.append(entry)
            log.tokens += tokens
            counted.append((log, entry))
        return 0, tokens, tuple(counted)


def _settle_local(charge: RateLimitCharge, tokens: int) -> None:
    with _lock:
        for log, entry in charge.entries:
            if entry[0] is not None:
                log.tokens += tokens - entry[1]
                entry[1] = tokens


@dataclass(frozen=True, slots=True)
class RateLimitCharge:
    """What an admitted request counted against its limits, to be settled to its real usage
    (`ratelimit_settle`) once known."""

    rules: tuple[RateLimitRule, ...]
    member: str
    tokens: int
    entries: tuple = ()  # embedded mode: (log, entry) per rule

    @property
    def remote(self) -> bool:
        """Whether settling it is a round trip to Redis (else a change in this process)."""
        return not self.entries


def ratelimit_check(
    *,
    scopes: list[RateLimitRule],
    tokens: int,
    extra_tokens: int = 0,
    now_ms: int | None = None,
) -> RateLimitCharge | None:
    """Count one request of `tokens` against every rule, or raise `RateLimited` (nothing is
    counted then) with the whole seconds to wait, or `RequestTooLarge` when `tokens` alone
    pass a tokens-per-minute limit (waiting would never help).

    Of `extra_tokens` (an answer's expected length when the caller set no maximum), as many
    are counted as every limit still has room for. Returns what was counted (None when no
    rule applies), to be settled to the real usage with `ratelimit_settle`."""
    rules = [r for r in scopes if r.rpm is not None or r.tpm is not None]
    if not rules:
        return None
    for rule in rules:
        if rule.tpm is not None and tokens > rule.tpm:
            said = phrase(
                gettext_noop(
                    "This request may use up to %(tokens)s tokens, more than %(label)s allows "
                    "in a minute (%(limit)s tokens): lower max_tokens or shorten the prompt."
                ),
                tokens=tokens,
                label=_rule_label(rule),
                limit=rule.tpm,
            )
            raise RequestTooLarge(phrase_say(said), scope=rule.key, phrase=said)
    now = now_ms if now_ms is not None else int(time.time() * 1000)
    member = uuid.uuid4().hex
    check = _check_redis if settings.REDIS_URL else _check_local
    index, value, entries = check(rules, tokens, extra_tokens, now, member)
    if index == 0:
        return RateLimitCharge(tuple(rules), member, value, entries)
    rule = rules[index - 1]
    seconds = max(1, math.ceil(value / 1000))
    said = phrase(
        gettext_noop("Rate limit reached (%(label)s) — try again in %(seconds)s s"),
        label=_rule_label(rule),
        seconds=seconds,
    )
    raise RateLimited(seconds, phrase_say(said), scope=rule.key, phrase=said)


def _rule_label(rule: RateLimitRule):
    # The label is a message id (said in the reader's language); a rule without one is
    # named by its key.
    return phrase(rule.label) if rule.label else rule.key


def ratelimit_settle(charge: RateLimitCharge | None, *, tokens: int) -> None:
    """Replace what an admitted request counted by the tokens it really used, as long as its
    entry is still in the window."""
    if charge is None or tokens == charge.tokens:
        return
    if settings.REDIS_URL:
        _settle_redis(charge, tokens)
    else:
        _settle_local(charge, tokens)


def ratelimit_check_for(
    *,
    workspace_id: int,
    user_id: int | None,
    api_key_id: int | None = None,
    input_tokens: int,
    max_output_tokens: int | None,
    default_output_tokens: int,
) -> RateLimitCharge | None:
    """Look up the limits in force (cached per process until any limit changes) and check
    them in one call. A request counts its prompt and its `max_output_tokens` (as OpenAI
    counts); without a maximum, its prompt and as much of `default_output_tokens` as the
    limits have room for. Settled to the real usage when the call ends."""
    scopes = _rules.get_or_load(
        (workspace_id, user_id, api_key_id),
        lambda: ratelimit_rules_for(
            workspace_id=workspace_id, user_id=user_id, api_key_id=api_key_id
        ),
    )
    if max_output_tokens is None:
        return ratelimit_check(
            scopes=scopes, tokens=input_tokens, extra_tokens=default_output_tokens
        )
    return ratelimit_check(scopes=scopes, tokens=input_tokens + max_output_tokens)


_rules = GenerationCache(BILLING_RULES_GENERATION)
