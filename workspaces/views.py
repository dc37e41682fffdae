from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from . import selectors, services
from .forms import (
    DeleteWorkspaceForm,
    InvitationForm,
    RoleForm,
    TransferForm,
    WorkspaceForm,
    WorkspaceSettingsForm,
)
from .models import Membership, Role


def _error(request, exc: ValidationError | PermissionDenied) -> None:
    """Tell the user why a change was refused, on the page they come back to. A refusal of
    something their role may not do reaches here only from a page older than their role."""
    if isinstance(exc, PermissionDenied):
        messages.error(request, str(exc) or _("Your role does not allow that."))
        return
    for message in exc.messages:
        messages.error(request, message)


def _membership_for_change(request, slug: str, minimum_role: str) -> Membership | None:
    """The user's membership when their role still allows this change, else None with a message
    saying so: the page they posted from was drawn for a role they no longer have (demoted, or
    ownership transferred, in another tab or by someone else)."""
    membership = selectors.membership_get(user=request.user, workspace_slug=slug)
    if membership.has_role(minimum_role):
        return membership
    messages.error(
        request, _("Your role in this workspace no longer allows that; nothing was changed.")
    )
    return None


@login_required
def workspace_list(request):
    form = WorkspaceForm(request.POST or None, initial={"color": "#6366f1"})
    if request.method == "POST" and form.is_valid():
        workspace = services.workspace_create(
            owner=request.user,
            name=form.cleaned_data["name"],
            color=form.cleaned_data["color"],
            ip=services.request_ip(request),
        )
        request.session[selectors.CURRENT_WORKSPACE_SESSION_KEY] = workspace.pk
        messages.success(request, _("Workspace created."))
        return redirect("workspace_members", workspace.slug)
    memberships = Membership.objects.filter(user=request.user).select_related("workspace")
    return render(request, "workspaces/list.html", {"form": form, "memberships": memberships})


