"""Workspaces sits below chat and cannot call it; chat listens to what it announces."""

from providers.selectors import model_choices_for
from workspaces.signals import member_removed, workspace_models_requested

from . import services


def _member_removed(sender, *, workspace, user, **kwargs) -> None:
    services.conversations_member_removed(workspace=workspace, user=user)


def _workspace_models_requested(sender, *, workspace, **kwargs) -> list[dict]:
    # What every member may pick in the chat's model menu, whatever keys of their own they add.
    return model_choices_for(user=None, workspace=workspace)


def connect() -> None:
    member_removed.connect(_member_removed, dispatch_uid="chat_conversations_member_removed")
    workspace_models_requested.connect(
        _workspace_models_requested, dispatch_uid="chat_workspace_models_requested"
    )
