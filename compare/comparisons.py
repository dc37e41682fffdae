"""A side-by-side comparison: one question put to several models at once, each answer
streamed through the pipeline (gateway.pipeline) as the chat's are, into its own column.

A comparison lives in the process that runs it, in memory: nothing is saved while it runs.
Its frames go to the socket that asked for it. When that socket closes, the answers go on
for COMPARE_RESUME_SECONDS: a socket of the same user on this process may take it back up
(`resume`, from a reloaded page or a reconnect) and is sent where it stands, then the rest.
Otherwise, or once the user signs out, its calls end (billed as the client gone). Each call
is billed as it ends (source "compare", reference "compare:<id>"); a stop closes the upstream
calls and bills what was produced. Once every answer has ended, the user may keep one: the
question and every answer become a chat conversation (services), the kept answer on screen
and the others a flip away, as regenerated answers are."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from django.conf import settings
from django.utils.translation import gettext_noop

from gateway import pipeline
from gateway.errors import GatewayError
from providers.types import Message as PromptMessage
from providers.types import TextDelta

logger = logging.getLogger(__name__)

MIN_MODELS = 2
MAX_MODELS = 4
FRAME_INTERVAL = 0.04  # seconds between two frames of one comparison: ~25 frames/s

# What `answer_finished` says of an answer that did not get that far (docs/websocket.md).
_FINISHED_UNSET = {
    "error_code": "",
    "error_message": "",
    "error_phrase": None,
    "retry_after": None,
    "served_model": "",
    "provider_kind": "",
    "input_tokens": None,
    "output_tokens": None,
    "cache_read_tokens": 0,
    "reasoning_tokens": 0,
    "tokens_estimated": False,
    "cost": None,
    "ttft_ms": None,
    "duration_ms": None,
}

# Strong references (the loop keeps weak ones), for `comparisons_wait`.
_tasks: set[asyncio.Task] = set()
# This process's comparisons that a socket may still take up, by id (`live_get`).
_live: dict[str, Comparison] = {}


@dataclass
class Answer:
    """One column: a model's answer as it streams, then how it ended."""

    slot: int
    model: str
    parts: list[str] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)  # streamed, not framed yet
    stream: pipeline.PipelineStream | None = None
    # Set once it ended: status (complete | stopped | error), and what the call used.
    finish: dict | None = None
    finished_frame: dict | None = None  # its `answer_finished`, for a socket that resumes

    @property
    def text(self) -> str:
        return "".join(self.parts)


