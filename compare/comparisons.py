"""A side-by-side comparison: one question put to several models at once, each answer
streamed through the pipeline (gateway.pipeline) as the chat's are, into its own column.

A comparison belongs to the socket that asked for it and lives as long as it: nothing is
saved while it runs. Each call is billed as it ends (source "compare", reference
"compare:<id>"); a stop closes the upstream calls and bills what was produced, a socket that
closes ends them the same way (billed as the client gone). Once every answer has ended, the
user may keep one: the question and every answer become a chat conversation (services),
the kept answer on screen and the others a flip away, as regenerated answers are."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

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
    "tokens_estimated": False,
    "cost": None,
    "ttft_ms": None,
    "duration_ms": None,
}

# Strong references (the loop keeps weak ones), for `comparisons_wait`.
_tasks: set[asyncio.Task] = set()


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

    @property
    def text(self) -> str:
        return "".join(self.parts)


class Comparison:
    """`send` takes each frame for the socket, in order (docs/websocket.md, "Comparing
    models"). `run()` streams every answer and returns once all have ended."""

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
        self._send = send
        self._frames: asyncio.Queue[dict | None] = asyncio.Queue()
        self._stopping: set[int] = set()

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

    def start(self) -> asyncio.Task:
        task = asyncio.get_running_loop().create_task(self.run())
        _tasks.add(task)
        task.add_done_callback(_tasks.discard)
        return task

    async def run(self) -> None:
        writer = asyncio.create_task(self._write())
        ticker = asyncio.create_task(self._tick())
        try:
            await asyncio.gather(*(self._answer(a) for a in self.answers))
            self._frames.put_nowait({"type": "comparison_finished", "comparison_id": self.id})
        finally:
            ticker.cancel()
            self._frames.put_nowait(None)
            # Cancelled (the socket closed): the frames left have nobody to go to.
            if not writer.done() and asyncio.current_task().cancelling():
                writer.cancel()
            await asyncio.gather(writer, return_exceptions=True)

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
        self._frames.put_nowait(frame)

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
        """The one sender of this comparison's frames: they reach the socket in order."""
        while (frame := await self._frames.get()) is not None:
            try:
                await self._send(frame)
            except Exception:  # the socket went away: its close ends the comparison
                logger.debug("comparison %s: a frame was not sent", self.id, exc_info=True)
                return

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


async def comparisons_wait() -> None:
    """Wait for every comparison of this process (tests)."""
    while _tasks:
        await asyncio.gather(*list(_tasks), return_exceptions=True)
