"""No cross-workspace access anywhere: generated from the URL resolver and WebSocket routes.

Every route that takes an object id, slug or token must have a case here (or an exemption
with its reason). For each case, a user from another workspace gets 404 — never 403, never
data — on GET and POST, and a viewer of the owning workspace is refused writes. A new route
without a case makes `test_every_routed_object_has_a_case` fail.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone

from tests.factories import UserFactory
from workspaces.models import Invitation, Membership, Role
from workspaces.services import workspace_create

pytestmark = pytest.mark.django_db

# Third-party route trees with their own test suites; their ids are not workspace objects.
FOREIGN_PREFIXES = ("admin/", "accounts/", "i18n/", "jsi18n/", "__errors/")


@dataclass
class World:
    owner: object
    viewer: object
    stranger: object
    team: object
    objects: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Case:
    kwargs: object  # World -> dict of URL kwargs
    write: bool  # True when POST changes something (viewers must be refused)
    viewer_may_read: bool = True
    # Posted from the members page: a refusal brings the member back to it with the reason
    # (their role may have dropped while the page was open) instead of a 403 page.
    refused_back_to_members: bool = False


def _conversation(w: World, *, shared: bool = False):
    from chat.models import Conversation

    key = "conversation_shared" if shared else "conversation"
    if key not in w.objects:
        c = Conversation.objects.create(workspace=w.team, user=w.owner, title="Secret plans")
        if shared and hasattr(c, "shared_at"):
            c.shared_at = timezone.now()
            c.save()
        w.objects[key] = c
    return w.objects[key]


def _attachment(w: World, *, sent: bool = True):
    """A file of the owner's: sent in their private conversation, or uploaded and not sent."""
    from chat import services

    key = "attachment_sent" if sent else "attachment"
    if key not in w.objects:
        attachment = services.attachment_create(
            workspace=w.team, user=w.owner, name="plans.txt", data=b"Secret plans"
        )
        if sent:
            services.message_send(
                conversation=_conversation(w), content="Read this", attachments=[attachment]
            )
        w.objects[key] = attachment
    return w.objects[key]


def _credential(w: World):
    from providers.models import Scope
    from providers.services import credential_create

    if "credential" not in w.objects:
        w.objects["credential"] = credential_create(
            actor=None,
            scope=Scope.WORKSPACE,
            workspace=w.team,
            kind="openai",
            name="Team key",
            api_key="sk-team-secret-1234",
            base_url="https://api.openai.com/v1",
        )
    return w.objects["credential"]


def _global_model(w: World):
    from providers.models import CatalogModel, Scope
    from providers.services import credential_create

    if "global_model" not in w.objects:
        credential = credential_create(
            actor=None,
            scope=Scope.GLOBAL,
            kind="openai",
            name="Global",
            api_key="sk-global-1234",
            base_url="https://api.openai.com/v1",
        )
        w.objects["global_model"] = CatalogModel.objects.create(
            credential=credential, model_id="gpt-x"
        )
    return w.objects["global_model"]


def _api_key(w: World):
    from api.services import api_key_create

    if "api_key" not in w.objects:
        membership = Membership.objects.get(workspace=w.team, user=w.owner)
        w.objects["api_key"] = api_key_create(membership=membership, name="ci", owner="workspace")[
            0
        ]
    return w.objects["api_key"]


def _batch(w: World):
    """A batch of the team's owner, its input file and its (finished) output."""
    from batches.models import Batch, BatchFile

    if "batch" not in w.objects:
        now = timezone.now()
        common = {"workspace": w.team, "user": w.owner}
        output = BatchFile.objects.create(
            public_id="file-matrixout",
            purpose="batch_output",
            filename="out.jsonl",
            size=6,
            data=b"secret",
            **common,
        )
        w.objects["batch_file"] = output
        w.objects["batch"] = Batch.objects.create(
            public_id="batch_matrix",
            endpoint="/v1/chat/completions",
            input_file_id="file-x",
            output_file=output,
            created_at=now,
            expires_at=now + timedelta(hours=24),
            **common,
        )
    return w.objects["batch"]


