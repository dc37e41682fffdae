"""Workspaces sits below chat and cannot call it; chat listens to what it announces."""

from workspaces.signals import member_removed

from . import services


def _member_removed(sender, *, workspace, user, **kwargs) -> None:
    services.conversations_member_removed(workspace=workspace, user=user)


def connect() -> None:
    member_removed.connect(_member_removed, dispatch_uid="chat_conversations_member_removed")
