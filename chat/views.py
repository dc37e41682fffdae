from __future__ import annotations

import datetime as dt

from django.conf import settings as django_settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse, HttpResponseBadRequest, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import content_disposition_header
from django.utils.text import slugify
from django.utils.translation import gettext
from django.views.decorators.http import require_GET, require_POST

from aurax.phrases import phrase_say
from providers.selectors import model_choices_for
from workspaces.models import Role
from workspaces.selectors import (
    CURRENT_WORKSPACE_SESSION_KEY,
    current_membership_get,
    page_membership_get,
)
from workspaces.services import request_ip

from . import exports, services
from .attachments import AttachmentRefused, size_check
from .forms import BranchSelectForm, ConversationRenameForm, ConversationSettingsForm
from .models import Attachment
from .selectors import (
    COPY,
    READ,
    WRITE,
    attachment_get_for_user,
    conversation_day_label,
    conversation_get_for_user,
    conversation_list_for_user,
    conversation_list_shared,
    conversation_usage_total,
    message_get_for_user,
    message_path,
    public_link_active_for,
    public_link_get_by_token,
)


def _cursor_parse(value: str):
    try:
        pinned, stamp, pk = value.split("_")
        return pinned == "1", dt.datetime.fromisoformat(stamp), int(pk)
    except (ValueError, AttributeError):
        return None


def _cursor_of(conversation) -> str:
    return f"{int(conversation.pinned)}_{conversation.updated_at.isoformat()}_{conversation.pk}"


def _sidebar_context(request, *, membership, active_id=None):
    workspace = membership.workspace
    query = request.GET.get("q", "")[:200]
    before = _cursor_parse(request.GET.get("cursor", "")) if request.GET.get("cursor") else None
    rows, has_more = conversation_list_for_user(
        user=request.user, workspace=workspace, query=query, before=before
    )
    groups: list[tuple[str, list]] = []
    for conversation in rows:
        label = conversation_day_label(conversation=conversation)
        if not groups or groups[-1][0] != label:
            groups.append((label, []))
        groups[-1][1].append(conversation)
    return {
        "groups": groups,
        # Teammates' shared conversations head the first page only.
        "shared": []
        if before is not None
        else conversation_list_shared(user=request.user, workspace=workspace, query=query),
        "query": query,
        "next_cursor": _cursor_of(rows[-1]) if has_more and rows else "",
        "continuing": before is not None,
        "last_label": request.GET.get("last", ""),
        "active_id": active_id,
        "workspace": workspace,
        # Viewers read; renaming, pinning and deleting are refused them (chat.selectors).
        "can_edit_own": membership.has_role(Role.MEMBER),
    }


def _model_listed(choices: list[dict], model: str) -> str:
    """`model` as the menu lists it, or "" when the menu does not offer it. A bare model name
    is the first credential's entry for it, the one routing tries first."""
    if any(c["value"] == model for c in choices):
        return model
    for choice in choices:
        credential_id, _colon, model_id = choice["value"].partition(":")
        if credential_id.isdigit() and model_id == model:
            return choice["value"]
    return ""


def _model_choices(request, workspace, conversation=None) -> tuple[list[dict], str]:
    """The model menu and the entry it starts on."""
    choices = model_choices_for(user=request.user, workspace=workspace)
    if conversation is None:
        # A new chat starts on the user's default, else the workspace's, if the menu offers
        # it: a default no longer available would only fail at the first message.
        for model in (request.user.default_model, workspace.default_model):
            if model and (selected := _model_listed(choices, model)):
                return choices, selected
        return choices, ""
    selected = _model_listed(choices, conversation.model) or conversation.model
    if selected and all(c["value"] != selected for c in choices):
        # A conversation's model the catalog does not list (yet): keep it selectable.
        choices.insert(0, {"value": selected, "label": selected, "group": ""})
    return choices, selected


def _thread_context(conversation, *, public: bool = False, public_token: str = ""):
    path = message_path(conversation=conversation)
    can_write = not public and getattr(conversation, "can_write", False)
    return {
        "public_token": public_token,
        "public_link": public_link_active_for(conversation=conversation) if can_write else None,
        "conversation": conversation,
        # What the controls on screen may offer; the access helpers enforce it either way.
        "can_write": can_write,
        "can_copy": not public and getattr(conversation, "can_copy", False),
        "public": public,
        "path": path,
        "streaming": any(m.status == "streaming" for m in path),
        "total": conversation_usage_total(conversation=conversation),
    }