def _template(w: World):
    from prompts.models import PromptTemplate

    if "template" not in w.objects:
        w.objects["template"] = PromptTemplate.objects.create(
            workspace=w.team, title="Team prompt", body="Hi {{name}}", created_by=w.owner
        )
    return w.objects["template"]


def _invitation(w: World):
    if "invitation" not in w.objects:
        w.objects["invitation"] = Invitation.objects.create(
            workspace=w.team,
            email="guest@example.com",
            role=Role.MEMBER,
            token="tok-matrix",
            invited_by=w.owner,
            expires_at=timezone.now() + timedelta(days=7),
        )
    return w.objects["invitation"]


def _invoice(w: World):
    from billing.models import Invoice

    if "invoice" not in w.objects:
        fields = {f.name for f in Invoice._meta.get_fields()}
        today = timezone.now().replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        data = {
            "workspace": w.team,
            "number": "INV-MATRIX-1",
            "period_start": today,
            "period_end": today,
        }
        if "workspace_name" in fields:
            data["workspace_name"] = w.team.name
        if "plan" in fields:
            from billing.models import Plan

            data["plan"] = Plan.objects.order_by("pk").first()
        w.objects["invoice"] = Invoice.objects.create(**data)
    return w.objects["invoice"]


def slug(w):
    return {"slug": w.team.slug}


CASES: dict[str, Case] = {
    # workspaces
    "workspace_members": Case(slug, write=False),
    "workspace_settings": Case(slug, write=True, viewer_may_read=False),
    "workspace_delete": Case(slug, write=True),
    "workspace_leave": Case(slug, write=False),  # anyone may leave; strangers must still get 404
    "workspace_transfer": Case(slug, write=True, refused_back_to_members=True),
    "workspace_audit": Case(slug, write=False, viewer_may_read=False),
    "member_role": Case(
        lambda w: {
            **slug(w),
            "member_id": Membership.objects.get(workspace=w.team, user=w.owner).pk,
        },
        write=True,
        refused_back_to_members=True,
    ),
    "member_remove": Case(
        lambda w: {
            **slug(w),
            "member_id": Membership.objects.get(workspace=w.team, user=w.owner).pk,
        },
        write=True,
        refused_back_to_members=True,
    ),
    "invitation_create": Case(slug, write=True, refused_back_to_members=True),
    "invitation_revoke": Case(
        lambda w: {**slug(w), "invitation_id": _invitation(w).pk},
        write=True,
        refused_back_to_members=True,
    ),
    # provider keys
    "providers:workspace_keys": Case(slug, write=True),  # viewers may see the masked list
    "providers:workspace_global_toggle": Case(
        lambda w: {**slug(w), "credential_id": _credential(w).pk}, write=True
    ),
    "providers:workspace_model_toggle": Case(
        lambda w: {**slug(w), "model_id": _global_model(w).pk}, write=True
    ),
    "providers:credential_test": Case(lambda w: {"credential_id": _credential(w).pk}, write=True),
    "providers:credential_refresh": Case(
        lambda w: {"credential_id": _credential(w).pk}, write=True
    ),
    "providers:credential_delete": Case(lambda w: {"credential_id": _credential(w).pk}, write=True),
    # API keys, prompt templates
    "api_key_revoke": Case(lambda w: {"key_id": _api_key(w).pk}, write=True),
    "batch_cancel": Case(lambda w: {"batch_id": _batch(w).public_id}, write=True),
    "batch_file": Case(
        lambda w: {"file_id": _batch(w).output_file.public_id}, write=False, viewer_may_read=False
    ),
    "prompt_template_edit": Case(lambda w: {"template_id": _template(w).pk}, write=True),
    "prompt_template_delete": Case(lambda w: {"template_id": _template(w).pk}, write=True),
    # billing
    "billing_invoice": Case(
        lambda w: {"number": _invoice(w).number}, write=False, viewer_may_read=False
    ),
    # chat
    "chat_conversation": Case(
        lambda w: {"conversation_id": _conversation(w).pk}, write=False, viewer_may_read=False
    ),
    "chat_thread": Case(
        lambda w: {"conversation_id": _conversation(w).pk}, write=False, viewer_may_read=False
    ),
    "chat_rename": Case(lambda w: {"conversation_id": _conversation(w).pk}, write=True),
    "chat_pin": Case(lambda w: {"conversation_id": _conversation(w).pk}, write=True),
    "chat_delete": Case(lambda w: {"conversation_id": _conversation(w).pk}, write=True),
    "chat_settings": Case(lambda w: {"conversation_id": _conversation(w).pk}, write=True),
    "chat_branch": Case(lambda w: {"conversation_id": _conversation(w).pk}, write=True),
    "chat_export": Case(
        lambda w: {"conversation_id": _conversation(w).pk, "fmt": "json"},
        write=False,
        viewer_may_read=False,
    ),
    "chat_share": Case(lambda w: {"conversation_id": _conversation(w).pk}, write=True),
    "chat_unshare": Case(
        lambda w: {"conversation_id": _conversation(w, shared=True).pk}, write=True
    ),
    "chat_public_link_create": Case(lambda w: {"conversation_id": _conversation(w).pk}, write=True),
    "chat_public_link_revoke": Case(
        lambda w: {"conversation_id": _conversation(w, shared=True).pk}, write=True
    ),
    "chat_copy": Case(lambda w: {"conversation_id": _conversation(w, shared=True).pk}, write=True),
    "chat_attachment": Case(
        lambda w: {"attachment_id": _attachment(w).pk}, write=False, viewer_may_read=False
    ),
    "chat_attachment_delete": Case(
        lambda w: {"attachment_id": _attachment(w, sent=False).pk}, write=True
    ),
}

