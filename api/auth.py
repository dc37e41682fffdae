"""Who is calling the /v1 API: the key from `Authorization: Bearer` or `x-api-key`."""

from django.utils import timezone

from .errors import ApiError
from .models import ApiKey
from .services import api_key_hash


def api_key_from_headers(headers) -> str:
    authorization = headers.get("authorization", "")
    if authorization[:7].lower() == "bearer ":
        return authorization[7:].strip()
    return headers.get("x-api-key", "").strip()


def api_key_authenticate(raw: str) -> ApiKey:
    """The active key for a raw secret, with its user and workspace loaded; ApiError(401)
    otherwise. The message never repeats the key."""
    if not raw:
        raise ApiError(401, "authentication", "Missing API key. Pass it as 'Authorization: Bearer <key>'.")
    key = (
        ApiKey.objects.select_related("user", "workspace")
        .filter(key_hash=api_key_hash(raw))
        .first()
    )
    if key is None:
        raise ApiError(401, "authentication", "Invalid API key.")
    if key.revoked_at is not None:
        raise ApiError(401, "authentication", "This API key has been revoked.")
    if key.expires_at is not None and key.expires_at <= timezone.now():
        raise ApiError(401, "authentication", "This API key has expired.")
    if not key.user.is_active or not key.workspace.memberships.filter(user_id=key.user_id).exists():
        raise ApiError(401, "authentication", "This API key's owner no longer has access.")
    return key
