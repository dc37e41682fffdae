"""Every change to conversations and messages happens here, in a transaction; real-time events
are sent only after commit."""

from __future__ import annotations

import datetime as dt
import functools
import math
import secrets
from collections.abc import Sequence
from contextlib import nullcontext

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, connection, connections, router, transaction
from django.template.defaultfilters import filesizeformat
from django.utils import timezone
from django.utils.translation import gettext_noop

from aurax import statements
from aurax.phrases import number, phrase, phrase_say
from gateway.errors import model_unavailable
from providers.routing import candidates_resolve_sync
from workspaces.models import Membership, Role, Workspace
from workspaces.services import audit_record

from . import events
from .attachments import MAX_UNSENT, AttachmentRefused, upload_read
from .models import Attachment, Conversation, Message, PublicLink
from .selectors import (
    BRANCH_COLUMNS,
    attachments_size_in,
    attachments_unsent,
    branch_cte,
    conversation_list_passing_to_owner,
    message_latest_leaf,
    message_path,
)

TITLE_MAX = 200


class ConversationBusy(Exception):
    """An answer is already being generated in this conversation."""


class MessageNotEditable(Exception):
    pass


class SharingRefused(Exception):
    """A sharing change the workspace does not allow; the message is for the user."""


class AttachmentsGone(Exception):
    """A file to send was sent meanwhile (from another tab) or deleted."""


def _send_on_commit(group: str, event: dict) -> None:
    """Publish `event` to `group` once the transaction commits. A publish that fails (the
    channel layer unreachable) is logged and does not fail the caller: what it announces is
    saved, and the tabs find it when they next load or sync."""

    def send():
        layer = get_channel_layer()
        if layer is not None:
            async_to_sync(layer.group_send)(group, event)

    transaction.on_commit(send, robust=True)


def sockets_close(group: str) -> None:
    """Close the chat sockets in `group` (chat.events.signed_out) once the transaction that
    ended their access commits."""
    _send_on_commit(group, events.signed_out())


def sockets_language_set(*, user_id: int, language: str) -> None:
    """The user's open chat sockets, in every process, speak `language` ("" follows the
    browser) from now on, once the transaction that saved it commits."""
    _send_on_commit(events.user_group(user_id), events.language_changed(language=language))


def _provisional_title(text: str, attachments: list[dict] | None = None) -> str:
    """The question's first words; for files sent without a word, their names."""
    line = " ".join(text.split()) or ", ".join(a["name"] for a in attachments or ())
    return line[:60] + ("…" if len(line) > 60 else "")


class SettingsRefused(Exception):
    """A conversation setting that cannot be saved; nothing was. `param`: the setting at
    fault; `said`: why, as a phrase (aurax.phrases) to say in the reader's language; `code`:
    `temperature_unsupported` when the conversation's model cannot take the temperature (the
    same refusal as its answer would get), else `invalid`."""

    def __init__(self, *, param: str, said: dict, code: str = "invalid"):
        super().__init__(phrase_say(said))
        self.param = param
        self.said = said
        self.code = code


# What a conversation may be set to whatever its model (a model may take less: the
# temperature is then refused with its range).
TEMPERATURE_RANGE = (0, 2)
MAX_TOKENS_RANGE = (1, 1_000_000)


def _number(value) -> float | None:
    """A setting's value as a form posts it (text) or a socket frame sends it (JSON): None
    when empty, else a finite number; ValueError for anything else (true, "warm", NaN)."""
    if isinstance(value, str):
        value = value.strip()
        if not value:
            return None
        value = float(value)
    elif value is None:
        return None
    elif isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(value)
    if not math.isfinite(value):
        raise ValueError(value)
    return value


def _temperature_clean(value) -> float | None:
    low, high = TEMPERATURE_RANGE
    try:
        temperature = _number(value)
        if temperature is None:
            return None
        if low <= temperature <= high:
            return float(temperature)
    except ValueError:
        pass
    raise SettingsRefused(
        param="temperature",
        said=phrase(
            gettext_noop("The temperature must be a number from %(low)s to %(high)s."),
            low=number(low),
            high=number(high),
        ),
    )


def _max_tokens_clean(value) -> int | None:
    low, high = MAX_TOKENS_RANGE
    try:
        max_tokens = _number(value)
        if max_tokens is None:
            return None
        if low <= max_tokens <= high and float(max_tokens).is_integer():
            return int(max_tokens)
    except ValueError:
        pass
    raise SettingsRefused(
        param="max_tokens",
        said=phrase(
            gettext_noop("Max tokens must be a whole number from %(low)s to %(high)s."),
            low=number(low),
            high=number(high),
        ),
    )


