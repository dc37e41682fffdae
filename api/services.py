import hashlib
import secrets
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone

from billing.models import Budget, BudgetScope, RateLimit, RateLimitScope
from billing.services import budget_upsert
from workspaces.models import Membership, Role
from workspaces.services import audit_record

from .models import ApiKey, StoredResponse

# last_used_at is written at most this often per key: one UPDATE a minute, not per request.
LAST_USED_RESOLUTION = timedelta(seconds=60)
# Bumped on every change to any key, so every process drops its cached copies (api/auth.py).
API_KEY_GENERATION = "api_keys:generation"


def api_keys_changed() -> None:
    try:
        cache.incr(API_KEY_GENERATION)
    except ValueError:
        cache.set(API_KEY_GENERATION, 1, timeout=None)


def api_key_hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


@transaction.atomic
def api_key_create(
    *,
    membership: Membership,
    name: str,
    owner: str = ApiKey.Owner.PERSONAL,
    expires_at: datetime | None = None,
    allowed_models: list[str] | None = None,
    monthly_budget: Decimal | None = None,
    rpm: int | None = None,
    tpm: int | None = None,
    ip: str | None = None,
) -> tuple[ApiKey, str]:
    """Create a key; returns it with the raw secret, which is never retrievable again."""
    if not membership.has_role(Role.MEMBER):
        raise PermissionDenied
    if owner == ApiKey.Owner.WORKSPACE and not membership.has_role(Role.ADMIN):
        raise PermissionDenied
    raw = ApiKey.PREFIX + secrets.token_urlsafe(32)
    key = ApiKey.objects.create(
        workspace=membership.workspace,
        user=membership.user,
        owner=owner,
        name=name,
        prefix=raw[:10],
        key_hash=api_key_hash(raw),
        expires_at=expires_at,
        allowed_models=[m for m in (allowed_models or []) if m],
    )
    if monthly_budget is not None:
        budget_upsert(
            scope=BudgetScope.API_KEY,
            workspace_id=membership.workspace_id,
            api_key_id=key.pk,
            cost_limit=monthly_budget,
            token_limit=None,
            actor=membership.user,
            ip=ip,
        )
    if rpm or tpm:
        RateLimit.objects.create(
            scope=RateLimitScope.API_KEY,
            api_key_id=key.pk,
            rpm=rpm or None,
            tpm=tpm or None,
        )
    audit_record(
        workspace=membership.workspace,
        actor=membership.user,
        action="api_key.create",
        target=key,
        data={"owner": owner, "allowed_models": key.allowed_models},
        ip=ip,
    )
    return key, raw


@transaction.atomic
def api_key_revoke(*, membership: Membership, key: ApiKey, ip: str | None = None) -> None:
    if key.workspace_id != membership.workspace_id:
        raise PermissionDenied
    if key.user_id != membership.user_id and not membership.has_role(Role.ADMIN):
        raise PermissionDenied
    if key.revoked_at is None:
        key.revoked_at = timezone.now()
        key.save(update_fields=["revoked_at"])
        # Robust: with Redis away the revocation stands all the same (it is committed), and
        # every process re-reads a cached key within auth.LOCAL_TTL seconds anyway.
        transaction.on_commit(api_keys_changed, robust=True)
        audit_record(
            workspace=key.workspace,
            actor=membership.user,
            action="api_key.revoke",
            target=key,
            ip=ip,
        )
    Budget.objects.filter(scope=BudgetScope.API_KEY, api_key_id=key.pk).delete()


def api_key_touch(*, key: ApiKey) -> None:
    now = timezone.now()
    if key.last_used_at is None or now - key.last_used_at > LAST_USED_RESOLUTION:
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
        key.last_used_at = now


def stored_response_create(
    *,
    public_id: str,
    workspace_id: int,
    user_id: int,
    api_key_id: int | None,
    previous: StoredResponse | None,
    input_items: list[dict],
    body: dict,
) -> StoredResponse:
    """Keep a /v1/responses answer for its user (api.selectors reads it back)."""
    return StoredResponse.objects.create(
        public_id=public_id,
        workspace_id=workspace_id,
        user_id=user_id,
        api_key_id=api_key_id,
        ancestors=[*previous.ancestors, previous.public_id] if previous else [],
        input_items=input_items,
        body=body,
    )


def stored_response_delete(*, response: StoredResponse) -> None:
    """Delete a stored response: its turns leave the context of the responses that follow it."""
    response.delete()


def stored_responses_expire() -> int:
    """Delete the stored responses older than the retention; returns how many."""
    cutoff = timezone.now() - timedelta(days=settings.API_RESPONSES_RETENTION_DAYS)
    deleted, _ = StoredResponse.objects.filter(created_at__lte=cutoff).delete()
    return deleted