def _page(request, conversation=None):
    membership = page_membership_get(request)
    if conversation is None and request.session.get(CURRENT_WORKSPACE_SESSION_KEY) != (
        membership.workspace_id
    ):
        # "New chat" in a tab of another workspace than the session's (`?workspace=`): the
        # new chat is in the workspace that tab showed, and the switcher follows.
        request.session[CURRENT_WORKSPACE_SESSION_KEY] = membership.workspace_id
    if conversation is not None and conversation.workspace_id != membership.workspace_id:
        # Opening a conversation of another of the user's workspaces switches to it, so the
        # sidebar and the switcher show where it lives.
        request.session[CURRENT_WORKSPACE_SESSION_KEY] = conversation.workspace_id
        membership = current_membership_get(request)
    workspace = membership.workspace
    initial = {"model": request.user.default_model or workspace.default_model}
    if conversation is not None:
        initial = {
            "model": conversation.model,
            "system_prompt": conversation.system_prompt,
            "temperature": conversation.temperature,
            "max_tokens": conversation.max_tokens,
        }
    model_choices, selected_model = _model_choices(request, workspace, conversation)
    context = {
        "workspace": workspace,
        "membership": membership,
        "can_chat": membership.has_role(Role.MEMBER)
        and (conversation is None or conversation.can_write),
        "settings_form": ConversationSettingsForm(initial=initial),
        "model_choices": model_choices,
        "selected_model": selected_model,
        "attachment_max_bytes": django_settings.CHAT_ATTACHMENT_MAX_BYTES,
        **_sidebar_context(
            request, membership=membership, active_id=conversation.pk if conversation else None
        ),
    }
    if conversation is not None:
        context.update(_thread_context(conversation))
    return render(request, "chat/page.html", context)


@login_required
@require_GET
def chat_home(request):
    return _page(request)


@login_required
@require_GET
def conversation_detail(request, conversation_id: int):
    return _page(
        request,
        conversation_get_for_user(user=request.user, conversation_id=conversation_id, access=READ),
    )


@login_required
@require_GET
def conversation_thread(request, conversation_id: int):
    conversation = conversation_get_for_user(
        user=request.user, conversation_id=conversation_id, access=READ
    )
    return render(request, "chat/_thread.html", _thread_context(conversation))


@login_required
@require_GET
def sidebar(request):
    membership = page_membership_get(request)
    active = request.GET.get("active")
    return render(
        request,
        "chat/_sidebar_list.html",
        _sidebar_context(
            request,
            membership=membership,
            active_id=int(active) if (active or "").isdigit() else None,
        ),
    )


def _back_to(request, conversation):
    if request.htmx:
        response = HttpResponse(status=204)
        response["HX-Trigger"] = "chat:sidebar-changed"
        return response
    return redirect("chat_conversation", conversation_id=conversation.pk)


@login_required
@require_POST
def conversation_rename(request, conversation_id: int):
    conversation = conversation_get_for_user(
        user=request.user, conversation_id=conversation_id, access=WRITE
    )
    form = ConversationRenameForm(request.POST)
    if not form.is_valid():
        return HttpResponseBadRequest("A title is required.")
    services.conversation_rename(conversation=conversation, title=form.cleaned_data["title"])
    return _back_to(request, conversation)


@login_required
@require_POST
def conversation_pin(request, conversation_id: int):
    conversation = conversation_get_for_user(
        user=request.user, conversation_id=conversation_id, access=WRITE
    )
    services.conversation_pin(conversation=conversation, pinned=request.POST.get("pinned") == "1")
    return _back_to(request, conversation)


@login_required
@require_POST
def conversation_delete(request, conversation_id: int):
    conversation = conversation_get_for_user(
        user=request.user, conversation_id=conversation_id, access=WRITE
    )
    services.conversation_delete(conversation=conversation)
    if request.htmx:
        response = HttpResponse(status=204)
        response["HX-Trigger"] = "chat:sidebar-changed"
        return response
    return redirect("home")


