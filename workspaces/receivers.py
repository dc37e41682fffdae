"""The accounts app sits above workspaces and cannot call it, so a new user's personal
workspace is made here, whichever way the user was created (sign-up, admin, createsuperuser),
and a deleted user's workspaces are settled here, whichever way the user was deleted."""

from django.conf import settings
from django.db.models.signals import post_save
from django.dispatch import receiver

from accounts.signals import user_deleting, user_deletion_requested

from .selectors import workspace_list_deleted_with
from .services import user_workspaces_release, workspace_create_personal


@receiver(post_save, sender=settings.AUTH_USER_MODEL, dispatch_uid="workspace_personal_on_signup")
def _create_personal_workspace(sender, instance, created: bool, raw: bool = False, **kwargs):
    if created and not raw:
        workspace_create_personal(user=instance)


@receiver(user_deleting, dispatch_uid="workspaces_user_deleting")
def _release_workspaces(sender, *, users, **kwargs):
    for user in users:
        user_workspaces_release(user=user)


@receiver(user_deletion_requested, dispatch_uid="workspaces_deleted_with_users")
def _workspaces_deleted_with(sender, *, user_ids, **kwargs):
    return workspace_list_deleted_with(user_ids=user_ids)
