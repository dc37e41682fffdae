"""The response cache on /v1: asked for with the `Cache-Control` header or the body's `cache`
object (the LiteLLM proxy's spelling), told in `x-cache` and `age`, on both API flavours."""

import json

import pytest
from asgiref.sync import sync_to_async

from billing.ledger import ledger_flush
from billing.models import UsageEvent
from tests.api.test_chat_completions import api_docs_page, body, post, sse_events

pytestmark = pytest.mark.django_db(transaction=True)


def upstream_calls(fake_upstream) -> int:
    return len(fake_upstream.posted())


@sync_to_async
def statuses():
    ledger_flush()
    return list(UsageEvent.objects.order_by("pk").values_list("status", flat=True))


def streamed_text(content: bytes) -> str:
    chunks = [json.loads(line) for line in sse_events(content) if line != "[DONE]"]
    return "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])


async def test_max_age_in_cache_control_answers_the_second_request_from_the_cache(
    auth, fake_upstream
):
    ask = {**auth, "Cache-Control": "max-age=600"}
    first = await post("/v1/chat/completions", body('@reply="same again"'), ask)
    second = await post("/v1/chat/completions", body('@reply="same again"'), ask)

    assert first.status_code == second.status_code == 200
    assert first.headers["x-cache"] == "miss" and "age" not in first.headers
    assert second.headers["x-cache"] == "hit" and int(second.headers["age"]) >= 0
    answer = second.json()["choices"][0]
    assert answer["message"]["content"] == "same again" and answer["finish_reason"] == "stop"
    # What this request was billed: nothing.
    usage = second.json()["usage"]
    assert (usage["prompt_tokens"], usage["completion_tokens"], usage["total_tokens"]) == (0, 0, 0)
    assert first.json()["usage"]["completion_tokens"] > 0
    assert upstream_calls(fake_upstream) == 1
    assert await statuses() == ["ok", "cached"]


async def test_a_streamed_request_is_replayed_from_the_cache_as_chunks(auth, fake_upstream):
    ask = {**auth, "Cache-Control": "max-age=600"}
    payload = body('@reply="one two three"', stream=True, stream_options={"include_usage": True})
    first = await post("/v1/chat/completions", payload, ask)
    second = await post("/v1/chat/completions", payload, ask)

    assert (first.headers["x-cache"], second.headers["x-cache"]) == ("miss", "hit")
    assert streamed_text(first.content) == streamed_text(second.content) == "one two three"
    lines = sse_events(second.content)
    assert lines[-1] == "[DONE]"
    assert json.loads(lines[-2])["usage"]["total_tokens"] == 0
    assert upstream_calls(fake_upstream) == 1


async def test_without_asking_nothing_is_cached_and_nothing_is_said(auth, fake_upstream):
    for _ in range(2):
        response = await post("/v1/chat/completions", body('@reply="fresh"'), auth)
        assert "x-cache" not in response.headers
    assert upstream_calls(fake_upstream) == 2


@pytest.mark.parametrize(
    ("second", "expected"),
    [
        ("no-cache", "miss"),  # store, never read
        ("max-age=0", "miss"),
        ("max-age=600, no-store", "hit"),  # may read, keeps nothing new
        ("max-age=600", "hit"),
    ],
)
async def test_cache_control_directives(auth, fake_upstream, second, expected):
    await post("/v1/chat/completions", body(), {**auth, "Cache-Control": "max-age=600"})
    response = await post("/v1/chat/completions", body(), {**auth, "Cache-Control": second})

    assert response.headers["x-cache"] == expected
    assert upstream_calls(fake_upstream) == (1 if expected == "hit" else 2)


async def test_no_store_keeps_nothing_for_the_next_request(auth, fake_upstream):
    await post("/v1/chat/completions", body(), {**auth, "Cache-Control": "max-age=600, no-store"})
    response = await post("/v1/chat/completions", body(), {**auth, "Cache-Control": "max-age=600"})

    assert response.headers["x-cache"] == "miss"
    assert upstream_calls(fake_upstream) == 2


async def test_the_cache_object_in_the_body_does_the_same(auth, fake_upstream):
    first = await post("/v1/chat/completions", body(cache={"ttl": 600}), auth)
    second = await post("/v1/chat/completions", body(cache={"s-maxage": 600}), auth)
    refreshed = await post("/v1/chat/completions", body(cache={"no-cache": True}), auth)

    assert [r.headers["x-cache"] for r in (first, second, refreshed)] == ["miss", "hit", "miss"]
    assert upstream_calls(fake_upstream) == 2


async def test_a_cache_object_asks_for_the_cache_by_being_there(auth, fake_upstream):
    nothing_kept = await post("/v1/chat/completions", body(cache={"no-store": True}), auth)
    first = await post("/v1/chat/completions", body(cache={}), auth)
    second = await post("/v1/chat/completions", body(cache={}), auth)
    no_store = await post("/v1/chat/completions", body(cache={"no-store": True}), auth)

    assert [r.headers["x-cache"] for r in (nothing_kept, first, second, no_store)] == [
        "miss",
        "miss",
        "hit",
        "hit",
    ]
    assert upstream_calls(fake_upstream) == 2


