"""The response cache: step 3 of the pipeline. A finished answer is kept for requests that ask
for it, and an identical request that allows a cached answer gets it without an upstream call.

Only requests that say so take part (`CachePolicy`; the /v1 API reads it from the request's
`Cache-Control` header or its `cache` object, docs/api.md "Response cache"); the chat does not,
since a chat answer, and above all a regenerated one, is meant to be generated. A workspace's
admins may turn the cache off for it (`Workspace.response_cache_enabled`); turned off or on
again, no answer kept before is served.

An entry is found again only by the same workspace, for the same model of the same credential,
with the same messages and settings: the key is a hash of all of them, so nothing crosses
workspaces.

Admission (rate limits, budget) runs before the lookup, as for any call: a caller over its
limits is refused even when the answer is cached. A hit is recorded as usage with status
"cached", no tokens and no cost (no provider processed anything). Only answers that finished
("stop" or "length"), from the candidate the request was routed to first, are stored.

Entries live in the `responses` cache: Redis in services mode (shared by every process), the
process's memory in embedded mode. The cache not answering is a miss, never a failed call.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.core.cache import caches

logger = logging.getLogger(__name__)

CACHE_ALIAS = "responses"
_KEY_VERSION = 1
STORED_FINISH_REASONS = ("stop", "length")


@dataclass(frozen=True)
class CachePolicy:
    """What a request allows: `lookup` an entry at most `max_age` seconds old (None: any
    entry still kept), and `store` its answer for `ttl` seconds (None: the server's longest,
    RESPONSE_CACHE_MAX_AGE). Both are capped by RESPONSE_CACHE_MAX_AGE."""

    lookup: bool = True
    store: bool = True
    max_age: int | None = None
    ttl: int | None = None

    @property
    def active(self) -> bool:
        return (self.lookup or self.store) and settings.RESPONSE_CACHE_MAX_AGE > 0

    def store_seconds(self) -> int:
        longest = settings.RESPONSE_CACHE_MAX_AGE
        return longest if self.ttl is None else min(self.ttl, longest)


@dataclass(frozen=True)
class CachedAnswer:
    text: str
    finish_reason: str
    provider_kind: str
    model: str
    credential_id: int | None
    stored_at: float  # time.time()

    @property
    def age(self) -> int:
        return max(0, int(time.time() - self.stored_at))


def cache_key(*, workspace_id, candidate, request: dict) -> str:
    """The entry's key: the workspace, the candidate (credential and model) and everything the
    request asks of the model (`request`: its messages and settings, JSON-able)."""
    material = json.dumps(
        [
            _KEY_VERSION,
            workspace_id,
            candidate.kind,
            candidate.credential_id,
            candidate.model_id,
            request,
        ],
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        default=str,
    )
    return "answer:" + hashlib.sha256(material.encode()).hexdigest()


def cached_answer_get(
    key: str, *, max_age: int | None, not_before: datetime | None = None
) -> CachedAnswer | None:
    """Sync. The entry under `key` if it is no older than `max_age` and was kept after
    `not_before` (the workspace's cache was turned off or on then); None on a miss, and when
    the cache does not answer (logged)."""
    try:
        value = caches[CACHE_ALIAS].get(key)
    except Exception as exc:
        logger.warning("response cache not read: %r", exc)
        return None
    if not isinstance(value, dict):
        return None
    try:
        answer = CachedAnswer(**value)
    except TypeError:  # an entry of another shape (an older release): a miss
        return None
    if max_age is not None and answer.age > max_age:
        return None
    if not_before is not None and answer.stored_at < not_before.timestamp():
        return None
    return answer


def cached_answer_put(key: str, answer: CachedAnswer, *, seconds: int) -> None:
    """Sync. Keep `answer` under `key` for `seconds`; a cache that does not answer keeps
    nothing (logged)."""
    if seconds <= 0:
        return
    try:
        caches[CACHE_ALIAS].set(key, answer.__dict__, timeout=seconds)
    except Exception as exc:
        logger.warning("response cache not written: %r", exc)


def policy_from_cache_control(header: str) -> CachePolicy | None:
    """The policy a request's `Cache-Control` header asks for, None when it asks for none:
    `max-age=N` takes a cached answer at most N seconds old (0: none) and stores the new one,
    `no-cache` stores without looking up, `no-store` stores nothing. Unknown directives are
    ignored, as HTTP says."""
    directives = {}
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        if name:
            directives[name.strip().lower()] = value.strip().strip('"')
    max_age = _seconds(directives.get("max-age"))
    no_cache, no_store = "no-cache" in directives, "no-store" in directives
    if max_age is None and not no_cache:
        return None  # nothing asked for (no-store alone: nothing to do either)
    lookup = not no_cache and max_age is not None and max_age > 0
    return CachePolicy(lookup=lookup, store=not no_store, max_age=max_age if lookup else None)


def policy_from_options(
    *, no_cache: bool = False, no_store: bool = False, ttl=None, s_maxage=None
) -> CachePolicy:
    """The policy of a request body's `cache` object (the LiteLLM proxy's spelling):
    `no-cache` (don't look up), `no-store` (don't store), `ttl` (seconds to keep the new
    answer) and `s-maxage` (the oldest entry taken; 0: none)."""
    return CachePolicy(
        lookup=not no_cache and s_maxage != 0,
        store=not no_store,
        max_age=s_maxage,
        ttl=ttl,
    )


def _seconds(value: str | None) -> int | None:
    """A directive's seconds; None when absent or not a number (ignored, as HTTP says)."""
    if value is None:
        return None
    try:
        return max(0, int(value))
    except ValueError:
        return None
