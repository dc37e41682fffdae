"""Workspaces sits below chat and cannot call it; chat listens to what it announces."""

from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_out
from django.db.models.signals import post_delete, post_save

from accounts.signals import (
    user_deletion_spared,
    user_language_changed,
    user_models_requested,
)
from providers.selectors import model_choices_for
from workspaces.models import Membership
from workspaces.selectors import current_membership_get, workspace_list_deleted_with
from workspaces.signals import member_removed, workspace_models_requested

from . import events, selectors, services


def _member_removed(sender, *, workspace, user, **kwargs) -> None:
    services.conversations_member_removed(workspace=workspace, user=user)


def _user_deletion_spared(sender, *, user_ids, **kwargs) -> list:
    # As deleting settles it: in a workspace that stays, the users leave as removed members do.
    going = [workspace.pk for workspace in workspace_list_deleted_with(user_ids=user_ids)]
    staying = (
        Membership.objects.filter(user_id__in=user_ids)
        .exclude(workspace_id__in=going)
        .values("workspace_id")
    )
    return list(
        selectors.conversation_list_passing_to_owner(user_ids=user_ids, workspace_ids=staying)
    )


def _workspace_models_requested(sender, *, workspace, **kwargs) -> list[dict]:
    # What every member may pick in the chat's model menu, whatever keys of their own they add.
    return model_choices_for(user=None, workspace=workspace)


def _user_models_requested(sender, *, request, **kwargs) -> list[dict]:
    # The chat's model menu in the workspace the user is working in, their own keys included.
    workspace = current_membership_get(request).workspace
    return model_choices_for(user=request.user, workspace=workspace)


def _signed_out(sender, *, request, user, **kwargs) -> None:
    # The session's open chat tabs stop with it (a socket authenticates once, when it opens).
    session_key = getattr(getattr(request, "session", None), "session_key", None)
    if session_key:
        services.sockets_close(events.session_group(session_key))


def _user_saved(sender, *, instance, **kwargs) -> None:
    if not instance.is_active:  # deactivated: every open chat tab of the account stops
        services.sockets_close(events.user_group(instance.pk))


def _user_deleted(sender, *, instance, **kwargs) -> None:
    services.sockets_close(events.user_group(instance.pk))


def _language_changed(sender, *, user, language, **kwargs) -> None:
    # A socket learns its user's language when it opens: the open ones are told.
    services.sockets_language_set(user_id=user.pk, language=language)


def connect() -> None:
    user_logged_out.connect(_signed_out, dispatch_uid="chat_sockets_signed_out")
    post_save.connect(_user_saved, sender=get_user_model(), dispatch_uid="chat_sockets_user_saved")
    post_delete.connect(
        _user_deleted, sender=get_user_model(), dispatch_uid="chat_sockets_user_deleted"
    )
    user_language_changed.connect(_language_changed, dispatch_uid="chat_sockets_language")
    member_removed.connect(_member_removed, dispatch_uid="chat_conversations_member_removed")
    user_deletion_spared.connect(_user_deletion_spared, dispatch_uid="chat_user_deletion_spared")
    workspace_models_requested.connect(
        _workspace_models_requested, dispatch_uid="chat_workspace_models_requested"
    )
    user_models_requested.connect(_user_models_requested, dispatch_uid="chat_user_models_requested")
