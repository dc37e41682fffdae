from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from workspaces.models import Role
from workspaces.selectors import current_membership_get, page_membership_get
from workspaces.services import request_ip

from .forms import PromptTemplateForm
from .selectors import prompt_template_get, prompt_template_list
from .services import (
    prompt_template_delete,
    prompt_template_may_create,
    prompt_template_may_edit,
    prompt_template_save,
)


def _refusal(membership) -> str:
    if not membership.has_role(Role.MEMBER):
        return _("Viewers can read this workspace's templates but not create or change them.")
    return _("Only workspace admins can create or change shared templates.")


def _save(request, membership, form, **fields) -> str:
    """Save the form's template; what refused it ("" when saved)."""
    try:
        prompt_template_save(
            membership=membership,
            title=form.cleaned_data["title"],
            body=form.cleaned_data["body"],
            ip=request_ip(request),
            **fields,
        )
    except PermissionDenied:
        return _refusal(membership)
    messages.success(request, _("Template saved."))
    return ""


@login_required
def template_list(request):
    membership = current_membership_get(request)
    can_create = prompt_template_may_create(membership=membership)
    form = PromptTemplateForm(request.POST or None)
    error = ""
    if request.method == "POST" and not can_create:
        error = _refusal(membership)
    elif request.method == "POST" and form.is_valid():
        personal = form.cleaned_data["personal"] or not membership.has_role(Role.ADMIN)
        error = _save(request, membership, form, personal=personal)
        if not error:
            return redirect("prompt_templates")
    return render(
        request,
        "prompts/list.html",
        {
            "form": form,
            "templates": prompt_template_list(membership=membership),
            "membership": membership,
            "can_create": can_create,
            "can_share": membership.has_role(Role.ADMIN),
            "refusal": _refusal(membership),
            "error": error,
        },
        # The page again, with what was typed, rather than a bare 403 page that loses it.
        status=403 if error else 200,
    )


@login_required
def template_edit(request, template_id: int):
    membership = current_membership_get(request)
    template = prompt_template_get(membership=membership, template_id=template_id)
    can_edit = prompt_template_may_edit(membership=membership, template=template)
    form = PromptTemplateForm(
        request.POST or None, instance=template, initial={"personal": template.is_personal}
    )
    error = "" if can_edit else _refusal(membership)
    if can_edit and request.method == "POST" and form.is_valid():
        error = _save(request, membership, form, template=template, personal=template.is_personal)
        if not error:
            return redirect("prompt_templates")
    return render(
        request,
        "prompts/edit.html",
        {"form": form, "template": template, "can_edit": can_edit, "error": error},
        status=403 if error else 200,
    )


@login_required
@require_POST
def template_delete(request, template_id: int):
    membership = current_membership_get(request)
    template = prompt_template_get(membership=membership, template_id=template_id)
    prompt_template_delete(membership=membership, template=template, ip=request_ip(request))
    messages.success(request, _("Template deleted."))
    return redirect("prompt_templates")


@login_required
def template_search(request):
    """For the chat input's `/` picker: templates matching the typed words, with variables."""
    membership = page_membership_get(request)
    templates = prompt_template_list(membership=membership, query=request.GET.get("q", "").strip())[
        :20
    ]
    return JsonResponse(
        {
            "templates": [
                {
                    "id": t.pk,
                    "title": t.title,
                    "body": t.body,
                    "variables": t.variables,
                    "personal": t.is_personal,
                }
                for t in templates
            ]
        }
    )
