import hashlib
import logging
import secrets
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.utils import timezone

from billing.models import Budget, BudgetScope, RateLimit, RateLimitScope
from billing.services import budget_upsert
from workspaces.models import Membership, Role
from workspaces.services import audit_record

from .errors import ApiError
from .models import ApiKey, StoredResponse, StoredResponseEvent

logger = logging.getLogger(__name__)

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
    request: dict | None = None,
) -> StoredResponse:
    """Keep a /v1/responses answer for its user (api.selectors reads it back); with its
    `request`, a background response, queued for a worker to answer (api.background)."""
    response = StoredResponse.objects.create(
        public_id=public_id,
        workspace_id=workspace_id,
        user_id=user_id,
        api_key_id=api_key_id,
        ancestors=[*previous.ancestors, previous.public_id] if previous else [],
        input_items=input_items,
        body=body,
        status=body["status"],
        request=request,
    )
    if request is not None:
        # Its stream starts queued (GET /v1/responses/{id}?stream=true replays it).
        response_events_write(
            response_id=response.pk,
            events=[
                {"type": kind, "response": body, "sequence_number": number}
                for number, kind in enumerate(QUEUED_EVENTS)
            ],
        )
        transaction.on_commit(lambda: response_run_soon(public_id))
    return response


# The events a background response's stream starts with, as OpenAI's: written when it is
# queued, kept when a worker starts it again (api.background).
QUEUED_EVENTS = ("response.created", "response.queued")


def response_events_write(*, response_id: int, events: list[dict]) -> bool:
    """Add events (numbered by their `sequence_number`) to a background response's stream;
    False when the response is gone (deleted meanwhile)."""
    try:
        with transaction.atomic():
            StoredResponseEvent.objects.bulk_create(
                StoredResponseEvent(
                    response_id=response_id, sequence=event["sequence_number"], data=event
                )
                for event in events
            )
    except IntegrityError:
        return False
    return True


def response_run_soon(public_id: str) -> None:
    from .tasks import response_run

    try:
        response_run.delay(public_id)
    except Exception:
        # The broker is away: the response is kept queued, and the resume task queues it once
        # the broker is back (background_resume).
        logger.warning("could not queue response %s; the resume task will", public_id)


def stored_response_cancel(*, response: StoredResponse) -> dict:
    """Cancel a background response: one still queued never runs, one running stops its
    upstream call within a second (billed for what it produced). Returns its body."""
    if not response.body.get("background"):
        raise ApiError(
            400,
            "invalid_request",
            f"Response {response.public_id} is not a background response: only those can be "
            "cancelled.",
        )
    if response.status == StoredResponse.Status.CANCELLED:
        return response.body
    if response.status not in StoredResponse.RUNNING:
        raise ApiError(
            400,
            "response_not_cancellable",
            f"Response {response.public_id} is {response.status}: only a queued or "
            "in-progress response can be cancelled.",
        )
    body = {**response.body, "status": StoredResponse.Status.CANCELLED}
    # Unless its worker finished it meanwhile: then it is said as it ended.
    StoredResponse.objects.filter(pk=response.pk, status__in=StoredResponse.RUNNING).update(
        status=StoredResponse.Status.CANCELLED, body=body
    )
    return StoredResponse.objects.get(pk=response.pk).body


def background_resume() -> int:
    """Queue again the background responses no worker has: queued for a while (the broker was
    away), or running without a word from their worker for API_BACKGROUND_STALE_SECONDS (it
    died: the answer starts again). Returns how many."""
    now = timezone.now()
    stale = now - timedelta(seconds=settings.API_BACKGROUND_STALE_SECONDS)
    StoredResponse.objects.filter(
        status=StoredResponse.Status.IN_PROGRESS, heartbeat_at__lt=stale
    ).update(status=StoredResponse.Status.QUEUED, heartbeat_at=None)
    waiting = list(
        StoredResponse.objects.filter(
            status=StoredResponse.Status.QUEUED, created_at__lt=now - timedelta(seconds=30)
        ).values_list("public_id", flat=True)
    )
    for public_id in waiting:
        response_run_soon(public_id)
    return len(waiting)


def stored_response_delete(*, response: StoredResponse) -> None:
    """Delete a stored response: its turns leave the context of the responses that follow it."""
    response.delete()


def stored_responses_expire() -> int:
    """Delete the stored responses older than the retention; returns how many."""
    cutoff = timezone.now() - timedelta(days=settings.API_RESPONSES_RETENTION_DAYS)
    deleted, _ = StoredResponse.objects.filter(created_at__lte=cutoff).delete()
    return deleted
