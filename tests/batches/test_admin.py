"""The admin lists batches and their files (never a file's content) and cancels a batch."""

from datetime import timedelta
from decimal import Decimal

import pytest
from asgiref.sync import sync_to_async
from django.db.models import Sum
from django.utils import timezone

from aurax.phrases import usd_text
from batches.models import Batch, BatchFile
from billing.ledger import ledger_flush
from billing.models import UsageEvent
from tests.batches.conftest import batch_start, batch_until, chat_line, jsonl

pytestmark = pytest.mark.django_db(transaction=True)

SECRET_WORDS = "the words only the file holds"


async def test_staff_see_batches_and_files_but_never_a_files_content(auth, task_lost, staff_client):
    batch = await batch_start(auth, jsonl(chat_line("a", SECRET_WORDS)))
    listed = await sync_to_async(staff_client.get)("/admin/batches/batch/")
    assert listed.status_code == 200 and batch["id"] in listed.content.decode()
    file = await BatchFile.objects.aget(public_id=batch["input_file_id"])
    shown = await sync_to_async(staff_client.get)(f"/admin/batches/batchfile/{file.pk}/change/")
    assert shown.status_code == 200 and file.public_id in shown.content.decode()
    assert SECRET_WORDS not in shown.content.decode()
    files = await sync_to_async(staff_client.get)("/admin/batches/batchfile/")
    assert SECRET_WORDS not in files.content.decode()


async def test_the_batch_list_shows_what_each_batch_cost(auth, celery_worker, staff_client):
    from billing.models import ModelPriceOverride

    await ModelPriceOverride.objects.acreate(
        provider_kind="openai",
        model="fake-small",
        input_per_mtok=Decimal(1000),
        output_per_mtok=Decimal(1000),
    )
    batch = await batch_start(
        auth, jsonl(chat_line("a", "@tokens=20"), chat_line("b", "@tokens=20"))
    )
    await batch_until(auth, batch["id"])
    total = await sync_to_async(_cost)(batch["id"])
    assert total > 0
    listed = await sync_to_async(staff_client.get)("/admin/batches/batch/")
    assert usd_text(total) in listed.content.decode()


def _cost(reference: str):
    ledger_flush()  # what this process's ledger holds is written
    return UsageEvent.objects.filter(reference=reference).aggregate(c=Sum("cost"))["c"]


async def test_staff_cancel_a_batch_and_a_finished_one_stays_as_it_is(
    auth, task_lost, staff_client
):
    running = await batch_start(auth, jsonl(chat_line("a", "hi")))
    finished = await batch_start(auth, jsonl(chat_line("a", "hi")))
    await Batch.objects.filter(public_id=finished["id"]).aupdate(status=Batch.Status.COMPLETED)
    pks = [
        pk
        async for pk in Batch.objects.filter(
            public_id__in=[running["id"], finished["id"]]
        ).values_list("pk", flat=True)
    ]
    response = await sync_to_async(staff_client.post)(
        "/admin/batches/batch/", {"action": "cancel", "_selected_action": pks}, follow=True
    )
    assert "1 batch cancelled." in response.content.decode()
    statuses = {
        b.public_id: b.status
        async for b in Batch.objects.filter(pk__in=pks).only("public_id", "status")
    }
    assert statuses == {running["id"]: "cancelling", finished["id"]: "completed"}


def test_the_batch_list_costs_the_same_queries_for_one_batch_or_many(staff_client):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from tests.factories import UserFactory
    from workspaces.models import Membership

    owner = UserFactory()
    workspace = Membership.objects.get(user=owner).workspace

    def batch(n: int) -> None:
        now = timezone.now()
        Batch.objects.create(
            created_at=now,
            expires_at=now + timedelta(hours=24),
            public_id=f"batch_{n}",
            workspace=workspace,
            user=owner,
            endpoint="/v1/chat/completions",
            input_file_id="file-x",
        )
        UsageEvent.objects.create(
            workspace=workspace,
            user=owner,
            provider_kind="openai",
            model="m",
            reference=f"batch_{n}",
            cost=n,
            status="ok",
            source="batch",
        )

    batch(1)
    with CaptureQueriesContext(connection) as one:
        first = staff_client.get("/admin/batches/batch/").content.decode()
    for n in range(2, 7):
        batch(n)
    with CaptureQueriesContext(connection) as six:
        listed = staff_client.get("/admin/batches/batch/").content.decode()
    assert len(six.captured_queries) == len(one.captured_queries)
    assert usd_text(Decimal(1)) in first
    assert all(usd_text(Decimal(n)) in listed for n in range(1, 7))
