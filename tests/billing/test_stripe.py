"""The Stripe webhook with locally signed payloads, and checkout against a local fake API."""

import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import pytest
import stripe

from billing.models import Subscription
from billing.plans import plan_for_workspace, subscription_change
from tests.factories import MembershipFactory, WorkspaceFactory
from workspaces.models import AuditEvent, Role

SECRET = "whsec_test_secret"
URL = "/billing/stripe/webhook/"


def sign(payload: str, secret: str = SECRET, timestamp: int | None = None) -> str:
    timestamp = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{timestamp}.{payload}".encode(), hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def event(kind: str, obj: dict, event_id: str = "evt_1", created: int | None = None) -> str:
    return json.dumps(
        {
            "id": event_id,
            "object": "event",
            "type": kind,
            "created": created or int(time.time()),
            "data": {"object": obj},
        }
    )


def deliver(client, payload: str, signature: str | None = None):
    return client.post(
        URL,
        data=payload,
        content_type="application/json",
        headers={"Stripe-Signature": signature if signature is not None else sign(payload)},
    )


@pytest.fixture
def configured(settings, plans):
    settings.STRIPE_WEBHOOK_SECRET = SECRET
    plans["pro"].stripe_price_id = "price_pro"
    plans["pro"].save()
    plans["team"].stripe_price_id = "price_team"
    plans["team"].save()
    return plans


@pytest.fixture
def acme(db):
    workspace = WorkspaceFactory(name="Acme")
    owner = MembershipFactory(workspace=workspace, role=Role.OWNER).user
    return workspace, owner


def checkout_completed(workspace, event_id="evt_checkout", created=None):
    return event(
        "checkout.session.completed",
        {
            "id": "cs_1",
            "object": "checkout.session",
            "client_reference_id": str(workspace.id),
            "customer": "cus_1",
            "subscription": "sub_1",
            "metadata": {"workspace_id": str(workspace.id), "plan_slug": "pro"},
        },
        event_id=event_id,
        created=created,
    )


def subscription_event(
    kind, status, price="price_pro", event_id="evt_sub", created=None, workspace=None
):
    # Checkout copies our metadata onto the subscription (subscription_data.metadata).
    metadata = {"workspace_id": str(workspace.id), "plan_slug": "pro"} if workspace else {}
    return event(
        kind,
        {
            "id": "sub_1",
            "object": "subscription",
            "customer": "cus_1",
            "status": status,
            "current_period_start": 1_767_225_600,  # 2026-01-01
            "current_period_end": 1_769_904_000,  # 2026-02-01
            "items": {"data": [{"price": {"id": price}}]},
            "metadata": metadata,
        },
        event_id=event_id,
        created=created,
    )


def test_the_webhook_is_not_found_when_not_configured(client, settings, db):
    settings.STRIPE_WEBHOOK_SECRET = ""
    payload = event("ping", {})

    assert deliver(client, payload).status_code == 404


def test_a_bad_signature_is_refused_and_changes_nothing(client, configured, acme):
    workspace, _owner = acme
    payload = checkout_completed(workspace)

    response = deliver(client, payload, sign(payload, secret="whsec_wrong"))

    assert response.status_code == 400
    assert deliver(client, payload, "").status_code == 400
    assert deliver(client, payload + " ", sign(payload)).status_code == 400  # body altered
    assert not Subscription.objects.exists()


def test_an_event_signed_too_long_ago_is_refused(client, configured, acme):
    workspace, _owner = acme
    payload = checkout_completed(workspace)

    response = deliver(client, payload, sign(payload, timestamp=int(time.time()) - 3600))

    assert response.status_code == 400
    assert not Subscription.objects.exists()


def test_checkout_completed_subscribes_the_workspace_and_is_audited(client, configured, acme):
    workspace, _owner = acme

    response = deliver(client, checkout_completed(workspace))

    assert response.status_code == 200
    subscription = Subscription.objects.get(workspace=workspace)
    assert subscription.plan.slug == "pro" and subscription.status == "active"
    assert (subscription.stripe_customer_id, subscription.stripe_subscription_id) == (
        "cus_1",
        "sub_1",
    )
    audit = AuditEvent.objects.get(workspace=workspace, action="billing.plan_change")
    assert audit.data == {
        "from_plan": "free",
        "to_plan": "pro",
        "from_status": None,
        "to_status": "active",
        "source": "stripe",
    }


def test_a_replayed_event_changes_nothing(client, configured, acme):
    workspace, _owner = acme
    payload = checkout_completed(workspace)
    deliver(client, payload)
    before = Subscription.objects.get(workspace=workspace).updated_at

    response = deliver(client, payload)

    assert response.status_code == 200
    assert Subscription.objects.get(workspace=workspace).updated_at == before
    assert AuditEvent.objects.filter(action="billing.plan_change").count() == 1


