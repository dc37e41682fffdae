from __future__ import annotations

import datetime as dt
import functools
from decimal import Decimal

from django.core.exceptions import PermissionDenied
from django.db import connections, router
from django.db.models import Count, Exists, OuterRef, Q, Sum, Value
from django.db.models.expressions import RawSQL
from django.db.models.functions import Coalesce, NullIf
from django.http import Http404
from django.utils import formats, timezone

from aurax import statements
from aurax.phrases import phrase_say
from billing.models import UsageEvent
from workspaces.models import ROLE_RANK, Membership, Role
from workspaces.selectors import membership_get_by_workspace_id

from .models import Attachment, Conversation, Message, PublicLink

SIDEBAR_PAGE_SIZE = 50


# What the caller is about to do with the object it asks for.
READ = "read"  # see it: page, thread, export, live stream
WRITE = "write"  # change it: send, stop, regenerate, edit, rename, pin, delete, settings, share
COPY = "copy"  # continue a shared conversation as one's own copy


def _access_check(*, conversation: Conversation, user, role: str | None, access: str) -> None:
    """404 when the user may not even see the conversation (a foreign one looks missing), 403
    when they may see it but not do `access` to it."""
    if role is None:
        raise Http404
    is_author = conversation.user_id == user.pk
    if is_author and not Conversation.user.is_cached(conversation):
        Conversation.user.field.set_cached_value(conversation, user)  # no query for it later
    if not is_author and conversation.shared_at is None:
        raise Http404
    can_chat = ROLE_RANK[Role(role)] >= ROLE_RANK[Role.MEMBER]
    conversation.viewer_role = role
    conversation.is_author = is_author
    conversation.can_write = is_author and can_chat
    conversation.can_copy = can_chat and not is_author
    if access == WRITE and not conversation.can_write:
        raise PermissionDenied
    if access == COPY and not conversation.can_copy:
        raise PermissionDenied


def _with_viewer_role(queryset, *, user):
    """Rows annotated with the user's role in their conversation's workspace (None: not a
    member): conversations, or messages with their conversation joined (select_related). The
    conversation's table is referred to by its name, which is its alias in both: the base
    table, or its one join.

    Written as SQL: the same subquery as `Subquery(Membership…filter(workspace=OuterRef(…)))`,
    which Django spent ~0.3 ms building on every access check, on the thread a chat send
    waits for (0.63-0.87 ms per check → 0.39-0.49 ms)."""
    sql = _viewer_role_sql(queryset.db)
    return queryset.annotate(viewer_role_of=RawSQL(sql, (user.pk,)))


def _viewer_role_sql(alias: str) -> str:
    """The user's role in the workspace of the conversation row in hand; param: the user's id."""
    quote = connections[alias].ops.quote_name
    membership = quote(Membership._meta.db_table)
    return (
        f"SELECT {membership}.{quote('role')} FROM {membership}"
        f" WHERE {membership}.{quote('workspace_id')}"
        f" = {quote(Conversation._meta.db_table)}.{quote('workspace_id')}"
        f" AND {membership}.{quote('user_id')} = %s LIMIT 1"
    )


ID_RANGE = range(-(2**63), 2**63)  # every database's integer keys fit in 64 bits


def _id(value) -> int:
    """An id from a request or a socket frame; anything that cannot be one is a 404 (an
    integer past 64 bits is refused by SQLite's driver rather than matched)."""
    try:
        value = int(value)
    except (TypeError, ValueError):
        raise Http404 from None
    if value not in ID_RANGE:
        raise Http404
    return value