def conversation_settings_clean(*, temperature, max_tokens) -> tuple[float | None, int | None]:
    """A temperature and a max tokens as a new conversation takes them, else SettingsRefused:
    what a comparison of models checks before it asks them (compare.actions)."""
    return _temperature_clean(temperature), _max_tokens_clean(max_tokens)


def _temperature_check(*, user, workspace, model: str, temperature: float | None) -> None:
    """Refuse a temperature that `model` cannot take (`providers.routing`: none of its
    providers accepts it), as its answer would be refused. A model that routes nowhere is
    not judged here: its answer says so."""
    if temperature is None or not model:
        return
    resolved = candidates_resolve_sync(
        user=user, workspace=workspace, model=model, temperature=temperature
    )
    if resolved.temperature_refused is not None:
        raise SettingsRefused(
            param="temperature",
            said=model_unavailable(resolved).phrase,
            code="temperature_unsupported",
        )


@transaction.atomic
def conversation_create(
    *,
    user,
    workspace,
    model: str = "",
    system_prompt: str = "",
    temperature: float | None = None,
    max_tokens: int | None = None,
) -> Conversation:
    """Refuses (SettingsRefused) a temperature or a max tokens it could not take, clamping
    nothing."""
    temperature = _temperature_clean(temperature)
    max_tokens = _max_tokens_clean(max_tokens)
    model = model or user.default_model
    _temperature_check(user=user, workspace=workspace, model=model, temperature=temperature)
    return Conversation.objects.create(
        user=user,
        workspace=workspace,
        model=model,
        system_prompt=system_prompt,
        temperature=temperature,
        max_tokens=max_tokens,
    )


def conversation_settings_update(
    *,
    conversation: Conversation,
    model: str | None = None,
    system_prompt: str | None = None,
    temperature=...,
    max_tokens=...,
) -> Conversation:
    """Save the settings given (`...`/None: left as they are). A value that cannot be taken
    is refused (SettingsRefused) and nothing is saved; nothing is clamped. A temperature is
    judged against the model when it changes: one saved before stays when the model changes
    to one that cannot take it (the user is told on the page, and the answer is refused
    with `temperature_unsupported` until they change one or the other)."""
    values = {}
    if model is not None:
        values["model"] = model
    if system_prompt is not None:
        values["system_prompt"] = system_prompt
    if temperature is not ...:
        values["temperature"] = _temperature_clean(temperature)
    if max_tokens is not ...:
        values["max_tokens"] = _max_tokens_clean(max_tokens)
    # The chat page sends its settings with every message; most of the time they are the
    # ones already saved, and nothing is written, nor a transaction opened (one UPDATE needs
    # none): on SQLite an empty BEGIN IMMEDIATE ... COMMIT took the write lock in every send.
    fields = [name for name, value in values.items() if getattr(conversation, name) != value]
    if "temperature" in fields:
        _temperature_check(
            user=conversation.user,
            workspace=conversation.workspace,
            model=values.get("model", conversation.model),
            temperature=values["temperature"],
        )
    for name in fields:
        setattr(conversation, name, values[name])
    if fields:
        conversation.save(update_fields=fields)
    return conversation


@transaction.atomic
def conversation_rename(*, conversation: Conversation, title: str) -> Conversation:
    conversation.title = " ".join(title.split())[:TITLE_MAX]
    conversation.title_final = True
    conversation.save(update_fields=["title", "title_final"])
    _send_on_commit(
        events.user_group(conversation.user_id),
        events.conversation_changed(conversation_id=conversation.pk, title=conversation.title),
    )
    return conversation


@transaction.atomic
def conversation_title_generated(
    *, conversation_id: int, title: str, usage: dict | None = None
) -> None:
    """The conversation's automatic title, unless one was typed first (or generated: only
    the first is kept). `usage` (events.title_usage): what the call that was asked for it
    used, for the pages' running total; it is announced even when the title did not change
    ("" when the call gave none), as the call is billed all the same."""
    title = " ".join(title.strip().strip("\"'#*").split())[:TITLE_MAX]
    updated = bool(title) and bool(
        Conversation.objects.filter(pk=conversation_id, title_final=False).update(
            title=title, title_final=True
        )
    )
    if not updated and usage is None:
        return
    row = Conversation.objects.filter(pk=conversation_id).values_list("user_id", "title").first()
    if row is None:  # deleted meanwhile
        return
    user_id, title = row
    for group in (events.user_group(user_id), events.conversation_group(conversation_id)):
        _send_on_commit(
            group,
            events.conversation_changed(
                conversation_id=conversation_id, title=title, title_usage=usage
            ),
        )


@transaction.atomic
def conversation_pin(*, conversation: Conversation, pinned: bool) -> Conversation:
    conversation.pinned = pinned
    conversation.save(update_fields=["pinned"])
    return conversation


