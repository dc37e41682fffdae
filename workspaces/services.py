"""Every change to workspaces, memberships and invitations happens here, in a transaction,
with an audit event; emails go out after commit."""

import secrets
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.mail import send_mail
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.crypto import get_random_string
from django.utils.text import slugify
from django.utils.translation import gettext as _

from .models import AuditEvent, Invitation, Membership, Role, Workspace
from .selectors import (
    invitation_list_pending,
    member_manageable_by,
    owner_successor_get,
    roles_assignable_by,
    workspace_list_deleted_with,
)
from .signals import response_cache_switched

INVITATION_TTL = timedelta(days=getattr(settings, "INVITATION_TTL_DAYS", 7))


def _unique_slug(name: str) -> str:
    base = slugify(name)[:40] or "workspace"
    slug = base
    while Workspace.objects.filter(slug=slug).exists():
        slug = f"{base}-{get_random_string(6, 'abcdefghijklmnopqrstuvwxyz0123456789')}"
    return slug


def request_ip(request) -> str | None:
    """The address an audit event records for a request."""
    return request.META.get("REMOTE_ADDR")


def audit_record(
    *,
    workspace: Workspace | None,
    actor,
    action: str,
    target=None,
    target_type: str = "",
    target_id: str = "",
    target_repr: str = "",
    data: dict | None = None,
    ip: str | None = None,
) -> AuditEvent:
    """Append one audit event. Other apps (keys, quotas, sharing) call this too."""
    if target is not None:
        target_type = target_type or target._meta.label_lower
        target_id = target_id or str(target.pk)
        target_repr = target_repr or str(target)[:255]
    return AuditEvent.objects.create(
        workspace=workspace,
        actor=actor if getattr(actor, "is_authenticated", False) else None,
        actor_email=getattr(actor, "email", "") or "",
        action=action,
        target_type=target_type,
        target_id=target_id,
        target_repr=target_repr[:255],
        data=data or {},
        ip=ip,
    )


@transaction.atomic
def workspace_create(
    *, owner, name: str, is_personal: bool = False, color: str = "#6366f1", ip: str | None = None
) -> Workspace:
    workspace = Workspace.objects.create(
        name=name, slug=_unique_slug(name), is_personal=is_personal, color=color
    )
    Membership.objects.create(workspace=workspace, user=owner, role=Role.OWNER)
    if not is_personal:
        audit_record(
            workspace=workspace, actor=owner, action="workspace.create", target=workspace, ip=ip
        )
    return workspace


def workspace_create_personal(*, user) -> Workspace:
    existing = Workspace.objects.filter(is_personal=True, memberships__user=user).first()
    if existing:
        return existing
    local_part = user.email.split("@")[0]
    return workspace_create(owner=user, name=local_part, is_personal=True)


@transaction.atomic
def workspace_update(
    *,
    membership: Membership,
    name: str | None = None,
    color: str | None = None,
    default_model: str | None = None,
    public_links_enabled: bool | None = None,
    response_cache_enabled: bool | None = None,
    ip: str | None = None,
) -> Workspace:
    if not membership.has_role(Role.ADMIN):
        raise PermissionDenied
    workspace = membership.workspace
    changes = {}
    for field, value in (
        ("name", name),
        ("color", color),
        ("default_model", default_model),
        ("public_links_enabled", public_links_enabled),
        ("response_cache_enabled", response_cache_enabled),
    ):
        if value is not None and getattr(workspace, field) != value:
            changes[field] = [getattr(workspace, field), value]
            setattr(workspace, field, value)
    if changes:
        fields = list(changes)
        if "response_cache_enabled" in changes:
            fields.append(workspace_response_cache_switched(workspace))
        workspace.save(update_fields=fields)
        audit_record(
            workspace=workspace,
            actor=membership.user,
            action="workspace.update",
            target=workspace,
            data=changes,
            ip=ip,
        )
    return workspace


def workspace_response_cache_switched(workspace: Workspace) -> str:
    """The workspace's response cache is being turned off or on (the caller saves it): no
    answer kept before is served any more, and once this commits every server's API keys
    see the change (`response_cache_switched`). Returns the field to save as well."""
    workspace.response_cache_reset_at = timezone.now()
    transaction.on_commit(
        lambda: response_cache_switched.send(sender=Workspace, workspace=workspace),
        robust=True,
    )
    return "response_cache_reset_at"


@transaction.atomic
def workspace_delete(*, membership: Membership, confirm_name: str) -> None:
    """Owner only, confirmed by typing the name; everything in the workspace goes with it."""
    workspace = membership.workspace
    if membership.role != Role.OWNER:
        raise PermissionDenied
    if workspace.is_personal:
        raise ValidationError(_("A personal workspace cannot be deleted."))
    if confirm_name.strip() != workspace.name:
        raise ValidationError(_("Type the workspace's name exactly to confirm."))
    audit_record(
        workspace=None,
        actor=membership.user,
        action="workspace.delete",
        target=workspace,
        data={"slug": workspace.slug},
    )
    workspace.delete()


