"""Reads of batches and their files. A key sees what its user made in its workspace: the same
key, or any other key acting as that user there (a workspace key acts as the admin who made
it); in the browser, that user sees them while working in that workspace. Whatever else is as
unknown as an id that does not exist."""

from __future__ import annotations

from django.db.models import Q
from django.utils import timezone

from api.models import ApiKey

from .models import Batch, BatchFile, BatchRequest

# The columns a file's description needs: never its bytes.
_FILE_FIELDS = ("id", "public_id", "purpose", "filename", "size", "created_at", "expires_at")


def _mine(queryset, key: ApiKey):
    return queryset.filter(workspace_id=key.workspace_id, user_id=key.user_id)


def _unexpired(files):
    """A file past its `expires_at` is gone, whether or not the hourly task deleted it yet."""
    return files.filter(Q(expires_at__isnull=True) | Q(expires_at__gt=timezone.now()))


def _with_files(batches):
    """Batches with their result files' descriptions, never the files' bytes."""
    return batches.select_related("output_file", "error_file").defer(
        "output_file__data", "error_file__data"
    )


def batches_for_user(*, user, workspace, limit: int = 100) -> list[Batch]:
    return list(
        _with_files(Batch.objects.filter(workspace=workspace, user=user)).order_by("-pk")[:limit]
    )


def batch_get_for_user(*, user, workspace, public_id: str) -> Batch | None:
    return Batch.objects.filter(workspace=workspace, user=user, public_id=public_id).first()


def batch_file_get_for_user(*, user, workspace, public_id: str) -> BatchFile | None:
    return _unexpired(
        BatchFile.objects.filter(workspace=workspace, user=user, public_id=public_id)
    ).first()


def batch_file_get_for_key(*, key: ApiKey, public_id: str, with_data: bool = False):
    files = _unexpired(_mine(BatchFile.objects.filter(public_id=public_id), key))
    return (files if with_data else files.only(*_FILE_FIELDS)).first()


def batch_files_for_key(
    *, key: ApiKey, purpose: str | None, after: str | None, limit: int, newest_first: bool
) -> tuple[list[BatchFile], bool]:
    """A page of the key's files and whether more follow, after the file `after` (an id)."""
    files = _unexpired(_mine(BatchFile.objects.only(*_FILE_FIELDS), key))
    if purpose:
        files = files.filter(purpose=purpose)
    return _page(
        files, key=key, model=BatchFile, after=after, limit=limit, newest_first=newest_first
    )


def batch_get_for_key(*, key: ApiKey, public_id: str) -> Batch | None:
    return _with_files(_mine(Batch.objects.filter(public_id=public_id), key)).first()


def batches_for_key(*, key: ApiKey, after: str | None, limit: int) -> tuple[list[Batch], bool]:
    batches = _with_files(_mine(Batch.objects.all(), key))
    return _page(batches, key=key, model=Batch, after=after, limit=limit, newest_first=True)


def _page(queryset, *, key, model, after, limit, newest_first):
    if after:
        cursor = _mine(model.objects.filter(public_id=after), key).values_list("pk", flat=True)
        cursor = cursor.first()
        if cursor is not None:
            queryset = (
                queryset.filter(pk__lt=cursor) if newest_first else queryset.filter(pk__gt=cursor)
            )
    rows = list(queryset.order_by("-pk" if newest_first else "pk")[: limit + 1])
    return rows[:limit], len(rows) > limit


def batch_requests_pending(*, batch_id: int) -> list[BatchRequest]:
    return list(
        BatchRequest.objects.filter(batch_id=batch_id, status=BatchRequest.Status.PENDING)
        .only("id", "line", "custom_id", "body", "request_id")
        .order_by("line")
    )


def batch_requests_in_order(*, batch_id: int):
    """Every request of a batch by line, with what the result files need."""
    return (
        BatchRequest.objects.filter(batch_id=batch_id)
        .only("custom_id", "status", "status_code", "response", "request_id")
        .order_by("line")
        .iterator(chunk_size=1000)
    )