@transaction.atomic
def conversation_delete(*, conversation: Conversation) -> None:
    # A running generation notices the missing row when it saves and stops there.
    _send_on_commit(
        events.control_group(conversation.pk), events.stop_request(conversation_id=conversation.pk)
    )
    conversation.delete()


STALE_AFTER = dt.timedelta(seconds=60)


def _stale_cutoff():
    """An answer still "streaming" whose heartbeat is older than this lost its process."""
    return timezone.now() - STALE_AFTER


def _stale_streaming():
    return Message.objects.filter(status=Message.Status.STREAMING, heartbeat_at__lt=_stale_cutoff())


def _streaming_exists(conversation_id: int) -> bool:
    """Whether one of the conversation's answers streams: written as SQL, as it runs on every
    send and almost always finds none (Django built the query each time, ~0.15 ms)."""
    quote = connection.ops.quote_name
    sql = (
        f"SELECT 1 FROM {quote(Message._meta.db_table)} WHERE {quote('conversation_id')} = %s"
        f" AND {quote('status')} = %s LIMIT 1"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [conversation_id, Message.Status.STREAMING.value])
        return cursor.fetchone() is not None


@functools.lru_cache(maxsize=8)
def _locked_sql(alias: str, for_update: bool) -> tuple[str, statements.Selected]:
    quote = connections[alias].ops.quote_name
    selected = statements.select_parts(Conversation, alias)
    sql = (
        f"SELECT {selected.columns} FROM {selected.tables}"
        f" WHERE {quote(Conversation._meta.db_table)}.{quote('id')} = %s"
        + (" FOR UPDATE" if for_update else "")
    )
    return sql, selected


def _conversation_locked(pk: int) -> Conversation:
    """`Conversation.objects.select_for_update().get(pk=pk)`, its SQL built once (a send
    waits for this read)."""
    alias = router.db_for_write(Conversation)
    connection = connections[alias]
    sql, selected = _locked_sql(alias, connection.features.has_select_for_update)
    with connection.cursor() as cursor:
        cursor.execute(sql, [pk])
        row = cursor.fetchone()
    if row is None:
        raise Conversation.DoesNotExist("Conversation matching query does not exist.")
    return selected.read(row)


def _lock(conversation: Conversation) -> Conversation:
    """The conversation re-read under a row lock, refused while one of its answers streams.
    An answer whose heartbeat stopped (its process died) no longer counts: it is marked
    interrupted here. In the usual case, no answer streaming, that is two short reads: the
    locked row, and whether an answer streams."""
    locked = _conversation_locked(conversation.pk)
    if _streaming_exists(locked.pk):
        streaming = Message.objects.filter(
            conversation_id=locked.pk, status=Message.Status.STREAMING
        ).values_list("pk", "heartbeat_at")
        cutoff = _stale_cutoff()
        stale = [pk for pk, heartbeat in streaming if heartbeat is not None and heartbeat < cutoff]
        if len(stale) < len(streaming):
            raise ConversationBusy
        _mark_interrupted(Message.objects.filter(pk__in=stale, status=Message.Status.STREAMING))
    for related in (Conversation.workspace, Conversation.user):  # loaded by the access check
        if related.is_cached(conversation):
            related.field.set_cached_value(locked, related.field.get_cached_value(conversation))
    return locked


def _question_insert(
    *, conversation: Conversation, parent_id: int | None, content: str, attachments=()
):
    """The user's message, under `parent_id` (None: the conversation's first)."""
    return statements.insert(
        Message(
            conversation=conversation,
            parent_id=parent_id,
            role=Message.Role.USER,
            content=content,
            attachments=list(attachments),
        )
    )


def _assistant_placeholder(
    *, conversation: Conversation, parent: Message, changed: Sequence[str] = ()
) -> Message:
    """The streaming answer to `parent`, made the conversation's current leaf (saved with the
    conversation's fields `changed` in memory by the caller)."""
    answer = statements.insert(
        Message(
            conversation=conversation,
            parent=parent,
            role=Message.Role.ASSISTANT,
            status=Message.Status.STREAMING,
            model=conversation.model,
            heartbeat_at=timezone.now(),
        )
    )
    conversation.current_leaf = answer
    conversation.updated_at = timezone.now()
    statements.save_fields(conversation, ["current_leaf", "updated_at", *changed])
    return answer


