"""/v1/responses keeps its answers (unless `store` is false): read back by id, their input
listed, followed by `previous_response_id` (the chain's turns reach the model, the earlier
instructions do not), deleted, expired; and seen only by keys acting as the user who stored
them in that workspace."""

from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone

from billing.ledger import ledger_flush
from billing.models import UsageEvent
from tests.api.client import AsyncClient
from tests.api.test_responses import events_of, post
from tests.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


async def ask(headers, text, **fields):
    response = await post({"model": "fake-small", "input": f'@reply="{text}"', **fields}, headers)
    assert response.status_code == 200, response.content
    return response.json()


def sent_messages(fake_upstream) -> list[list[tuple[str, str]]]:
    """(role, text) of the messages of each request the upstream got."""
    return [
        [(m["role"], m["content"]) for m in r["json"]["messages"]]
        for r in fake_upstream.posted()
        if r["path"].endswith("/chat/completions")
    ]


@sync_to_async
def key_of(*, user=None, workspace=None):
    """Headers for a new key of `user` in `workspace`; a new user or workspace for the one
    not given."""
    from api.services import api_key_create
    from workspaces.models import Membership

    if user is not None and workspace is not None:
        membership = Membership.objects.get(user=user, workspace=workspace)
    elif workspace is not None:
        membership = Membership.objects.create(workspace=workspace, user=UserFactory())
    else:
        membership = MembershipFactory(user=user)
    return {"Authorization": f"Bearer {api_key_create(membership=membership, name='x')[1]}"}


@sync_to_async
def usage_count():
    ledger_flush()
    return UsageEvent.objects.count()


async def test_a_response_is_kept_and_read_back_with_its_input_items(auth):
    answer = await ask(auth, "Bonjour", instructions="Answer in French.", metadata={"t": "1"})
    assert answer["store"] is True and answer["previous_response_id"] is None

    got = await AsyncClient().get(f"/v1/responses/{answer['id']}", headers=auth)
    assert got.status_code == 200 and got.json() == answer

    listed = await AsyncClient().get(f"/v1/responses/{answer['id']}/input_items", headers=auth)
    [item] = listed.json()["data"]
    assert item["id"].startswith("msg_") and item["id"] != answer["output"][0]["id"]
    assert (item["type"], item["role"]) == ("message", "user")
    assert item["content"] == [{"type": "input_text", "text": '@reply="Bonjour"'}]
    assert listed.json()["first_id"] == listed.json()["last_id"] == item["id"]
    assert listed.json()["has_more"] is False


async def test_input_items_are_listed_newest_first_in_pages(auth):
    image = "data:image/png;base64,iVBORw0KGgo="
    items = [
        {"role": "developer", "content": "Be brief."},
        {"role": "user", "content": "One"},
        {"role": "assistant", "content": "Two"},
        {"role": "user", "content": [{"type": "input_image", "image_url": image}]},
        {"role": "user", "content": [{"type": "input_text", "text": "@reply=ok"}]},
    ]
    answer = (await post({"model": "fake-small", "input": items}, auth)).json()
    path = f"/v1/responses/{answer['id']}/input_items"

    async def page(query):
        response = await AsyncClient().get(f"{path}?{query}", headers=auth)
        assert response.status_code == 200, response.content
        return response.json()

    newest = await page("limit=2")
    assert [i["content"][0].get("text") for i in newest["data"]] == ["@reply=ok", None]
    assert newest["data"][1]["content"] == [{"type": "input_image", "image_url": image}]
    assert newest["has_more"] is True
    rest = await page(f"limit=10&after={newest['last_id']}")
    assert [i["content"][0]["text"] for i in rest["data"]] == ["Two", "One", "Be brief."]
    assert rest["data"][0]["content"][0]["type"] == "output_text"
    assert [i["role"] for i in rest["data"]] == ["assistant", "user", "developer"]
    assert rest["has_more"] is False
    oldest = await page("order=asc&limit=1")
    assert oldest["data"][0]["role"] == "developer" and oldest["has_more"] is True

    for query, param in (("order=up", "order"), ("limit=0", "limit"), ("after=msg_x", "after")):
        refused = await AsyncClient().get(f"{path}?{query}", headers=auth)
        assert refused.status_code == 400 and refused.json()["error"]["param"] == param