@transaction.atomic
def member_role_change(
    *, actor_membership: Membership, target: Membership, role: str, ip: str | None = None
) -> Membership:
    if (
        not actor_membership.has_role(Role.ADMIN)
        or actor_membership.workspace_id != target.workspace_id
    ):
        raise PermissionDenied
    if role == Role.OWNER or target.role == Role.OWNER:
        raise ValidationError(_("Ownership changes only through a transfer."))
    if target.pk == actor_membership.pk:
        raise ValidationError(_("You cannot change your own role."))
    assignable = roles_assignable_by(membership=actor_membership)
    if role not in assignable:
        raise PermissionDenied(_("Only the owner can make someone an admin."))
    if target.role not in assignable:
        raise PermissionDenied(_("Only the owner can change an admin's role."))
    old = target.role
    target.role = role
    target.save(update_fields=["role"])
    audit_record(
        workspace=target.workspace,
        actor=actor_membership.user,
        action="member.role_change",
        target=target.user,
        data={"from": old, "to": role},
        ip=ip,
    )
    return target


@transaction.atomic
def member_remove(
    *, actor_membership: Membership, target: Membership, ip: str | None = None
) -> None:
    """Remove a member. Their private conversations go with them; what they shared stays (the
    chat app owns that rule and is told through `member_removed`)."""
    if actor_membership.workspace_id != target.workspace_id:
        raise PermissionDenied
    if target.role == Role.OWNER:
        raise ValidationError(_("The owner cannot be removed; transfer ownership first."))
    if not actor_membership.has_role(Role.ADMIN):
        raise PermissionDenied
    if target.pk == actor_membership.pk:
        raise ValidationError(_("To leave the workspace, use “Leave workspace”."))
    if not member_manageable_by(membership=actor_membership, target=target):
        raise PermissionDenied(_("Only the owner can remove an admin."))
    _membership_end(target, actor=actor_membership.user, action="member.remove", ip=ip)


@transaction.atomic
def membership_leave(*, membership: Membership, ip: str | None = None) -> None:
    if membership.role == Role.OWNER:
        raise ValidationError(_("The owner cannot leave; transfer ownership first."))
    if membership.workspace.is_personal:
        raise ValidationError(_("You cannot leave your personal workspace."))
    _membership_end(membership, actor=membership.user, action="member.leave", ip=ip)


def _membership_end(membership: Membership, *, actor, action: str, ip: str | None) -> None:
    from .signals import member_removed

    workspace, user = membership.workspace, membership.user
    member_removed.send(sender=Membership, workspace=workspace, user=user)
    membership.delete()
    audit_record(workspace=workspace, actor=actor, action=action, target=user, ip=ip)


@transaction.atomic
def user_workspaces_release(*, user) -> None:
    """Called as a user is deleted (admin site, shell, any path), before their rows go.

    A workspace nobody else is a member of goes with them, with what it holds (its usage rows
    and invoices stay, without it). In any other workspace they leave as a removed member
    would: their private conversations go, the ones they shared pass to the owner; where they
    were the owner, the highest-ranking, longest-standing member becomes it. docs/permissions.md.
    """
    doomed = {w.pk for w in workspace_list_deleted_with(user_ids=[user.pk])}
    for membership in Membership.objects.filter(user=user).select_related("workspace"):
        workspace = membership.workspace
        if workspace.pk in doomed:
            if not workspace.is_personal:
                audit_record(
                    workspace=None,
                    actor=None,
                    action="workspace.delete",
                    target=workspace,
                    data={"slug": workspace.slug, "account_deleted": user.email},
                )
            workspace.delete()
            continue
        if membership.role == Role.OWNER:
            heir = owner_successor_get(workspace=workspace, leaving=membership)
            Membership.objects.filter(pk=heir.pk).update(role=Role.OWNER)
            if workspace.is_personal:
                # Someone else is in it now: it is theirs as a team workspace, not a second
                # personal one.
                Workspace.objects.filter(pk=workspace.pk).update(is_personal=False)
            audit_record(
                workspace=workspace,
                actor=None,
                action="workspace.transfer",
                target=heir.user,
                data={"account_deleted": user.email},
            )
        _membership_end(membership, actor=None, action="member.account_delete", ip=None)


@transaction.atomic
def ownership_transfer(
    *, owner_membership: Membership, new_owner: Membership, ip: str | None = None
) -> None:
    if (
        owner_membership.role != Role.OWNER
        or owner_membership.workspace_id != new_owner.workspace_id
    ):
        raise PermissionDenied
    if owner_membership.workspace.is_personal:
        raise ValidationError(_("A personal workspace cannot change owner."))
    if new_owner.pk == owner_membership.pk:
        raise ValidationError(_("You already own this workspace."))
    Membership.objects.filter(pk=owner_membership.pk).update(role=Role.ADMIN)
    Membership.objects.filter(pk=new_owner.pk).update(role=Role.OWNER)
    audit_record(
        workspace=owner_membership.workspace,
        actor=owner_membership.user,
        action="workspace.transfer",
        target=new_owner.user,
        ip=ip,
    )