def message_send(
    *, conversation: Conversation, content: str, attachments: Sequence[Attachment] = ()
) -> tuple[Message, Message]:
    """The user's message at the end of the branch on screen, and the (streaming) answer.
    `attachments`: files its uploader has not sent yet (chat.selectors.attachments_unsent_get),
    sent with it in one transaction: AttachmentsGone if one was sent meanwhile.

    First without reading the conversation again: the database refuses a second streaming
    answer in a conversation (the `chat_msg_one_streaming` index), so an answer streaming
    meanwhile makes it fail, and the send is then done under the conversation's lock, which
    tells a live answer (busy) from one whose process died (marked interrupted, and the send
    goes on). On PostgreSQL that first try is one statement, without the row lock (one round
    trip instead of seven); elsewhere (SQLite) three, in a transaction holding the database's
    write lock (five statements instead of seven). A send waits for this work before its
    answer can start (bench/README.md)."""
    if attachments:
        with transaction.atomic():
            question, answer = _message_send(
                conversation=conversation,
                content=content,
                attachments=[a.described() for a in attachments],
            )
            claimed = Attachment.objects.filter(
                pk__in=[a.pk for a in attachments], conversation__isnull=True
            ).update(conversation=conversation)
            if claimed != len(attachments):
                raise AttachmentsGone
            return question, answer
    return _message_send(conversation=conversation, content=content)


def _message_send(
    *, conversation: Conversation, content: str, attachments: list[dict] | None = None
) -> tuple[Message, Message]:
    try:
        if connection.vendor == "postgresql":
            # A savepoint only inside a transaction: alone, one statement is atomic.
            with transaction.atomic() if connection.in_atomic_block else nullcontext():
                return _send_statement(
                    conversation=conversation, content=content, attachments=attachments
                )
        if connection.features.can_return_columns_from_insert:
            with transaction.atomic():
                return _send_statement(
                    conversation=conversation, content=content, attachments=attachments
                )
    except IntegrityError:
        pass
    with transaction.atomic():
        conversation = _lock(conversation)
        question = _question_insert(
            conversation=conversation,
            parent_id=conversation.current_leaf_id,
            content=content,
            attachments=attachments or (),
        )
        changed = []
        if not conversation.title:
            conversation.title = _provisional_title(content, attachments)
            changed.append("title")  # saved with the new leaf, in one UPDATE
        return question, _assistant_placeholder(
            conversation=conversation, parent=question, changed=changed
        )


@functools.lru_cache(maxsize=4)
def _send_sql(alias: str) -> tuple[tuple[str, ...], tuple]:
    """The question under the conversation's current leaf, the streaming answer under it,
    the answer made the leaf (and the question the title of an untitled conversation); they
    return both ids, the question's parent and the title. The leaf and the title are read by
    the statements, not taken from the caller's copy of the conversation.

    On PostgreSQL one statement, which also returns the branch above the question (the
    answer's history, as JSON; its first parameter is the conversation's id); elsewhere these
    three, for one transaction: (question) its id and parent; (answer, whose parent is a
    parameter) its id; (the conversation's UPDATE) the title."""
    connection = connections[alias]
    quote = connection.ops.quote_name
    head, fields = statements.insert_parts(Message, alias)
    conversation = quote(Conversation._meta.db_table)
    leaf, title, pk, parent = (quote(c) for c in ("current_leaf_id", "title", "id", "parent_id"))

    def values(parent: str) -> str:
        return ", ".join(parent if f.attname == "parent_id" else "%s" for f in fields)

    question = f"{head} VALUES ({values(f'(SELECT {leaf} FROM {conversation} WHERE {pk} = %s)')})"
    set_leaf = (
        f"UPDATE {conversation} SET {leaf} = {{answer}}, {quote('updated_at')} = %s,"
        f" {title} = CASE WHEN {title} = '' THEN %s ELSE {title} END WHERE {pk} = %s"
    )
    if connection.vendor != "postgresql":
        return (
            f"{question} RETURNING {pk}, {parent}",
            f"{head} VALUES ({values('%s')}) RETURNING {pk}",
            f"{set_leaf.format(answer='%s')} RETURNING {title}",
        ), fields
    sql = (
        # The branch above the question (the leaf's, in the statement's snapshot: before the
        # question is written), read here for the answer's history (`messages_for_prompt`).
        f"WITH RECURSIVE {branch_cte(f'(SELECT {leaf} FROM {conversation} WHERE {pk} = %s)')},"
        f" question AS ({question} RETURNING {pk}, {parent}),"
        # SELECT … FROM question, not VALUES (… (SELECT …)): the answer's id is then drawn
        # after the question's, so ids keep the order the messages were written in.
        f" answer AS ({head} SELECT {values(f'question.{pk}')} FROM question RETURNING {pk})"
        f" {set_leaf.format(answer=f'(SELECT {pk} FROM answer)')}"
        f" RETURNING (SELECT {pk} FROM question), (SELECT {parent} FROM question),"
        f" (SELECT {pk} FROM answer), {title}, (SELECT json_agg(json_build_array("
        f"{', '.join(BRANCH_COLUMNS)}) ORDER BY depth DESC) FROM branch)"
    )
    return (sql,), fields


