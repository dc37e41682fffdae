"""chat/migrations: what they do to rows that exist when they run."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("chat", "0002_sharing")]
AFTER = [("chat", "0003_one_streaming_answer")]


def _migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.fixture(autouse=True)
def _latest_after():
    """The schema the rest of the suite expects, whatever state a test left it in."""
    yield
    _migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())


@pytest.mark.django_db(transaction=True)
def test_the_one_streaming_answer_rule_interrupts_all_but_the_newest_left_streaming():
    apps = _migrate(BEFORE)
    try:
        User = apps.get_model("accounts", "User")
        Workspace = apps.get_model("workspaces", "Workspace")
        Conversation = apps.get_model("chat", "Conversation")
        Message = apps.get_model("chat", "Message")
        user = User.objects.create(email="old@example.com")
        workspace = Workspace.objects.create(name="Old", slug="old")
        first = Conversation.objects.create(workspace=workspace, user=user)
        second = Conversation.objects.create(workspace=workspace, user=user)
        older, newer, alone = (
            Message.objects.create(conversation=c, role="assistant", status="streaming")
            for c in (first, first, second)
        )
        done = Message.objects.create(conversation=first, role="assistant", status="complete")
    finally:
        apps = _migrate(AFTER)

    Message = apps.get_model("chat", "Message")
    statuses = dict(Message.objects.values_list("pk", "status"))
    assert statuses == {
        older.pk: "interrupted",
        newer.pk: "streaming",
        alone.pk: "streaming",
        done.pk: "complete",
    }


@pytest.mark.django_db(transaction=True)
def test_provider_errors_stored_as_english_text_are_given_their_phrase():
    """Answers that failed with the seconds to wait before those were kept apart (text only)
    read as before, now in the reader's number format too; other errors are left alone."""
    from django.utils import translation

    from chat.selectors import message_error_text

    apps = _migrate([("chat", "0004_answer_error_phrase")])
    try:
        User = apps.get_model("accounts", "User")
        Workspace = apps.get_model("workspaces", "Workspace")
        Conversation = apps.get_model("chat", "Conversation")
        Message = apps.get_model("chat", "Message")
        conversation = Conversation.objects.create(
            workspace=Workspace.objects.create(name="Old", slug="old"),
            user=User.objects.create(email="old@example.com"),
        )

        def failed(message, status="error"):
            return Message.objects.create(
                conversation=conversation,
                role="assistant",
                status=status,
                error_code="rate_limited",
                error_message=message,
            ).pk

        waited = failed("The provider is rate limiting requests. Retry in 1500 s.")
        own_words = failed("Too many requests.\nSlow down. Retry in 3 s.")
        plain = failed("The provider did not answer in time.")
        said_in_spanish = failed("El proveedor está limitando. Reintenta en 30 s.")
    finally:
        # 0005 and every later migration: the model below is today's.
        _migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())

    from chat.models import Message

    def said(pk, language):
        with translation.override(language):
            return message_error_text(message=Message.objects.get(pk=pk))

    assert said(waited, "en") == "The provider is rate limiting requests. Retry in 1,500 s."
    assert said(waited, "es") == (
        "El proveedor está limitando la frecuencia de las solicitudes. Reintenta en 1\xa0500 s."
    )
    assert said(waited, "pt-br") == (
        "O provedor está limitando a taxa de solicitações. Tente novamente em 1.500 s."
    )
    assert said(own_words, "es") == "Too many requests.\nSlow down. Reintenta en 3 s."
    assert said(plain, "es") == "El proveedor no respondió a tiempo."
    assert said(said_in_spanish, "es") == "El proveedor está limitando. Reintenta en 30 s."
    assert Message.objects.get(pk=plain).error_phrase is None
    assert Message.objects.get(pk=plain).attachments == []  # 0006: messages from before carry none
    assert Message.objects.get(pk=waited).error_message == (
        "The provider is rate limiting requests. Retry in 1500 s."  # the text stays
    )

    apps = _migrate([("chat", "0004_answer_error_phrase")])  # and back: the phrases go
    assert not apps.get_model("chat", "Message").objects.filter(error_phrase__isnull=False).exists()