def conversation_get_for_user(*, user, conversation_id, access: str = WRITE) -> Conversation:
    """The access helper for conversations. The author may do anything (while their role allows
    chatting); a member of the workspace may read a shared one, and copy it unless a viewer;
    everyone else gets 404, as for a missing conversation. Defaults to the strictest access."""
    conversation_id = _id(conversation_id)
    if not user.is_authenticated:
        raise Http404
    alias = router.db_for_read(Conversation)
    sql, selected = _conversation_with_role_sql(alias)
    with connections[alias].cursor() as cursor:
        cursor.execute(sql, [user.pk, conversation_id])
        row = cursor.fetchone()
    if row is None:
        raise Http404
    conversation = selected.read(row)
    conversation.viewer_role_of = row[selected.width]
    _access_check(
        conversation=conversation, user=user, role=conversation.viewer_role_of, access=access
    )
    return conversation


@functools.lru_cache(maxsize=8)
def _conversation_with_role_sql(alias: str) -> tuple[str, statements.Selected]:
    """A conversation with its workspace (`select_related("workspace")`) and the user's role
    there, as `_with_viewer_role` annotates it; params: the user's id, the conversation's.
    Built once: the ORM spent more compiling this query than running it, on every access
    check, and a chat send waits for one."""
    quote = connections[alias].ops.quote_name
    selected = statements.select_parts(Conversation, alias, ("workspace",))
    sql = (
        f"SELECT {selected.columns}, ({_viewer_role_sql(alias)}) FROM {selected.tables}"
        f" WHERE {quote(Conversation._meta.db_table)}.{quote('id')} = %s LIMIT 1"
    )
    return sql, selected


def message_get_for_user(*, user, message_id, access: str = WRITE) -> Message:
    message_id = _id(message_id)
    if not user.is_authenticated:
        raise Http404
    found = _with_viewer_role(
        Message.objects.select_related("conversation", "conversation__workspace"), user=user
    ).filter(pk=message_id)[:1]
    message = next(iter(found), None)
    if message is None:
        raise Http404
    _access_check(
        conversation=message.conversation, user=user, role=message.viewer_role_of, access=access
    )
    return message


def public_link_get_by_token(*, token: str) -> PublicLink:
    """A working public link: not revoked, in a workspace that (still) allows public links."""
    link = (
        PublicLink.objects.select_related("conversation", "conversation__workspace")
        .filter(
            token=token,
            revoked_at__isnull=True,
            conversation__workspace__public_links_enabled=True,
        )
        .first()
    )
    if link is None or not token:
        raise Http404
    return link


def public_link_active_for(*, conversation: Conversation) -> PublicLink | None:
    return conversation.public_links.filter(revoked_at__isnull=True).order_by("-pk").first()


def _matching(qs, query: str):
    query = query.strip()
    if not query:
        return qs
    matching_messages = Message.objects.filter(
        conversation=OuterRef("pk"), content__icontains=query
    )
    return qs.filter(Q(title__icontains=query) | Exists(matching_messages))


def conversation_list_for_user(*, user, workspace, query: str = "", before=None):
    """One page of the user's own conversations in a workspace, pinned first then newest first.
    `before` is the cursor `(pinned, updated_at, id)` of the last row already shown (keyset
    pagination: every page costs the same with thousands of conversations)."""
    if not user.is_authenticated:
        return [], False
    qs = _matching(
        Conversation.objects.filter(
            user=user,
            workspace=workspace,
            workspace__in=Membership.objects.filter(user=user).values("workspace"),
        ),
        query,
    )
    if before is not None:
        pinned, updated_at, pk = before
        qs = qs.filter(
            Q(pinned__lt=pinned)
            | Q(pinned=pinned, updated_at__lt=updated_at)
            | Q(pinned=pinned, updated_at=updated_at, pk__lt=pk)
        )
    rows = list(
        qs.order_by("-pinned", "-updated_at", "-pk").only(
            "id", "title", "pinned", "updated_at", "shared_at"
        )[: SIDEBAR_PAGE_SIZE + 1]
    )
    has_more = len(rows) > SIDEBAR_PAGE_SIZE
    return rows[:SIDEBAR_PAGE_SIZE], has_more