EXEMPT = {
    "invitation_accept": (
        "addressed by a secret token, not a workspace member's id; "
        "covered in tests/workspaces/test_invitations.py"
    ),
    "billing_checkout": (
        "takes a public plan slug; acts on the current workspace, "
        "checked in tests/billing/test_stripe.py"
    ),
    "chat_public": (
        "a public read-only link by design, addressed by a random revocable token; "
        "checked in tests/chat/test_sharing.py"
    ),
    "chat_public_attachment": (
        "a file of a conversation shown by a public link, addressed by the link's token; "
        "checked in tests/chat/test_attachments.py"
    ),
}


def _routes(patterns, prefix="", namespace=None):
    for p in patterns:
        if isinstance(p, URLResolver):
            ns = p.namespace or namespace
            yield from _routes(p.url_patterns, prefix + str(p.pattern), ns)
        elif isinstance(p, URLPattern):
            name = f"{namespace}:{p.name}" if namespace and p.name else p.name
            yield prefix + str(p.pattern), name


def _parametrised_routes():
    for route, name in _routes(get_resolver().url_patterns):
        if route.startswith(FOREIGN_PREFIXES):
            continue
        if re.search(r"<|\(\?P", route):
            yield route, name


def test_every_routed_object_has_a_case():
    missing = [
        f"{name or '(unnamed)'}: {route}"
        for route, name in _parametrised_routes()
        if name not in CASES and name not in EXEMPT
    ]
    assert not missing, "routes taking an object without an access case: " + ", ".join(missing)
    stale = set(CASES) - {name for _, name in _parametrised_routes()}
    assert not stale, f"cases for routes that no longer exist: {stale}"


@pytest.fixture
def world(db):
    owner, viewer, stranger = UserFactory(), UserFactory(), UserFactory()
    team = workspace_create(owner=owner, name="Team A")
    Membership.objects.create(workspace=team, user=viewer, role=Role.VIEWER)
    workspace_create(owner=stranger, name="Team B")
    return World(owner=owner, viewer=viewer, stranger=stranger, team=team)


def _client(user, workspace=None) -> Client:
    client = Client()
    client.force_login(user)
    if workspace is not None:
        session = client.session
        session["workspace_id"] = workspace.pk
        session.save()
    return client


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_user_from_another_workspace_gets_404_and_no_data(world, name):
    url = reverse(name, kwargs=CASES[name].kwargs(world))
    client = _client(world.stranger)
    for method in ("get", "post"):
        response = getattr(client, method)(url)
        assert response.status_code in (404, 405), (
            f"{method.upper()} {url} gave {response.status_code}"
        )
        body = response.content.decode(errors="replace")
        for secret in (
            "Secret plans",
            "sk-team-secret",
            "Team prompt",
            "INV-MATRIX-1",
            "guest@example.com",
        ):
            if secret in url:  # the page may echo its own address (e.g. the language form)
                continue
            assert secret not in body, f"{method.upper()} {url} leaked {secret!r}"


