from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.db.models import Count, Exists, OuterRef, Q, Sum
from django.http import Http404
from django.utils import timezone

from workspaces.models import Membership

from .models import Conversation, Message

SIDEBAR_PAGE_SIZE = 50


def _visible_conversations(*, user):
    """Conversations a user may open: their own, in a workspace they still belong to."""
    if not user.is_authenticated:
        return Conversation.objects.none()
    return Conversation.objects.filter(
        user=user,
        workspace__in=Membership.objects.filter(user=user).values("workspace"),
    )


def conversation_get_for_user(*, user, conversation_id) -> Conversation:
    """The access helper for conversations: 404 for a missing or foreign one alike."""
    try:
        conversation_id = int(conversation_id)
    except (TypeError, ValueError):
        raise Http404 from None
    conversation = (
        _visible_conversations(user=user).select_related("workspace").filter(pk=conversation_id)
    ).first()
    if conversation is None:
        raise Http404
    return conversation


def message_get_for_user(*, user, message_id) -> Message:
    try:
        message_id = int(message_id)
    except (TypeError, ValueError):
        raise Http404 from None
    message = (
        Message.objects.select_related("conversation", "conversation__workspace")
        .filter(pk=message_id, conversation__in=_visible_conversations(user=user))
        .first()
    )
    if message is None:
        raise Http404
    return message


def conversation_list_for_user(*, user, workspace, query: str = "", before=None):
    """One page of the sidebar, pinned first then newest first. `before` is the cursor
    `(pinned, updated_at, id)` of the last row already shown (keyset pagination: every page
    costs the same with thousands of conversations)."""
    qs = _visible_conversations(user=user).filter(workspace=workspace)
    query = query.strip()
    if query:
        matching_messages = Message.objects.filter(
            conversation=OuterRef("pk"), content__icontains=query
        )
        qs = qs.filter(Q(title__icontains=query) | Exists(matching_messages))
    if before is not None:
        pinned, updated_at, pk = before
        qs = qs.filter(
            Q(pinned__lt=pinned)
            | Q(pinned=pinned, updated_at__lt=updated_at)
            | Q(pinned=pinned, updated_at=updated_at, pk__lt=pk)
        )
    rows = list(
        qs.order_by("-pinned", "-updated_at", "-pk").only("id", "title", "pinned", "updated_at")[
            : SIDEBAR_PAGE_SIZE + 1
        ]
    )
    has_more = len(rows) > SIDEBAR_PAGE_SIZE
    return rows[:SIDEBAR_PAGE_SIZE], has_more


def conversation_day_label(*, conversation, today: dt.date | None = None) -> str:
    from django.utils.translation import gettext as _

    if conversation.pinned:
        return _("Pinned")
    today = today or timezone.localdate()
    day = timezone.localtime(conversation.updated_at).date()
    if day == today:
        return _("Today")
    if day == today - dt.timedelta(days=1):
        return _("Yesterday")
    if day > today - dt.timedelta(days=7):
        return _("Previous 7 days")
    return day.strftime("%B %Y") if day.year != today.year else day.strftime("%B")


def message_path(*, conversation: Conversation) -> list[Message]:
    """The branch on screen: root → current leaf."""
    messages = {m.pk: m for m in conversation.messages.all()}
    path = []
    node = messages.get(conversation.current_leaf_id)
    while node is not None:
        path.append(node)
        node = messages.get(node.parent_id)
    path.reverse()
    siblings: dict[tuple[int | None, str], list[int]] = {}
    for m in sorted(messages.values(), key=lambda m: m.pk):
        siblings.setdefault((m.parent_id, m.role), []).append(m.pk)
    for m in path:
        ids = siblings[(m.parent_id, m.role)]
        m.sibling_ids = ids
        m.sibling_index = ids.index(m.pk)
        m.sibling_position = m.sibling_index + 1
        m.prev_sibling_id = ids[m.sibling_index - 1] if m.sibling_index > 0 else None
        m.next_sibling_id = ids[m.sibling_index + 1] if m.sibling_index + 1 < len(ids) else None
    return path


def message_latest_leaf(*, message: Message) -> Message:
    """Follow the newest child down to a leaf: what a branch switch shows."""
    node = message
    while True:
        child = node.children.order_by("-pk").first()
        if child is None:
            return node
        node = child


def conversation_usage_total(*, conversation: Conversation) -> dict:
    totals = conversation.messages.filter(role=Message.Role.ASSISTANT).aggregate(
        input_tokens=Sum("input_tokens"),
        output_tokens=Sum("output_tokens"),
        cost=Sum("cost"),
        answers=Count("pk"),
        estimated=Count("pk", filter=Q(tokens_estimated=True)),
    )
    return {
        "input_tokens": totals["input_tokens"] or 0,
        "output_tokens": totals["output_tokens"] or 0,
        "cost": totals["cost"] or Decimal(0),
        "estimated": bool(totals["estimated"]),
    }


def message_streaming_for_conversation(*, conversation_id: int) -> Message | None:
    return (
        Message.objects.filter(conversation_id=conversation_id, status=Message.Status.STREAMING)
        .order_by("-pk")
        .first()
    )


def messages_for_prompt(*, message: Message) -> list[Message]:
    """The history an answer to `message` (a user message) is generated from: its branch,
    without failed answers."""
    messages = {
        m.pk: m
        for m in Message.objects.filter(conversation_id=message.conversation_id).only(
            "id", "parent_id", "role", "content", "status"
        )
    }
    chain = []
    node = messages.get(message.pk)
    while node is not None:
        if node.role == Message.Role.USER or node.status != Message.Status.ERROR:
            chain.append(node)
        node = messages.get(node.parent_id)
    chain.reverse()
    return chain