@login_required
@require_POST
def conversation_settings(request, conversation_id: int):
    conversation = conversation_get_for_user(
        user=request.user, conversation_id=conversation_id, access=WRITE
    )
    form = ConversationSettingsForm(request.POST)
    if not form.is_valid():
        param, errors = next(iter(form.errors.items()))
        return _refused(code="invalid", message=errors[0], param=param)
    # What was posted; a setting left out keeps its value.
    given = {name: value for name, value in form.cleaned_data.items() if name in request.POST}
    try:
        services.conversation_settings_update(conversation=conversation, **given)
    except services.SettingsRefused as refused:
        return _refused(code=refused.code, message=phrase_say(refused.said), param=refused.param)
    return HttpResponse(status=204)


def _refused(
    *, code: str, message: str, param: str | None = None, status: int = 400
) -> JsonResponse:
    """Nothing was done: why, in the reader's language, for the page to show (at `param`, the
    setting at fault, when it is one)."""
    error = {"code": code, "message": message}
    if param is not None:
        error["param"] = param
    return JsonResponse({"error": error}, status=status)


@login_required
@require_POST
def branch_select(request, conversation_id: int):
    conversation = conversation_get_for_user(
        user=request.user, conversation_id=conversation_id, access=WRITE
    )
    form = BranchSelectForm(request.POST)
    if not form.is_valid():
        return HttpResponseBadRequest("message_id is required.")
    message = message_get_for_user(
        user=request.user, message_id=form.cleaned_data["message_id"], access=WRITE
    )
    try:
        # The access-checked instance keeps what the viewer may do; only the leaf moved.
        conversation.current_leaf_id = services.branch_select(
            conversation=conversation, message=message
        ).current_leaf_id
    except (services.MessageNotEditable, services.ConversationBusy):
        return HttpResponse("An answer is still being generated.", status=409)
    return render(request, "chat/_thread.html", _thread_context(conversation))


@login_required
@require_GET
def conversation_export(request, conversation_id: int, fmt: str):
    conversation = conversation_get_for_user(
        user=request.user, conversation_id=conversation_id, access=READ
    )
    path = message_path(conversation=conversation)
    name = slugify(conversation.title)[:60] or f"conversation-{conversation.pk}"
    if fmt == "md":
        body, content_type = (
            exports.conversation_markdown(conversation=conversation, path=path),
            "text/markdown; charset=utf-8",
        )
    elif fmt == "json":
        body, content_type = (
            exports.conversation_json(conversation=conversation, path=path),
            "application/json",
        )
    else:
        raise Http404
    response = HttpResponse(body, content_type=content_type)
    response["Content-Disposition"] = content_disposition_header(True, f"{name}.{fmt}")
    return response


# --- sharing ------------------------------------------------------------------------------


def _to_conversation(request, conversation):
    url = reverse("chat_conversation", kwargs={"conversation_id": conversation.pk})
    if request.htmx:
        response = HttpResponse(status=204)
        response["HX-Redirect"] = url
        return response
    return redirect(url)


def _sharing_change(request, conversation_id: int, change):
    conversation = conversation_get_for_user(
        user=request.user, conversation_id=conversation_id, access=WRITE
    )
    try:
        change(conversation=conversation, actor=request.user, ip=request_ip(request))
    except services.SharingRefused as refused:
        messages.error(request, str(refused))
    return _to_conversation(request, conversation)


@login_required
@require_POST
def conversation_share(request, conversation_id: int):
    return _sharing_change(request, conversation_id, services.conversation_share)


@login_required
@require_POST
def conversation_unshare(request, conversation_id: int):
    return _sharing_change(request, conversation_id, services.conversation_unshare)


@login_required
@require_POST
def public_link_create(request, conversation_id: int):
    return _sharing_change(request, conversation_id, services.public_link_create)


@login_required
@require_POST
def public_link_revoke(request, conversation_id: int):
    return _sharing_change(request, conversation_id, services.public_link_revoke)


@login_required
@require_POST
def conversation_copy(request, conversation_id: int):
    conversation = conversation_get_for_user(
        user=request.user, conversation_id=conversation_id, access=COPY
    )
    copy = services.conversation_copy(conversation=conversation, user=request.user)
    return _to_conversation(request, copy)


