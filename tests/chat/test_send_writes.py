"""What a send writes and reads: the chat page sends its settings with every message, and a
send waits for this work before its answer can start, so it does no more than it must."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from chat import actions, services
from chat.models import Conversation, Message
from chat.selectors import messages_for_prompt
from tests.factories import UserFactory
from workspaces.selectors import personal_workspace_get

pytestmark = pytest.mark.django_db


@pytest.fixture
def user():
    return UserFactory()


def _conversation(user, **fields):
    conversation = services.conversation_create(
        user=user, workspace=personal_workspace_get(user=user)
    )
    Conversation.objects.filter(pk=conversation.pk).update(**fields)
    conversation.refresh_from_db()
    return conversation


def _updates_of(queries, table="chat_conversation") -> list[str]:
    return [q["sql"] for q in queries if q["sql"].startswith(f'UPDATE "{table}"')]


def test_settings_sent_unchanged_are_not_written(user):
    conversation = _conversation(
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

    assert not _updates_of(queries.captured_queries)


def test_settings_that_changed_are_written_and_only_they(user):
    conversation = _conversation(user, model="fake-small", system_prompt="Be brief.")

    with CaptureQueriesContext(connection) as queries:
        services.conversation_settings_update(
            conversation=conversation, model="fake-large", system_prompt="Be brief."
        )

    [update] = _updates_of(queries.captured_queries)
    assert '"model"' in update and '"system_prompt"' not in update
    conversation.refresh_from_db()
    assert conversation.model == "fake-large" and conversation.system_prompt == "Be brief."


def test_a_send_with_the_page_settings_writes_the_conversation_once(user):
    conversation = _conversation(user, title="", model="fake-small")
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
    conversation = _conversation(user, title="Owls")
    question, _answer = services.message_send(conversation=conversation, content="Hello")

    with CaptureQueriesContext(connection) as queries:
        history = messages_for_prompt(message=question)

    assert history == [question] and not queries.captured_queries


def test_a_later_message_gets_its_branch_as_history(user):
    conversation = _conversation(user, title="Owls")
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
    conversation = _conversation(user, title="Owls")
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
    conversation = _conversation(user, title="Owls")
    _question, answer = services.message_send(conversation=conversation, content="Hello")
    conversation.delete()

    assert services.message_finish(message_id=answer.pk, content="late", status="complete") is False


def test_history_is_the_branch_only_without_failed_answers(user):
    conversation = _conversation(user, title="Owls")
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
