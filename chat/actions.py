"""What a socket frame may ask for, as plain sync functions: check access with the selectors,
call one service, answer with ids. The consumer runs them on aurax.db_threads."""

from __future__ import annotations

from importlib import import_module
from types import SimpleNamespace

from django.conf import settings as django_settings
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.utils.translation import gettext_noop

from aurax.phrases import number, phrase
from workspaces.models import Role
from workspaces.selectors import current_membership_get, membership_get

from . import services
from .attachments import MAX_PER_MESSAGE
from .models import Message
from .selectors import (
    READ,
    WRITE,
    attachments_unsent_get,
    conversation_get_for_user,
    message_get_for_user,
    message_streaming_for_conversation,
)

MAX_CONTENT = 200_000


class ActionRefused(Exception):
    """`message`: a message id (marked for the catalog), or a phrase with its values
    (aurax.phrases); the socket says it in its user's language. `param`: the setting at
    fault, when it is one."""

    def __init__(self, code: str, message: str | dict, *, param: str | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.param = param


def _content_clean(content, *, files: bool = False) -> str:
    """The message's text; it may be empty when files go with it."""
    if content is None and files:
        content = ""
    if not isinstance(content, str) or not (content.strip() or files):
        raise ActionRefused("invalid", gettext_noop("The message is empty."))
    if len(content) > MAX_CONTENT:
        raise ActionRefused("invalid", gettext_noop("The message is too long."))
    return content


def _settings_from(frame: dict) -> dict:
    settings = {}
    if isinstance(frame.get("model"), str):
        settings["model"] = frame["model"][:200]
    if isinstance(frame.get("system_prompt"), str):
        settings["system_prompt"] = frame["system_prompt"][:50_000]
    for name in ("temperature", "max_tokens"):
        if name in frame:
            settings[name] = frame[name]
    return settings


def _busy() -> ActionRefused:
    return ActionRefused(
        "busy", gettext_noop("An answer is still being generated in this conversation.")
    )


def conversation_access(*, user, conversation_id, access: str = READ) -> int:
    return conversation_get_for_user(user=user, conversation_id=conversation_id, access=access).pk


def conversations_still_readable(*, user, conversation_ids) -> set[int]:
    readable = set()
    for conversation_id in conversation_ids:
        try:
            readable.add(conversation_access(user=user, conversation_id=conversation_id))
        except (Http404, PermissionDenied):
            pass
    return readable


def _workspace_for_new_conversation(*, user, frame: dict, session):
    """The workspace the page showed (its slug comes with the frame), else the one currently
    chosen in the switcher, read fresh from the session: the socket's copy is as old as the
    socket. Viewers cannot start conversations."""
    if isinstance(frame.get("workspace"), str) and frame["workspace"]:
        membership = membership_get(user=user, workspace_slug=frame["workspace"])
    else:
        key = getattr(session, "session_key", None)
        store = import_module(django_settings.SESSION_ENGINE).SessionStore(key)
        membership = current_membership_get(SimpleNamespace(user=user, session=store))
    if not membership.has_role(Role.MEMBER):
        raise PermissionDenied
    return membership.workspace


def _attachment_ids(frame: dict) -> list:
    ids = frame.get("attachments") or []
    if not isinstance(ids, list):
        raise ActionRefused("invalid", gettext_noop("The attached files are not a list."))
    if len(ids) > MAX_PER_MESSAGE:
        raise ActionRefused(
            "invalid",
            phrase(
                gettext_noop("A message can carry at most %(count)s files."),
                count=number(MAX_PER_MESSAGE),
            ),
        )
    return ids


ATTACHMENTS_GONE = ActionRefused(
    "attachment_not_found",
    gettext_noop("An attached file is no longer there (sent from another tab?): attach it again."),
)


def send(*, user, frame: dict, session=None) -> tuple[int, Message, bool]:
    """(conversation id, the streaming answer, whether the conversation is new). The files
    are checked before a new conversation is made: a refused send leaves nothing behind."""
    attachment_ids = _attachment_ids(frame)
    content = _content_clean(frame.get("content"), files=bool(attachment_ids))
    settings = _settings_from(frame)
    try:
        conversation = None
        if frame.get("conversation_id"):
            conversation = conversation_get_for_user(
                user=user, conversation_id=frame["conversation_id"], access=WRITE
            )
            workspace = conversation.workspace
        else:
            workspace = _workspace_for_new_conversation(user=user, frame=frame, session=session)
        files = _attachments_get(user=user, workspace=workspace, attachment_ids=attachment_ids)
        created = conversation is None
        if created:
            conversation = services.conversation_create(user=user, workspace=workspace, **settings)
        elif settings:
            services.conversation_settings_update(conversation=conversation, **settings)
        _question, answer = services.message_send(
            conversation=conversation, content=content, attachments=files
        )
    except services.ConversationBusy:
        raise _busy() from None
    except services.AttachmentsGone:
        raise ATTACHMENTS_GONE from None
    except services.SettingsRefused as refused:  # nothing was saved, nor sent
        raise ActionRefused(refused.code, refused.said, param=refused.param) from None
    return conversation.pk, answer, created


def _attachments_get(*, user, workspace, attachment_ids: list) -> list:
    if not attachment_ids:
        return []
    try:
        return attachments_unsent_get(user=user, workspace=workspace, attachment_ids=attachment_ids)
    except Http404:
        raise ATTACHMENTS_GONE from None


def regenerate(*, user, frame: dict) -> tuple[int, Message]:
    message = message_get_for_user(user=user, message_id=frame.get("message_id"), access=WRITE)
    try:
        answer = services.message_regenerate(message=message)
    except services.ConversationBusy:
        raise _busy() from None
    except services.MessageNotEditable:
        raise ActionRefused(
            "invalid", gettext_noop("This message cannot be regenerated.")
        ) from None
    return message.conversation_id, answer


def edit(*, user, frame: dict) -> tuple[int, Message]:
    message = message_get_for_user(user=user, message_id=frame.get("message_id"), access=WRITE)
    content = _content_clean(frame.get("content"))
    try:
        _question, answer = services.message_edit(message=message, content=content)
    except services.ConversationBusy:
        raise _busy() from None
    except services.MessageNotEditable:
        raise ActionRefused(
            "invalid", gettext_noop("Only your own messages can be edited.")
        ) from None
    return message.conversation_id, answer


def streaming_answer(*, user, conversation_id) -> int | None:
    conversation = conversation_get_for_user(
        user=user, conversation_id=conversation_id, access=READ
    )
    answer = message_streaming_for_conversation(conversation_id=conversation.pk)
    return answer.pk if answer else None


NOT_FOUND = ActionRefused("not_found", gettext_noop("Not found."))

__all__ = ["ActionRefused", "Http404", "Message", "NOT_FOUND"]