@pytest.mark.parametrize("name", sorted(n for n, c in CASES.items() if c.write))
def test_a_viewer_is_refused_writes(world, name):
    url = reverse(name, kwargs=CASES[name].kwargs(world))
    client = _client(world.viewer, world.team)
    response = client.post(url)
    if CASES[name].refused_back_to_members:
        members = reverse("workspace_members", kwargs=slug(world))
        assert response.status_code == 302 and response["Location"] == members, url
        assert "no longer allows that" in client.get(members).content.decode()
        return
    assert response.status_code in (403, 404), f"POST {url} by a viewer gave {response.status_code}"


@pytest.mark.parametrize("name", sorted(n for n, c in CASES.items() if not c.viewer_may_read))
def test_a_viewer_cannot_read_what_is_not_for_viewers(world, name):
    url = reverse(name, kwargs=CASES[name].kwargs(world))
    response = _client(world.viewer, world.team).get(url)
    assert response.status_code in (403, 404), f"GET {url} by a viewer gave {response.status_code}"


# --- WebSocket routes ----------------------------------------------------------------------

WS_CASES = {
    "ws/chat/": "chat",
    # Also: another socket's comparison (tests/compare/test_consumer.py).
    "ws/compare/": "a comparison in another workspace",
}


def test_every_websocket_route_has_a_case():
    from aurax.routing import websocket_urlpatterns

    routes = {str(p.pattern).lstrip("^").rstrip("$") for p in websocket_urlpatterns}
    assert routes == set(WS_CASES), f"websocket routes without a case: {routes - set(WS_CASES)}"


@pytest.mark.django_db(transaction=True)
async def test_a_user_from_another_workspace_cannot_reach_a_conversation_over_the_socket():
    from asgiref.sync import sync_to_async
    from channels.testing import WebsocketCommunicator

    from aurax.asgi import application

    @sync_to_async
    def setup():
        owner, stranger = UserFactory(), UserFactory()
        team = workspace_create(owner=owner, name="Team A")
        from chat.models import Conversation

        conversation = Conversation.objects.create(workspace=team, user=owner, title="Secret plans")
        client = Client()
        client.force_login(stranger)
        return conversation, client.cookies["sessionid"].value

    conversation, session = await setup()
    communicator = WebsocketCommunicator(
        application,
        "/ws/chat/",
        headers=[
            (b"cookie", f"sessionid={session}".encode()),
            (b"origin", b"http://testserver"),
            (b"host", b"testserver"),
        ],
    )
    connected, _ = await communicator.connect()
    assert connected
    for frame in (
        {"type": "subscribe", "conversation_id": conversation.pk},
        {"type": "send", "conversation_id": conversation.pk, "content": "hi"},
        {"type": "stop", "conversation_id": conversation.pk},
        {"type": "sync", "conversation_id": conversation.pk},
    ):
        await communicator.send_json_to(frame)
        reply = await communicator.receive_json_from(timeout=5)
        assert reply["type"] == "error" and reply["code"] == "not_found", (frame, reply)
        assert "Secret plans" not in str(reply)
    await communicator.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_a_user_from_another_workspace_cannot_compare_models_in_it():
    from asgiref.sync import sync_to_async

    from tests.chat.helpers import socket_for

    @sync_to_async
    def setup():
        owner, stranger = UserFactory(), UserFactory()
        return workspace_create(owner=owner, name="Team A").slug, stranger

    slug, stranger = await setup()
    communicator, connected, _ = await socket_for(stranger, path="/ws/compare/")
    assert connected
    await communicator.send_json_to(
        {"type": "compare", "workspace": slug, "models": ["a", "b"], "content": "hi"}
    )
    reply = await communicator.receive_json_from(timeout=5)
    assert reply["type"] == "error" and reply["code"] == "not_found", reply
    await communicator.disconnect()
