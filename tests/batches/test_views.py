"""The batches page: a user's batches in the current workspace, with progress, cost, result
files to download and a cancel button; nobody else's."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from batches.models import Batch, BatchFile
from billing.models import UsageEvent
from tests.factories import MembershipFactory, UserFactory
from workspaces.models import Membership

pytestmark = pytest.mark.django_db


def make_batch(user, workspace=None, *, status="completed", **fields) -> Batch:
    workspace = workspace or Membership.objects.get(user=user).workspace
    now = timezone.now()
    output = BatchFile.objects.create(
        public_id=f"file-out{Batch.objects.count()}",
        workspace=workspace,
        user=user,
        purpose="batch_output",
        filename="batch_x_output.jsonl",
        size=len(b'{"custom_id": "q1"}\n'),
        data=b'{"custom_id": "q1"}\n',
    )
    return Batch.objects.create(
        public_id=f"batch_page{Batch.objects.count()}",
        workspace=workspace,
        user=user,
        endpoint="/v1/chat/completions",
        input_file_id="file-in",
        output_file=output if status == "completed" else None,
        status=status,
        created_at=now,
        expires_at=now + timedelta(hours=24),
        **fields,
    )


def test_the_page_shows_my_batches_progress_cost_and_results(logged_in_client, user):
    batch = make_batch(user, total=3, completed=2, failed=1, metadata={"job": "nightly"})
    UsageEvent.objects.create(
        workspace=batch.workspace,
        user=user,
        provider_kind="openai",
        model="fake-small",
        reference=batch.public_id,
        source="batch",
        cost=Decimal("0.0123"),
    )
    page = logged_in_client.get("/settings/batches/").content.decode()
    assert batch.public_id in page and "job: nightly" in page
    assert "2 answered, 1 failed of 3" in page
    assert "$0.0123" in page
    assert f"/settings/batches/files/{batch.output_file.public_id}/" in page
    assert "hx-trigger" not in page  # nothing running: the page does not poll

    download = logged_in_client.get(f"/settings/batches/files/{batch.output_file.public_id}/")
    assert download.content == b'{"custom_id": "q1"}\n'
    assert download["Content-Disposition"] == 'attachment; filename="batch_x_output.jsonl"'


def test_a_file_name_with_quotes_or_accents_is_downloaded_under_that_name(logged_in_client, user):
    batch = make_batch(user)
    BatchFile.objects.filter(pk=batch.output_file_id).update(filename='ré"sumé.jsonl')
    download = logged_in_client.get(f"/settings/batches/files/{batch.output_file.public_id}/")
    assert download["Content-Disposition"] == (
        "attachment; filename*=utf-8''r%C3%A9%22sum%C3%A9.jsonl"
    )


def test_a_running_batch_can_be_cancelled_and_the_page_follows_it(logged_in_client, user):
    batch = make_batch(user, status="in_progress")
    page = logged_in_client.get("/settings/batches/").content.decode()
    assert 'hx-trigger="every 3s"' in page
    assert f"/settings/batches/{batch.public_id}/cancel/" in page

    response = logged_in_client.post(f"/settings/batches/{batch.public_id}/cancel/", follow=True)
    batch.refresh_from_db()
    assert batch.status == "cancelling"
    assert "Batch cancelled" in response.content.decode()


def test_a_finished_batch_is_not_cancelled(logged_in_client, user):
    batch = make_batch(user)
    page = logged_in_client.get("/settings/batches/").content.decode()
    assert "/cancel/" not in page
    response = logged_in_client.post(f"/settings/batches/{batch.public_id}/cancel/", follow=True)
    assert "already finished" in response.content.decode()
    batch.refresh_from_db()
    assert batch.status == "completed"


def test_a_failed_batch_says_why_line_by_line(logged_in_client, user):
    make_batch(
        user,
        status="failed",
        errors=[
            {"code": "duplicate_custom_id", "message": "Used twice.", "param": None, "line": 4}
        ],
    )
    page = logged_in_client.get("/settings/batches/").content.decode()
    assert "line 4:" in page and "Used twice." in page


def test_nobody_else_sees_my_batches_or_their_files(client, user):
    batch = make_batch(user)
    teammate = UserFactory()
    MembershipFactory(user=teammate, workspace=batch.workspace)
    for other in (UserFactory(), teammate):
        client.force_login(other)
        assert batch.public_id not in client.get("/settings/batches/").content.decode()
        download = client.get(f"/settings/batches/files/{batch.output_file.public_id}/")
        assert download.status_code == 404
        assert client.post(f"/settings/batches/{batch.public_id}/cancel/").status_code == 404


def test_the_page_shows_only_the_current_workspaces_batches(logged_in_client, user):
    mine = make_batch(user)
    team = MembershipFactory(user=user).workspace
    elsewhere = make_batch(user, team)
    page = logged_in_client.get("/settings/batches/").content.decode()
    assert mine.public_id in page and elsewhere.public_id not in page


def test_an_expired_result_file_is_neither_offered_nor_downloaded(logged_in_client, user):
    batch = make_batch(user)
    path = f"/settings/batches/files/{batch.output_file.public_id}/"
    assert path in logged_in_client.get("/settings/batches/").content.decode()
    BatchFile.objects.filter(pk=batch.output_file_id).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert path not in logged_in_client.get("/settings/batches/").content.decode()
    assert logged_in_client.get(path).status_code == 404


def test_describing_batches_never_reads_their_result_files_bytes(user):
    """A result file may be a hundred megabytes: listing or retrieving a batch, through the
    API or the page, reads only its id and name."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from api.services import api_key_create
    from batches import selectors

    batch = make_batch(user)
    membership = Membership.objects.select_related("workspace").get(user=user)
    key, _raw = api_key_create(membership=membership, name="k")
    with CaptureQueriesContext(connection) as queries:
        found = [
            selectors.batch_get_for_key(key=key, public_id=batch.public_id),
            *selectors.batches_for_key(key=key, after=None, limit=10)[0],
            *selectors.batches_for_user(user=user, workspace=membership.workspace),
        ]
        assert {b.output_file.public_id for b in found} == {batch.output_file.public_id}
    assert len(queries) == 3
    for query in queries:
        assert '"data"' not in query["sql"], query["sql"]


def test_an_expired_result_file_is_emptied_and_its_batch_still_names_it(user):
    """As at OpenAI: a batch keeps its output file's id once the file has expired; the bytes
    are deleted, and the file is gone from the API and the page."""
    from batches.api import _batch_object
    from batches.services import batch_files_expire

    batch = make_batch(user)
    loose = BatchFile.objects.create(
        public_id="file-loose",
        workspace=batch.workspace,
        user=user,
        purpose="batch",
        filename="in.jsonl",
        size=3,
        data=b"{}\n",
    )
    past = timezone.now() - timedelta(seconds=1)
    BatchFile.objects.filter(pk__in=[batch.output_file_id, loose.pk]).update(expires_at=past)

    assert batch_files_expire() == 2
    assert not BatchFile.objects.filter(pk=loose.pk).exists()
    output = BatchFile.objects.get(pk=batch.output_file_id)
    assert (bytes(output.data), output.size) == (b"", 0)
    batch.refresh_from_db()
    assert _batch_object(batch)["output_file_id"] == output.public_id
    assert batch_files_expire() == 0  # emptied once
