from django.db import transaction
from django.utils.crypto import get_random_string
from django.utils.text import slugify

from .models import Membership, Role, Workspace


def _unique_slug(name: str) -> str:
    base = slugify(name)[:40] or "workspace"
    slug = base
    while Workspace.objects.filter(slug=slug).exists():
        slug = f"{base}-{get_random_string(6, 'abcdefghijklmnopqrstuvwxyz0123456789')}"
    return slug


@transaction.atomic
def workspace_create(*, owner, name: str, is_personal: bool = False, color: str = "#6366f1") -> Workspace:
    workspace = Workspace.objects.create(
        name=name, slug=_unique_slug(name), is_personal=is_personal, color=color
    )
    Membership.objects.create(workspace=workspace, user=owner, role=Role.OWNER)
    return workspace


def workspace_create_personal(*, user) -> Workspace:
    existing = Workspace.objects.filter(is_personal=True, memberships__user=user).first()
    if existing:
        return existing
    local_part = user.email.split("@")[0]
    return workspace_create(owner=user, name=local_part, is_personal=True)
