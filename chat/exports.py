"""A conversation's branch on screen as Markdown or JSON."""

from __future__ import annotations

import json

from .models import Conversation, Message


def _iso(value):
    return value.isoformat() if value else None


def conversation_markdown(*, conversation: Conversation, path: list[Message]) -> str:
    lines = [f"# {conversation.title or 'Conversation'}", ""]
    if conversation.system_prompt:
        lines += ["**System**", "", conversation.system_prompt, ""]
    for message in path:
        who = (
            "You"
            if message.role == Message.Role.USER
            else f"Assistant ({message.served_model or message.model})"
        )
        lines += [f"## {who}", "", message.content, ""]
        if message.attachments:
            names = ", ".join(f"`{a['name']}`" for a in message.attachments)
            lines += [f"_Attached: {names}_", ""]
        if message.status not in (Message.Status.COMPLETE, Message.Status.STREAMING):
            lines += [f"_({message.get_status_display()})_", ""]
    return "\n".join(lines)


def conversation_json(*, conversation: Conversation, path: list[Message]) -> str:
    data = {
        "id": conversation.pk,
        "title": conversation.title,
        "model": conversation.model,
        "system_prompt": conversation.system_prompt,
        "temperature": conversation.temperature,
        "max_tokens": conversation.max_tokens,
        "created_at": _iso(conversation.created_at),
        "messages": [
            {
                "id": m.pk,
                "parent_id": m.parent_id,
                "role": m.role,
                "content": m.content,
                "status": m.status,
                "model": m.served_model or m.model,
                "provider": m.provider_kind,
                "input_tokens": m.input_tokens,
                "output_tokens": m.output_tokens,
                "cache_read_tokens": m.cache_read_tokens,
                "reasoning_tokens": m.reasoning_tokens,
                "tokens_estimated": m.tokens_estimated,
                "cost": str(m.cost) if m.cost is not None else None,
                "ttft_ms": m.ttft_ms,
                "duration_ms": m.duration_ms,
                "error_code": m.error_code or None,
                # Named, not included: the files are downloaded from the conversation's page.
                "attachments": [
                    {k: a[k] for k in ("name", "kind", "media_type", "size")} for a in m.attachments
                ],
                "created_at": _iso(m.created_at),
            }
            for m in path
        ],
    }
    return json.dumps(data, indent=2, ensure_ascii=False)
