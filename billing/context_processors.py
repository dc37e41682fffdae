from workspaces.selectors import current_membership_get

from .selectors import budget_banner_for


def budget_banner(request):
    """A banner in the shell when a budget of the current workspace passed its soft threshold.
    Lazy: computed only by pages that render the shell."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}

    def banner():
        try:
            membership = current_membership_get(request)
        except Exception:
            return None
        return budget_banner_for(membership.workspace_id, user.pk)

    return {"budget_banner": banner}