def _send_statement(
    *, conversation: Conversation, content: str, attachments: list[dict] | None
) -> tuple[Message, Message]:
    alias = connection.alias
    sqls, fields = _send_sql(alias)
    now = timezone.now()
    question = Message(
        conversation=conversation,
        role=Message.Role.USER,
        content=content,
        attachments=attachments or [],
    )
    answer = Message(
        conversation=conversation,
        role=Message.Role.ASSISTANT,
        status=Message.Status.STREAMING,
        model=conversation.model,
        heartbeat_at=now,
    )
    asked = [
        conversation.pk if f.attname == "parent_id" else value
        for f, value in zip(fields, statements.insert_params(question, fields, alias), strict=True)
    ]
    answered = [
        value
        for f, value in zip(fields, statements.insert_params(answer, fields, alias), strict=True)
        if f.attname != "parent_id"
    ]
    leaf_set = [now, _provisional_title(content, attachments), conversation.pk]
    with connection.cursor() as cursor:
        if len(sqls) == 1:
            cursor.execute(sqls[0], [conversation.pk, *asked, *answered, *leaf_set])
            row = cursor.fetchone()
            if row is not None:
                *row, branch = row
                question.branch_above = [
                    Message(**dict(zip(BRANCH_COLUMNS, values, strict=True)))
                    for values in branch or ()
                ]
        else:
            cursor.execute(sqls[0], asked)
            question_id, parent_id = cursor.fetchone()
            answered.insert([f.attname for f in fields].index("parent_id"), question_id)
            cursor.execute(sqls[1], answered)
            (answer_id,) = cursor.fetchone()
            cursor.execute(sqls[2], [answer_id, *leaf_set])
            found = cursor.fetchone()
            row = found and (question_id, parent_id, answer_id, *found)
    if row is None:  # inside a transaction, where the deferred foreign keys are not checked yet
        raise Conversation.DoesNotExist
    question.pk, question.parent_id, answer.pk, conversation.title = row
    answer.parent = question
    for message in (question, answer):
        message._state.adding, message._state.db = False, alias
    conversation.current_leaf = answer
    conversation.updated_at = now
    return question, answer


@transaction.atomic
def message_regenerate(*, message: Message) -> Message:
    """A new answer to the same question; earlier answers stay as siblings."""
    conversation = _lock(message.conversation)
    question = message if message.role == Message.Role.USER else message.parent
    if question is None:
        raise MessageNotEditable
    return _assistant_placeholder(conversation=conversation, parent=question)


@transaction.atomic
def message_edit(*, message: Message, content: str) -> tuple[Message, Message]:
    """A changed copy of a sent message, branching beside the original; both are kept."""
    if message.role != Message.Role.USER:
        raise MessageNotEditable
    conversation = _lock(message.conversation)
    question = _question_insert(
        conversation=conversation,
        parent_id=message.parent_id,
        content=content,
        attachments=message.attachments,
    )
    return question, _assistant_placeholder(conversation=conversation, parent=question)


@transaction.atomic
def branch_select(*, conversation: Conversation, message: Message) -> Conversation:
    if message.conversation_id != conversation.pk:
        raise MessageNotEditable
    conversation = _lock(conversation)
    conversation.current_leaf = message_latest_leaf(message=message)
    conversation.save(update_fields=["current_leaf"])
    return conversation


def message_progress_save(*, message_id: int, content: str) -> bool:
    """Persist the growing text; False when the message is gone (conversation deleted)."""
    return bool(
        Message.objects.filter(pk=message_id, status=Message.Status.STREAMING).update(
            content=content, heartbeat_at=timezone.now()
        )
    )


@transaction.atomic
def messages_progress_save(*, contents: dict[int, str]) -> int:
    """Persist the growing text of many streaming answers at once, in one transaction. Answers
    no longer streaming (finished meanwhile, or deleted) are left alone. How many rows were
    written.

    One parameterised UPDATE run for every row (`executemany`: the statement is built once and
    the driver loops over the rows). Django's `update()` with a CASE of one `When` per row
    spent ~26 ms of Python compiling it for 200 answers, every second, on the thread that
    every chat send waits for."""
    if not contents:
        return 0
    quote = connection.ops.quote_name
    sql = (
        f"UPDATE {quote(Message._meta.db_table)} SET {quote('content')} = %s, "
        f"{quote('heartbeat_at')} = %s WHERE {quote('id')} = %s AND {quote('status')} = %s"
    )
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    rows = [(text, now, pk, Message.Status.STREAMING.value) for pk, text in contents.items()]
    with connection.cursor() as cursor:
        cursor.executemany(sql, rows)
        return cursor.rowcount


