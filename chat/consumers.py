"""The chat socket is transport only: it authenticates, joins groups, turns client frames into
actions (chat.actions, which check access and call services) and relays `chat.<event>` events
from the channel layer to the browser. docs/websocket.md describes every frame.

Actions run on aurax.db_threads (see chat.generation): channels' `database_sync_to_async`
would queue every socket of the process on one thread. How the consumer reads the socket and the
channel layer: chat.socket_loop."""

from __future__ import annotations

import logging
from types import SimpleNamespace
from urllib.parse import parse_qs

from autobahn.exception import Disconnected
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from aurax.db_threads import db_call, db_start
from aurax.phrases import phrase_say
from gateway.errors import service_unavailable, store_unreachable

from . import actions, events, generation
from .selectors import answer_error_text
from .socket_loop import LeanLoopMixin

logger = logging.getLogger(__name__)

CLOSE_UNAUTHENTICATED = 4401


def _started(action, /, **kwargs):
    """An action that starts an answer, then the answer's generation prepared, in one
    database hop: ((conversation id, the answer row, ...), generation.Prepared)."""
    result = action(**kwargs)
    return result, generation.generation_prepare(answer=result[1])


def socket_language(scope, language: str) -> str:
    """The language the user's pages are in: `language`, the one saved in their account, else
    Django's choice from the socket's handshake (the language cookie, then Accept-Language)."""
    if language:
        return language
    headers = dict(scope.get("headers", ()))
    handshake = SimpleNamespace(
        COOKIES=scope.get("cookies", {}),
        META={"HTTP_ACCEPT_LANGUAGE": headers.get(b"accept-language", b"").decode("latin-1")},
    )
    return translation.get_language_from_request(handshake)


def refusal(frame: dict, code: str, message, *, language: str, param=None) -> dict:
    """The `error` frame refusing `frame`. `message` is said in English (marked for the
    catalog; a phrase when it has values) and told in `language`, the socket user's."""
    with translation.override(language):
        message = phrase_say(message) if isinstance(message, dict) else _(message)
    refused = {
        "type": "error",
        "code": code,
        "message": message,
        "request": frame.get("type"),
        "request_id": frame.get("request_id"),
    }
    if param is not None:
        refused["param"] = param  # the setting at fault: the page shows it there
    return refused


