"""/v1/files: a batch's input uploaded, listed, read back and deleted, by its owner alone."""

import asyncio

import pytest
from asgiref.sync import sync_to_async

from tests.batches.conftest import chat_line, jsonl, upload, v1
from tests.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)

INPUT = jsonl(chat_line("a", "hi"), chat_line("b", "there"))


@sync_to_async
def other_key(*, same_user_of=None):
    """A key of another user, or (same_user_of) of the same user in another workspace."""
    from api.services import api_key_create
    from workspaces.models import Membership

    if same_user_of is None:
        membership = Membership.objects.get(user=UserFactory())
    else:
        membership = MembershipFactory(user=same_user_of)
    return {"Authorization": f"Bearer {api_key_create(membership=membership, name='x')[1]}"}


async def test_an_uploaded_file_is_described_listed_and_read_back_as_sent(auth):
    response = await upload(auth, INPUT, filename="questions.jsonl")
    assert response.status_code == 200, response.text
    file = response.json()
    assert file["id"].startswith("file-")
    assert file["object"] == "file" and file["purpose"] == "batch"
    assert file["filename"] == "questions.jsonl" and file["bytes"] == len(INPUT)

    assert (await v1("GET", f"/v1/files/{file['id']}", auth)).json() == file
    listed = (await v1("GET", "/v1/files", auth)).json()
    assert [f["id"] for f in listed["data"]] == [file["id"]] and listed["has_more"] is False
    content = await v1("GET", f"/v1/files/{file['id']}/content", auth)
    assert content.content == INPUT
    assert content.headers["content-disposition"] == 'attachment; filename="questions.jsonl"'
    accented = (await upload(auth, INPUT, filename="résumé.jsonl")).json()
    assert accented["filename"] == "résumé.jsonl"
    named = await v1("GET", f"/v1/files/{accented['id']}/content", auth)
    assert (
        named.headers["content-disposition"]
        == "attachment; filename*=utf-8''r%C3%A9sum%C3%A9.jsonl"
    )


async def test_a_deleted_file_is_gone(auth):
    file = (await upload(auth, INPUT)).json()
    deleted = await v1("DELETE", f"/v1/files/{file['id']}", auth)
    assert deleted.json() == {"id": file["id"], "object": "file", "deleted": True}
    assert (await v1("GET", f"/v1/files/{file['id']}", auth)).status_code == 404
    assert (await v1("GET", "/v1/files", auth)).json()["data"] == []


async def test_the_list_pages_newest_first_or_oldest_first(auth):
    ids = [(await upload(auth, INPUT)).json()["id"] for _ in range(3)]
    first = (await v1("GET", "/v1/files?limit=2", auth)).json()
    assert [f["id"] for f in first["data"]] == ids[::-1][:2] and first["has_more"] is True
    rest = (await v1("GET", f"/v1/files?limit=2&after={first['last_id']}", auth)).json()
    assert [f["id"] for f in rest["data"]] == [ids[0]] and rest["has_more"] is False
    oldest = (await v1("GET", "/v1/files?order=asc&limit=1", auth)).json()
    assert oldest["data"][0]["id"] == ids[0]
    refused = await v1("GET", "/v1/files?limit=0", auth)
    assert refused.status_code == 400 and refused.json()["error"]["param"] == "limit"


@pytest.mark.parametrize(
    "data, words",
    [
        (INPUT + b"{not json\n", "Line 3 is not valid JSON"),
        (jsonl(chat_line("a", "hi")) + b"[1, 2]\n", "Line 2 is not a JSON object"),
        (b"\xff\xfe\x00bad", "not UTF-8"),
        (b"\n\n", "no requests"),
    ],
)
async def test_a_file_that_is_not_json_lines_is_refused_naming_the_line(auth, data, words):
    response = await upload(auth, data)
    assert response.status_code == 400
    error = response.json()["error"]
    assert words in error["message"] and error["code"] == "invalid_file"
    assert (await v1("GET", "/v1/files", auth)).json()["data"] == []


async def test_only_a_batch_input_is_taken(auth):
    response = await upload(auth, INPUT, purpose="fine-tune")
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "purpose"
    assert "only 'batch'" in response.json()["error"]["message"]


async def test_a_file_over_the_limits_is_refused(auth, settings):
    settings.BATCH_MAX_REQUESTS = 1
    response = await upload(auth, INPUT)
    assert response.status_code == 400 and "at most 1" in response.json()["error"]["message"]

    settings.BATCH_MAX_REQUESTS = 100
    settings.BATCH_FILE_MAX_BYTES = 20
    response = await upload(auth, INPUT)
    assert response.status_code == 413
    # Far larger than the route reads at all: refused from its declared length.
    response = await upload(auth, INPUT * 2000)
    assert response.status_code == 413
    assert (await v1("GET", "/v1/files", auth)).json()["data"] == []


async def test_an_upload_that_is_not_multipart_or_has_no_file_is_refused(auth):
    as_json = await v1("POST", "/v1/files", auth, json={"purpose": "batch"})
    assert as_json.status_code == 400 and "multipart/form-data" in as_json.text
    no_file = await v1("POST", "/v1/files", auth, data={"purpose": "batch"}, files={"x": b""})
    assert no_file.status_code == 400 and no_file.json()["error"]["param"] == "file"


