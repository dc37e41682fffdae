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
