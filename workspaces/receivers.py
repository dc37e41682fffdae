"""The accounts app sits above workspaces and cannot call it, so a new user's personal
workspace is made here, whichever way the user was created (sign-up, admin, createsuperuser)."""

from django.conf import settings
from django.db.models.signals import post_save
from django.dispatch import receiver

from .services import workspace_create_personal


@receiver(post_save, sender=settings.AUTH_USER_MODEL, dispatch_uid="workspace_personal_on_signup")
def _create_personal_workspace(sender, instance, created: bool, raw: bool = False, **kwargs):
    if created and not raw:
        workspace_create_personal(user=instance)
