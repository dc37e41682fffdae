"""The comparison socket (/ws/compare/) is transport only: it authenticates, turns client
frames into actions (compare.actions) and sends the frames of the socket's comparison
(compare.comparisons). docs/websocket.md, "Comparing models", describes every frame."""

from __future__ import annotations

import logging

from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext_noop

from aurax.db_threads import db_call
from chat import events, generation
from chat.actions import ActionRefused
from chat.consumers import CLOSE_UNAUTHENTICATED, refusal, socket_language
from chat.selectors import answer_error_text
from chat.templatetags.chat_tags import usd
from gateway.errors import service_unavailable, store_unreachable

from . import actions, comparisons
from .comparisons import Comparison

logger = logging.getLogger(__name__)

CLIENT_FRAMES = ("compare", "resume", "stop", "keep", "ping")


class CompareConsumer(AsyncJsonWebsocketConsumer):
    comparison: Comparison | None = None

    async def connect(self):
        self.user = self.scope.get("user")
        if self.user is None or not self.user.is_authenticated:
            await self.accept()  # then closed with a code the page understands (chat.consumers)
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        self.language = socket_language(self.scope, self.user.language)
        self.session_key = getattr(self.scope.get("session"), "session_key", None)
        # Signed out or deactivated elsewhere: the socket closes (chat_signed_out).
        self.groups_joined = [events.user_group(self.user.pk)]
        if self.session_key:
            self.groups_joined.append(events.session_group(self.session_key))
        for group in self.groups_joined:
            await self.channel_layer.group_add(group, self.channel_name)
        await self.accept()

    def _mine(self) -> Comparison | None:
        """The socket's comparison, unless another socket has taken it up since."""
        comparison = self.comparison
        return comparison if comparison is not None and comparison.owner is self else None

    async def disconnect(self, code):
        if self.comparison is not None:
            # The answers go on for a while, for a reloaded page to take them up.
            self.comparison.detach(owner=self)
        for group in getattr(self, "groups_joined", ()):
            await self.channel_layer.group_discard(group, self.channel_name)

    async def dispatch(self, message):
        # The user's group also carries the chat's events (titles, sidebar changes): not ours.
        if message["type"].startswith("chat.") and not hasattr(
            self, message["type"].replace(".", "_")
        ):
            return
        await super().dispatch(message)

    # --- client → server ----------------------------------------------------------------

    async def receive_json(self, content, **kwargs):
        kind = content.get("type") if isinstance(content, dict) else None
        if kind not in CLIENT_FRAMES:
            await self._refuse({}, "invalid", gettext_noop("Unknown frame."))
            return
        try:
            await getattr(self, f"frame_{kind}")(content)
        except Http404:
            await self._refuse(content, "not_found", gettext_noop("Not found."))
        except PermissionDenied:
            await self._refuse(
                content,
                "forbidden",
                gettext_noop("Viewers of a workspace may read what is shared, not ask models."),
            )
        except ActionRefused as refused:
            await self._refuse(content, refused.code, refused.message, param=refused.param)
        except Exception as error:
            if not store_unreachable(error):
                raise
            logger.warning("%s frame refused: %s", kind, error)
            await self._refuse(content, "unavailable", service_unavailable().message)

    async def _refuse(self, frame, code, message, *, param=None):
        await self.send_json(refusal(frame, code, message, language=self.language, param=param))

    def _comparison_named(self, frame) -> Comparison:
        comparison = self._mine()
        if comparison is None or frame.get("comparison_id") != comparison.id:
            raise Http404  # another socket's, or one this socket replaced
        return comparison

    def _replace(self, *, end: bool = True) -> None:
        """The socket's comparison gives way to another: refused while it runs, else ended
        (it can no longer be kept); with `end` false, only the refusal."""
        mine = self._mine()
        if mine is not None and mine.running:
            raise ActionRefused(
                "busy", gettext_noop("A comparison is still running: stop it or wait for it.")
            )
        if mine is not None and end:
            mine.end()

    async def frame_ping(self, frame):
        await self.send_json({"type": "pong"})

    async def frame_compare(self, frame):
        self._replace(end=False)
        request = await db_call(actions.comparison_request, user=self.user, frame=frame)
        self._replace()  # the last one, ended only once this one is sure to start
        self.comparison = Comparison(**request, send=self._send_frame)
        self.comparison.session_key = self.session_key
        await self.send_json(
            {
                "type": "comparison_started",
                "comparison_id": self.comparison.id,
                "request_id": frame.get("request_id"),
                "models": request["models"],
            }
        )
        self.comparison.start(owner=self)

    async def frame_resume(self, frame):
        """A reloaded or reconnected page takes its comparison back up (this process's, of
        this user, not ended): `comparison_resumed`, then the rest of it."""
        comparison = comparisons.live_get(frame.get("comparison_id"), user_id=self.user.pk)
        if comparison is None:
            raise Http404
        if comparison is not self._mine():
            self._replace()
        self.comparison = comparison
        comparison.attach(self._send_frame, owner=self)

    async def frame_stop(self, frame):
        comparison = self._comparison_named(frame)
        slot = frame.get("slot")
        if slot is not None and (
            not isinstance(slot, int)
            or isinstance(slot, bool)
            or slot not in range(len(comparison.answers))
        ):
            raise ActionRefused("invalid", gettext_noop("No such answer."), param="slot")
        comparison.stop(slot)

    async def frame_keep(self, frame):
        comparison = self._comparison_named(frame)
        if comparison.running:
            raise ActionRefused(
                "busy", gettext_noop("Wait until every answer has ended, or stop them.")
            )
        if comparison.kept_conversation_id is None:
            comparison.kept_conversation_id = await db_call(
                actions.comparison_keep,
                user=self.user,
                comparison=comparison,
                slot=frame.get("slot"),
            )
            kept = comparison.answers[frame["slot"]]
            generation.title_generate_start(
                conversation_id=comparison.kept_conversation_id,
                user=self.user,
                workspace=comparison.workspace,
                model=kept.model,
                question=comparison.question,
                answer=kept.text,
            )
        conversation_id = comparison.kept_conversation_id
        await self.send_json(
            {
                "type": "kept",
                "comparison_id": comparison.id,
                "request_id": frame.get("request_id"),
                "conversation_id": conversation_id,
                "url": reverse("chat_conversation", args=[conversation_id]),
            }
        )

    # --- the comparison → client ----------------------------------------------------------

    def _finished_told(self, frame: dict) -> dict:
        """An `answer_finished` frame (a copy, as the socket is sent it): its cost as text and
        its error in the user's language."""
        frame = {**frame, "cost_text": usd(frame["cost"])}
        said = frame.pop("error_phrase", None)
        if frame["error_message"] or said:
            with translation.override(self.language):
                frame["error_message"] = answer_error_text(
                    error_message=frame["error_message"], error_phrase=said
                )
        return frame

    async def _send_frame(self, frame: dict) -> None:
        if frame["type"] == "answer_finished":
            frame = self._finished_told(frame)
        elif frame["type"] == "comparison_resumed":
            kept = frame.pop("kept_conversation_id")
            frame["kept_url"] = reverse("chat_conversation", args=[kept]) if kept else None
            for answer in frame["answers"]:
                if answer["finished"] is not None:
                    answer["finished"] = self._finished_told(answer["finished"])
        await self.send_json(frame)

    # --- channel layer → client -----------------------------------------------------------

    async def chat_signed_out(self, event):
        """Signed out in another tab, or the account deactivated or deleted: the user's
        comparisons on this process end now, and the socket closes."""
        comparisons.comparisons_end_for_session(self.user.pk, self.session_key)
        await self.close(code=CLOSE_UNAUTHENTICATED)

    async def chat_language_changed(self, event):
        self.language = socket_language(self.scope, event.get("language", ""))
