from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from workspaces.models import Membership, Role
from workspaces.selectors import membership_get
from workspaces.services import request_ip

from .forms import CredentialForm
from .models import CatalogModel, ProviderCredential, Scope
from .selectors import (
    credential_get_for_user,
    credential_list_for,
    global_credentials_for_workspace,
    global_models_for_workspace,
)
from .services import (
    catalog_refresh,
    credential_create,
    credential_delete,
    credential_test,
    workspace_credential_toggle,
    workspace_model_toggle,
)


def _create_from_form(request, form, *, scope, workspace=None):
    """Validate and create; service validation errors land on the form. True on success."""
    if not form.is_valid():
        return False
    data = form.cleaned_data
    try:
        credential_create(
            actor=request.user,
            scope=scope,
            kind=data["kind"],
            name=data["name"],
            api_key=data["api_key"],
            base_url=data["base_url"],
            workspace=workspace,
            user=request.user if scope == Scope.USER else None,
            allow_private_network=data.get("allow_private_network", False),
            ip=request_ip(request),
        )
    except ValidationError as error:
        if hasattr(error, "error_dict"):
            for field, errors in error.error_dict.items():
                form.add_error(field if field in form.fields else None, errors)
        else:
            form.add_error(None, error)
        return False
    messages.success(request, _("Key saved. Only its last 4 characters will be shown."))
    return True


@login_required
def keys(request):
    form = CredentialForm(request.POST or None, is_admin=request.user.is_staff)
    if request.method == "POST" and _create_from_form(request, form, scope=Scope.USER):
        return redirect("providers:keys")
    memberships = Membership.objects.filter(user=request.user).select_related("workspace")
    return render(
        request,
        "providers/keys.html",
        {
            "form": form,
            "credentials": credential_list_for(user=request.user),
            "memberships": memberships.order_by("workspace__name"),
        },
    )


@login_required
def workspace_keys(request, slug):
    membership = membership_get(user=request.user, workspace_slug=slug)
    workspace = membership.workspace
    can_manage = membership.has_role(Role.ADMIN)
    form = CredentialForm(request.POST or None, is_admin=request.user.is_staff)
    if request.method == "POST":
        if not can_manage:
            raise PermissionDenied
        if _create_from_form(request, form, scope=Scope.WORKSPACE, workspace=workspace):
            return redirect("providers:workspace_keys", slug=workspace.slug)
    return render(
        request,
        "providers/workspace_keys.html",
        {
            "workspace": workspace,
            "membership": membership,
            "can_manage": can_manage,
            "form": form,
            "credentials": credential_list_for(user=request.user, workspace=workspace),
            "global_credentials": global_credentials_for_workspace(workspace=workspace),
            "global_models": global_models_for_workspace(workspace=workspace),
        },
    )


@login_required
@require_POST
def workspace_global_toggle(request, slug, credential_id):
    membership = membership_get(user=request.user, workspace_slug=slug)
    if not membership.has_role(Role.ADMIN):
        raise PermissionDenied
    credential = ProviderCredential.objects.filter(
        id=credential_id, scope=Scope.GLOBAL, enabled=True
    ).first()
    if credential is None:
        raise Http404
    workspace_credential_toggle(
        workspace=membership.workspace,
        credential=credential,
        enabled=request.POST.get("enabled") == "1",
        actor=request.user,
        ip=request_ip(request),
    )
    return redirect("providers:workspace_keys", slug=slug)


@login_required
@require_POST
def workspace_model_toggle_view(request, slug, model_id):
    membership = membership_get(user=request.user, workspace_slug=slug)
    catalog_model = (
        CatalogModel.objects.select_related("credential")
        .filter(id=model_id, credential__scope=Scope.GLOBAL, credential__enabled=True)
        .first()
    )
    if catalog_model is None:
        raise Http404
    workspace_model_toggle(
        membership=membership,
        catalog_model=catalog_model,
        enabled=request.POST.get("enabled") == "1",
        ip=request_ip(request),
    )
    return redirect("providers:workspace_keys", slug=slug)


@login_required
@require_POST
def credential_test_view(request, credential_id):
    credential = credential_get_for_user(
        user=request.user, credential_id=credential_id, manage=True
    )
    report = credential_test(credential_id=credential.id)
    credential.refresh_from_db()
    return render(request, "providers/_test_result.html", {"report": report, "c": credential})


@login_required
@require_POST
def credential_refresh_view(request, credential_id):
    credential = credential_get_for_user(
        user=request.user, credential_id=credential_id, manage=True
    )
    report = catalog_refresh(credential.id)
    if request.htmx:
        credential.refresh_from_db()
        return render(request, "providers/_test_result.html", {"report": report, "c": credential})
    (messages.success if report.ok else messages.error)(request, report.message)
    return redirect(_back(credential))


@login_required
@require_POST
def credential_delete_view(request, credential_id):
    credential = credential_get_for_user(
        user=request.user, credential_id=credential_id, manage=True
    )
    back = _back(credential)
    credential_delete(credential=credential, actor=request.user, ip=request_ip(request))
    messages.success(request, _("Key deleted."))
    return redirect(back)


def _back(credential):
    if credential.scope == Scope.WORKSPACE:
        return redirect("providers:workspace_keys", slug=credential.workspace.slug).url
    return redirect("providers:keys").url