def test_a_subscription_update_changes_plan_status_and_period(client, configured, acme):
    workspace, _owner = acme
    now = int(time.time())
    deliver(client, checkout_completed(workspace, created=now - 10))

    response = deliver(
        client,
        subscription_event("customer.subscription.updated", "past_due", "price_team", created=now),
    )

    assert response.status_code == 200
    subscription = Subscription.objects.get(workspace=workspace)
    assert subscription.plan.slug == "team" and subscription.status == "past_due"
    assert subscription.current_period_end.isoformat() == "2026-02-01T00:00:00+00:00"
    assert plan_for_workspace(workspace.id).slug == "team"


def test_an_older_event_delivered_late_is_ignored(client, configured, acme):
    workspace, _owner = acme
    now = int(time.time())
    newer = subscription_event(
        "customer.subscription.updated", "active", "price_team", "evt_new", now, workspace
    )
    deliver(client, newer)

    deliver(client, checkout_completed(workspace, created=now - 60))

    subscription = Subscription.objects.get(workspace=workspace)
    assert subscription.plan.slug == "team"


def test_a_deleted_subscription_puts_the_workspace_back_on_free(client, configured, acme):
    workspace, _owner = acme
    now = int(time.time())
    deliver(client, checkout_completed(workspace, created=now - 10))

    deliver(client, subscription_event("customer.subscription.deleted", "canceled", created=now))

    assert Subscription.objects.get(workspace=workspace).status == "canceled"
    assert plan_for_workspace(workspace.id).slug == "free"
    actions = AuditEvent.objects.filter(action="billing.plan_change").order_by("id")
    assert [a.data["to_plan"] for a in actions] == ["pro", "free"]


def test_an_unknown_event_is_acknowledged(client, configured, db):
    response = deliver(client, event("invoice.created", {"id": "in_1"}))

    assert response.status_code == 200
    assert not Subscription.objects.exists()


def test_an_update_for_an_unknown_subscription_is_acknowledged(client, configured, db):
    response = deliver(client, subscription_event("customer.subscription.updated", "active"))

    assert response.status_code == 200
    assert not Subscription.objects.exists()


class FakeStripe(BaseHTTPRequestHandler):
    requests: list = []

    def do_POST(self):  # noqa: N802
        body = self.rfile.read(int(self.headers["Content-Length"])).decode()
        FakeStripe.requests.append(
            {"path": self.path, "auth": self.headers["Authorization"], "form": parse_qs(body)}
        )
        answer = json.dumps(
            {
                "id": "cs_test_123",
                "object": "checkout.session",
                "url": "https://checkout.stripe.test/c/pay/cs_test_123",
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args):
        pass


@pytest.fixture
def fake_stripe(monkeypatch):
    FakeStripe.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeStripe)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setattr(stripe, "api_base", f"http://127.0.0.1:{server.server_port}")
    yield FakeStripe.requests
    server.shutdown()
    server.server_close()


def test_checkout_redirects_to_a_stripe_checkout_session(
    client, configured, acme, settings, fake_stripe
):
    settings.STRIPE_SECRET_KEY = "sk_test_local"
    workspace, owner = acme
    client.force_login(owner)

    page = client.get(f"/usage/plan/?workspace={workspace.slug}").content.decode()
    response = client.post("/usage/plan/team/checkout/", {"workspace": workspace.slug})

    assert "/usage/plan/team/checkout/" in page and "managed by the operator" not in page
    assert response.status_code == 302
    assert response["Location"] == "https://checkout.stripe.test/c/pay/cs_test_123"
    [sent] = fake_stripe
    assert sent["path"] == "/v1/checkout/sessions"
    assert sent["auth"] == "Bearer sk_test_local"
    assert sent["form"]["line_items[0][price]"] == ["price_team"]
    assert sent["form"]["mode"] == ["subscription"]
    assert sent["form"]["client_reference_id"] == [str(workspace.id)]
    assert sent["form"]["metadata[plan_slug]"] == ["team"]
    assert sent["form"]["customer_email"] == [owner.email]


def test_checkout_reuses_the_workspace_stripe_customer(
    client, configured, acme, settings, fake_stripe
):
    settings.STRIPE_SECRET_KEY = "sk_test_local"
    workspace, owner = acme
    subscription_change(
        workspace=workspace,
        plan=configured["pro"],
        source="test",
        stripe_customer_id="cus_existing",
    )
    client.force_login(owner)

    client.post("/usage/plan/team/checkout/", {"workspace": workspace.slug})

    assert fake_stripe[0]["form"]["customer"] == ["cus_existing"]


def test_a_member_cannot_start_a_checkout(client, configured, acme, settings, fake_stripe):
    settings.STRIPE_SECRET_KEY = "sk_test_local"
    workspace, _owner = acme
    client.force_login(MembershipFactory(workspace=workspace, role=Role.MEMBER).user)

    response = client.post("/usage/plan/team/checkout/", {"workspace": workspace.slug})

    assert response.status_code == 403
    assert fake_stripe == []


def test_a_plan_without_a_stripe_price_cannot_be_checked_out(
    client, configured, acme, settings, fake_stripe
):
    settings.STRIPE_SECRET_KEY = "sk_test_local"
    workspace, owner = acme
    client.force_login(owner)

    response = client.post("/usage/plan/free/checkout/", {"workspace": workspace.slug})

    assert response.status_code == 404
    assert fake_stripe == []
