"""What a send writes and reads: the chat page sends its settings with every message, and a
send waits for this work before its answer can start, so it does no more than it must."""

import datetime as dt
import threading

import pytest
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from chat import actions, generation, services
from chat.models import Conversation, Message
from chat.selectors import messages_for_prompt
from tests.chat.helpers import conversation_with
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def user():
    return UserFactory()


def _updates_of(queries, table="chat_conversation") -> list[str]:
    # On PostgreSQL a send's writes are one statement (WITH ... UPDATE).
    return [q["sql"] for q in queries if f'UPDATE "{table}"' in q["sql"]]


def test_settings_sent_unchanged_are_not_written_nor_a_transaction_opened(user):
    conversation = conversation_with(
        user, model="fake-small", system_prompt="Be brief.", temperature=0.5, max_tokens=100
    )

    with CaptureQueriesContext(connection) as queries:
        services.conversation_settings_update(
            conversation=conversation,
            model="fake-small",
            system_prompt="Be brief.",
            temperature=0.5,
            max_tokens=100,
        )

    assert not queries.captured_queries, [q["sql"] for q in queries.captured_queries]


def test_settings_that_changed_are_written_and_only_they(user):
    conversation = conversation_with(user, model="fake-small", system_prompt="Be brief.")

    with CaptureQueriesContext(connection) as queries:
        services.conversation_settings_update(
            conversation=conversation, model="fake-large", system_prompt="Be brief."
        )

    [update] = _updates_of(queries.captured_queries)
    assert '"model"' in update and '"system_prompt"' not in update
    conversation.refresh_from_db()
    assert conversation.model == "fake-large" and conversation.system_prompt == "Be brief."


def test_a_send_with_the_page_settings_writes_the_conversation_once(user):
    conversation = conversation_with(user, title="", model="fake-small")
    frame = {
        "conversation_id": conversation.pk,
        "content": "What do owls eat at night?",
        "model": "fake-small",
        "system_prompt": "",
        "temperature": None,
        "max_tokens": None,
    }

    with CaptureQueriesContext(connection) as queries:
        _, answer, created = actions.send(user=user, frame=frame)

    assert not created
    [update] = _updates_of(queries.captured_queries)  # title, leaf and time together
    conversation.refresh_from_db()
    assert conversation.title == "What do owls eat at night?"
    assert conversation.current_leaf_id == answer.pk


def test_the_first_message_has_no_history_to_read(user):
    conversation = conversation_with(user, title="Owls")
    question, _answer = services.message_send(conversation=conversation, content="Hello")

    with CaptureQueriesContext(connection) as queries:
        history = messages_for_prompt(message=question)

    assert history == [question] and not queries.captured_queries


def test_a_later_message_gets_its_branch_as_history(user):
    conversation = conversation_with(user, title="Owls")
    first, answer = services.message_send(conversation=conversation, content="Hello")
    services.message_finish(message_id=answer.pk, content="Hi!", status="complete")
    conversation.refresh_from_db()
    second, _ = services.message_send(conversation=conversation, content="And owls?")

    history = messages_for_prompt(message=second)

    assert [(m.role, m.content) for m in history] == [
        ("user", "Hello"),
        ("assistant", "Hi!"),
        ("user", "And owls?"),
    ]


def test_finishing_an_answer_writes_it_in_one_update_and_holds_the_conversation(user):
    conversation = conversation_with(user, title="Owls")
    _question, answer = services.message_send(conversation=conversation, content="Hello")

    with CaptureQueriesContext(connection) as queries:
        finished = services.message_finish(
            message_id=answer.pk,
            content="Hi there!",
            status="complete",
            served_model="fake-small",
            input_tokens=3,
            output_tokens=2,
            ttft_ms=7,
            duration_ms=40,
        )

    assert finished is True
    assert len(_updates_of(queries.captured_queries, "chat_message")) == 1
    assert len(_updates_of(queries.captured_queries)) == 1  # the conversation's row lock
    assert not [q for q in queries.captured_queries if q["sql"].startswith("SELECT")]
    answer.refresh_from_db()
    assert (answer.content, answer.status, answer.served_model) == (
        "Hi there!",
        "complete",
        "fake-small",
    )
    assert (answer.input_tokens, answer.output_tokens, answer.ttft_ms) == (3, 2, 7)