@transaction.atomic
def message_finish(
    *,
    message_id: int,
    content: str,
    status: str,
    served_model: str = "",
    provider_kind: str = "",
    error_code: str = "",
    error_message: str = "",
    error_phrase: dict | None = None,
    retry_after: float | None = None,
    input_tokens: int | None = None,
    output_tokens: int | None = None,
    cache_read_tokens: int = 0,
    reasoning_tokens: int = 0,
    tokens_estimated: bool = False,
    cost=None,
    ttft_ms: int | None = None,
    duration_ms: int | None = None,
) -> bool:
    """Save an answer's end: its text, status and usage. False when the message is gone.

    One UPDATE of the answer, not a locked read and a save of every column (finishing runs
    once per answer, on the thread a chat send waits for). Then the conversation's row is
    written (unchanged) so that its lock is held to the commit: a send that locks the
    conversation (`_lock`) meanwhile sees this answer finished, not streaming."""
    finished = Message(
        pk=message_id,
        content=content,
        status=status,
        served_model=served_model,
        provider_kind=provider_kind,
        error_code=error_code,
        error_message=error_message[:500],
        error_phrase=error_phrase,
        retry_after=retry_after,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cache_read_tokens=cache_read_tokens,
        reasoning_tokens=reasoning_tokens,
        tokens_estimated=tokens_estimated,
        cost=cost,
        ttft_ms=ttft_ms,
        duration_ms=duration_ms,
    )
    if not statements.update_fields(finished, _FINISHED_FIELDS):
        return False
    with connection.cursor() as cursor:
        cursor.execute(_conversation_of_message_touch_sql(connection.alias), [message_id])
    return True


_FINISHED_FIELDS = (
    "content",
    "status",
    "served_model",
    "provider_kind",
    "error_code",
    "error_message",
    "error_phrase",
    "retry_after",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "reasoning_tokens",
    "tokens_estimated",
    "cost",
    "ttft_ms",
    "duration_ms",
)


@functools.lru_cache(maxsize=4)
def _conversation_of_message_touch_sql(alias: str) -> str:
    """The conversation of a message written unchanged (its row locked to the commit);
    param: the message's id. Built once, as the message's UPDATE (aurax.statements)."""
    quote = connections[alias].ops.quote_name
    conversation, message = (quote(m._meta.db_table) for m in (Conversation, Message))
    return (
        f"UPDATE {conversation} SET {quote('updated_at')} = {quote('updated_at')}"
        f" WHERE {quote('id')} = (SELECT {quote('conversation_id')} FROM {message}"
        f" WHERE {quote('id')} = %s)"
    )


INTERRUPTED_MESSAGE = gettext_noop("The server restarted while this answer was being generated.")


def _mark_interrupted(queryset) -> int:
    return queryset.update(
        status=Message.Status.INTERRUPTED,
        error_code="interrupted",
        error_message=INTERRUPTED_MESSAGE,
    )


@transaction.atomic
def messages_interrupted_mark(*, all_streaming: bool = False) -> int:
    """Answers left "streaming" by a process that died keep their saved text, marked
    interrupted. At start-up of the only process every streaming row is dead
    (`all_streaming`); beside other live processes only those whose heartbeat stopped."""
    qs = (
        Message.objects.filter(status=Message.Status.STREAMING)
        if all_streaming
        else _stale_streaming()
    )
    return _mark_interrupted(qs)


# --- sharing ------------------------------------------------------------------------------


@transaction.atomic
def conversation_share(*, conversation: Conversation, actor, ip: str | None = None) -> Conversation:
    """Every member of the workspace may now read it (and members continue it as a copy)."""
    if conversation.workspace.is_personal:
        raise SharingRefused("A personal workspace has nobody to share with.")
    if conversation.shared_at is None:
        conversation.shared_at = timezone.now()
        conversation.save(update_fields=["shared_at"])
        audit_record(
            workspace=conversation.workspace,
            actor=actor,
            action="conversation.share",
            target=conversation,
            ip=ip,
        )
    return conversation


@transaction.atomic
def conversation_unshare(
    *, conversation: Conversation, actor, ip: str | None = None
) -> Conversation:
    if conversation.shared_at is not None:
        conversation.shared_at = None
        conversation.save(update_fields=["shared_at"])
        audit_record(
            workspace=conversation.workspace,
            actor=actor,
            action="conversation.unshare",
            target=conversation,
            ip=ip,
        )
        # Teammates watching it lose the live stream too, not only the page.
        _send_on_commit(
            events.conversation_group(conversation.pk),
            events.access_changed(conversation_id=conversation.pk),
        )
    return conversation


