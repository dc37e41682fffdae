"""What the next message would cost to send, shown under the composer before sending."""

from __future__ import annotations

from billing.pricing import cost_compute
from billing.tokens import messages_tokens_estimate
from providers.routing import candidates_resolve_sync
from providers.types import Message as PromptMessage

from .attachments import MAX_PER_MESSAGE, prompt_message
from .models import Conversation
from .selectors import attachments_for_prompt, attachments_unsent, message_path


def input_cost_estimate(
    *,
    user,
    workspace,
    model: str,
    content: str,
    conversation: Conversation | None,
    attachment_ids=(),
) -> dict:
    """Tokens and cost of the prompt the model would receive (system prompt, the branch on
    screen and the new text with the files attached to it: `attachment_ids`, uploads of the
    user's not sent yet), priced for the first provider the model resolves to. Files count as
    the model is given them: a document's text, an image as TOKENS_PER_IMAGE."""
    prompt: list[PromptMessage] = []
    if conversation is not None:
        if conversation.system_prompt:
            prompt.append(PromptMessage("system", conversation.system_prompt))
        path = message_path(conversation=conversation)
        sent = attachments_for_prompt(
            conversation_id=conversation.pk, messages=path, with_bytes=False
        )
        for m in path:
            if m.attachments:
                files = [sent[d["id"]] for d in m.attachments if d["id"] in sent]
                prompt.append(prompt_message(content=m.content, files=files))
            else:
                prompt.append(PromptMessage(m.role, m.content))
    waiting = attachments_unsent(user=user).filter(
        pk__in=[i for i in attachment_ids if str(i).isdigit()][:MAX_PER_MESSAGE]
    )
    prompt.append(prompt_message(content=content, files=list(waiting.only("kind", "name", "text"))))
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
