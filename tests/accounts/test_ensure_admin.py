import pytest
from django.core.management import call_command
from django.test import Client

from accounts.models import User

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_env(monkeypatch):
    monkeypatch.setenv("AURAX_ADMIN_EMAIL", "admin@example.org")
    monkeypatch.setenv("AURAX_ADMIN_PASSWORD", "first-password-1")


def test_it_keeps_the_administrators_session_across_restarts(admin_env):
    call_command("ensure_admin")
    client = Client()
    assert client.login(email="admin@example.org", password="first-password-1")
    assert client.get("/settings/preferences/").status_code == 200

    call_command("ensure_admin")

    response = client.get("/settings/preferences/")
    assert response.status_code == 200


def test_it_changes_the_password_when_the_environment_does(admin_env, monkeypatch):
    call_command("ensure_admin")
    monkeypatch.setenv("AURAX_ADMIN_PASSWORD", "second-password-2")

    call_command("ensure_admin")

    user = User.objects.get(email="admin@example.org")
    assert user.check_password("second-password-2")
    assert user.is_staff and user.is_superuser


def test_it_makes_an_existing_user_administrator_without_changing_the_password(admin_env):
    User.objects.create_user(email="admin@example.org", password="first-password-1")
    password_hash = User.objects.get(email="admin@example.org").password

    call_command("ensure_admin")

    user = User.objects.get(email="admin@example.org")
    assert user.is_staff and user.is_superuser
    assert user.password == password_hash