async def test_previous_response_id_sends_the_chains_turns_but_not_its_instructions(
    auth, fake_upstream
):
    first = await ask(auth, "Paris", instructions="Be terse.")
    second = await ask(auth, "Lyon", previous_response_id=first["id"])
    # A streamed answer is kept too, before its last event.
    streamed = await post(
        {
            "model": "fake-small",
            "input": '@reply="Nice"',
            "previous_response_id": second["id"],
            "instructions": "Answer in one word.",
            "stream": True,
        },
        auth,
    )
    events = events_of(streamed.content)
    assert events[0][1]["response"]["previous_response_id"] == second["id"]
    name, last = events[-1]
    assert name == "response.completed" and last["response"]["store"] is True
    third = last["response"]
    fourth = await ask(auth, "Marseille", previous_response_id=third["id"])

    assert second["previous_response_id"] == first["id"]
    assert fourth["output"][0]["content"][0]["text"] == "Marseille"
    *_, last_sent = sent_messages(fake_upstream)
    assert last_sent == [
        ("user", '@reply="Paris"'),
        ("assistant", "Paris"),
        ("user", '@reply="Lyon"'),
        ("assistant", "Lyon"),
        ("user", '@reply="Nice"'),
        ("assistant", "Nice"),
        ("user", '@reply="Marseille"'),
    ]
    third_sent = sent_messages(fake_upstream)[2]
    assert third_sent[0] == ("system", "Answer in one word.")
    # Its input items are what the model was given, instructions aside.
    listed = await AsyncClient().get(
        f"/v1/responses/{fourth['id']}/input_items?order=asc", headers=auth
    )
    items = listed.json()["data"]
    assert [(i["role"], i["content"][0]["text"]) for i in items] == last_sent
    assert items[1]["id"] == first["output"][0]["id"]
    got = await AsyncClient().get(f"/v1/responses/{third['id']}", headers=auth)
    assert got.json() == third


async def test_a_response_not_kept_cannot_be_read_or_followed(auth, fake_upstream):
    answer = await ask(auth, "secret", store=False)
    assert answer["store"] is False
    got = await AsyncClient().get(f"/v1/responses/{answer['id']}", headers=auth)
    assert got.status_code == 404 and got.json()["error"]["param"] == "response_id"
    before = await usage_count()
    followed = await post(
        {"model": "fake-small", "input": "more", "previous_response_id": answer["id"]}, auth
    )
    assert followed.status_code == 400
    error = followed.json()["error"]
    assert error["code"] == "previous_response_not_found"
    assert error["param"] == "previous_response_id"
    assert error["message"] == f"Previous response with id '{answer['id']}' not found."
    assert len(sent_messages(fake_upstream)) == 1 and await usage_count() == before


async def test_a_response_that_fails_mid_stream_is_kept_failed_and_can_be_followed(
    auth, fake_upstream
):
    failing = "@tokens=6 @stream_error=server @error_after=2"
    response = await post({"model": "fake-small", "input": failing, "stream": True}, auth)
    events = events_of(response.content)
    assert [name for name, _ in events][-2:] == ["error", "response.failed"]
    failed = events[-1][1]["response"]
    assert failed["status"] == "failed" and failed["store"] is True and failed["error"]["code"]
    got = await AsyncClient().get(f"/v1/responses/{failed['id']}", headers=auth)
    assert got.status_code == 200 and got.json() == failed and failed["output"] == []
    listed = await AsyncClient().get(f"/v1/responses/{failed['id']}/input_items", headers=auth)
    assert [i["content"][0]["text"] for i in listed.json()["data"]] == [failing]
    # Its question is a turn of what follows it; the text said before it failed is not.
    await ask(auth, "again", previous_response_id=failed["id"])
    assert sent_messages(fake_upstream)[-1] == [("user", failing), ("user", '@reply="again"')]

    unkept = await post(
        {"model": "fake-small", "input": failing, "stream": True, "store": False}, auth
    )
    said = events_of(unkept.content)[-1][1]["response"]
    assert said["status"] == "failed" and said["store"] is False
    got = await AsyncClient().get(f"/v1/responses/{said['id']}", headers=auth)
    assert got.status_code == 404


async def test_only_keys_of_the_same_user_in_the_same_workspace_see_a_response(
    auth, api_key, api_user, fake_upstream
):
    answer = await ask(auth, "private")
    path = f"/v1/responses/{answer['id']}"
    same_user_elsewhere = await key_of(user=api_user)
    colleague = await key_of(workspace=api_key[0].workspace)
    for headers in (same_user_elsewhere, colleague):
        assert (await AsyncClient().get(path, headers=headers)).status_code == 404
        assert (await AsyncClient().get(f"{path}/input_items", headers=headers)).status_code == 404
        assert (await AsyncClient().delete(path, headers=headers)).status_code == 404
        followed = await post(
            {"model": "fake-small", "input": "hi", "previous_response_id": answer["id"]}, headers
        )
        assert followed.json()["error"]["code"] == "previous_response_not_found"
    assert len(sent_messages(fake_upstream)) == 1
    # Another key acting as the same user in the same workspace sees it.
    same_user_same_workspace = await key_of(user=api_user, workspace=api_key[0].workspace)
    got = await AsyncClient().get(path, headers=same_user_same_workspace)
    assert got.status_code == 200 and got.json() == answer
    assert (await AsyncClient().get(path, headers={})).status_code == 401