class Comparison:
    """`send` takes each frame for the socket, in order (docs/websocket.md, "Comparing
    models"); `owner` is that socket. `run()` streams every answer and returns once all have
    ended; the comparison stays (`_live`) until it is ended (`end`): at once when replaced or
    signed out, else COMPARE_RESUME_SECONDS after its socket went (`detach`)."""

    def __init__(
        self,
        *,
        user,
        workspace,
        question: str,
        models: list[str],
        system_prompt: str = "",
        temperature: float | None = None,
        max_tokens: int | None = None,
        send: Callable[[dict], Awaitable[None]],
    ):
        self.id = uuid.uuid4().hex
        self.user = user
        self.workspace = workspace
        self.question = question
        self.system_prompt = system_prompt
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.answers = [Answer(slot=i, model=m) for i, m in enumerate(models)]
        self.kept_conversation_id: int | None = None
        self._send: Callable[[dict], Awaitable[None]] | None = send
        self.owner = None
        self.session_key: str | None = None  # the sign-in it was asked in
        self._frames: asyncio.Queue[dict | None] = asyncio.Queue()
        self._stopping: set[int] = set()
        self._task: asyncio.Task | None = None
        self._writer: asyncio.Task | None = None
        self._ending: asyncio.TimerHandle | None = None

    @property
    def running(self) -> bool:
        return any(a.finish is None for a in self.answers)

    def prompt(self) -> list[PromptMessage]:
        prompt = []
        if self.system_prompt.strip():
            prompt.append(PromptMessage(role="system", content=self.system_prompt))
        prompt.append(PromptMessage(role="user", content=self.question))
        return prompt

    def stop(self, slot: int | None = None) -> None:
        """Stop one answer, or every one still streaming: its upstream call is closed now."""
        for answer in self.answers:
            if slot is None or answer.slot == slot:
                self._stopping.add(answer.slot)
                if answer.stream is not None:
                    answer.stream.stop()

    def start(self, *, owner=None) -> asyncio.Task:
        loop = asyncio.get_running_loop()
        self.owner = owner
        self._writer = loop.create_task(self._write())
        self._task = loop.create_task(self.run())
        _tasks_keep(self._task)
        _live[self.id] = self
        return self._task

    def attach(self, send: Callable[[dict], Awaitable[None]], *, owner) -> None:
        """A socket takes the comparison up: its first frame is `comparison_resumed` (where
        every answer stands), then the rest as it comes. A socket that had it is told
        `comparison_moved` and gets nothing more."""
        if self._ending is not None:
            self._ending.cancel()
            self._ending = None
        previous, previous_owner = self._send, self.owner
        # Whatever was waiting to be sent is in the snapshot.
        while not self._frames.empty():
            self._frames.get_nowait()
        for answer in self.answers:
            answer.pending.clear()
        self._send, self.owner = send, owner
        self._frames.put_nowait(self.snapshot())
        if previous is not None and previous_owner is not owner:
            moved = {"type": "comparison_moved", "comparison_id": self.id}
            _tasks_keep(asyncio.get_running_loop().create_task(_told(previous, moved)))

    def detach(self, *, owner) -> None:
        """`owner`, the socket that had the comparison, went away: the answers go on, and the
        comparison ends unless a socket takes it up within COMPARE_RESUME_SECONDS."""
        if owner is not self.owner or self.id not in _live:
            return
        self._send = self.owner = None
        self._ending = asyncio.get_running_loop().call_later(
            settings.COMPARE_RESUME_SECONDS, self.end
        )

    def end(self) -> None:
        """Now: the answers still streaming end (their calls closed, billed as the client
        gone), no frame is sent any more, and no socket can take it up."""
        if self._ending is not None:
            self._ending.cancel()
            self._ending = None
        _live.pop(self.id, None)
        self._send = self.owner = None
        if self._task is not None and not self._task.done():
            self._task.cancel()
        self._frames.put_nowait(None)

    def snapshot(self) -> dict:
        return {
            "type": "comparison_resumed",
            "comparison_id": self.id,
            "question": self.question,
            "models": [a.model for a in self.answers],
            "running": self.running,
            "answers": [
                {
                    "slot": a.slot,
                    "text": a.text,
                    "finished": dict(a.finished_frame) if a.finished_frame else None,
                }
                for a in self.answers
            ],
            "kept_conversation_id": self.kept_conversation_id,
        }

    async def run(self) -> None:
        ticker = asyncio.create_task(self._tick())
        try:
            await asyncio.gather(*(self._answer(a) for a in self.answers))
            self._frames.put_nowait({"type": "comparison_finished", "comparison_id": self.id})
        finally:
            ticker.cancel()

    async def _answer(self, answer: Answer) -> None:
        finish: dict = {"status": "complete"}
        answer.stream = pipeline.stream(
            user=self.user,
            workspace=self.workspace,
            model=answer.model,
            messages=self.prompt(),
            temperature=self.temperature,
            max_tokens=self.max_tokens,
            source="compare",
            reference=f"compare:{self.id}",
        )
        if answer.slot in self._stopping:
            answer.stream.stop()
        try:
            async for event in answer.stream:
                if isinstance(event, TextDelta) and event.text:
                    answer.parts.append(event.text)
                    answer.pending.append(event.text)
            if answer.stream.outcome and answer.stream.outcome.status == "stopped":
                finish["status"] = "stopped"
        except GatewayError as error:
            finish.update(
                status="error",
                error_code=error.code,
                error_message=error.message,
                error_phrase=error.phrase,
                retry_after=error.retry_after,
            )
        except asyncio.CancelledError:
            raise  # the socket closed: the pipeline bills the call as the client gone
        except Exception:
            logger.exception("comparison %s: the answer of %s failed", self.id, answer.model)
            finish.update(
                status="error",
                error_code="internal",
                error_message=gettext_noop("Something went wrong while generating this answer."),
            )
        finally:
            await answer.stream.aclose()
        outcome = answer.stream.outcome
        if outcome is not None:
            finish.update(outcome.answer_fields())
        answer.finish = finish
        self._flush(answer)
        frame = {
            "type": "answer_finished",
            "comparison_id": self.id,
            "slot": answer.slot,
            **_FINISHED_UNSET,
            **finish,
        }
        if frame["cost"] is not None:
            frame["cost"] = str(frame["cost"])
        answer.finished_frame = frame
        self._frames.put_nowait(dict(frame))  # the socket's copy: told in its language

    def _flush(self, answer: Answer) -> None:
        if answer.pending:
            text = "".join(answer.pending)
            answer.pending.clear()
            self._frames.put_nowait(
                {"type": "delta", "comparison_id": self.id, "slot": answer.slot, "text": text}
            )

    async def _tick(self) -> None:
        """The text streamed meanwhile leaves every FRAME_INTERVAL, one frame per answer."""
        while True:
            await asyncio.sleep(FRAME_INTERVAL)
            for answer in self.answers:
                self._flush(answer)

    async def _write(self) -> None:
        """The one sender of this comparison's frames: they reach the socket in order. With
        no socket they are dropped: a socket that takes the comparison up gets a snapshot."""
        while (frame := await self._frames.get()) is not None:
            send = self._send
            if send is None:
                continue
            try:
                await send(frame)
            except Exception:  # the socket is going away: its close detaches it
                logger.debug("comparison %s: a frame was not sent", self.id, exc_info=True)

    def kept_answers(self) -> list[dict]:
        """The answers worth keeping (some text, not failed), as
        chat.services.conversation_create_with_answers takes them."""
        return [
            {
                "slot": a.slot,
                "model": a.model,
                "content": a.text,
                **{k: v for k, v in a.finish.items() if not k.startswith(("error", "retry"))},
            }
            for a in self.answers
            if a.finish is not None and a.finish["status"] != "error" and a.text.strip()
        ]


