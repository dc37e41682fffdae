import csv
from datetime import timedelta
from decimal import Decimal

from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from workspaces.models import Membership, Role
from workspaces.selectors import current_membership_get, membership_get
from workspaces.services import request_ip

from .charts import bar_chart_svg, bucket_label
from .forms import BudgetForm
from .models import Budget, BudgetScope
from .plans import plan_for_workspace
from .pricing import MICRO
from .selectors import (
    budget_status_for,
    latency_by_model,
    top_spenders,
    usage_series,
    usage_summary,
)
from .services import budget_upsert

RANGES = {
    "day": (timedelta(days=1), "hour"),
    "week": (timedelta(days=7), "day"),
    "month": (timedelta(days=30), "day"),
}


def _admin_membership(request) -> Membership:
    """The workspace named by ?workspace=<slug>, else the current one; admins only."""
    slug = request.GET.get("workspace") or request.POST.get("workspace")
    if slug:
        return membership_get(user=request.user, workspace_slug=slug, minimum_role=Role.ADMIN)
    membership = current_membership_get(request)
    if not membership.has_role(Role.ADMIN):
        raise PermissionDenied
    return membership


def _range(request):
    name = request.GET.get("range", "week")
    if name not in RANGES:
        name = "week"
    span, bucket = RANGES[name]
    end = timezone.now().replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    return name, end - span, end, bucket


def _chart(series, bucket: str, field: str, *, title: str, money: bool = False):
    return bar_chart_svg(
        [(bucket_label(r.key[0], bucket), getattr(r, field)) for r in series],
        title=title,
        money=money,
    )


@login_required
def usage_page(request):
    membership = _admin_membership(request)
    workspace = membership.workspace
    name, start, end, bucket = _range(request)
    series = usage_series(workspace.id, start, end, bucket)
    context = {
        "workspace": workspace,
        "range": name,
        "ranges": list(RANGES),
        "cost_chart": _chart(series, bucket, "cost", title=_("Cost"), money=True),
        "tokens_chart": _chart(series, bucket, "tokens", title=_("Tokens")),
        "requests_chart": _chart(series, bucket, "requests", title=_("Requests")),
        "by_model": usage_summary(workspace.id, start, end, group_by="model"),
        "by_provider": usage_summary(workspace.id, start, end, group_by="provider"),
        "by_member": usage_summary(workspace.id, start, end, group_by="member"),
        "latency": latency_by_model(workspace.id, start, end),
        "budgets": budget_status_for(workspace.id, None),
        "budget_form": BudgetForm(
            instance=Budget.objects.filter(
                scope=BudgetScope.WORKSPACE, workspace=workspace
            ).first(),
            plan=plan_for_workspace(workspace.id),
        ),
    }
    totals = context["by_model"]
    context["total_cost"] = sum((r.cost for r in totals), 0)
    context["total_tokens"] = sum(r.tokens for r in totals)
    context["total_requests"] = sum(r.requests for r in totals)
    context["total_errors"] = sum(r.errors for r in totals)
    context["total_cached"] = sum(r.cached for r in totals)
    return render(request, "billing/usage.html", context)


@login_required
def usage_export(request):
    """One row per UTC day and model with usage in the range (see docs/billing.md)."""
    membership = _admin_membership(request)
    name, start, end, _bucket = _range(request)
    rows = usage_summary(membership.workspace.id, start, end, group_by="day_model")
    response = HttpResponse(content_type="text/csv")
    response["Content-Disposition"] = (
        f'attachment; filename="usage-{membership.workspace.slug}-{name}.csv"'
    )
    writer = csv.writer(response)
    writer.writerow(
        [
            "day",
            "provider",
            "model",
            "requests",
            "errors",
            "cached",
            "input_tokens",
            "cache_read_tokens",
            "cache_write_tokens",
            "cache_write_1h_tokens",
            "output_tokens",
            "reasoning_tokens",
            "cost_usd",
        ]
    )
    for r in sorted(rows, key=lambda r: (r.key[0], r.key[1], r.key[2])):
        day, provider, model = r.key
        writer.writerow(
            [
                day.date().isoformat(),
                provider,
                model,
                r.requests,
                r.errors,
                r.cached,
                r.input_tokens,
                r.cache_read_tokens,
                r.cache_write_tokens,
                r.cache_write_1h_tokens,
                r.output_tokens,
                r.reasoning_tokens,
                _csv_cost(r.cost),
            ]
        )
    return response


def _csv_cost(cost) -> str:
    """Six decimals (the ledger's precision), plain notation: 0.000015, not 1.5E-5."""
    return f"{Decimal(cost).quantize(MICRO):f}"


@login_required
@require_http_methods(["POST"])
def budget_edit(request):
    membership = _admin_membership(request)
    workspace = membership.workspace
    form = BudgetForm(
        request.POST,
        instance=Budget.objects.filter(scope=BudgetScope.WORKSPACE, workspace=workspace).first(),
        plan=plan_for_workspace(workspace.id),
    )
    if form.is_valid():
        budget_upsert(
            workspace_id=workspace.id,
            scope=BudgetScope.WORKSPACE,
            actor=request.user,
            ip=request_ip(request),
            **form.cleaned_data,
        )
        messages.success(request, _("Budget saved."))
    else:
        for field, errors in form.errors.items():
            text = " ".join(errors)
            if field in form.fields:
                text = f"{form.fields[field].label}: {text}"
            messages.error(request, text)
    return redirect(f"/usage/?workspace={workspace.slug}")


@staff_member_required
def staff_usage(request):
    name, start, end, bucket = _range(request)
    series = usage_series(None, start, end, bucket)
    return render(
        request,
        "billing/staff_usage.html",
        {
            "range": name,
            "ranges": list(RANGES),
            "cost_chart": _chart(series, bucket, "cost", title=_("Cost"), money=True),
            "top": top_spenders(start, end),
            "by_model": usage_summary(None, start, end, group_by="model"),
        },
    )
