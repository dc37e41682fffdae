from .models import Role
from .selectors import current_membership_get, workspace_list_for_user


def workspace(request):
    """The switcher's data. Lazy: pages that never show the shell pay nothing."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}

    cache = {}

    def current():
        if "m" not in cache:
            try:
                cache["m"] = current_membership_get(request)
            except Exception:  # a user with no workspace at all (should not happen) sees none
                cache["m"] = None
        return cache["m"]

    return {
        "current_membership": current,
        "user_workspaces": lambda: workspace_list_for_user(user=user),
        # The usage and plan pages are the workspace's admins' (billing.views).
        "current_membership_is_admin": lambda: (
            current() is not None and current().has_role(Role.ADMIN)
        ),
    }