def live_get(comparison_id, *, user_id: int) -> Comparison | None:
    """This process's comparison with that id, if it is this user's and not ended."""
    comparison = _live.get(comparison_id) if isinstance(comparison_id, str) else None
    if comparison is None or comparison.user.pk != user_id:
        return None
    return comparison


def comparisons_end_for_session(user_id: int, session_key: str | None) -> None:
    """The session signed out (or the user was deactivated: each of their sockets is told):
    the comparisons asked for in it on this process end now, whether or not a socket has
    them."""
    for comparison in list(_live.values()):
        if comparison.user.pk == user_id and comparison.session_key == session_key:
            comparison.end()


async def comparisons_interrupt(timeout: float = 5.0) -> None:
    """The process is stopping: every comparison ends now, its calls billed for what they
    used (at most `timeout` seconds)."""
    for comparison in list(_live.values()):
        comparison.end()
    if _tasks:
        await asyncio.wait(list(_tasks), timeout=timeout)


def _tasks_keep(task: asyncio.Task) -> None:
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)


async def _told(send, frame: dict) -> None:
    try:
        await send(frame)
    except Exception:  # that socket is going away
        logger.debug("a comparison_moved frame was not sent", exc_info=True)


async def comparisons_wait() -> None:
    """Wait for every comparison of this process to run to its end (tests)."""
    while _tasks:
        await asyncio.gather(*list(_tasks), return_exceptions=True)
