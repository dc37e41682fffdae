"""The plan page, Stripe checkout and webhook, and invoices."""

import logging

import stripe
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from workspaces.models import Role
from workspaces.selectors import membership_get_by_workspace_id

from . import stripe_webhooks
from .models import Invoice, Plan
from .plans import allowance_status_for, plan_list_available, subscription_for
from .views import _admin_membership

logger = logging.getLogger(__name__)


def _invoice_get_for_user(user, number: str) -> Invoice:
    """404 for an unknown invoice or one of a workspace the user is not in; 403 below admin."""
    invoice = Invoice.objects.filter(number=number, workspace__isnull=False).first()
    if invoice is None:
        raise Http404
    membership_get_by_workspace_id(
        user=user, workspace_id=invoice.workspace_id, minimum_role=Role.ADMIN
    )
    return invoice


@login_required
def plan_page(request):
    membership = _admin_membership(request)
    workspace = membership.workspace
    return render(
        request,
        "billing/plan.html",
        {
            "workspace": workspace,
            "subscription": subscription_for(workspace.id),
            "allowance": allowance_status_for(workspace.id),
            "plans": plan_list_available(),
            "checkout_enabled": stripe_webhooks.checkout_enabled(),
        },
    )


@login_required
@require_POST
def plan_checkout(request, slug: str):
    if not stripe_webhooks.checkout_enabled():
        raise Http404
    membership = _admin_membership(request)
    plan = get_object_or_404(Plan, slug=slug, active=True)
    if not plan.stripe_price_id:
        raise Http404
    back = request.build_absolute_uri(
        f"{reverse('billing_plan')}?workspace={membership.workspace.slug}"
    )
    try:
        url = stripe_webhooks.checkout_session_create(
            workspace=membership.workspace,
            plan=plan,
            email=request.user.email,
            success_url=f"{back}&checkout=success",
            cancel_url=f"{back}&checkout=canceled",
        )
    except stripe.StripeError:
        logger.exception("stripe checkout session for plan %s failed", plan.slug)
        return render(request, "billing/checkout_failed.html", status=502)
    return redirect(url)


@csrf_exempt
@require_POST
def stripe_webhook(request):
    if not stripe_webhooks.webhook_enabled():
        raise Http404
    try:
        event = stripe_webhooks.event_construct(
            payload=request.body, signature=request.headers.get("Stripe-Signature", "")
        )
    except (ValueError, stripe.SignatureVerificationError):
        return HttpResponseBadRequest("invalid payload or signature")
    outcome = stripe_webhooks.event_handle(event)
    return HttpResponse(outcome, content_type="text/plain")


@login_required
def invoice_list(request):
    membership = _admin_membership(request)
    return render(
        request,
        "billing/invoices.html",
        {
            "workspace": membership.workspace,
            "invoices": Invoice.objects.filter(workspace=membership.workspace),
        },
    )


@login_required
def invoice_detail(request, number: str):
    invoice = _invoice_get_for_user(request.user, number)
    return render(
        request,
        "billing/invoice.html",
        {"invoice": invoice, "lines": invoice.lines.all(), "workspace": invoice.workspace},
    )
