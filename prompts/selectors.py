from django.db.models import Q
from django.http import Http404

from workspaces.models import Membership

from .models import PromptTemplate


def prompt_template_list(*, membership: Membership, query: str = ""):
    """The workspace's shared templates and the user's own personal ones there."""
    templates = (
        PromptTemplate.objects.filter(workspace=membership.workspace)
        .filter(Q(owner__isnull=True) | Q(owner=membership.user))
        .select_related("created_by", "updated_by")
    )
    if query:
        templates = templates.filter(Q(title__icontains=query) | Q(body__icontains=query))
    return templates


def prompt_template_get(*, membership: Membership, template_id: int) -> PromptTemplate:
    """404 for another workspace's template or someone else's personal one."""
    template = prompt_template_list(membership=membership).filter(pk=template_id).first()
    if template is None:
        raise Http404
    return template
