"""What the next message would cost to send, shown under the composer before sending."""

from __future__ import annotations

from billing.pricing import cost_compute
from billing.tokens import messages_tokens_estimate
from providers.routing import candidates_resolve_sync
from providers.types import Message as PromptMessage

from .models import Conversation
from .selectors import message_path


def input_cost_estimate(
    *, user, workspace, model: str, content: str, conversation: Conversation | None
) -> dict:
    """Tokens and cost of the prompt the model would receive (system prompt, the branch on
    screen and the new text), priced for the first provider the model resolves to."""
    prompt: list[PromptMessage] = []
    if conversation is not None:
        if conversation.system_prompt:
            prompt.append(PromptMessage("system", conversation.system_prompt))
        prompt += [
            PromptMessage(m.role, m.content) for m in message_path(conversation=conversation)
        ]
    prompt.append(PromptMessage("user", content))
    candidates = (
        candidates_resolve_sync(user=user, workspace=workspace, model=model) if model else []
    )
    tokens = messages_tokens_estimate(prompt, model=candidates[0].model_id if candidates else "")
    if not candidates:
        return {"tokens": tokens, "cost": None, "known": False}
    cost = cost_compute(
        provider_kind=candidates[0].kind,
        model=candidates[0].model_id,
        input_tokens=tokens,
        output_tokens=0,
    )
    return {"tokens": tokens, "cost": str(cost.amount) if cost.known else None, "known": cost.known}