@transaction.atomic
def public_link_create(*, conversation: Conversation, actor, ip: str | None = None) -> PublicLink:
    """The conversation's working public link; a new one (new token) if none is active."""
    if not conversation.workspace.public_links_enabled:
        raise SharingRefused("Public links are turned off in this workspace.")
    link = conversation.public_links.filter(revoked_at__isnull=True).first()
    if link is None:
        link = PublicLink.objects.create(
            conversation=conversation, token=secrets.token_urlsafe(32), created_by=actor
        )
        audit_record(
            workspace=conversation.workspace,
            actor=actor,
            action="conversation.public_link_create",
            target=conversation,
            data={"link_id": link.pk},
            ip=ip,
        )
    return link


@transaction.atomic
def public_link_revoke(*, conversation: Conversation, actor, ip: str | None = None) -> int:
    revoked = conversation.public_links.filter(revoked_at__isnull=True).update(
        revoked_at=timezone.now()
    )
    if revoked:
        audit_record(
            workspace=conversation.workspace,
            actor=actor,
            action="conversation.public_link_revoke",
            target=conversation,
            ip=ip,
        )
    return revoked


ANSWER_FIELDS = (
    "status",
    "served_model",
    "provider_kind",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "reasoning_tokens",
    "tokens_estimated",
    "cost",
    "ttft_ms",
    "duration_ms",
)


@transaction.atomic
def conversation_create_with_answers(
    *,
    user,
    workspace,
    question: str,
    answers: Sequence[dict],
    kept: int,
    system_prompt: str = "",
    temperature: float | None = None,
    max_tokens: int | None = None,
) -> Conversation:
    """A new conversation of `user` in `workspace` holding one question and several answers
    to it (a side-by-side comparison kept: compare.comparisons), ready to be continued. Each
    answer: {"model", "content"} and the fields of ANSWER_FIELDS; `answers[kept]` is the
    one on screen and the conversation's model, the others are a flip away."""
    chosen = answers[kept]
    conversation = Conversation.objects.create(
        user=user,
        workspace=workspace,
        title=_provisional_title(question),
        model=chosen["model"],
        system_prompt=system_prompt,
        temperature=temperature,
        max_tokens=max_tokens,
    )
    asked = Message.objects.create(
        conversation=conversation, role=Message.Role.USER, content=question
    )
    rows = [
        Message.objects.create(
            conversation=conversation,
            parent=asked,
            role=Message.Role.ASSISTANT,
            model=answer["model"],
            content=answer["content"],
            **{name: answer[name] for name in ANSWER_FIELDS if answer.get(name) is not None},
        )
        for answer in answers
    ]
    conversation.current_leaf = rows[kept]
    conversation.save(update_fields=["current_leaf"])
    _send_on_commit(
        events.user_group(user.pk),
        events.conversation_changed(conversation_id=conversation.pk, title=conversation.title),
    )
    return conversation


@transaction.atomic
def conversation_copy(*, conversation: Conversation, user) -> Conversation:
    """The branch on screen of a (shared) conversation, as a new private conversation of `user`
    in the same workspace, ready to be continued. An answer still streaming is left out."""
    copy = Conversation.objects.create(
        user=user,
        workspace=conversation.workspace,
        title=conversation.title,
        title_final=bool(conversation.title),
        model=conversation.model,
        system_prompt=conversation.system_prompt,
        temperature=conversation.temperature,
        max_tokens=conversation.max_tokens,
    )
    parent = None
    copied = (
        "role",
        "content",
        "model",
        *ANSWER_FIELDS,
        "error_code",
        "error_message",
        "error_phrase",
        "retry_after",
    )
    copies: dict[int, dict] = {}  # the original's attachments, by id → their copies
    for message in message_path(conversation=conversation):
        if message.status == Message.Status.STREAMING:
            break
        for described in message.attachments:
            if described["id"] not in copies:
                copies[described["id"]] = _attachment_copy(
                    attachment_id=described["id"], source=conversation, copy=copy, user=user
                )
        parent = Message.objects.create(
            conversation=copy,
            parent=parent,
            attachments=[copies[d["id"]] for d in message.attachments if copies[d["id"]]],
            **{name: getattr(message, name) for name in copied},
        )
    copy.current_leaf = parent
    copy.save(update_fields=["current_leaf"])
    _send_on_commit(
        events.user_group(user.pk),
        events.conversation_changed(conversation_id=copy.pk, title=copy.title),
    )
    return copy


