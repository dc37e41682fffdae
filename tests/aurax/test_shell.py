import json
import logging

import pytest
from django.urls import reverse

from aurax.logging import RequestIdFilter

pytestmark = pytest.mark.django_db


def test_every_response_carries_a_request_id(client):
    response = client.get("/healthz")
    assert len(response["X-Request-ID"]) == 32
    response = client.get("/healthz", HTTP_X_REQUEST_ID="abc-123")
    assert response["X-Request-ID"] == "abc-123"
    response = client.get("/healthz", HTTP_X_REQUEST_ID="bad id with spaces\n")
    assert response["X-Request-ID"] != "bad id with spaces\n"


def test_request_log_lines_are_json_with_the_request_id(client, caplog):
    from pythonjsonlogger.json import JsonFormatter

    formatter = JsonFormatter(
        "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s",
        rename_fields={"levelname": "level"},
    )
    caplog.handler.addFilter(RequestIdFilter())
    with caplog.at_level(logging.INFO, logger="aurax.request"):
        response = client.get("/healthz", HTTP_X_REQUEST_ID="req-42")
    record = next(r for r in caplog.records if r.name == "aurax.request")
    line = json.loads(formatter.format(record))
    assert line["request_id"] == "req-42" == response["X-Request-ID"]
    assert line["message"] == "GET /healthz 200"


def test_content_security_policy_forbids_inline_script(client):
    csp = client.get(reverse("account_login"))["Content-Security-Policy"]
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";") if d.strip())
    assert directives["script-src"] == "'self'"
    assert "unsafe-inline" not in csp


def test_pages_contain_no_inline_script(logged_in_client):
    html = logged_in_client.get("/").content.decode()
    import re

    for tag in re.findall(r"<script[^>]*>", html):
        assert "src=" in tag
    assert " onclick=" not in html and " style=" not in html


def test_missing_page_gets_the_styled_404(client):
    response = client.get("/no/such/page/")
    assert response.status_code == 404
    html = response.content.decode()
    assert "AURAX" in html and "css/app.css" in html


def test_server_error_page_renders_without_the_database():
    from aurax.views import server_error

    response = server_error(None)
    assert response.status_code == 500
    assert "Something went wrong" in response.content.decode()


def test_shell_is_served_with_htmx_vendored_locally(logged_in_client):
    html = logged_in_client.get("/").content.decode()
    assert "/static/vendor/htmx.min.js" in html
    assert "//unpkg" not in html and "cdn" not in html.lower()


def test_anonymous_visitor_is_sent_to_login(client):
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))


def test_admin_lists_users_and_workspaces(client, user):
    from accounts.models import User

    admin = User.objects.create_superuser(email="root@example.com", password="x")
    client.force_login(admin)
    users = client.get("/admin/accounts/user/").content.decode()
    assert user.email in users
    workspaces = client.get("/admin/workspaces/workspace/").content.decode()
    assert user.email.split("@")[0] in workspaces


def test_social_login_buttons_appear_only_when_configured(client):
    html = client.get(reverse("account_login")).content.decode()
    assert "Google" not in html and "GitHub" not in html
