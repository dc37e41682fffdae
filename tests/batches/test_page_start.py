"""Starting a batch from the batches page: a JSON Lines file uploaded in the browser, run as
one of the user's API keys by a real Celery worker against the fake upstream, its answers
downloaded from the page; and what the form refuses, leaving nothing behind."""

import json
import time
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from api.services import api_key_create
from batches.models import Batch, BatchFile
from tests.batches.conftest import chat_line, jsonl
from tests.factories import UserFactory
from workspaces.models import Membership

PAGE = "/settings/batches/"


def key_for(user, name="page"):
    membership = Membership.objects.select_related("workspace").get(user=user)
    return api_key_create(membership=membership, name=name)[0]


def start(client, data: bytes, key, *, endpoint="/v1/chat/completions", **fields):
    return client.post(
        PAGE,
        {
            "file": SimpleUploadedFile("requests.jsonl", data, "application/jsonl"),
            "endpoint": endpoint,
            "key": key.pk,
            **fields,
        },
    )


@pytest.mark.django_db(transaction=True)
def test_a_batch_started_on_the_page_runs_and_its_answers_are_downloaded(
    client, api_user, api_key, celery_worker, fake_upstream
):
    client.force_login(api_user)
    key = api_key[0]
    page = client.get(PAGE).content.decode()
    assert 'enctype="multipart/form-data"' in page and f"{key.prefix}…" in page

    response = start(
        client,
        jsonl(chat_line("first", '@reply="Un deux"'), chat_line("second", '@reply="Trois"')),
        key,
        description="nightly run",
    )
    assert response.status_code == 302
    batch = Batch.objects.get()
    assert batch.api_key_id == key.pk and batch.user == api_user
    assert batch.metadata == {"description": "nightly run"}
    assert batch.endpoint == "/v1/chat/completions" and batch.completion_window == "24h"
    assert BatchFile.objects.get(public_id=batch.input_file_id).filename == "requests.jsonl"
    page = client.get(PAGE).content.decode()
    assert f"Batch {batch.public_id} started" in page and "description: nightly run" in page

    deadline = time.monotonic() + 20
    while batch.status != Batch.Status.COMPLETED:
        assert time.monotonic() < deadline, batch.status
        time.sleep(0.05)
        batch.refresh_from_db()
    page = client.get(PAGE).content.decode()
    assert "2 answered, 0 failed of 2" in page
    download = client.get(f"/settings/batches/files/{batch.output_file.public_id}/")
    lines = [json.loads(line) for line in download.content.decode().splitlines()]
    assert [line["custom_id"] for line in lines] == ["first", "second"]
    assert [line["response"]["body"]["choices"][0]["message"]["content"] for line in lines] == [
        "Un deux",
        "Trois",
    ]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "data, said",
    [
        (b'{"custom_id": "a"}\nnot json\n', "Line 2 is not valid JSON"),
        (b"\n\n", "The file holds no requests."),
        (b"\xff\xfe", "The file is not UTF-8 text"),
    ],
)
def test_a_file_that_is_not_a_batchs_input_is_refused_and_nothing_is_kept(
    logged_in_client, user, data, said
):
    response = start(logged_in_client, data, key_for(user))
    assert response.status_code == 200
    assert said in response.content.decode()
    assert not BatchFile.objects.exists() and not Batch.objects.exists()


@pytest.mark.django_db
def test_a_file_over_the_size_limit_is_refused(logged_in_client, user, settings):
    settings.BATCH_FILE_MAX_BYTES = 100
    response = start(
        logged_in_client, jsonl(*[chat_line(f"q{i}", "hi") for i in range(5)]), key_for(user)
    )
    assert "The file is larger than 100" in response.content.decode()
    assert not BatchFile.objects.exists() and not Batch.objects.exists()


@pytest.mark.django_db
def test_only_my_working_keys_in_this_workspace_can_run_a_batch(logged_in_client, user):
    mine = key_for(user, "mine")
    revoked = key_for(user, "revoked")
    revoked.revoked_at = timezone.now()
    revoked.save()
    expired = key_for(user, "expired")
    expired.expires_at = timezone.now() - timedelta(minutes=1)
    expired.save()
    someone_elses = key_for(UserFactory(), "theirs")

    page = logged_in_client.get(PAGE).content.decode()
    assert f"mine ({mine.prefix}…)" in page
    for key in (revoked, expired, someone_elses):
        assert f"({key.prefix}…)" not in page
        response = start(logged_in_client, jsonl(chat_line("q", "hi")), key)
        assert response.status_code == 200
        assert "Select a valid choice" in response.content.decode()
    assert not BatchFile.objects.exists() and not Batch.objects.exists()


@pytest.mark.django_db
def test_an_endpoint_a_batch_does_not_run_is_refused(logged_in_client, user):
    response = start(
        logged_in_client, jsonl(chat_line("q", "hi")), key_for(user), endpoint="/v1/completions"
    )
    assert "Select a valid choice" in response.content.decode()
    assert not Batch.objects.exists()


@pytest.mark.django_db
def test_without_a_key_the_page_says_to_create_one(logged_in_client):
    page = logged_in_client.get(PAGE).content.decode()
    assert 'id="batch-start"' not in page
    assert "Create a key" in page and 'href="/settings/api-keys/' in page