def _invitation_language(email: str) -> str:
    """The recipient's language, not the inviter's: the one saved by the account that already
    has this address, else the site's."""
    invited = get_user_model().objects.filter(email__iexact=email).exclude(language="").first()
    return invited.language if invited else settings.LANGUAGE_CODE


def _invitation_send(invitation_id: int) -> None:
    invitation = Invitation.objects.select_related("workspace", "invited_by").get(pk=invitation_id)
    link = settings.SITE_URL.rstrip("/") + reverse("invitation_accept", args=[invitation.token])
    context = {"invitation": invitation, "link": link}
    # Dates in the site's time zone, which the email names.
    with translation.override(_invitation_language(invitation.email)):
        with timezone.override(settings.TIME_ZONE):
            subject = render_to_string("workspaces/email/invitation_subject.txt", context)
            message = render_to_string("workspaces/email/invitation.txt", context)
    send_mail(
        subject=subject.strip(),
        message=message,
        from_email=None,
        recipient_list=[invitation.email],
    )


@transaction.atomic
def invitation_create(
    *, membership: Membership, email: str, role: str, ip: str | None = None
) -> Invitation:
    if not membership.has_role(Role.ADMIN):
        raise PermissionDenied
    if membership.workspace.is_personal:
        raise ValidationError(_("Create a team workspace to invite people."))
    if role not in roles_assignable_by(membership=membership):
        raise PermissionDenied(_("Only the owner can invite an admin."))
    email = email.strip().lower()
    if Membership.objects.filter(
        workspace=membership.workspace, user__email__iexact=email
    ).exists():
        raise ValidationError(_("%(email)s is already a member.") % {"email": email})
    # One pending invitation per address: two would mean two emails and two links. The lock
    # keeps two invitations sent at the same moment from both passing the check.
    Workspace.objects.select_for_update().filter(pk=membership.workspace_id).first()
    if invitation_list_pending(workspace=membership.workspace).filter(email__iexact=email).exists():
        raise ValidationError(
            _(
                "%(email)s has already been invited. To send a new invitation, revoke the "
                "pending one first."
            )
            % {"email": email}
        )
    invitation = Invitation.objects.create(
        workspace=membership.workspace,
        email=email,
        role=role,
        token=secrets.token_urlsafe(32),
        invited_by=membership.user,
        expires_at=timezone.now() + INVITATION_TTL,
    )
    audit_record(
        workspace=membership.workspace,
        actor=membership.user,
        action="invitation.create",
        target=invitation,
        data={"email": email, "role": role},
        ip=ip,
    )
    transaction.on_commit(lambda: _invitation_send(invitation.pk))
    return invitation


@transaction.atomic
def invitation_revoke(
    *, membership: Membership, invitation: Invitation, ip: str | None = None
) -> None:
    if not membership.has_role(Role.ADMIN) or invitation.workspace_id != membership.workspace_id:
        raise PermissionDenied
    if invitation.accepted_at or invitation.revoked_at:
        raise ValidationError(_("This invitation is no longer pending."))
    invitation.revoked_at = timezone.now()
    invitation.save(update_fields=["revoked_at"])
    audit_record(
        workspace=invitation.workspace,
        actor=membership.user,
        action="invitation.revoke",
        target=invitation,
        ip=ip,
    )


def invitation_problem(*, invitation: Invitation, user) -> str | None:
    """Why this user cannot accept this invitation, in words for them; None when they can."""
    if invitation.revoked_at:
        return _("This invitation was revoked.")
    if invitation.accepted_at:
        return _("This invitation has already been used.")
    if invitation.expires_at <= timezone.now():
        return _("This invitation has expired. Ask for a new one.")
    if user.email.lower() != invitation.email.lower():
        return _(
            "This invitation was sent to %(email)s. Sign in with that address to accept it."
        ) % {"email": invitation.email}
    return None


@transaction.atomic
def invitation_accept(*, invitation: Invitation, user, ip: str | None = None) -> Membership:
    invitation = (
        Invitation.objects.select_for_update().select_related("workspace").get(pk=invitation.pk)
    )
    problem = invitation_problem(invitation=invitation, user=user)
    if problem:
        raise ValidationError(problem)
    invitation.accepted_at = timezone.now()
    invitation.accepted_by = user
    invitation.save(update_fields=["accepted_at", "accepted_by"])
    membership, created = Membership.objects.get_or_create(
        workspace=invitation.workspace, user=user, defaults={"role": invitation.role}
    )
    if created:
        audit_record(
            workspace=invitation.workspace,
            actor=user,
            action="invitation.accept",
            target=invitation,
            data={"role": invitation.role},
            ip=ip,
        )
    return membership