def test_finishing_an_answer_that_is_gone_writes_nothing(user):
    conversation = conversation_with(user, title="Owls")
    _question, answer = services.message_send(conversation=conversation, content="Hello")
    conversation.delete()

    assert services.message_finish(message_id=answer.pk, content="late", status="complete") is False


def test_history_is_the_branch_only_without_failed_answers(user):
    conversation = conversation_with(user, title="Owls")
    q1, a1 = services.message_send(conversation=conversation, content="Hello")
    services.message_finish(message_id=a1.pk, content="", status="error", error_code="x")
    conversation.refresh_from_db()
    q2, a2 = services.message_send(conversation=conversation, content="Owls?")
    services.message_finish(message_id=a2.pk, content="They hoot.", status="complete")
    conversation.refresh_from_db()
    q3, a3 = services.message_send(conversation=conversation, content="Why?")
    services.message_finish(message_id=a3.pk, content="To talk.", status="complete")
    # Edit the second question: a branch beside it, from the same parent.
    q2b, _a2b = services.message_edit(message=Message.objects.get(pk=q2.pk), content="Cats?")

    history = messages_for_prompt(message=q2b)

    assert [(m.role, m.content) for m in history] == [("user", "Hello"), ("user", "Cats?")]
    assert [m.pk for m in messages_for_prompt(message=q3)] == [q1.pk, q2.pk, a2.pk, q3.pk]


def test_a_send_while_an_answer_streams_is_refused_and_writes_nothing(user):
    conversation = conversation_with(user, title="Owls")
    services.message_send(conversation=conversation, content="Hello")

    with pytest.raises(services.ConversationBusy):
        services.message_send(conversation=conversation, content="Again?")

    assert list(Message.objects.values_list("content", flat=True).order_by("pk")) == ["Hello", ""]


def test_an_answer_left_streaming_by_a_dead_process_does_not_block_a_send(user):
    conversation = conversation_with(user, title="Owls")
    _q, orphan = services.message_send(conversation=conversation, content="Hello")
    Message.objects.filter(pk=orphan.pk).update(
        heartbeat_at=timezone.now() - services.STALE_AFTER - dt.timedelta(seconds=1)
    )

    question, answer = services.message_send(conversation=conversation, content="Still there?")

    orphan.refresh_from_db()
    assert orphan.status == Message.Status.INTERRUPTED
    assert answer.status == Message.Status.STREAMING and question.parent_id == orphan.pk


def test_a_send_goes_under_the_stored_leaf_not_the_callers_copy(user):
    conversation = conversation_with(user, title="Owls")
    stale_copy = Conversation.objects.get(pk=conversation.pk)
    _q, first = services.message_send(conversation=conversation, content="Hello")
    services.message_finish(message_id=first.pk, content="Hi!", status="complete")

    question, answer = services.message_send(conversation=stale_copy, content="Owls?")

    assert question.parent_id == first.pk
    conversation.refresh_from_db()
    assert conversation.current_leaf_id == answer.pk and conversation.title == "Owls"
    assert [m.pk for m in messages_for_prompt(message=question)] == [
        first.parent_id,
        first.pk,
        question.pk,
    ]


def test_the_database_refuses_a_second_streaming_answer_in_a_conversation(user):
    conversation = conversation_with(user, title="Owls")
    services.message_send(conversation=conversation, content="Hello")

    with pytest.raises(IntegrityError), transaction.atomic():
        Message.objects.create(
            conversation=conversation, role=Message.Role.ASSISTANT, status="streaming"
        )
    other = conversation_with(user, title="Cats")
    services.message_send(conversation=other, content="Hello")  # another conversation may


