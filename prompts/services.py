from django.core.exceptions import PermissionDenied
from django.db import transaction

from workspaces.models import Membership, Role
from workspaces.services import audit_record

from .models import PromptTemplate


def prompt_template_may_edit(*, membership: Membership, template: PromptTemplate) -> bool:
    return _may_edit(membership, template, template.is_personal)


def prompt_template_may_create(*, membership: Membership) -> bool:
    """Whether the role may make any template at all (a personal one is the lowest bar)."""
    return _may_edit(membership, None, True)


def _may_edit(membership: Membership, template: PromptTemplate | None, personal: bool) -> bool:
    if personal or (template is not None and template.is_personal):
        owner_ok = template is None or template.owner_id == membership.user_id
        return owner_ok and membership.has_role(Role.MEMBER)
    return membership.has_role(Role.ADMIN)


@transaction.atomic
def prompt_template_save(
    *,
    membership: Membership,
    title: str,
    body: str,
    personal: bool,
    template: PromptTemplate | None = None,
    ip: str | None = None,
) -> PromptTemplate:
    """Create or edit a template. Shared ones are managed by workspace admins; personal ones by
    their author (members and up)."""
    if not _may_edit(membership, template, personal):
        raise PermissionDenied
    creating = template is None
    if creating:
        template = PromptTemplate(workspace=membership.workspace, created_by=membership.user)
        template.owner = membership.user if personal else None
    template.title, template.body, template.updated_by = title, body, membership.user
    template.save()
    if not template.is_personal:
        audit_record(
            workspace=membership.workspace,
            actor=membership.user,
            action="prompt_template.create" if creating else "prompt_template.update",
            target=template,
            ip=ip,
        )
    return template


@transaction.atomic
def prompt_template_delete(
    *, membership: Membership, template: PromptTemplate, ip: str | None = None
) -> None:
    if not _may_edit(membership, template, template.is_personal):
        raise PermissionDenied
    if not template.is_personal:
        audit_record(
            workspace=membership.workspace,
            actor=membership.user,
            action="prompt_template.delete",
            target=template,
            ip=ip,
        )
    template.delete()