@require_GET
def public_conversation(request, token: str):
    """Read-only, without login; only the conversation, nothing else of the workspace."""
    link = public_link_get_by_token(token=token)
    response = render(
        request,
        "chat/public.html",
        _thread_context(link.conversation, public=True, public_token=token),
    )
    _unindexed(response)
    response["Cache-Control"] = "private, no-store"
    return response


def _unindexed(response: HttpResponse) -> None:
    """What a public link serves: kept out of search engines, its address out of referrers."""
    response["X-Robots-Tag"] = "noindex, nofollow"
    response["Referrer-Policy"] = "no-referrer"


@login_required
@require_POST
def input_estimate(request):
    """JSON for the composer: estimated input tokens and cost of sending what is typed."""
    from .estimates import input_cost_estimate

    membership = page_membership_get(request)
    conversation = None
    if request.POST.get("conversation_id", "").isdigit():
        conversation = conversation_get_for_user(
            user=request.user, conversation_id=int(request.POST["conversation_id"]), access=READ
        )
    estimate = input_cost_estimate(
        user=request.user,
        workspace=conversation.workspace if conversation else membership.workspace,
        model=request.POST.get("model", ""),
        content=request.POST.get("content", "")[:200_000],
        conversation=conversation,
        attachment_ids=request.POST.getlist("attachments"),
    )
    return JsonResponse(estimate)


# --- Attachments (chat.attachments) ------------------------------------------------------


@login_required
@require_POST
def attachment_upload(request):
    """JSON: a file for the next message of the page's workspace ({"id", "name", "kind",
    "media_type", "size", "url"}, 201), or why it was refused (400, nothing kept)."""
    membership = page_membership_get(request)
    if not membership.has_role(Role.MEMBER):
        return _refused(
            code="forbidden",
            message=gettext("As a viewer of this workspace you cannot attach files."),
            status=403,
        )
    upload = request.FILES.get("file")
    if upload is None:
        return _refused(code="invalid", message=gettext("No file was sent."))
    try:
        size_check(upload.size)
        attachment = services.attachment_create(
            workspace=membership.workspace,
            user=request.user,
            name=upload.name or "",
            data=upload.read(),
        )
    except AttachmentRefused as refused:
        return _refused(code="attachment_refused", message=phrase_say(refused.message))
    described = attachment.described()
    described["url"] = reverse("chat_attachment", args=[attachment.pk])
    return JsonResponse(described, status=201)


def _attachment_response(attachment: Attachment) -> HttpResponse:
    """The file as uploaded. Images are shown in the page; anything else is downloaded, never
    opened on this site's origin. Nothing in it may run (the CSP of a sandbox)."""
    content_type = attachment.media_type
    if content_type.startswith("text/"):
        content_type += "; charset=utf-8"
    response = HttpResponse(bytes(attachment.data), content_type=content_type)
    inline = attachment.kind == Attachment.Kind.IMAGE
    response["Content-Disposition"] = content_disposition_header(
        as_attachment=not inline, filename=attachment.name
    )
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response["Cache-Control"] = "private, max-age=3600"
    return response


@login_required
@require_GET
def attachment_file(request, attachment_id: int):
    return _attachment_response(
        attachment_get_for_user(user=request.user, attachment_id=attachment_id)
    )


@login_required
@require_POST
def attachment_delete(request, attachment_id: int):
    """An upload taken back before its message was sent (204); a sent file stays (409)."""
    attachment = attachment_get_for_user(user=request.user, attachment_id=attachment_id)
    if attachment.uploaded_by_id != request.user.pk:
        raise Http404
    try:
        services.attachment_delete(attachment=attachment)
    except services.MessageNotEditable:
        return _refused(
            code="sent",
            message=gettext("This file was sent with a message and stays with it."),
            status=409,
        )
    return HttpResponse(status=204)


@require_GET
def public_attachment_file(request, token: str, attachment_id: int):
    """A file of a conversation shown by a public link, while the link works."""
    link = public_link_get_by_token(token=token)
    attachment = Attachment.objects.filter(
        pk=attachment_id, conversation_id=link.conversation_id
    ).first()
    if attachment is None:
        raise Http404
    response = _attachment_response(attachment)
    _unindexed(response)
    return response
