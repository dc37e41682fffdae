"""Who is calling the /v1 API: the key from `Authorization: Bearer` or `x-api-key`.

Keys are looked up by the SHA-256 of the secret. A resolved key is kept in this process for
a few seconds so a busy client costs no query per request; any revocation or change bumps a
generation number in the shared cache (Redis in services mode), which empties every
process's copy at once — a revoked key stops working on all servers immediately.
"""

import time

from django.utils import timezone

from providers.routing import generation_key_register, generation_value

from .errors import ApiError
from .models import ApiKey
from .services import API_KEY_GENERATION, api_key_hash

LOCAL_TTL = 10.0
generation_key_register(API_KEY_GENERATION)
_local: dict[str, tuple[ApiKey, float, int]] = {}


def api_key_from_headers(headers) -> str:
    authorization = headers.get("authorization", "")
    if authorization[:7].lower() == "bearer ":
        return authorization[7:].strip()
    return headers.get("x-api-key", "").strip()


def _load(**lookup) -> ApiKey | None:
    key = ApiKey.objects.select_related("user", "workspace").filter(**lookup).first()
    if key is not None:
        key.is_member = key.workspace.memberships.filter(user_id=key.user_id).exists()
    return key


def api_key_authenticate(raw: str) -> ApiKey:
    """The active key for a raw secret, with its user and workspace loaded; ApiError(401)
    otherwise. The message never repeats the key."""
    if not raw:
        raise ApiError(
            401, "authentication", "Missing API key. Pass it as 'Authorization: Bearer <key>'."
        )
    digest = api_key_hash(raw)
    generation = generation_value(API_KEY_GENERATION, 0)
    now = time.monotonic()
    cached = _local.get(digest)
    if cached is not None and cached[2] == generation and now - cached[1] < LOCAL_TTL:
        key = cached[0]
    else:
        key = _load(key_hash=digest)
        if key is None:
            raise ApiError(401, "authentication", "Invalid API key.")
        if len(_local) > 10_000:
            _local.clear()
        _local[digest] = (key, now, generation)
    return _usable(key)


def api_key_recheck(key_id: int) -> ApiKey:
    """The key with this id, read again from the database, if it may still be used: work
    done later on a key's behalf (a batch's requests) stops once the key is revoked or has
    expired, or its owner has left the workspace. ApiError(401) otherwise."""
    key = _load(pk=key_id)
    if key is None:
        raise ApiError(401, "authentication", "This API key has been deleted.")
    return _usable(key)


def api_key_model_check(key: ApiKey, model: str) -> None:
    """ApiError(403) unless the key's allow-list takes the model."""
    if not key.allows_model(model):
        raise ApiError(403, "model_not_allowed", f"This API key may not use the model '{model}'.")


def _usable(key: ApiKey) -> ApiKey:
    if key.revoked_at is not None:
        raise ApiError(401, "authentication", "This API key has been revoked.")
    if key.expires_at is not None and key.expires_at <= timezone.now():
        raise ApiError(401, "authentication", "This API key has expired.")
    if not key.user.is_active or not key.is_member:
        raise ApiError(401, "authentication", "This API key's owner no longer has access.")
    return key


def key_principal(api_key_id: int | None, model: str):
    """The pipeline's `principal` for work done later as a key (a batch's requests, a
    background response): the key read again each time, refused once it may no longer be
    used or may not use the model."""

    def principal():
        if api_key_id is None:
            raise ApiError(401, "authentication", "This API key has been deleted.")
        key = api_key_recheck(api_key_id)
        api_key_model_check(key, model)
        return key.user, key.workspace, key.pk

    return principal