def _attachment_copy(
    *, attachment_id: int, source: Conversation, copy: Conversation, user
) -> dict | None:
    original = Attachment.objects.filter(pk=attachment_id, conversation=source).first()
    if original is None:
        return None
    original.pk = None
    original.conversation = copy
    original.uploaded_by = user
    original.save(force_insert=True)
    return original.described()


@transaction.atomic
def conversations_member_removed(*, workspace, user) -> None:
    """A member leaves or is removed: their private conversations in the workspace are deleted,
    the ones they shared stay readable there and pass to the workspace owner (who can then
    unshare or delete them); their public links are revoked. docs/permissions.md."""
    mine = Conversation.objects.filter(workspace=workspace, user=user)
    for conversation_id in mine.filter(shared_at__isnull=True).values_list("pk", flat=True):
        _send_on_commit(
            events.control_group(conversation_id),
            events.stop_request(conversation_id=conversation_id),
        )
    mine.filter(shared_at__isnull=True).delete()
    Attachment.objects.filter(
        workspace=workspace, uploaded_by=user, conversation__isnull=True
    ).delete()
    owner = (
        Membership.objects.filter(workspace=workspace, role=Role.OWNER)
        .exclude(user=user)
        .values_list("user_id", flat=True)
        .first()
    )
    shared = list(
        conversation_list_passing_to_owner(
            user_ids=[user.pk], workspace_ids=[workspace.pk]
        ).values_list("pk", flat=True)
    )
    if shared:
        PublicLink.objects.filter(conversation_id__in=shared, revoked_at__isnull=True).update(
            revoked_at=timezone.now()
        )
        if owner is not None:
            Conversation.objects.filter(pk__in=shared).update(user_id=owner)
    # Their open tabs stop receiving what they may no longer see.
    _send_on_commit(
        events.user_group(user.pk),
        events.access_changed(conversation_id=None, reason=events.ACCESS_LOST_MEMBERSHIP_ENDED),
    )


# --- Attachments (chat.attachments) -------------------------------------------------------


def _unsent_room_check(user) -> None:
    if attachments_unsent(user=user).count() >= MAX_UNSENT:
        raise AttachmentRefused(
            phrase(
                gettext_noop(
                    "You have %(count)s files waiting to be sent: send or remove some first."
                ),
                count=number(MAX_UNSENT),
            )
        )


def _workspace_room_check(workspace, size: int) -> None:
    """WORKSPACE_FILES_MAX_BYTES: what a workspace's chats may keep in files (0: no limit)."""
    limit = settings.WORKSPACE_FILES_MAX_BYTES
    if not limit:
        return
    used = attachments_size_in(workspace_id=workspace.pk)
    if used + size > limit:
        raise AttachmentRefused(
            phrase(
                gettext_noop(
                    "The files of this workspace's chats take %(used)s of the %(limit)s it "
                    "may keep: delete conversations with files you no longer need to make room."
                ),
                used=filesizeformat(used),
                limit=filesizeformat(limit),
            )
        )


def attachment_create(*, workspace, user, name: str, data: bytes) -> Attachment:
    """A file uploaded to be sent with the next message, or AttachmentRefused (nothing kept).
    The file is read before the transaction: a long PDF holds no lock meanwhile."""
    # A user at a cap waits for no reading.
    _unsent_room_check(user)
    _workspace_room_check(workspace, len(data))
    read = upload_read(name=name, data=data)
    with transaction.atomic():
        # Counted again under the user's and the workspace's row locks (on SQLite, the
        # transaction's write lock): two uploads at once cannot both take the last place.
        get_user_model().objects.select_for_update().filter(pk=user.pk).values_list("pk").first()
        Workspace.objects.select_for_update().filter(pk=workspace.pk).values_list("pk").first()
        _unsent_room_check(user)
        _workspace_room_check(workspace, len(data))
        return Attachment.objects.create(
            workspace=workspace,
            uploaded_by=user,
            kind=read.kind,
            name=name[:255] or "file",
            media_type=read.media_type,
            size=len(data),
            data=data,
            text=read.text,
            model_data=read.model_data,
            model_media_type=read.model_media_type,
        )


@transaction.atomic
def attachment_delete(*, attachment: Attachment) -> None:
    """An upload taken back before its message was sent. A sent file stays with its message
    (it goes with the conversation)."""
    if attachment.conversation_id is not None:
        raise MessageNotEditable
    attachment.delete()


def attachments_unsent_delete(*, older_than: dt.timedelta) -> int:
    """Uploads never sent (a tab closed with files attached): deleted after `older_than`."""
    cutoff = timezone.now() - older_than
    deleted, _ = Attachment.objects.filter(
        conversation__isnull=True, created_at__lt=cutoff
    ).delete()
    return deleted