@pytest.mark.django_db(transaction=True)
def test_sends_at_the_same_moment_in_one_conversation_start_one_answer(user):
    conversation = conversation_with(user, title="Owls")
    start = threading.Barrier(6)
    outcomes: list[str] = []

    def send(n):
        try:
            start.wait()
            services.message_send(
                conversation=Conversation.objects.get(pk=conversation.pk), content=f"Q{n}"
            )
            outcomes.append("sent")
        except services.ConversationBusy:
            outcomes.append("busy")
        finally:
            if connection.vendor != "sqlite":
                connection.close()

    threads = [threading.Thread(target=send, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert sorted(outcomes) == ["busy"] * 5 + ["sent"]
    assert Message.objects.filter(status="streaming").count() == 1
    assert Message.objects.filter(role="user").count() == 1  # the refused sends wrote nothing
    conversation.refresh_from_db()
    assert conversation.current_leaf.status == "streaming"


@pytest.mark.django_db(transaction=True)
def test_on_postgresql_a_send_is_its_access_check_and_one_statement(user):
    if connection.vendor != "postgresql":
        pytest.skip("the one-statement send is PostgreSQL's (services mode)")
    conversation = conversation_with(user, title="Owls")
    frame = {"conversation_id": conversation.pk, "content": "Hello"}

    with CaptureQueriesContext(connection) as queries:
        actions.send(user=user, frame=frame)

    assert len(queries.captured_queries) == 2, [q["sql"][:60] for q in queries.captured_queries]
    conversation.refresh_from_db()
    assert conversation.current_leaf.status == "streaming"


@pytest.mark.django_db(transaction=True)
def test_on_sqlite_a_send_is_its_access_check_and_three_writes_in_one_transaction(user):
    if connection.vendor != "sqlite":
        pytest.skip("PostgreSQL's send is one statement")
    conversation = conversation_with(user, title="")
    frame = {"conversation_id": conversation.pk, "content": "Hello"}

    with CaptureQueriesContext(connection) as queries:
        _, answer, _ = actions.send(user=user, frame=frame)

    sqls = [q["sql"].split()[0] for q in queries.captured_queries]
    assert sqls == ["SELECT", "BEGIN", "INSERT", "INSERT", "UPDATE", "COMMIT"], sqls
    conversation.refresh_from_db()
    assert conversation.current_leaf_id == answer.pk and conversation.title == "Hello"
    assert answer.parent.parent_id is None and answer.parent.content == "Hello"


@pytest.mark.django_db(transaction=True)
def test_on_postgresql_a_later_send_reads_its_history_in_the_same_statement(user):
    if connection.vendor != "postgresql":
        pytest.skip("the one-statement send is PostgreSQL's (services mode)")
    conversation = conversation_with(user, title="Owls", system_prompt="Be brief.")
    _, first, _ = actions.send(
        user=user, frame={"conversation_id": conversation.pk, "content": "Hi"}
    )
    generation.generation_prepare(answer=first)  # the routing's caches, read once
    services.message_finish(message_id=first.pk, content="Hoo!", status="complete")
    frame = {"conversation_id": conversation.pk, "content": "And owls?"}

    with CaptureQueriesContext(connection) as queries:
        _, answer, _ = actions.send(user=user, frame=frame)
        prepared = generation.generation_prepare(answer=answer)

    assert len(queries.captured_queries) == 2, [q["sql"][:60] for q in queries.captured_queries]
    assert [(m.role, m.content) for m in prepared.context["prompt"]] == [
        ("system", "Be brief."),
        ("user", "Hi"),
        ("assistant", "Hoo!"),
        ("user", "And owls?"),
    ]
    assert [(m.role, m.content) for m in messages_for_prompt(message=answer.parent)] == [
        (m.role, m.content)
        for m in messages_for_prompt(message=Message.objects.get(pk=answer.parent_id))
    ]
