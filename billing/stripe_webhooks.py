"""Stripe: Checkout Sessions for plan upgrades and the webhook that keeps subscriptions in sync.

This is the only module that talks to Stripe. It is off unless `STRIPE_SECRET_KEY` (checkout)
and `STRIPE_WEBHOOK_SECRET` (webhook) are set; without them plans are assigned in the admin.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import stripe
from django.conf import settings

from workspaces.models import Workspace

from .models import Plan, Subscription, SubscriptionStatus
from .plans import subscription_change, subscription_for

logger = logging.getLogger(__name__)

STATUS_FROM_STRIPE = {
    "active": SubscriptionStatus.ACTIVE,
    "trialing": SubscriptionStatus.ACTIVE,
    "past_due": SubscriptionStatus.PAST_DUE,
    "unpaid": SubscriptionStatus.PAST_DUE,
    "incomplete": SubscriptionStatus.PAST_DUE,
    "paused": SubscriptionStatus.PAST_DUE,
    "canceled": SubscriptionStatus.CANCELED,
    "incomplete_expired": SubscriptionStatus.CANCELED,
}


def checkout_enabled() -> bool:
    return bool(getattr(settings, "STRIPE_SECRET_KEY", ""))


def webhook_enabled() -> bool:
    return bool(getattr(settings, "STRIPE_WEBHOOK_SECRET", ""))


def checkout_session_create(
    *, workspace: Workspace, plan: Plan, email: str, success_url: str, cancel_url: str
) -> str:
    """A Stripe Checkout Session for the plan's recurring price; returns its URL."""
    metadata = {"workspace_id": str(workspace.id), "plan_slug": plan.slug}
    params = {
        "mode": "subscription",
        "line_items": [{"price": plan.stripe_price_id, "quantity": 1}],
        "success_url": success_url,
        "cancel_url": cancel_url,
        "client_reference_id": str(workspace.id),
        "metadata": metadata,
        "subscription_data": {"metadata": metadata},
    }
    subscription = subscription_for(workspace.id)
    if subscription and subscription.stripe_customer_id:
        params["customer"] = subscription.stripe_customer_id
    else:
        params["customer_email"] = email
    session = stripe.checkout.Session.create(api_key=settings.STRIPE_SECRET_KEY, **params)
    return session["url"]


def event_construct(*, payload: bytes, signature: str):
    """The verified event; raises ValueError (bad JSON) or stripe.SignatureVerificationError
    (bad or stale signature: Stripe's tolerance of 5 minutes also stops replays)."""
    return stripe.Webhook.construct_event(payload, signature, settings.STRIPE_WEBHOOK_SECRET)


def _timestamp(value) -> datetime | None:
    return datetime.fromtimestamp(int(value), tz=UTC) if value else None


def _workspace_from(obj) -> Workspace | None:
    metadata = obj.get("metadata") or {}
    workspace_id = metadata.get("workspace_id") or obj.get("client_reference_id")
    if workspace_id and str(workspace_id).isdigit():
        return Workspace.objects.filter(pk=int(workspace_id)).first()
    return None


def _subscription_row_for(obj) -> Subscription | None:
    """The local subscription a Stripe subscription object belongs to."""
    rows = Subscription.objects.select_related("workspace")
    found = rows.filter(stripe_subscription_id=obj.get("id")).first()
    if found is None and obj.get("customer"):
        found = rows.filter(stripe_customer_id=obj["customer"]).first()
    return found


def _already_applied(subscription: Subscription | None, event) -> bool:
    """A redelivered event, or one older than the last applied (Stripe does not guarantee order)."""
    if subscription is None:
        return False
    if subscription.stripe_last_event_id == event["id"]:
        return True
    last = subscription.stripe_last_event_created
    return last is not None and int(event["created"]) < last


def _checkout_completed(event) -> str:
    session = event["data"]["object"]
    workspace = _workspace_from(session)
    if workspace is None:
        return "unknown workspace"
    current = subscription_for(workspace.id)
    if _already_applied(current, event):
        return "already applied"
    slug = (session.get("metadata") or {}).get("plan_slug")
    plan = Plan.objects.filter(slug=slug).first() if slug else None
    if plan is None:
        return "unknown plan"
    subscription_change(
        workspace=workspace,
        plan=plan,
        status=SubscriptionStatus.ACTIVE,
        source="stripe",
        stripe_customer_id=session.get("customer") or "",
        stripe_subscription_id=session.get("subscription") or "",
        stripe_event=(event["id"], int(event["created"])),
    )
    return "subscribed"


def _period(obj) -> tuple[datetime | None, datetime | None]:
    # Newer API versions moved the period from the subscription to its items.
    start, end = obj.get("current_period_start"), obj.get("current_period_end")
    items = (obj.get("items") or {}).get("data") or []
    if items and not start:
        start, end = items[0].get("current_period_start"), items[0].get("current_period_end")
    return _timestamp(start), _timestamp(end)


def _plan_from(obj) -> Plan | None:
    items = (obj.get("items") or {}).get("data") or []
    for item in items:
        price_id = (item.get("price") or {}).get("id")
        plan = Plan.objects.filter(stripe_price_id=price_id).first() if price_id else None
        if plan:
            return plan
    slug = (obj.get("metadata") or {}).get("plan_slug")
    return Plan.objects.filter(slug=slug).first() if slug else None


def _subscription_updated(event, *, deleted: bool = False) -> str:
    obj = event["data"]["object"]
    subscription = _subscription_row_for(obj)
    workspace = subscription.workspace if subscription else _workspace_from(obj)
    if workspace is None:
        return "unknown subscription"
    if _already_applied(subscription or subscription_for(workspace.id), event):
        return "already applied"
    status = (
        SubscriptionStatus.CANCELED
        if deleted
        else STATUS_FROM_STRIPE.get(obj.get("status"), SubscriptionStatus.PAST_DUE)
    )
    start, end = _period(obj)
    subscription_change(
        workspace=workspace,
        plan=None if deleted else _plan_from(obj),
        status=status,
        source="stripe",
        current_period_start=start,
        current_period_end=end,
        stripe_customer_id=obj.get("customer") or "",
        stripe_subscription_id=obj.get("id") or "",
        stripe_event=(event["id"], int(event["created"])),
    )
    return status


EVENT_HANDLERS = {
    "checkout.session.completed": _checkout_completed,
    "customer.subscription.updated": _subscription_updated,
    "customer.subscription.created": _subscription_updated,
    "customer.subscription.deleted": lambda event: _subscription_updated(event, deleted=True),
}


def event_handle(event) -> str:
    """Apply a verified event; unknown kinds are acknowledged and ignored."""
    handler = EVENT_HANDLERS.get(event["type"])
    if handler is None:
        return "ignored"
    outcome = handler(event)
    logger.info("stripe event %s %s: %s", event["id"], event["type"], outcome)
    return outcome
