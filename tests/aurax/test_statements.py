"""aurax.statements: inserts and updates with their SQL built once, written as save() writes."""

from decimal import Decimal

import pytest
from django.db import DatabaseError
from django.forms.models import model_to_dict

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
