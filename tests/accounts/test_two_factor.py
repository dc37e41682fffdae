import base64
import hashlib
import hmac
import re
import struct
import time

import pytest
from allauth.account.models import EmailAddress
from django.urls import reverse

pytestmark = pytest.mark.django_db


def totp(secret: str, at: float | None = None) -> str:
    """RFC 6238, written here independently of the library under test."""
    key = base64.b32decode(secret + "=" * (-len(secret) % 8))
    counter = int((at or time.time()) // 30)
    digest = hmac.new(key, struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    code = (struct.unpack(">I", digest[offset : offset + 4])[0] & 0x7FFFFFFF) % 1_000_000
    return f"{code:06d}"


def login(client, user, password):
    """Log in, then confirm the password again as allauth asks before changing authenticators."""
    EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)
    assert (
        client.post(
            reverse("account_login"), {"login": user.email, "password": password}
        ).status_code
        == 302
    )
    response = client.get(reverse("mfa_activate_totp"))
    assert response.status_code == 302 and "reauthenticate" in response["Location"]
    assert client.post(response["Location"], {"password": password}).status_code == 302


def shown_secret(client) -> str:
    page = client.get(reverse("mfa_activate_totp")).content.decode()
    return re.search(r'value="([A-Z2-7]{32})"', page).group(1)


def test_totp_can_be_activated_and_then_login_asks_for_a_code(client, user, password):
    login(client, user, password)
    secret = shown_secret(client)
    response = client.post(reverse("mfa_activate_totp"), {"code": totp(secret)})
    assert response.status_code == 302
    assert user.authenticator_set.filter(type="totp").exists()

    client.logout()
    response = client.post(reverse("account_login"), {"login": user.email, "password": password})
    assert response.status_code == 302
    assert response["Location"] == reverse("mfa_authenticate")
    assert "_auth_user_id" not in client.session

    response = client.post(
        reverse("mfa_authenticate"), {"code": "000000" if totp(secret) != "000000" else "111111"}
    )
    assert response.status_code == 200
    assert "_auth_user_id" not in client.session

    response = client.post(reverse("mfa_authenticate"), {"code": totp(secret, time.time() + 30)})
    assert response.status_code == 302
    assert int(client.session["_auth_user_id"]) == user.pk


def test_recovery_codes_are_generated_with_totp(client, user, password):
    login(client, user, password)
    secret = shown_secret(client)
    client.post(reverse("mfa_activate_totp"), {"code": totp(secret)})
    assert user.authenticator_set.filter(type="recovery_codes").exists()
    page = client.get(reverse("mfa_view_recovery_codes")).content.decode()
    assert len(re.findall(r"\b[0-9a-f]{8}\b", page)) >= 8