def conversation_list_shared(*, user, workspace, query: str = "", limit: int = SIDEBAR_PAGE_SIZE):
    """What teammates shared with the workspace (the user's own shared ones are among theirs),
    most recently shared first."""
    if not user.is_authenticated:
        return []
    qs = _matching(
        Conversation.objects.filter(
            workspace=workspace,
            shared_at__isnull=False,
            workspace__in=Membership.objects.filter(user=user).values("workspace"),
        ).exclude(user=user),
        query,
    )
    return list(
        qs.select_related("user")
        .order_by("-shared_at", "-pk")
        .only("id", "title", "shared_at", "user__email")[:limit]
    )


def conversation_list_passing_to_owner(*, user_ids, workspace_ids):
    """What of these users' does not go when they leave these workspaces (removed, left, or
    their account deleted) but passes to each workspace's owner: the conversations they shared
    there. Their other conversations there are deleted. docs/permissions.md."""
    return Conversation.objects.filter(
        user_id__in=user_ids, workspace_id__in=workspace_ids, shared_at__isnull=False
    )


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
    # Month names in the reader's language; "F" alone within the current year.
    return formats.date_format(day, "YEAR_MONTH_FORMAT" if day.year != today.year else "F")


def message_error_text(*, message: Message) -> str:
    """A failed answer's error in the reader's language (see `answer_error_text`)."""
    return answer_error_text(error_message=message.error_message, error_phrase=message.error_phrase)


def answer_error_text(*, error_message: str, error_phrase: dict | None = None) -> str:
    """A failed answer's error in the active language. A message with values (the seconds to
    wait, a model's name, amounts) is kept as a phrase (aurax.phrases) and said now; answers
    stored before theirs were phrases were given one by migration 0005. Otherwise it is stored
    as it was said when the answer failed (in English, the server's language): the taxonomy's
    and the server's own messages are looked up in the catalog; a provider's own words are
    shown as they came."""
    from django.utils.translation import gettext as _

    if error_phrase:
        return phrase_say(error_phrase)
    return _(error_message) if error_message else ""


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
    # The calls for its title (chat.generation) are spent on the conversation too: a few
    # rows (one a first exchange, as a rule), read whole.
    title_calls = list(
        UsageEvent.objects.filter(reference=f"chat.title:{conversation.pk}").values_list(
            "input_tokens", "output_tokens", "cost", "estimated", "uid"
        )
    )
    cost = (totals["cost"] or Decimal(0)) + sum(
        (c[2] or Decimal(0) for c in title_calls), Decimal(0)
    )
    return {
        "input_tokens": (totals["input_tokens"] or 0) + sum(c[0] for c in title_calls),
        "output_tokens": (totals["output_tokens"] or 0) + sum(c[1] for c in title_calls),
        "cost": cost,
        # For the page, which adds a title's cost when it comes (message costs have 8 places).
        "cost_exact": format(cost.quantize(Decimal("1e-8")), "f"),
        "estimated": bool(totals["estimated"] or any(c[3] for c in title_calls)),
        # The title calls in the figures (the `call_id` of `events.title_usage`): a call's
        # ledger row is written shortly after its usage reaches the page, which adds that
        # usage itself until the figures name the call.
        "title_calls": " ".join(c[4].hex for c in title_calls if c[4]),
    }


def message_streaming_for_conversation(*, conversation_id: int) -> Message | None:
    return (
        Message.objects.filter(conversation_id=conversation_id, status=Message.Status.STREAMING)
        .order_by("-pk")
        .first()
    )


BRANCH_COLUMNS = ("id", "parent_id", "role", "content", "status", "attachments")


def branch_cte(start: str) -> str:
    """`branch(id, parent_id, role, content, status, attachments, depth)`, for a WITH
    RECURSIVE: the message whose id the SQL `start` gives (depth 0) and its ancestors up to the
    conversation's first."""
    table = Message._meta.db_table
    columns = ", ".join(BRANCH_COLUMNS)
    return (
        f"branch({columns}, depth) AS ("
        f" SELECT {columns}, 0 FROM {table} WHERE id = {start}"
        f" UNION ALL"
        f" SELECT {', '.join(f'm.{c}' for c in BRANCH_COLUMNS)}, b.depth + 1"
        f" FROM {table} m JOIN branch b ON m.id = b.parent_id)"
    )


