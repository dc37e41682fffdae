"""aurax.statements: inserts, updates and selects with their SQL built once, writing as save()
writes and reading as the ORM reads."""

import datetime as dt
from decimal import Decimal

import pytest
from django.db import DatabaseError, connection
from django.forms.models import model_to_dict
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from aurax import statements
from billing.models import Budget
from chat import services
from chat.models import Conversation, Message
from tests.factories import UserFactory
from workspaces.selectors import personal_workspace_get

pytestmark = pytest.mark.django_db


@pytest.fixture
def conversation():
    user = UserFactory()
    return services.conversation_create(user=user, workspace=personal_workspace_get(user=user))


def _row(message: Message) -> dict:
    row = model_to_dict(Message.objects.get(pk=message.pk))
    del row["id"]
    return row


def test_an_insert_writes_the_row_save_would_write(conversation):
    """Defaults, auto_now_add, foreign keys and conversions are the fields' own: the row
    equals the one save() writes for the same object, creation time aside."""
    fields = dict(
        conversation=conversation,
        role=Message.Role.ASSISTANT,
        status=Message.Status.STOPPED,
        cost=Decimal("0.00012345"),
        retry_after=2.5,
    )
    by_save = Message.objects.create(**fields)
    inserted = statements.insert(Message(parent=by_save, **fields))

    assert inserted.pk and inserted.pk != by_save.pk
    assert not inserted._state.adding and inserted._state.db == "default"
    assert inserted.created_at is not None
    stored = Message.objects.get(pk=inserted.pk)
    assert stored.created_at == inserted.created_at
    assert stored.parent_id == by_save.pk and stored.cost == Decimal("0.00012345")
    expected = {**_row(by_save), "parent": by_save.pk}
    assert {k: v for k, v in _row(inserted).items() if k != "created_at"} == {
        k: v for k, v in expected.items() if k != "created_at"
    }


def test_an_insert_refuses_an_unsaved_relation(conversation):
    unsaved = Message(conversation=conversation, role=Message.Role.USER)
    with pytest.raises(ValueError, match="unsaved related object"):
        statements.insert(Message(conversation=conversation, parent=unsaved, role="user"))
    assert not Message.objects.exists()


def test_a_model_with_save_receivers_is_refused():
    """Budgets invalidate caches on save (billing.apps): a write here would skip that."""
    with pytest.raises(TypeError, match="save receivers"):
        statements.insert(Budget(cost_limit=Decimal("1")))


def test_saving_fields_writes_those_and_no_other(conversation):
    conversation.title = "Kept in memory only"
    conversation.model = "fake-large"
    statements.save_fields(conversation, ["model"])

    stored = Conversation.objects.get(pk=conversation.pk)
    assert stored.model == "fake-large"
    assert stored.title == ""


def test_saving_fields_of_a_row_that_is_gone_fails(conversation):
    Conversation.objects.filter(pk=conversation.pk).delete()
    conversation.model = "fake-large"
    with pytest.raises(DatabaseError, match="gone"):
        statements.save_fields(conversation, ["model"])


def test_the_sql_is_built_once_per_model_and_columns(conversation):
    statements.insert(Message(conversation=conversation, role="user"))
    built = statements._insert.cache_info().misses
    statements.insert(Message(conversation=conversation, role="user", content="again"))
    assert statements._insert.cache_info().misses == built


def _selected(model, pk, related=()):
    selected = statements.select_parts(model, "default", related)
    table = connection.ops.quote_name(model._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f'SELECT {selected.columns} FROM {selected.tables} WHERE {table}."id" = %s', [pk]
        )
        [row] = cursor.fetchall()
    assert len(row) == selected.width
    return selected.read(row)


def _values(obj) -> dict:
    return {f.attname: getattr(obj, f.attname) for f in type(obj)._meta.concrete_fields}


def test_a_selected_row_reads_as_the_orm_reads_it(conversation):
    """Every column converted as the ORM converts it (decimals, floats, datetimes, booleans,
    nulls), on SQLite as on PostgreSQL."""
    question = Message.objects.create(conversation=conversation, role=Message.Role.USER)
    answer = Message.objects.create(
        conversation=conversation,
        parent=question,
        role=Message.Role.ASSISTANT,
        content="Hello <b>there</b>",
        cost=Decimal("0.00012345"),
        retry_after=2.5,
        tokens_estimated=True,
        output_tokens=7,
        heartbeat_at=timezone.now() - dt.timedelta(seconds=3),
    )

    read = _selected(Message, answer.pk)
    by_orm = Message.objects.get(pk=answer.pk)

    assert _values(read) == _values(by_orm)
    assert {k: type(v) for k, v in _values(read).items()} == {
        k: type(v) for k, v in _values(by_orm).items()
    }
    assert read.cost == Decimal("0.00012345") and read.heartbeat_at.tzinfo is not None
    assert not read._state.adding and read._state.db == "default"


def test_the_rows_a_foreign_key_points_to_come_with_it_and_a_null_key_brings_none(conversation):
    question = Message.objects.create(conversation=conversation, role=Message.Role.USER)
    answer = Message.objects.create(
        conversation=conversation, parent=question, role=Message.Role.ASSISTANT
    )

    read_answer = _selected(Message, answer.pk, ("conversation", "parent"))
    read_question = _selected(Message, question.pk, ("conversation", "parent"))

    with CaptureQueriesContext(connection) as queries:
        assert _values(read_answer.parent) == _values(Message.objects.get(pk=question.pk))
        assert _values(read_answer.conversation) == _values(conversation)
        assert read_question.parent is None
    assert len(queries.captured_queries) == 1  # the read to compare with, no other


def test_only_foreign_keys_can_be_selected_along(conversation):
    with pytest.raises(TypeError, match="not a foreign key"):
        statements.select_parts(Conversation, "default", ("messages",))
