import re
from urllib.parse import urlsplit

import pytest
from django.core import mail
from django.core.management import call_command
from django.urls import reverse

from accounts.models import User
from workspaces.models import Membership, Role

pytestmark = pytest.mark.django_db


def test_signup_creates_user_with_personal_workspace_as_owner(client):
    response = client.post(
        reverse("account_signup"),
        {
            "email": "Ada@Example.com",
            "password1": "a long passphrase 42",
            "password2": "a long passphrase 42",
        },
    )
    assert response.status_code == 302
    user = User.objects.get(email="ada@example.com")
    membership = Membership.objects.get(user=user)
    assert membership.role == Role.OWNER
    assert membership.workspace.is_personal
    # The console backend "sent" the verification email.
    assert any("ada@example.com" in m.to for m in mail.outbox)


def test_signup_shows_field_errors_for_bad_input(client, user):
    response = client.post(
        reverse("account_signup"),
        {"email": user.email, "password1": "short", "password2": "different"},
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert "errorlist" in html or "error" in html
    assert User.objects.filter(email=user.email).count() == 1
    response = client.post(
        reverse("account_signup"), {"email": "not-an-email", "password1": "", "password2": ""}
    )
    assert response.status_code == 200
    assert "Enter a valid email address" in response.content.decode()


def test_login_with_wrong_password_shows_an_error_and_does_not_log_in(client, user):
    response = client.post(reverse("account_login"), {"login": user.email, "password": "wrong"})
    assert response.status_code == 200
    assert "not correct" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_login_and_logout(client, user, password):
    response = client.post(reverse("account_login"), {"login": user.email, "password": password})
    assert response.status_code == 302
    assert int(client.session["_auth_user_id"]) == user.pk
    assert client.get("/").status_code == 200
    client.post(reverse("account_logout"))
    assert "_auth_user_id" not in client.session
    assert client.get("/").status_code == 302


def test_repeated_failed_logins_are_rate_limited(client, user, password):
    pages = [
        client.post(
            reverse("account_login"), {"login": user.email, "password": "wrong"}
        ).content.decode()
        for _ in range(6)
    ]
    assert "Too many failed login attempts" not in pages[0]
    assert "Too many failed login attempts" in pages[-1]
    # Even the right password is refused until the window passes.
    response = client.post(reverse("account_login"), {"login": user.email, "password": password})
    assert response.status_code == 200
    assert "_auth_user_id" not in client.session


def test_password_reset_sends_a_link_that_sets_a_new_password(client, user):
    client.post(reverse("account_reset_password"), {"email": user.email})
    assert len(mail.outbox) == 1
    link = re.search(
        r"https?://[^\s]+/accounts/password/reset/key/[^\s]+", mail.outbox[0].body
    ).group(0)
    path = "/" + link.split("/", 3)[3]
    response = client.get(path, follow=True)
    form_path = response.redirect_chain[-1][0] if response.redirect_chain else path
    response = client.post(
        form_path, {"password1": "brand new secret 99", "password2": "brand new secret 99"}
    )
    assert response.status_code == 302
    user.refresh_from_db()
    assert user.check_password("brand new secret 99")


def test_email_is_the_login_and_no_username_exists():
    assert User.USERNAME_FIELD == "email"
    assert "username" not in {f.name for f in User._meta.get_fields()}


def _sign_up(client, email):
    client.post(
        reverse("account_signup"),
        {"email": email, "password1": "a long passphrase 42", "password2": "a long passphrase 42"},
    )
    return next(m for m in mail.outbox if email in m.to)


def test_the_confirmation_email_names_aurax_at_the_site_address(client, settings):
    host = urlsplit(settings.SITE_URL).netloc

    message = _sign_up(client, "grace@example.com")

    assert message.subject == "[AURAX] Please Confirm Your Email Address"
    assert "Hello from AURAX!" in message.body
    assert f"register an account on {host}." in message.body
    assert "example.com!" not in message.body


def test_the_site_follows_a_changed_site_url_at_the_next_start(client, settings):
    settings.SITE_URL = "https://chat.example.org:8443"

    call_command("migrate", verbosity=0)

    message = _sign_up(client, "linus@example.com")
    assert "register an account on chat.example.org:8443." in message.body
    assert "Thank you for using AURAX!\nchat.example.org:8443" in message.body