@pytest.mark.parametrize(
    ("cache", "param"),
    [({"ttl": -1}, "cache.ttl"), ({"s-maxage": "soon"}, "cache.s-maxage"), ("yes", "cache")],
)
async def test_a_malformed_cache_object_is_refused_naming_the_field(
    auth, fake_upstream, cache, param
):
    response = await post("/v1/chat/completions", body(cache=cache), auth)

    assert response.status_code == 400
    assert response.json()["error"]["param"] == param
    assert upstream_calls(fake_upstream) == 0


async def test_anthropic_messages_use_the_cache_too(auth, fake_upstream):
    payload = {
        "model": "fake-small",
        "max_tokens": 50,
        "messages": [{"role": "user", "content": '@reply="bonjour"'}],
    }
    ask = {**auth, "Cache-Control": "max-age=600"}
    first = await post("/v1/messages", payload, ask)
    second = await post("/v1/messages", payload, ask)
    streamed = await post("/v1/messages", {**payload, "stream": True}, ask)

    assert [r.headers["x-cache"] for r in (first, second, streamed)] == ["miss", "hit", "hit"]
    assert second.json()["content"] == [{"type": "text", "text": "bonjour"}]
    usage = second.json()["usage"]
    assert usage["input_tokens"] == usage["output_tokens"] == 0
    assert usage["cache_read_input_tokens"] == usage["cache_creation_input_tokens"] == 0
    assert b'"text":"bonjour"' in streamed.content
    assert upstream_calls(fake_upstream) == 1


async def test_another_workspaces_key_misses(auth, fake_upstream, credential):
    from api.services import api_key_create
    from tests.factories import UserFactory
    from workspaces.models import Membership

    @sync_to_async
    def stranger_key():
        user = UserFactory()
        membership = Membership.objects.select_related("workspace").get(user=user)
        return api_key_create(membership=membership, name="stranger")[1]

    ask = {"Cache-Control": "max-age=600"}
    await post("/v1/chat/completions", body(), {**auth, **ask})
    other = await post(
        "/v1/chat/completions", body(), {"Authorization": f"Bearer {await stranger_key()}", **ask}
    )

    assert other.headers["x-cache"] == "miss"
    assert upstream_calls(fake_upstream) == 2


async def test_the_api_page_says_how_to_ask_in_the_readers_language(api_key):
    user = api_key[0].user
    page = await sync_to_async(api_docs_page)(user)
    assert "Cache-Control: max-age=3600" in page and "<code>x-cache: hit</code>" in page

    user.language = "es"
    await user.asave(update_fields=["language"])
    page = await sync_to_async(api_docs_page)(user)
    assert "Caché de respuestas" in page and "sin llamar al proveedor" in page


@sync_to_async
def settings_saved(user, workspace, **changes):
    """The workspace's settings page, saved by `user` with `changes` (checkboxes: absent is
    off, as a browser sends them)."""
    from django.test import Client

    client = Client()
    client.force_login(user)
    form = {"name": workspace.name, "color": workspace.color, "default_model": ""}
    form.update({name: "on" for name, on in changes.items() if on})
    response = client.post(f"/w/{workspace.slug}/settings/", form)
    assert response.status_code == 302, response.content.decode()[:2000]


async def test_an_admin_turning_the_cache_off_takes_effect_at_once_for_keys_in_use(
    api_key, auth, fake_upstream
):
    key = api_key[0]
    ask = {**auth, "Cache-Control": "max-age=600"}
    await post("/v1/chat/completions", body(), ask)
    assert (await post("/v1/chat/completions", body(), ask)).headers["x-cache"] == "hit"

    await settings_saved(key.user, key.workspace, response_cache_enabled=False)
    off = await post("/v1/chat/completions", body(), ask)
    await settings_saved(key.user, key.workspace, response_cache_enabled=True)
    back_on = await post("/v1/chat/completions", body(), ask)
    again = await post("/v1/chat/completions", body(), ask)

    # Off: not served; on again: what was kept before is not served either, the new one is.
    assert [r.headers["x-cache"] for r in (off, back_on, again)] == ["miss", "miss", "hit"]
    assert upstream_calls(fake_upstream) == 3


async def test_the_admin_site_switch_does_the_same(api_key, auth, fake_upstream, admin_client):
    from django.urls import reverse

    workspace = api_key[0].workspace
    ask = {**auth, "Cache-Control": "max-age=600"}
    await post("/v1/chat/completions", body(), ask)

    @sync_to_async
    def admin_saves(enabled: bool):
        form = {
            "name": workspace.name,
            "slug": workspace.slug,
            "color": workspace.color,
            "default_model": "",
            "memberships-TOTAL_FORMS": "0",
            "memberships-INITIAL_FORMS": "0",
        }
        if enabled:
            form["response_cache_enabled"] = "on"
        url = reverse("admin:workspaces_workspace_change", args=[workspace.pk])
        response = admin_client.post(url, form)
        assert response.status_code == 302, response.content.decode()[:3000]

    await admin_saves(False)
    off = await post("/v1/chat/completions", body(), ask)
    await admin_saves(True)
    back_on = await post("/v1/chat/completions", body(), ask)

    assert [r.headers["x-cache"] for r in (off, back_on)] == ["miss", "miss"]
    assert upstream_calls(fake_upstream) == 3