async def test_files_need_a_key(auth, settings):
    assert (await v1("GET", "/v1/files", {})).status_code == 401
    assert (await upload({"Authorization": "Bearer ax-wrong"}, INPUT)).status_code == 401
    # An upload larger than other /v1 bodies may be is read only for a valid key: refused
    # for the key first (401), for its size only with one (413).
    settings.BATCH_FILE_MAX_BYTES = 9 * 1024 * 1024
    too_large = INPUT * (10 * 1024 * 1024 // len(INPUT))
    assert (await upload({"Authorization": "Bearer ax-wrong"}, too_large)).status_code == 401
    assert (await upload(auth, too_large)).status_code == 413


async def test_a_method_the_path_does_not_take_is_refused_with_those_it_does(auth):
    response = await v1("PUT", "/v1/files", auth)
    assert response.status_code == 405 and response.headers["allow"] == "POST, GET"


async def test_nobody_else_sees_or_deletes_a_file(auth, api_user):
    file = (await upload(auth, INPUT)).json()
    for headers in (await other_key(), await other_key(same_user_of=api_user)):
        for method, path in (
            ("GET", f"/v1/files/{file['id']}"),
            ("GET", f"/v1/files/{file['id']}/content"),
            ("DELETE", f"/v1/files/{file['id']}"),
        ):
            response = await v1(method, path, headers)
            assert response.status_code == 404, (method, path)
            assert "batch" not in response.text  # nothing of the file told
        assert (await v1("GET", "/v1/files", headers)).json()["data"] == []
        started = await v1(
            "POST",
            "/v1/batches",
            headers,
            json={
                "input_file_id": file["id"],
                "endpoint": "/v1/chat/completions",
                "completion_window": "24h",
            },
        )
        assert started.status_code == 404
    assert (await v1("GET", f"/v1/files/{file['id']}", auth)).status_code == 200


async def test_the_openapi_document_describes_files_and_batches(auth):
    document = (await v1("GET", "/v1/openapi.json", auth)).json()
    assert set(document["paths"]["/files"]) == {"get", "post"}
    assert set(document["paths"]["/files/{file_id}"]) == {"get", "delete"}
    assert "post" in document["paths"]["/batches/{batch_id}/cancel"]
    created = document["components"]["schemas"]["BatchCreateRequest"]
    assert set(created["required"]) == {"input_file_id", "endpoint", "completion_window"}


async def _upload_expiring(auth, **fields):
    return await v1(
        "POST",
        "/v1/files",
        auth,
        data={"purpose": "batch", **fields},
        files={"file": ("input.jsonl", INPUT, "application/jsonl")},
    )


async def test_a_file_expires_after_30_days_unless_its_upload_says_otherwise(auth, settings):
    file = (await upload(auth, INPUT)).json()
    assert file["expires_at"] == file["created_at"] + 30 * 86400

    asked = await _upload_expiring(
        auth, **{"expires_after[anchor]": "created_at", "expires_after[seconds]": "3600"}
    )
    assert asked.status_code == 200, asked.text
    assert asked.json()["expires_at"] == asked.json()["created_at"] + 3600

    settings.BATCH_FILE_EXPIRY_DAYS = 0
    assert (await upload(auth, INPUT)).json()["expires_at"] is None  # kept until deleted


@pytest.mark.parametrize(
    "fields",
    [
        {"expires_after[anchor]": "last_active_at", "expires_after[seconds]": "3600"},
        {"expires_after[anchor]": "created_at", "expires_after[seconds]": "59"},
        {"expires_after[anchor]": "created_at", "expires_after[seconds]": str(31 * 86400)},
        {"expires_after[anchor]": "created_at", "expires_after[seconds]": "soon"},
        {"expires_after[anchor]": "created_at"},
    ],
)
async def test_an_expiry_it_cannot_take_is_refused_and_nothing_kept(auth, fields):
    from batches.models import BatchFile

    response = await _upload_expiring(auth, **fields)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["param"] == "expires_after" and "3600" in error["message"]
    assert await BatchFile.objects.acount() == 0


async def test_an_expired_file_is_gone_at_once_and_deleted_by_the_hourly_task(auth, celery_worker):
    from datetime import timedelta

    from django.utils import timezone

    from batches.models import BatchFile
    from batches.tasks import batch_files_expire

    expired = (await upload(auth, INPUT)).json()
    kept = (await upload(auth, INPUT)).json()
    await BatchFile.objects.filter(public_id=expired["id"]).aupdate(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    for path in (f"/v1/files/{expired['id']}", f"/v1/files/{expired['id']}/content"):
        assert (await v1("GET", path, auth)).status_code == 404
    listed = (await v1("GET", "/v1/files", auth)).json()
    assert [f["id"] for f in listed["data"]] == [kept["id"]]

    await sync_to_async(batch_files_expire.delay)()
    for _ in range(200):
        if await BatchFile.objects.acount() == 1:
            break
        await asyncio.sleep(0.05)
    assert [f.public_id async for f in BatchFile.objects.all()] == [kept["id"]]
