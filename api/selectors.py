from datetime import timedelta

from django.conf import settings
from django.db.models import Max, OuterRef, Q, Subquery
from django.utils import timezone

from billing.models import Budget, BudgetScope, RateLimit, RateLimitScope
from providers.selectors import model_choices_for

from .models import ApiKey, StoredResponse, StoredResponseEvent


def api_model_id(choice: dict) -> str:
    """What an SDK user types for a model menu choice (`model_choices_for`): an alias's name,
    else the bare model id (without its credential)."""
    value = choice["value"]
    return value if choice["group"] == "aliases" else value.split(":", 1)[1]


def api_models_for_key(*, key: ApiKey) -> list[dict]:
    """The models a key may use, in OpenAI's list shape: aliases and bare model ids (what
    SDK users type), each once, filtered by the key's allow-list."""
    seen: set[str] = set()
    data = []
    for choice in model_choices_for(user=key.user, workspace=key.workspace):
        model_id = api_model_id(choice)
        if model_id in seen or not key.allows_model(model_id):
            continue
        seen.add(model_id)
        data.append({"id": model_id, "object": "model", "created": 0, "owned_by": choice["group"]})
    return data


def api_model_for_key(*, key: ApiKey, model_id: str) -> dict | None:
    """One model of `api_models_for_key`, or None where the key may not see it."""
    return next((m for m in api_models_for_key(key=key) if m["id"] == model_id), None)


def api_key_list_for(*, user, workspace):
    """Keys shown on the settings page: the user's own personal keys in this workspace, and
    the workspace's keys; each with its own limits (`budget_cost`, `budget_tokens`, `rpm`,
    `tpm`: None where it has none)."""
    budgets = Budget.objects.filter(scope=BudgetScope.API_KEY, api_key_id=OuterRef("pk"))
    limits = RateLimit.objects.filter(scope=RateLimitScope.API_KEY, api_key_id=OuterRef("pk"))
    return (
        ApiKey.objects.filter(workspace=workspace)
        .filter(Q(owner=ApiKey.Owner.WORKSPACE) | Q(user=user))
        .select_related("user")
        .annotate(
            budget_cost=Subquery(budgets.values("cost_limit")[:1]),
            budget_tokens=Subquery(budgets.values("token_limit")[:1]),
            rpm=Subquery(limits.values("rpm")[:1]),
            tpm=Subquery(limits.values("tpm")[:1]),
        )
    )


def api_keys_acting_as(*, user, workspace):
    """The keys that act as this user in this workspace and work now (not revoked, not
    expired): what the batches page may start a batch as."""
    return ApiKey.objects.filter(workspace=workspace, user=user, revoked_at__isnull=True).filter(
        Q(expires_at__isnull=True) | Q(expires_at__gt=timezone.now())
    )


def _responses_kept(*, workspace_id: int, user_id: int):
    """The stored responses a key acting as this user in this workspace sees: those its user
    stored there, younger than the retention (an older one is gone, deleted or not yet)."""
    days = settings.API_RESPONSES_RETENTION_DAYS
    return StoredResponse.objects.filter(
        workspace_id=workspace_id,
        user_id=user_id,
        created_at__gt=timezone.now() - timedelta(days=days),
    )


def stored_response_get(*, workspace_id: int, user_id: int, public_id: str):
    """The response `public_id` as this user stored it in this workspace, or None."""
    kept = _responses_kept(workspace_id=workspace_id, user_id=user_id)
    return kept.filter(public_id=public_id).first()


def stored_response_turns(response: StoredResponse) -> list[dict]:
    """The input and output of each response `response` follows, oldest first. A response of
    the chain deleted (or expired) since takes its turns with it."""
    kept = _responses_kept(workspace_id=response.workspace_id, user_id=response.user_id)
    found = {r.public_id: r for r in kept.filter(public_id__in=response.ancestors)}
    chain = [found[i] for i in response.ancestors if i in found]
    return [item for r in chain for item in (*r.input_items, *r.body.get("output", ()))]


def stored_response_input(response: StoredResponse) -> list[dict]:
    """What the model was given as `response`'s input: the turns it follows, then its own
    input (its instructions aside)."""
    return [*stored_response_turns(response), *response.input_items]


def stored_response_context(response: StoredResponse) -> list[dict]:
    """The items a response that follows `response` starts from: its input, then its output."""
    return [*stored_response_input(response), *response.body.get("output", ())]


def stored_response_progress(*, response_id: int, after: int, most: int = 500):
    """How a background response stands, for a reader following its stream: (the response,
    None once deleted; its events numbered above `after`, oldest first, at most `most`; and
    once it has ended, the number of its last event written, else None). The response is
    read before its events: when it has ended, the events read after are all it has."""
    response = (
        StoredResponse.objects.filter(pk=response_id).only("status", "body", "heartbeat_at").first()
    )
    if response is None:
        return None, [], None
    events = list(
        StoredResponseEvent.objects.filter(response_id=response_id, sequence__gt=after)
        .order_by("sequence")
        .values_list("data", flat=True)[:most]
    )
    if len(events) == most or not response_ended(response):
        return response, events, None
    last = StoredResponseEvent.objects.filter(response_id=response_id).aggregate(n=Max("sequence"))
    return response, events, last["n"] if last["n"] is not None else -1


def response_ended(response: StoredResponse) -> bool:
    """Whether a background response's stream has all it will have: it has ended and no
    worker is still writing it (a cancelled one's worker writes what it had said; one whose
    worker died long ago has nobody left to)."""
    if response.status in StoredResponse.RUNNING:
        return False
    if response.heartbeat_at is None:
        return True
    stale = timedelta(seconds=settings.API_BACKGROUND_STALE_SECONDS)
    return response.heartbeat_at < timezone.now() - stale