@login_required
@require_POST
def workspace_switch(request):
    membership = selectors.membership_get(
        user=request.user, workspace_slug=request.POST.get("workspace", "")
    )
    request.session[selectors.CURRENT_WORKSPACE_SESSION_KEY] = membership.workspace_id
    next_url = request.POST.get("next", "")
    if url_has_allowed_host_and_scheme(
        next_url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return redirect(next_url)
    return redirect("home")


@login_required
def workspace_settings(request, slug):
    membership = selectors.membership_get(
        user=request.user, workspace_slug=slug, minimum_role=Role.ADMIN
    )
    workspace = membership.workspace
    form = WorkspaceSettingsForm(request.POST or None, instance=workspace)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        workspace.refresh_from_db()  # the form mutated the instance; the service compares
        services.workspace_update(
            membership=membership,
            name=data["name"],
            color=data["color"],
            default_model=data["default_model"],
            public_links_enabled=data["public_links_enabled"],
            response_cache_enabled=data["response_cache_enabled"],
            ip=services.request_ip(request),
        )
        messages.success(request, _("Workspace settings saved."))
        return redirect("workspace_settings", workspace.slug)
    return render(
        request,
        "workspaces/settings.html",
        {
            "membership": membership,
            "workspace": workspace,
            "form": form,
            "delete_form": DeleteWorkspaceForm(),
        },
    )


@login_required
@require_POST
def workspace_delete(request, slug):
    membership = selectors.membership_get(
        user=request.user, workspace_slug=slug, minimum_role=Role.OWNER
    )
    form = DeleteWorkspaceForm(request.POST)
    try:
        if not form.is_valid():
            raise ValidationError(_("Type the workspace's name exactly to confirm."))
        services.workspace_delete(
            membership=membership, confirm_name=form.cleaned_data["confirm_name"]
        )
    except ValidationError as exc:
        _error(request, exc)
        return redirect("workspace_settings", slug)
    request.session.pop(selectors.CURRENT_WORKSPACE_SESSION_KEY, None)
    messages.success(request, _("Workspace deleted."))
    return redirect("workspace_list")


@login_required
def workspace_members(request, slug):
    membership = selectors.membership_get(user=request.user, workspace_slug=slug)
    workspace = membership.workspace
    can_manage = membership.has_role(Role.ADMIN)
    members = list(selectors.member_list(workspace=workspace))
    # Only what the viewer's role may do is offered; the services refuse the rest anyway.
    assignable = selectors.roles_assignable_by(membership=membership)
    for member in members:
        member.manageable = selectors.member_manageable_by(membership=membership, target=member)
    return render(
        request,
        "workspaces/members.html",
        {
            "membership": membership,
            "workspace": workspace,
            "can_manage": can_manage,
            "members": members,
            "invitations": selectors.invitation_list_pending(workspace=workspace)
            if can_manage
            else [],
            "invite_form": InvitationForm(roles=assignable),
            "roles": [(r, label) for r, label in Role.choices if r in assignable],
        },
    )


def _target(membership: Membership, member_id: int) -> Membership:
    return get_object_or_404(
        Membership.objects.select_related("user", "workspace"),
        pk=member_id,
        workspace=membership.workspace,
    )


@login_required
@require_POST
def member_role(request, slug, member_id):
    membership = _membership_for_change(request, slug, Role.ADMIN)
    if membership is None:
        return redirect("workspace_members", slug)
    target = _target(membership, member_id)
    form = RoleForm(request.POST)
    try:
        if not form.is_valid():
            raise ValidationError(_("Unknown role."))
        services.member_role_change(
            actor_membership=membership,
            target=target,
            role=form.cleaned_data["role"],
            ip=services.request_ip(request),
        )
        messages.success(request, _("Role changed."))
    except (ValidationError, PermissionDenied) as exc:
        _error(request, exc)
    return redirect("workspace_members", slug)


@login_required
@require_POST
def member_remove(request, slug, member_id):
    membership = _membership_for_change(request, slug, Role.ADMIN)
    if membership is None:
        return redirect("workspace_members", slug)
    target = _target(membership, member_id)
    try:
        services.member_remove(
            actor_membership=membership, target=target, ip=services.request_ip(request)
        )
        messages.success(request, _("Member removed."))
    except (ValidationError, PermissionDenied) as exc:
        _error(request, exc)
    return redirect("workspace_members", slug)


@login_required
@require_POST
def workspace_leave(request, slug):
    membership = selectors.membership_get(user=request.user, workspace_slug=slug)
    try:
        services.membership_leave(membership=membership, ip=services.request_ip(request))
    except ValidationError as exc:
        _error(request, exc)
        return redirect("workspace_members", slug)
    request.session.pop(selectors.CURRENT_WORKSPACE_SESSION_KEY, None)
    messages.success(request, _("You left the workspace."))
    return redirect("workspace_list")


@login_required
@require_POST
def workspace_transfer(request, slug):
    membership = _membership_for_change(request, slug, Role.OWNER)
    if membership is None:
        return redirect("workspace_members", slug)
    form = TransferForm(request.POST)
    if not form.is_valid():
        raise Http404
    target = _target(membership, form.cleaned_data["membership_id"])
    try:
        services.ownership_transfer(
            owner_membership=membership, new_owner=target, ip=services.request_ip(request)
        )
        messages.success(request, _("Ownership transferred."))
    except ValidationError as exc:
        _error(request, exc)
    return redirect("workspace_members", slug)


@login_required
@require_POST
def invitation_create(request, slug):
    membership = _membership_for_change(request, slug, Role.ADMIN)
    if membership is None:
        return redirect("workspace_members", slug)
    form = InvitationForm(request.POST)
    if not form.is_valid():
        for errors in form.errors.values():
            for message in errors:
                messages.error(request, message)
        return redirect("workspace_members", slug)
    try:
        services.invitation_create(
            membership=membership,
            email=form.cleaned_data["email"],
            role=form.cleaned_data["role"],
            ip=services.request_ip(request),
        )
        messages.success(
            request, _("Invitation sent to %(email)s.") % {"email": form.cleaned_data["email"]}
        )
    except (ValidationError, PermissionDenied) as exc:
        _error(request, exc)
    return redirect("workspace_members", slug)


@login_required
@require_POST
def invitation_revoke(request, slug, invitation_id):
    membership = _membership_for_change(request, slug, Role.ADMIN)
    if membership is None:
        return redirect("workspace_members", slug)
    invitation = get_object_or_404(membership.workspace.invitations, pk=invitation_id)
    try:
        services.invitation_revoke(
            membership=membership, invitation=invitation, ip=services.request_ip(request)
        )
        messages.success(request, _("Invitation revoked."))
    except ValidationError as exc:
        _error(request, exc)
    return redirect("workspace_members", slug)


def invitation_accept(request, token):
    invitation = selectors.invitation_get_by_token(token=token)
    if not request.user.is_authenticated:
        # Sign up (or in) first, then come back here.
        messages.info(
            request,
            _("Sign in or create an account with %(email)s to join %(workspace)s.")
            % {
                "email": invitation.email,
                "workspace": invitation.workspace.name,
            },
        )
        has_account = get_user_model().objects.filter(email__iexact=invitation.email).exists()
        if has_account:
            login_url = reverse("account_login")
        else:  # the sign-up form comes with the invited address filled in
            login_url = f"{reverse('account_signup')}?{urlencode({'email': invitation.email})}"
        return redirect_to_login(request.get_full_path(), login_url)
    already = Membership.objects.filter(workspace=invitation.workspace, user=request.user).first()
    problem = services.invitation_problem(invitation=invitation, user=request.user)
    if request.method == "POST":
        if already:
            messages.info(
                request,
                _("You are already a member of %(workspace)s.")
                % {"workspace": invitation.workspace.name},
            )
            return redirect("workspace_members", invitation.workspace.slug)
        try:
            membership = services.invitation_accept(
                invitation=invitation, user=request.user, ip=services.request_ip(request)
            )
        except ValidationError as exc:
            _error(request, exc)
            return redirect("invitation_accept", token)
        request.session[selectors.CURRENT_WORKSPACE_SESSION_KEY] = membership.workspace_id
        messages.success(
            request, _("Welcome to %(workspace)s.") % {"workspace": invitation.workspace.name}
        )
        return redirect("home")
    return render(
        request,
        "workspaces/invitation.html",
        {
            "invitation": invitation,
            "problem": problem,
            "already": already,
        },
    )


@login_required
def audit_log(request, slug):
    membership = selectors.membership_get(
        user=request.user, workspace_slug=slug, minimum_role=Role.ADMIN
    )
    events = selectors.audit_event_list(workspace=membership.workspace)[:500]
    return render(
        request,
        "workspaces/audit.html",
        {"membership": membership, "workspace": membership.workspace, "events": events},
    )