def messages_for_prompt(*, message: Message) -> list[Message]:
    """The history an answer to `message` (a user message) is generated from: its branch,
    without failed answers.

    The branch is walked in the database (a recursive query from `message` up its parents):
    only its own rows are read, not every message of every branch of a long conversation. A
    message just sent on PostgreSQL comes with the branch above it, read by the send's own
    statement (`branch_above`, chat.services): nothing is read again."""
    if message.parent_id is None:  # a conversation's first message: no history to read
        return [message]
    above = getattr(message, "branch_above", None)
    if above and above[-1].pk == message.parent_id:
        branch = [*above, message]
    else:
        branch = Message.objects.raw(
            f"WITH RECURSIVE {branch_cte('%s')}"
            f" SELECT {', '.join(BRANCH_COLUMNS)} FROM branch ORDER BY depth DESC",
            [message.pk],
        )
    return [m for m in branch if m.role == Message.Role.USER or m.status != Message.Status.ERROR]


# --- Attachments ------------------------------------------------------------------------------


def attachment_get_for_user(*, user, attachment_id) -> Attachment:
    """The access helper for attachments: a sent file is read by whoever may read its
    conversation; one not sent yet by its uploader alone, while a member of its workspace.
    Everyone else gets 404, as for a missing file."""
    attachment_id = _id(attachment_id)
    if not user.is_authenticated:
        raise Http404
    attachment = Attachment.objects.filter(pk=attachment_id).first()
    if attachment is None:
        raise Http404
    if attachment.conversation_id is not None:
        conversation_get_for_user(
            user=user, conversation_id=attachment.conversation_id, access=READ
        )
    elif attachment.uploaded_by_id != user.pk:
        raise Http404
    else:
        membership_get_by_workspace_id(user=user, workspace_id=attachment.workspace_id)
    return attachment


def attachments_size_in(*, workspace_id: int) -> int:
    """Bytes of the files of a workspace's chats, sent or waiting to be (as uploaded)."""
    total = Attachment.objects.filter(workspace_id=workspace_id).aggregate(total=Sum("size"))
    return total["total"] or 0


def attachments_unsent(*, user):
    """The files `user` uploaded and has not sent yet (in any workspace)."""
    return Attachment.objects.filter(uploaded_by=user, conversation__isnull=True)


def attachments_unsent_get(*, user, workspace, attachment_ids) -> list[Attachment]:
    """The files `user` uploaded in `workspace` and has not sent, in the order asked for
    (without their bytes); Http404 if one is not that (another's, sent, deleted)."""
    ids = [_id(value) for value in attachment_ids]
    found = {
        a.pk: a
        for a in attachments_unsent(user=user)
        .defer("data", "text")
        .filter(pk__in=ids, workspace=workspace)
    }
    if len(found) != len(set(ids)):
        raise Http404
    return [found[pk] for pk in dict.fromkeys(ids)]


def attachments_for_prompt(
    *, conversation_id: int, messages: list[Message], with_bytes: bool = True
) -> dict[int, Attachment]:
    """The files the `messages` of a conversation carry, by id: read only when one carries any.
    Without `with_bytes` (a cost estimate), not an image's bytes."""
    ids = {d["id"] for m in messages for d in m.attachments}
    if not ids:
        return {}
    found = Attachment.objects.filter(pk__in=ids, conversation_id=conversation_id).only(
        "kind", "name", "text"
    )
    if with_bytes:  # what goes to the model: an image's copy made for it, else the file
        found = found.annotate(
            sent_data=Coalesce("model_data", "data"),
            sent_media_type=Coalesce(NullIf("model_media_type", Value("")), "media_type"),
        )
    return {a.pk: a for a in found}
