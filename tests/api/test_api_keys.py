import json

import pytest
from django.core.management import call_command
from django.urls import reverse

from api.models import ApiKey
from api.services import api_key_create, api_key_hash
from tests.api.client import AsyncClient
from tests.factories import MembershipFactory, UserFactory
from workspaces.models import AuditEvent, Membership, Role
from workspaces.services import workspace_create

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_key_is_shown_once_and_stored_only_hashed(logged_in_client, user):
    response = logged_in_client.post(reverse("api_keys"), {"name": "laptop", "owner": "personal"})
    html = response.content.decode()
    key = ApiKey.objects.get(name="laptop")
    raw = html.split('id="new-api-key">')[1].split("<")[0]
    assert raw.startswith("ax-") and len(raw) > 40
    assert key.key_hash == api_key_hash(raw) and raw not in key.key_hash
    assert raw not in json.dumps(list(ApiKey.objects.values()), default=str)
    listing = logged_in_client.get(reverse("api_keys")).content.decode()
    assert raw not in listing and key.prefix in listing
    assert AuditEvent.objects.filter(action="api_key.create").exists()


def test_a_key_can_carry_expiry_models_budget_and_rate_limits(logged_in_client):
    from billing.models import Budget, RateLimit

    logged_in_client.post(
        reverse("api_keys"),
        {
            "name": "ci",
            "owner": "personal",
            "expires_at": "2031-01-01T10:00",
            "allowed_models": "fast, gpt-4o-mini",
            "monthly_budget": "12.50",
            "rpm": "30",
            "tpm": "9000",
        },
    )
    key = ApiKey.objects.get(name="ci")
    assert key.allowed_models == ["fast", "gpt-4o-mini"] and key.expires_at.year == 2031
    assert Budget.objects.get(api_key_id=key.pk).cost_limit == 12.5
    limit = RateLimit.objects.get(api_key_id=key.pk)
    assert (limit.rpm, limit.tpm) == (30, 9000)


def test_a_key_cannot_be_created_already_expired(logged_in_client):
    response = logged_in_client.post(
        reverse("api_keys"),
        {"name": "dead", "owner": "personal", "expires_at": "2020-01-01T10:00"},
    )

    assert response.status_code == 200
    assert "This date has passed: the key would never work." in response.content.decode()
    assert not ApiKey.objects.filter(name="dead").exists()


def test_the_list_marks_expired_keys_and_shows_each_keys_limits(logged_in_client, user):
    from django.utils import timezone

    logged_in_client.post(
        reverse("api_keys"),
        {
            "name": "ci",
            "owner": "personal",
            "monthly_budget": "12.50",
            "rpm": "30",
            "tpm": "9000",
        },
    )
    membership = Membership.objects.get(user=user)
    old, _raw = api_key_create(membership=membership, name="old")
    ApiKey.objects.filter(pk=old.pk).update(expires_at=timezone.now() - timezone.timedelta(days=1))

    html = logged_in_client.get(reverse("api_keys")).content.decode()

    rows = {r.split("<td>")[1].split("</td>")[0]: r for r in html.split("<tr")[2:]}
    assert "$12.50 a month" in rows["ci"] and "30 requests/min" in rows["ci"]
    assert "9,000 tokens/min" in rows["ci"] and "expired" not in rows["ci"]
    assert 'class="key-expired">expired<' in rows["old"] and ">none<" in rows["old"]


def test_only_admins_create_workspace_keys(client, user):
    team = workspace_create(owner=user, name="Team")
    member = MembershipFactory(workspace=team, role=Role.MEMBER).user
    client.force_login(member)
    session = client.session
    session["workspace_id"] = team.pk
    session.save()
    response = client.post(reverse("api_keys"), {"name": "shared", "owner": "workspace"})
    assert "Only workspace admins" in response.content.decode()
    assert not ApiKey.objects.exists()


def test_a_viewer_cannot_create_keys(client, user):
    team = workspace_create(owner=user, name="Team")
    viewer = MembershipFactory(workspace=team, role=Role.VIEWER).user
    client.force_login(viewer)
    session = client.session
    session["workspace_id"] = team.pk
    session.save()
    assert client.post(reverse("api_keys"), {"name": "x", "owner": "personal"}).status_code == 403


def test_revoking_a_key_stops_it_at_once(logged_in_client, user):
    membership = Membership.objects.get(user=user)
    key, raw = api_key_create(membership=membership, name="old")
    logged_in_client.post(reverse("api_key_revoke", args=[key.pk]))
    key.refresh_from_db()
    assert key.revoked_at is not None


def test_another_users_key_cannot_be_revoked(logged_in_client):
    other = UserFactory()
    key, _ = api_key_create(membership=Membership.objects.get(user=other), name="theirs")
    assert logged_in_client.post(reverse("api_key_revoke", args=[key.pk])).status_code == 404
    key.refresh_from_db()
    assert key.revoked_at is None