class ChatConsumer(LeanLoopMixin, AsyncJsonWebsocketConsumer):
    # chat.socket_loop: one long-lived reader task per source, no thread hop per message;
    # the deltas of answers streaming in this process are sent in the turn they leave in.
    direct_events = frozenset({"chat.delta"})
    socket_gone_errors = (Disconnected,)  # daphne's: "Attempt to send on a closed protocol"

    async def connect(self):
        self.user = self.scope.get("user")
        if self.user is None or not self.user.is_authenticated:
            # Accepted first: a socket closed before it is accepted is a refused handshake
            # (HTTP 403), which a browser sees as 1006, not as this code, and a page whose
            # session ended would try to reconnect for ever instead of going to sign in.
            await self.accept()
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        self.conversations: set[int] = set()
        self.language = socket_language(self.scope, self.user.language)
        session = self.scope.get("session")
        self.session_key = getattr(session, "session_key", None)
        await self.channel_layer.group_add(events.user_group(self.user.pk), self.channel_name)
        if self.session_key:
            await self.channel_layer.group_add(
                events.session_group(self.session_key), self.channel_name
            )
        await self.accept()
        # The page says the language it was drawn in: if the user's is another by now (saved
        # while the page was loading or its socket reconnecting), it is told as if just saved.
        page_language = parse_qs(self.scope.get("query_string", b"").decode("latin-1")).get(
            "page_language", [""]
        )[0]
        if page_language and page_language.lower() != self.language.lower():
            await self.send_json({"type": "language_changed", "language": self.language})

    async def disconnect(self, code):
        if not getattr(self, "conversations", None) and not hasattr(self, "user"):
            return
        if getattr(self, "user", None) is not None and self.user.is_authenticated:
            await self.channel_layer.group_discard(
                events.user_group(self.user.pk), self.channel_name
            )
        if getattr(self, "session_key", None):
            await self.channel_layer.group_discard(
                events.session_group(self.session_key), self.channel_name
            )
        for conversation_id in getattr(self, "conversations", set()):
            await self.channel_layer.group_discard(
                events.conversation_group(conversation_id), self.channel_name
            )

    # --- client → server ----------------------------------------------------------------

    async def receive_json(self, content, **kwargs):
        kind = content.get("type") if isinstance(content, dict) else None
        if kind not in events.CLIENT_FRAMES:
            await self._refuse({}, "invalid", gettext_noop("Unknown frame."))
            return
        handler = getattr(self, f"frame_{kind}")
        try:
            await handler(content)
        except Http404:
            await self._refuse(content, "not_found", gettext_noop("Not found."))
        except PermissionDenied:
            if kind == "send" and not content.get("conversation_id"):
                message = gettext_noop(
                    "Viewers of a workspace may read its shared conversations, not start one."
                )
            else:
                message = gettext_noop("You may read this conversation, not change it.")
            await self._refuse(content, "forbidden", message)
        except actions.ActionRefused as refused:
            await self._refuse(content, refused.code, refused.message, param=refused.param)
        except Exception as error:
            if not store_unreachable(error):
                raise  # the socket closes; the page reconnects
            # The database or Redis does not answer: refused like the rest, the socket open.
            logger.warning("%s frame refused: %s", kind, error)
            await self._refuse(content, "unavailable", service_unavailable().message)

    async def _refuse(self, frame, code, message, *, param=None):
        await self.send_json(refusal(frame, code, message, language=self.language, param=param))

    async def _subscribe(self, conversation_id: int) -> None:
        if conversation_id not in self.conversations:
            self.conversations.add(conversation_id)
            await self.channel_layer.group_add(
                events.conversation_group(conversation_id), self.channel_name
            )

    async def frame_ping(self, frame):
        await self.send_json({"type": "pong"})

    async def frame_subscribe(self, frame):
        conversation_id = await db_call(
            actions.conversation_access,
            user=self.user,
            conversation_id=frame.get("conversation_id"),
        )
        await self._subscribe(conversation_id)
        answer_id = await db_call(
            actions.streaming_answer, user=self.user, conversation_id=conversation_id
        )
        await self.send_json(
            {
                "type": "subscribed",
                "conversation_id": conversation_id,
                "streaming_message_id": answer_id,
            }
        )
        if answer_id is not None:
            await self._snapshot_request(conversation_id)

    async def frame_unsubscribe(self, frame):
        conversation_id = frame.get("conversation_id")
        if conversation_id in self.conversations:
            self.conversations.discard(conversation_id)
            await self.channel_layer.group_discard(
                events.conversation_group(conversation_id), self.channel_name
            )

    async def frame_sync(self, frame):
        conversation_id = await db_call(
            actions.conversation_access,
            user=self.user,
            conversation_id=frame.get("conversation_id"),
        )
        await self._snapshot_request(conversation_id)

    async def _snapshot_request(self, conversation_id: int):
        # The generating task answers with a snapshot straight to this socket.
        await self.channel_layer.group_send(
            events.control_group(conversation_id),
            events.sync_request(conversation_id=conversation_id, reply_channel=self.channel_name),
        )

    async def _answer_start(self, action, **kwargs) -> tuple:
        """Run an action that starts an answer: its generation starts, and this socket joins
        the conversation, in the loop turn the database hop returns in
        (generation.generation_start_on). The action's refusal is raised here."""
        hop = db_start(_started, action, user=self.user, **kwargs)
        return await generation.generation_start_on(hop, self._subscribe)

    async def frame_send(self, frame):
        conversation_id, _answer, created = await self._answer_start(
            actions.send, frame=frame, session=self.scope.get("session")
        )
        if created:
            await self.send_json(
                {
                    "type": "conversation_created",
                    "conversation_id": conversation_id,
                    "request_id": frame.get("request_id"),
                }
            )

    async def frame_regenerate(self, frame):
        await self._answer_start(actions.regenerate, frame=frame)

    async def frame_edit(self, frame):
        await self._answer_start(actions.edit, frame=frame)

    async def frame_stop(self, frame):
        conversation_id = await db_call(
            actions.conversation_access,
            user=self.user,
            conversation_id=frame.get("conversation_id"),
            access=actions.WRITE,
        )
        await self.channel_layer.group_send(
            events.control_group(conversation_id),
            events.stop_request(conversation_id=conversation_id),
        )

    # --- channel layer → client: every `chat.<event>` is relayed as `<event>` -------------

    async def _relay(self, event):
        await self.send_json({**event, "type": event["type"].removeprefix("chat.")})

    async def _relay_subscribed(self, event):
        # Frames already queued when this socket left the group (it lost access) stop here.
        if event.get("conversation_id") in self.conversations:
            await self._relay(event)

    async def chat_delta(self, event):
        if event["conversation_id"] in self.conversations:
            await self.send(text_data=event["frame"])

    chat_generation_started = _relay_subscribed
    chat_snapshot = _relay_subscribed

    async def chat_generation_finished(self, event):
        if event.get("conversation_id") not in self.conversations:
            return
        frame = {**event, "type": "generation_finished"}
        said = frame.pop("error_phrase", None)
        if frame.get("error_message") or said:
            # Stored in English (or as a phrase with its values): told in the language of
            # this socket's user, as the answer is when the page draws it.
            with translation.override(self.language):
                frame["error_message"] = answer_error_text(
                    error_message=frame.get("error_message", ""), error_phrase=said
                )
        await self.send_json(frame)

    chat_conversation_changed = _relay

    async def chat_language_changed(self, event):
        """The user saved another language (in another tab, say): later frames are said in it,
        and the page is told (it draws its own text again)."""
        self.language = socket_language(self.scope, event.get("language", ""))
        await self.send_json({"type": "language_changed", "language": self.language})

    async def chat_signed_out(self, event):
        """Signed out in another tab, or the account deactivated or deleted: the socket stops
        taking frames at once (the page then goes to the sign-in page)."""
        await self.close(code=CLOSE_UNAUTHENTICATED)

    async def chat_access_changed(self, event):
        """Leave every subscribed conversation this user may no longer read."""
        candidates = (
            {event["conversation_id"]} & self.conversations
            if event.get("conversation_id") is not None
            else set(self.conversations)
        )
        if not candidates:
            return
        readable = await db_call(
            actions.conversations_still_readable, user=self.user, conversation_ids=candidates
        )
        for conversation_id in candidates - readable:
            self.conversations.discard(conversation_id)
            await self.channel_layer.group_discard(
                events.conversation_group(conversation_id), self.channel_name
            )
            await self.send_json(
                events.access_lost(
                    conversation_id=conversation_id,
                    reason=event.get("reason", events.ACCESS_LOST_UNSHARED),
                )
            )
