"""Settings pages where people create, list and revoke their API keys."""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from providers.selectors import model_choices_for
from workspaces.models import Role
from workspaces.selectors import current_membership_get
from workspaces.services import request_ip

from .forms import ApiKeyForm
from .models import ApiKey
from .selectors import api_key_list_for, api_model_id
from .services import api_key_create, api_key_revoke


@login_required
def api_keys(request):
    membership = current_membership_get(request)
    if not membership.has_role(Role.MEMBER):
        raise PermissionDenied
    form = ApiKeyForm(request.POST or None)
    created = None
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        if data["owner"] == ApiKey.Owner.WORKSPACE and not membership.has_role(Role.ADMIN):
            form.add_error("owner", _("Only workspace admins can create workspace keys."))
        else:
            key, raw = api_key_create(
                membership=membership,
                name=data["name"],
                owner=data["owner"],
                expires_at=data["expires_at"],
                allowed_models=data["allowed_models"],
                monthly_budget=data["monthly_budget"],
                rpm=data["rpm"],
                tpm=data["tpm"],
                ip=request_ip(request),
            )
            created = {"key": key, "raw": raw}
            form = ApiKeyForm()
    keys = api_key_list_for(user=request.user, workspace=membership.workspace)
    return render(
        request,
        "api/keys.html",
        {
            "form": form,
            "keys": keys,
            "created": created,
            "membership": membership,
            "workspace": membership.workspace,
        },
    )


@login_required
@require_POST
def api_key_revoke_view(request, key_id: int):
    membership = current_membership_get(request)
    key = get_object_or_404(
        api_key_list_for(user=request.user, workspace=membership.workspace), pk=key_id
    )
    api_key_revoke(membership=membership, key=key, ip=request_ip(request))
    messages.success(request, _("API key revoked."))
    return redirect("api_keys")


@login_required
def api_docs(request):
    """The examples name a model this user may call in the current workspace (what /v1/models
    lists for a key of theirs), so that they run as pasted."""
    membership = current_membership_get(request)
    choices = model_choices_for(user=request.user, workspace=membership.workspace)
    example = next((api_model_id(c) for c in choices), "gpt-4o-mini")
    return render(
        request,
        "api/docs.html",
        {
            "base_url": request.build_absolute_uri("/v1"),
            "example_model": example,
            "retention_days": settings.API_RESPONSES_RETENTION_DAYS,
        },
    )