def test_create_api_key_command_prints_a_working_key(capsys):
    user = UserFactory(email="script@example.com")
    call_command("create_api_key", "--user", "script@example.com", "--name", "cron")
    raw = capsys.readouterr().out.strip()
    key = ApiKey.objects.get(key_hash=api_key_hash(raw))
    assert key.user == user and key.name == "cron" and key.workspace.is_personal


async def test_a_key_for_workspace_a_cannot_use_workspace_b(credential):
    from asgiref.sync import sync_to_async

    from providers.models import Scope
    from providers.services import catalog_refresh, credential_create

    @sync_to_async
    def setup():
        alice, bob = UserFactory(), UserFactory()
        a = workspace_create(owner=alice, name="A")
        b = workspace_create(owner=bob, name="B")
        private = credential_create(
            actor=None,
            scope=Scope.WORKSPACE,
            workspace=b,
            kind="openai",
            name="B only",
            api_key="sk-b-secret",
            base_url=credential.base_url,
            allow_private_network=True,
        )
        catalog_refresh(private.id)
        key_a, raw_a = api_key_create(
            membership=Membership.objects.get(workspace=a, user=alice), name="a"
        )
        return raw_a, private

    raw_a, private = await setup()
    client = AsyncClient()
    response = await client.post(
        "/v1/chat/completions",
        content_type="application/json",
        data=json.dumps(
            {"model": f"{private.id}:fake-small", "messages": [{"role": "user", "content": "hi"}]}
        ),
        headers={"Authorization": f"Bearer {raw_a}"},
    )
    assert response.status_code == 404
    models = (await client.get("/v1/models", headers={"Authorization": f"Bearer {raw_a}"})).json()[
        "data"
    ]
    assert all(m["owned_by"] != "B only" for m in models)


async def test_a_revoked_key_stops_working_at_once_even_when_cached(api_key, auth):
    from asgiref.sync import sync_to_async

    from api.services import api_key_revoke

    ok = await AsyncClient().get("/v1/models", headers=auth)
    assert ok.status_code == 200
    key = api_key[0]
    membership = await sync_to_async(
        lambda: Membership.objects.select_related("workspace", "user").get(user=key.user)
    )()
    await sync_to_async(api_key_revoke)(membership=membership, key=key)
    refused = await AsyncClient().get("/v1/models", headers=auth)
    assert refused.status_code == 401


async def test_a_removed_members_key_stops_working(credential):
    from asgiref.sync import sync_to_async

    from workspaces.services import member_remove

    @sync_to_async
    def setup():
        owner, member = UserFactory(), UserFactory()
        team = workspace_create(owner=owner, name="T")
        membership = Membership.objects.create(workspace=team, user=member, role=Role.MEMBER)
        _, raw = api_key_create(membership=membership, name="m")
        return owner, membership, raw

    owner, membership, raw = await setup()
    headers = {"Authorization": f"Bearer {raw}"}
    assert (await AsyncClient().get("/v1/models", headers=headers)).status_code == 200
    owner_membership = await sync_to_async(Membership.objects.select_related("workspace").get)(
        user=owner, workspace=membership.workspace
    )
    await sync_to_async(member_remove)(actor_membership=owner_membership, target=membership)
    assert (await AsyncClient().get("/v1/models", headers=headers)).status_code == 401


def test_revoking_a_key_while_redis_is_away_revokes_it_without_an_error_page(
    logged_in_client, user, monkeypatch, caplog
):
    import redis

    from api import services

    def away():
        raise redis.ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(services, "api_keys_changed", away)  # the shared generation's bump
    membership = Membership.objects.get(user=user)
    key, _raw = api_key_create(membership=membership, name="lost laptop")
    response = logged_in_client.post(reverse("api_key_revoke", args=[key.pk]))
    assert response.status_code < 400  # not a 500 for a revocation that stands
    assert "Connection refused" in caplog.text  # the failed bump, logged for the operator
    key.refresh_from_db()
    assert key.revoked_at is not None


async def test_the_api_docs_examples_run_as_pasted(api_user, api_key, auth):
    """Their model is one the user may call here, not an alias nobody made."""
    import re

    from asgiref.sync import sync_to_async
    from django.test import Client

    @sync_to_async
    def docs():
        client = Client()
        client.force_login(api_user)
        return client.get(reverse("api_docs")).content.decode()

    html = await docs()
    models = set(re.findall(r'model="([^"]+)"', html))
    assert len(models) == 1, models
    model = models.pop()
    assert f'"model": "{model}"' in html  # the curl example too

    response = await AsyncClient().post(
        "/v1/chat/completions",
        data=json.dumps({"model": model, "messages": [{"role": "user", "content": "Hello"}]}),
        headers=auth,
    )
    assert response.status_code == 200, response.content
