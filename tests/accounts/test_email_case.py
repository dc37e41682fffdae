"""An email address is one account whatever its case: Bob@Example.com is bob@example.com."""

import pytest
from django.db import IntegrityError, connection, transaction
from django.db.migrations.executor import MigrationExecutor

from accounts.models import User
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def add_user(client, email):
    return client.post(
        "/admin/accounts/user/add/",
        {
            "email": email,
            "usable_password": "true",
            "password1": "a long enough passphrase 42",
            "password2": "a long enough passphrase 42",
        },
    )


def test_the_admin_stores_a_new_address_in_lower_case(staff_client):
    response = add_user(staff_client, "Bob@Example.com")

    assert response.status_code == 302
    assert User.objects.filter(email="bob@example.com").exists()


def test_the_admin_refuses_an_address_taken_in_another_case(staff_client):
    add_user(staff_client, "Bob@Example.com")

    response = add_user(staff_client, "bob@example.COM")

    errors = response.context["adminform"].form.errors
    assert errors["email"] == ["A user with this email address already exists."]
    assert User.objects.filter(email__iexact="bob@example.com").count() == 1


def test_changing_an_address_to_one_taken_in_another_case_is_refused(staff_client):
    UserFactory(email="bob@example.com")
    carol = UserFactory(email="carol@example.com")

    response = staff_client.post(
        f"/admin/accounts/user/{carol.pk}/change/",
        {
            "email": "BOB@example.com",
            "theme": "system",
            "date_joined_0": "2026-01-01",
            "date_joined_1": "00:00:00",
            "is_active": "on",
        },
    )

    assert response.context["adminform"].form.errors["email"] == [
        "A user with this email address already exists."
    ]
    carol.refresh_from_db()
    assert carol.email == "carol@example.com"


def test_any_save_stores_the_address_in_lower_case():
    user = User(email=" Dave@Example.COM ")
    user.save()

    assert User.objects.get(pk=user.pk).email == "dave@example.com"


def test_the_database_refuses_an_address_taken_in_another_case():
    UserFactory(email="bob@example.com")
    carol = UserFactory(email="carol@example.com")

    with pytest.raises(IntegrityError), transaction.atomic():
        User.objects.filter(pk=carol.pk).update(email="Bob@example.com")


def _migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


def _migrate_to_latest():
    _migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())


@pytest.mark.django_db(transaction=True)
def test_existing_addresses_are_stored_in_lower_case():
    apps = _migrate([("accounts", "0001_initial")])
    try:
        old = apps.get_model("accounts", "User").objects.create(email="Old@Example.com")
    finally:
        _migrate_to_latest()

    assert User.objects.get(pk=old.pk).email == "old@example.com"


@pytest.mark.django_db(transaction=True)
def test_addresses_of_two_users_differing_by_case_stop_the_migration_with_their_names():
    apps = _migrate([("accounts", "0001_initial")])
    OldUser = apps.get_model("accounts", "User")
    try:
        OldUser.objects.create(email="Bob@example.com")
        OldUser.objects.create(email="bob@example.com")
        with pytest.raises(RuntimeError, match="bob@example.com"):
            _migrate([("accounts", "0003_unique_email_ignoring_case")])
    finally:
        OldUser.objects.filter(email="Bob@example.com").delete()
        _migrate_to_latest()
