"""Channel-layer group names and the event schema of the chat, in one place.

Events travel through the channel layer as `{"type": "chat.<event>", ...}`; the consumer relays
each one to its socket unchanged except that `type` loses its `chat.` prefix (`chat.delta` →
`{"type": "delta"}`); a delta carries that client frame ready-encoded. docs/websocket.md
documents every frame.
"""

from __future__ import annotations

import json


# Every tab (of any process) showing a conversation listens here.
def conversation_group(conversation_id: int) -> str:
    return f"chat.conversation.{conversation_id}"


# The task generating an answer for a conversation listens here, whichever process runs it:
# stop and sync requests from any tab reach it through this group.
def control_group(conversation_id: int) -> str:
    return f"chat.control.{conversation_id}"


# Everything about a user's conversation list (titles, new conversations) for their sidebars.
def user_group(user_id: int) -> str:
    return f"chat.user.{user_id}"


# The sockets of one signed-in browser session: closed when it signs out.
def session_group(session_key: str) -> str:
    return f"chat.session.{session_key}"


# --- server → client events (sent to conversation_group / user_group) ---------------------


def signed_out() -> dict:
    """The session signed out, or the user was deactivated or deleted (to session_group or
    user_group): the socket closes as an unauthenticated one would (4401)."""
    return {"type": "chat.signed_out"}


def language_changed(*, language: str) -> dict:
    """The user saved another language (to user_group): each socket says its later frames in
    it ("": the browser's, as at the socket's handshake) and tells its page, which follows
    (docs/websocket.md)."""
    return {"type": "chat.language_changed", "language": language}


def generation_started(*, conversation_id: int, message_id: int, parent_id: int | None) -> dict:
    return {
        "type": "chat.generation_started",
        "conversation_id": conversation_id,
        "message_id": message_id,
        "parent_id": parent_id,
    }


def delta(*, conversation_id: int, message_id: int, offset: int, text: str) -> dict:
    """`offset` is the length of the answer before `text`: a client that holds a different
    length knows it missed or repeated a frame and asks for a snapshot.

    Deltas are most of the traffic, so the event also carries its client frame as `frame`,
    JSON-encoded once here rather than by every socket that relays it."""
    frame = {
        "type": "delta",
        "conversation_id": conversation_id,
        "message_id": message_id,
        "offset": offset,
        "text": text,
    }
    return {**frame, "type": "chat.delta", "frame": json.dumps(frame)}


def snapshot(*, conversation_id: int, message_id: int, text: str) -> dict:
    return {
        "type": "chat.snapshot",
        "conversation_id": conversation_id,
        "message_id": message_id,
        "text": text,
    }


def generation_finished(
    *,
    conversation_id: int,
    message_id: int,
    status: str,
    error_code: str = "",
    error_message: str = "",
    error_phrase: dict | None = None,
) -> dict:
    """`error_message` as stored (in English), `error_phrase` the message with its values
    (aurax.phrases) when it has any: each socket says it in its reader's language and sends
    the frame without the phrase."""
    return {
        "type": "chat.generation_finished",
        "conversation_id": conversation_id,
        "message_id": message_id,
        "status": status,
        "error_code": error_code,
        "error_message": error_message,
        "error_phrase": error_phrase,
    }


def conversation_changed(
    *, conversation_id: int, title: str, title_usage: dict | None = None
) -> dict:
    """`title_usage`, after a call for the conversation's automatic title (whether or not
    its title changed: the demo model's reply, an empty one or a failed call titles nothing,
    and a title the user typed first stays): what that call used and cost. It is counted in
    the conversation's running total: the page adds it."""
    event = {
        "type": "chat.conversation_changed",
        "conversation_id": conversation_id,
        "title": title,
    }
    if title_usage is not None:
        event["title_usage"] = title_usage
    return event


def title_usage(
    *, call_id: str, input_tokens: int, output_tokens: int, cost, estimated: bool
) -> dict:
    """`call_id`: the call's ledger row (its `uid`, as 32 hex digits), which the thread's
    total names once it counts it (`data-title-calls`); `cost`: a Decimal of USD, or None
    when the price is unknown; sent as a plain decimal string."""
    return {
        "call_id": call_id,
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "cost": None if cost is None else format(cost, "f"),
        "estimated": estimated,
    }


# Why access was lost, so the page can say it: the conversation was unshared, or the user is
# no longer a member of its workspace.
ACCESS_LOST_UNSHARED = "unshared"
ACCESS_LOST_MEMBERSHIP_ENDED = "membership_ended"


def access_changed(*, conversation_id: int | None, reason: str = ACCESS_LOST_UNSHARED) -> dict:
    """Who may see a conversation changed (unshared; a member removed): every socket re-checks
    its subscriptions (this one, or all of them when None) and leaves what it lost."""
    return {"type": "chat.access_changed", "conversation_id": conversation_id, "reason": reason}


def access_lost(*, conversation_id: int, reason: str = ACCESS_LOST_UNSHARED) -> dict:
    """Sent to one socket that was subscribed to a conversation it may no longer read."""
    return {"type": "access_lost", "conversation_id": conversation_id, "reason": reason}


def error(*, code: str, message: str, conversation_id: int | None = None, **extra) -> dict:
    """Only ever sent to the one socket whose request failed, never to a group."""
    return {
        "type": "chat.error",
        "code": code,
        "message": message,
        "conversation_id": conversation_id,
        **extra,
    }


# --- control events (sent to control_group, consumed by the generating task) -------------


def stop_request(*, conversation_id: int) -> dict:
    return {"type": "chat.stop", "conversation_id": conversation_id}


def sync_request(*, conversation_id: int, reply_channel: str) -> dict:
    return {"type": "chat.sync", "conversation_id": conversation_id, "reply_channel": reply_channel}


# Frames a client may send, and the fields each needs.
CLIENT_FRAMES = {
    "subscribe": ("conversation_id",),
    "unsubscribe": ("conversation_id",),
    "send": ("content",),
    "stop": ("conversation_id",),
    "regenerate": ("message_id",),
    "edit": ("message_id", "content"),
    "sync": ("conversation_id",),
    "ping": (),
}
