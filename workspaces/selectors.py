from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.utils import timezone

from .models import ROLE_RANK, AuditEvent, Invitation, Membership, Role, Workspace

CURRENT_WORKSPACE_SESSION_KEY = "workspace_id"


def workspace_list_for_user(*, user):
    return Workspace.objects.filter(memberships__user=user).order_by("-is_personal", "name")


def membership_get(*, user, workspace_slug: str, minimum_role: str = Role.VIEWER) -> Membership:
    """The user's membership in a workspace.

    404 when they are not a member, so a foreign workspace is indistinguishable from a missing
    one; 403 when they are a member whose role is below `minimum_role`.
    """
    if not user.is_authenticated:
        raise Http404
    membership = (
        Membership.objects.select_related("workspace")
        .filter(user=user, workspace__slug=workspace_slug)
        .first()
    )
    if membership is None:
        raise Http404
    if not membership.has_role(minimum_role):
        raise PermissionDenied
    return membership


def membership_get_by_workspace_id(
    *, user, workspace_id: int, minimum_role: str = Role.VIEWER
) -> Membership:
    membership = (
        Membership.objects.select_related("workspace")
        .filter(user=user, workspace_id=workspace_id)
        .first()
    )
    if membership is None:
        raise Http404
    if not membership.has_role(minimum_role):
        raise PermissionDenied
    return membership


def personal_workspace_get(*, user) -> Workspace:
    return Workspace.objects.get(is_personal=True, memberships__user=user)


def current_membership_get(request) -> Membership:
    """The workspace the user is working in: the one chosen in the switcher (kept in the
    session) while they are still a member of it, else their personal workspace."""
    user = request.user
    workspace_id = request.session.get(CURRENT_WORKSPACE_SESSION_KEY)
    membership = None
    if workspace_id:
        membership = (
            Membership.objects.select_related("workspace")
            .filter(user=user, workspace_id=workspace_id)
            .first()
        )
    if membership is None:
        membership = (
            Membership.objects.select_related("workspace")
            .filter(user=user)
            .order_by("-workspace__is_personal", "joined_at")
            .first()
        )
    if membership is None:
        raise Http404
    return membership


def page_membership_get(request) -> Membership:
    """The workspace a page's own requests are about: the one the page names (`workspace`, its
    slug), else the current one. A tab keeps showing its workspace while another tab of the
    same session switches to another, so what it asks for later (its sidebar, its template
    picker) names the workspace it shows rather than the session's."""
    slug = request.GET.get("workspace") or request.POST.get("workspace")
    if slug:
        return membership_get(user=request.user, workspace_slug=slug)
    return current_membership_get(request)


def roles_assignable_by(*, membership: Membership) -> list[str]:
    """Roles this member may give others, by invitation or role change: the owner any but
    owner (ownership moves only by transfer), an admin member or viewer, anyone else none."""
    if membership.role == Role.OWNER:
        return [Role.ADMIN, Role.MEMBER, Role.VIEWER]
    if membership.role == Role.ADMIN:
        return [Role.MEMBER, Role.VIEWER]
    return []


def member_manageable_by(*, membership: Membership, target: Membership) -> bool:
    """Whether this member may change the target's role or remove them: not themselves, never
    the owner, and an admin only when the target holds a role the actor could give."""
    return (
        target.workspace_id == membership.workspace_id
        and target.pk != membership.pk
        and target.role in roles_assignable_by(membership=membership)
    )


def member_list(*, workspace: Workspace):
    return workspace.memberships.select_related("user").order_by("joined_at")


def invitation_list_pending(*, workspace: Workspace):
    return workspace.invitations.filter(
        accepted_at__isnull=True, revoked_at__isnull=True, expires_at__gt=timezone.now()
    ).select_related("invited_by")


def invitation_get_by_token(*, token: str) -> Invitation:
    invitation = Invitation.objects.select_related("workspace").filter(token=token).first()
    if invitation is None:
        raise Http404
    return invitation


def audit_event_list(*, workspace: Workspace):
    return AuditEvent.objects.filter(workspace=workspace).select_related("actor")


def workspace_list_deleted_with(*, user_ids) -> list[Workspace]:
    """The workspaces that go when these users are deleted: those nobody else is a member of
    (their personal workspaces, and teams they are alone in). docs/permissions.md."""
    user_ids = list(user_ids)
    return list(
        Workspace.objects.filter(memberships__user_id__in=user_ids)
        .exclude(pk__in=Membership.objects.exclude(user_id__in=user_ids).values("workspace_id"))
        .distinct()
        .order_by("pk")
    )


def owner_successor_get(*, workspace: Workspace, leaving: Membership) -> Membership | None:
    """Who owns the workspace when its owner's account is deleted: the highest role, and among
    equals the longest-standing member."""
    others = workspace.memberships.exclude(pk=leaving.pk).select_related("user")
    return min(
        others,
        key=lambda m: (-ROLE_RANK[Role(m.role)], m.joined_at, m.pk),
        default=None,
    )