async def test_a_deleted_response_is_gone_and_its_turns_leave_the_chain(auth, fake_upstream):
    first = await ask(auth, "one")
    second = await ask(auth, "two", previous_response_id=first["id"])
    path = f"/v1/responses/{first['id']}"
    deleted = await AsyncClient().delete(path, headers=auth)
    assert deleted.status_code == 200
    assert deleted.json() == {"id": first["id"], "object": "response", "deleted": True}
    assert (await AsyncClient().get(path, headers=auth)).status_code == 404
    assert (await AsyncClient().delete(path, headers=auth)).status_code == 404

    await ask(auth, "three", previous_response_id=second["id"])
    assert sent_messages(fake_upstream)[-1] == [
        ("user", '@reply="two"'),
        ("assistant", "two"),
        ("user", '@reply="three"'),
    ]
    listed = await AsyncClient().get(f"/v1/responses/{second['id']}/input_items", headers=auth)
    assert [i["content"][0]["text"] for i in listed.json()["data"]] == ['@reply="two"']


async def test_responses_expire_after_the_retention(auth, settings):
    from api.models import StoredResponse
    from api.tasks import responses_expire

    old, young = await ask(auth, "old"), await ask(auth, "young")
    await StoredResponse.objects.filter(public_id=old["id"]).aupdate(
        created_at=timezone.now() - timedelta(days=31)
    )
    # Gone as soon as it is older than the retention, before the hourly task deletes it.
    assert (await AsyncClient().get(f"/v1/responses/{old['id']}", headers=auth)).status_code == 404
    followed = await post(
        {"model": "fake-small", "input": "hi", "previous_response_id": old["id"]}, auth
    )
    assert followed.json()["error"]["code"] == "previous_response_not_found"
    assert await sync_to_async(responses_expire)() == 1
    kept = [r.public_id async for r in StoredResponse.objects.all()]
    assert kept == [young["id"]]

    settings.API_RESPONSES_RETENTION_DAYS = 0
    unkept = await ask(auth, "not kept")
    assert unkept["store"] is False
    assert not await StoredResponse.objects.filter(public_id=unkept["id"]).aexists()


async def test_an_answer_that_cannot_be_kept_is_still_answered_said_unkept(auth, monkeypatch):
    from django.db import OperationalError

    from api import handlers

    def database_away(**kwargs):
        raise OperationalError("the database went away")

    monkeypatch.setattr(handlers, "stored_response_create", database_away)
    answer = await ask(auth, "still here")
    assert answer["store"] is False
    assert answer["output"][0]["content"][0]["text"] == "still here"
    assert (
        await AsyncClient().get(f"/v1/responses/{answer['id']}", headers=auth)
    ).status_code == 404


async def test_stored_responses_answer_the_bodies_the_api_document_describes(auth):
    from tests.api.test_openapi import answer_schema, valid

    document = (await AsyncClient().get("/v1/openapi.json")).json()
    first = await ask(auth, "one")
    answer = await ask(auth, "two", previous_response_id=first["id"])
    path = "/responses/{response_id}"
    for suffix, documented in (("", path), ("/input_items", path + "/input_items")):
        body = (
            await AsyncClient().get(f"/v1/responses/{answer['id']}{suffix}", headers=auth)
        ).json()
        assert valid(body, answer_schema(document, documented, "get")) == [], body
    deleted = (await AsyncClient().delete(f"/v1/responses/{answer['id']}", headers=auth)).json()
    assert valid(deleted, answer_schema(document, path, "delete")) == []


def test_the_api_docs_page_says_how_long_answers_are_kept(api_user, settings):
    from django.test import Client
    from django.urls import reverse

    client = Client()
    client.force_login(api_user)
    settings.API_RESPONSES_RETENTION_DAYS = 7
    page = client.get(reverse("api_docs")).content.decode()
    assert "Answers are kept for 7 days" in page and "previous_response_id=response.id" in page
    settings.API_RESPONSES_RETENTION_DAYS = 0
    page = client.get(reverse("api_docs")).content.decode()
    assert "This server keeps no answers" in page and "kept for" not in page


def test_staff_find_and_delete_a_stored_response_in_the_admin(api_user, api_key):
    from django.test import Client
    from django.urls import reverse

    from api.models import StoredResponse
    from api.services import stored_response_create

    stored = stored_response_create(
        public_id="resp_admin1",
        workspace_id=api_key[0].workspace_id,
        user_id=api_user.pk,
        api_key_id=api_key[0].pk,
        previous=None,
        input_items=[],
        body={"id": "resp_admin1", "status": "completed", "output": []},
    )
    client = Client()
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    listing = client.get(reverse("admin:api_storedresponse_changelist"), {"q": api_user.email})
    assert listing.status_code == 200 and "resp_admin1" in listing.content.decode()
    delete = reverse("admin:api_storedresponse_delete", args=[stored.pk])
    assert client.post(delete, {"post": "yes"}).status_code == 302
    assert not StoredResponse.objects.exists()
