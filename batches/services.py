"""Writes of batches and their files, and the run of a batch (its requests go through the one
pipeline: batches.runner)."""

from __future__ import annotations

import json
import logging
import secrets
import uuid
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone

from api import schemas
from api.auth import api_key_model_check
from api.errors import ApiError
from api.models import ApiKey

from .models import Batch, BatchFile, BatchRequest
from .selectors import batch_requests_in_order

logger = logging.getLogger(__name__)

# What a batch may ask, and each request body's schema: as the endpoint itself takes it.
ENDPOINT_SCHEMAS = {
    "/v1/chat/completions": schemas.ChatCompletionRequest,
    "/v1/embeddings": schemas.EmbeddingsRequest,
    "/v1/responses": schemas.ResponsesRequest,
}
ENDPOINTS = tuple(ENDPOINT_SCHEMAS)
COMPLETION_WINDOWS = {"24h": timedelta(hours=24)}
METADATA_PAIRS, METADATA_KEY_CHARS, METADATA_VALUE_CHARS = 16, 64, 512
EXPIRY_SECONDS = (3600, 30 * 86400)  # what an `expires_after` may ask, as at OpenAI
VALIDATION_ERRORS_SHOWN = 100


def _public_id(prefix: str) -> str:
    return f"{prefix}{secrets.token_hex(12)}"


def _refused(message: str, *, code: str = "invalid_request", param: str | None = None):
    return ApiError(400, code, message, param=param)


# --- Files -------------------------------------------------------------------------------


def _input_lines(data: bytes) -> list[tuple[int, dict]]:
    """A batch input's requests, (line number, object); a file that is not JSON Lines is
    refused naming the first line at fault."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise _refused(
            "The file is not UTF-8 text: a batch's input is JSON Lines, one request a line.",
            code="invalid_file",
            param="file",
        ) from None
    lines = []
    for number, raw in enumerate(text.splitlines(), 1):
        if not raw.strip():
            continue
        try:
            request = json.loads(raw)
        except ValueError:
            raise _refused(
                f"Line {number} is not valid JSON: a batch's input is JSON Lines, one request "
                "a line.",
                code="invalid_file",
                param="file",
            ) from None
        if not isinstance(request, dict):
            raise _refused(
                f"Line {number} is not a JSON object.", code="invalid_file", param="file"
            )
        lines.append((number, request))
    if not lines:
        raise _refused("The file holds no requests.", code="invalid_file", param="file")
    if len(lines) > settings.BATCH_MAX_REQUESTS:
        raise _refused(
            f"The file holds {len(lines)} requests; a batch takes at most "
            f"{settings.BATCH_MAX_REQUESTS}.",
            code="invalid_file",
            param="file",
        )
    return lines


def _expiry_seconds(expires_after, *, param: str) -> int | None:
    """The seconds an `expires_after` object ({"anchor": "created_at", "seconds": N}, as
    OpenAI's) keeps a file; without one, BATCH_FILE_EXPIRY_DAYS (None: kept until deleted)."""
    if expires_after is None:
        days = settings.BATCH_FILE_EXPIRY_DAYS
        return days * 86400 if days > 0 else None
    seconds = expires_after.get("seconds") if isinstance(expires_after, dict) else None
    if (
        not isinstance(expires_after, dict)
        or expires_after.get("anchor") != "created_at"
        or not isinstance(seconds, int)
        or isinstance(seconds, bool)
        or not EXPIRY_SECONDS[0] <= seconds <= EXPIRY_SECONDS[1]
    ):
        raise _refused(
            f'\'{param}\' is {{"anchor": "created_at", "seconds": N}} with N from '
            f"{EXPIRY_SECONDS[0]} (an hour) to {EXPIRY_SECONDS[1]} (30 days).",
            param=param,
        )
    return seconds


def _expires_at(seconds: int | None):
    return None if seconds is None else timezone.now() + timedelta(seconds=seconds)


def batch_file_create(
    *, key: ApiKey, purpose: str, filename: str, data: bytes, expires_after: dict | None = None
) -> BatchFile:
    if purpose != BatchFile.Purpose.BATCH:
        raise _refused(
            f"The purpose '{purpose}' is not supported by this server: only 'batch' is.",
            param="purpose",
        )
    seconds = _expiry_seconds(expires_after, param="expires_after")
    _input_lines(data)
    file = BatchFile.objects.create(
        public_id=_public_id("file-"),
        workspace_id=key.workspace_id,
        user_id=key.user_id,
        purpose=purpose,
        filename=(filename or "batch.jsonl")[:255],
        size=len(data),
        data=data,
    )
    if seconds is not None:  # counted from the moment the file says it was made
        file.expires_at = file.created_at + timedelta(seconds=seconds)
        BatchFile.objects.filter(pk=file.pk).update(expires_at=file.expires_at)
    return file


def batch_file_delete(*, file: BatchFile) -> None:
    """A batch keeps running without its input (its requests were read when it started), and
    its object keeps the file's id."""
    file.delete()


def batch_files_expire(*, chunk: int = 100) -> int:
    """Delete the files past their `expires_at`, a chunk a transaction; how many. A batch
    keeps naming its input file, as when it is deleted, and its result files as at OpenAI:
    those are emptied (their bytes deleted) and kept for their ids, hidden as any expired file
    (selectors)."""
    expired = BatchFile.objects.filter(expires_at__lte=timezone.now())
    named = Batch.objects.filter(Q(output_file=OuterRef("pk")) | Q(error_file=OuterRef("pk")))
    emptied = expired.filter(Exists(named)).exclude(size=0).update(data=b"", size=0)
    deleted = 0
    while True:
        ids = list(expired.exclude(Exists(named)).values_list("pk", flat=True)[:chunk])
        if not ids:
            return deleted + emptied
        deleted += BatchFile.objects.filter(pk__in=ids).delete()[1].get("batches.BatchFile", 0)


# --- Batches -----------------------------------------------------------------------------


def _metadata_checked(metadata) -> dict | None:
    if metadata is None:
        return None
    if not isinstance(metadata, dict):
        raise _refused("'metadata' must be an object of strings.", param="metadata")
    if len(metadata) > METADATA_PAIRS:
        raise _refused(f"'metadata' holds at most {METADATA_PAIRS} pairs.", param="metadata")
    for name, value in metadata.items():
        if len(name) > METADATA_KEY_CHARS or not isinstance(value, str):
            raise _refused(
                f"'metadata' takes names of up to {METADATA_KEY_CHARS} characters with string "
                "values.",
                param="metadata",
            )
        if len(value) > METADATA_VALUE_CHARS:
            raise _refused(
                f"A value in 'metadata' has at most {METADATA_VALUE_CHARS} characters.",
                param="metadata",
            )
    return metadata


def batch_create(
    *,
    key: ApiKey,
    input_file: BatchFile,
    endpoint: str,
    completion_window: str,
    metadata: dict | None = None,
    output_expires_after: dict | None = None,
) -> Batch:
    if endpoint not in ENDPOINTS:
        raise _refused(
            f"The endpoint '{endpoint}' is not supported in a batch: use {', '.join(ENDPOINTS)}.",
            code="unsupported_endpoint",
            param="endpoint",
        )
    window = COMPLETION_WINDOWS.get(completion_window)
    if window is None:
        raise _refused(
            f"The completion window '{completion_window}' is not supported: use "
            f"{', '.join(COMPLETION_WINDOWS)}.",
            param="completion_window",
        )
    if input_file.purpose != BatchFile.Purpose.BATCH:
        raise _refused(
            f"The file {input_file.public_id} is not a batch's input (purpose 'batch').",
            param="input_file_id",
        )
    output_expires_seconds = _expiry_seconds(output_expires_after, param="output_expires_after")
    now = timezone.now()
    with transaction.atomic():
        batch = Batch.objects.create(
            output_expires_seconds=output_expires_seconds,
            public_id=_public_id("batch_"),
            workspace_id=key.workspace_id,
            user_id=key.user_id,
            api_key_id=key.pk,
            endpoint=endpoint,
            completion_window=completion_window,
            input_file_id=input_file.public_id,
            metadata=_metadata_checked(metadata),
            created_at=now,
            expires_at=now + window,
        )
        _run_on_commit(batch.pk)
    return batch


def batch_start(
    *, key: ApiKey, filename: str, data: bytes, endpoint: str, metadata: dict | None = None
) -> Batch:
    """A batch on a new input file, both made at once (the batches page's upload): a refused
    batch leaves no file behind."""
    with transaction.atomic():
        input_file = batch_file_create(
            key=key, purpose=BatchFile.Purpose.BATCH, filename=filename, data=data
        )
        return batch_create(
            key=key,
            input_file=input_file,
            endpoint=endpoint,
            completion_window=next(iter(COMPLETION_WINDOWS)),
            metadata=metadata,
        )


def _run_on_commit(batch_id: int) -> None:
    transaction.on_commit(lambda: _run_now(batch_id))


def _run_now(batch_id: int) -> None:
    from .tasks import batch_run as batch_run_task

    try:
        batch_run_task.delay(batch_id)
    except Exception:
        # The broker is away: the batch is saved, and the resume task queues it once it is
        # back (batches_resume), so the caller is not told of a failure that loses nothing.
        logger.warning("could not queue batch %s; the resume task will", batch_id, exc_info=True)


def batch_cancel(*, batch: Batch) -> Batch:
    """Requests running are stopped (their upstream calls closed, what they produced billed);
    the results so far are written to the batch's files."""
    if batch.status not in (Batch.Status.VALIDATING, Batch.Status.IN_PROGRESS):
        if batch.status in (Batch.Status.CANCELLING, Batch.Status.CANCELLED):
            return batch
        raise ApiError(
            409,
            "batch_not_cancellable",
            f"The batch {batch.public_id} is {batch.status}: only a batch validating or in "
            "progress can be cancelled.",
        )
    now = timezone.now()
    with transaction.atomic():
        changed = Batch.objects.filter(
            pk=batch.pk, status__in=(Batch.Status.VALIDATING, Batch.Status.IN_PROGRESS)
        ).update(status=Batch.Status.CANCELLING, cancelling_at=now)
        if changed:
            # A worker running it sees the change within a second; this one finishes the job
            # when none is (the batch was still waiting for a worker, or its worker is gone).
            _run_on_commit(batch.pk)
    batch.refresh_from_db()
    return batch


def batch_claim(*, batch_id: int, runner: str) -> Batch | None:
    """Take the batch for this runner, unless another runner has it and is alive."""
    now = timezone.now()
    stale = now - timedelta(seconds=settings.BATCH_STALE_SECONDS)
    claimed = (
        Batch.objects.filter(pk=batch_id, status__in=Batch.OPEN)
        .filter(Q(runner="") | Q(heartbeat_at__isnull=True) | Q(heartbeat_at__lt=stale))
        .update(runner=runner, heartbeat_at=now)
    )
    return Batch.objects.get(pk=batch_id) if claimed else None


def batch_heartbeat(*, batch_id: int, runner: str) -> str | None:
    """Note that the runner is alive; the batch's status, or None when the batch is no longer
    this runner's."""
    if not Batch.objects.filter(pk=batch_id, runner=runner).update(heartbeat_at=timezone.now()):
        return None
    return Batch.objects.filter(pk=batch_id).values_list("status", flat=True).first()


def _release(*, batch_id: int, runner: str) -> None:
    Batch.objects.filter(pk=batch_id, runner=runner).update(runner="")


def _request_error(line: int, message: str, *, code: str = "invalid_request", param=None):
    return {"code": code, "message": message, "param": param, "line": line}


def _request_checked(line: int, request: dict, batch: Batch, key: ApiKey | None, seen: set):
    """The error of one input line, or None."""
    custom_id = request.get("custom_id")
    if not isinstance(custom_id, str) or not custom_id:
        return _request_error(line, "Each request needs a 'custom_id' string.", param="custom_id")
    if len(custom_id) > 512:
        return _request_error(line, "A 'custom_id' has at most 512 characters.", param="custom_id")
    if custom_id in seen:
        return _request_error(
            line,
            f"The custom_id '{custom_id}' is used by an earlier request; each must be unique.",
            code="duplicate_custom_id",
            param="custom_id",
        )
    seen.add(custom_id)
    if request.get("method") != "POST":
        return _request_error(line, "A request's 'method' must be 'POST'.", param="method")
    if request.get("url") != batch.endpoint:
        return _request_error(
            line,
            f"A request's 'url' must be the batch's endpoint, '{batch.endpoint}'.",
            code="mismatched_endpoint",
            param="url",
        )
    body = request.get("body")
    if not isinstance(body, dict):
        return _request_error(line, "A request's 'body' must be an object.", param="body")
    try:
        parsed = schemas.parse(ENDPOINT_SCHEMAS[batch.endpoint], json.dumps(body).encode())
    except ApiError as exc:
        return _request_error(line, exc.message, code=exc.code, param=f"body.{exc.param or ''}")
    if getattr(parsed, "stream", False):
        return _request_error(line, "Streaming is not supported in a batch.", param="body.stream")
    if getattr(parsed, "previous_response_id", None):
        return _request_error(
            line,
            "A batch's request cannot follow a stored response: send the whole conversation "
            "in input.",
            code="unsupported_parameter",
            param="body.previous_response_id",
        )
    if key is not None:
        try:
            api_key_model_check(key, parsed.model)
        except ApiError as exc:
            return _request_error(line, exc.message, code=exc.code, param="body.model")
    return None


def batch_validate(*, batch: Batch) -> Batch:
    """Read the input file into the batch's requests (in progress), or fail the batch with
    what is wrong, line by line."""
    input_file = BatchFile.objects.filter(public_id=batch.input_file_id).first()
    key = ApiKey.objects.filter(pk=batch.api_key_id).first()
    errors: list[dict] = []
    lines: list[tuple[int, dict]] = []
    if input_file is None:
        errors.append(
            _request_error(
                None, f"The input file {batch.input_file_id} was deleted.", param="input_file_id"
            )
        )
    else:
        try:
            lines = _input_lines(bytes(input_file.data))
        except ApiError as exc:
            errors.append(_request_error(None, exc.message, code=exc.code, param="input_file_id"))
    seen: set[str] = set()
    for number, request in lines:
        error = _request_checked(number, request, batch, key, seen)
        if error is not None:
            errors.append(error)
    now = timezone.now()
    if errors:
        Batch.objects.filter(pk=batch.pk, status=Batch.Status.VALIDATING).update(
            status=Batch.Status.FAILED,
            failed_at=now,
            errors=errors[:VALIDATION_ERRORS_SHOWN],
        )
        batch.refresh_from_db()
        return batch
    with transaction.atomic():
        BatchRequest.objects.bulk_create(
            (
                BatchRequest(
                    batch_id=batch.pk,
                    line=number,
                    custom_id=request["custom_id"],
                    body=request["body"],
                    request_id=_public_id("batch_req_"),
                )
                for number, request in lines
            ),
            batch_size=1000,
        )
        Batch.objects.filter(pk=batch.pk, status=Batch.Status.VALIDATING).update(
            status=Batch.Status.IN_PROGRESS, in_progress_at=now, total=len(lines)
        )
    batch.refresh_from_db()
    return batch


def batch_request_finish(
    *,
    batch_id: int,
    request_pk: int,
    succeeded: bool,
    status_code: int,
    response: dict,
    input_tokens: int = 0,
    output_tokens: int = 0,
    cached_tokens: int = 0,
    reasoning_tokens: int = 0,
) -> None:
    with transaction.atomic():
        finished = BatchRequest.objects.filter(
            pk=request_pk, status=BatchRequest.Status.PENDING
        ).update(
            status=BatchRequest.Status.SUCCEEDED if succeeded else BatchRequest.Status.FAILED,
            status_code=status_code,
            response=response,
            finished_at=timezone.now(),
        )
        if finished:
            counter = "completed" if succeeded else "failed"
            Batch.objects.filter(pk=batch_id).update(
                **{counter: F(counter) + 1},
                input_tokens=F("input_tokens") + input_tokens,
                output_tokens=F("output_tokens") + output_tokens,
                cached_tokens=F("cached_tokens") + cached_tokens,
                reasoning_tokens=F("reasoning_tokens") + reasoning_tokens,
            )


_NOT_RUN = {
    Batch.Status.CANCELLED: (
        "batch_cancelled",
        "This request was not run: the batch was cancelled.",
    ),
    Batch.Status.EXPIRED: (
        "batch_expired",
        "This request could not be run before the batch's completion window expired.",
    ),
}


def _result_line(request: BatchRequest, final: str) -> bytes:
    if request.status == BatchRequest.Status.PENDING:
        code, message = _NOT_RUN[final]
        response, error = None, {"code": code, "message": message}
    else:
        response = {
            "status_code": request.status_code,
            "request_id": request.request_id,
            "body": request.response,
        }
        error = None
    line = {"id": request.request_id, "custom_id": request.custom_id, "response": response}
    line["error"] = error
    return json.dumps(line, ensure_ascii=False).encode() + b"\n"


def batch_finalize(*, batch: Batch, final: str) -> Batch:
    """Write the batch's results: answers to its output file, failures (and requests not run)
    to its error file, each line naming its request's custom_id, in the input's order."""
    Batch.objects.filter(pk=batch.pk).update(
        status=Batch.Status.FINALIZING, finalizing_at=timezone.now()
    )
    output, errors = [], []
    for request in batch_requests_in_order(batch_id=batch.pk):
        line = _result_line(request, final)
        (output if request.status == BatchRequest.Status.SUCCEEDED else errors).append(line)
    with transaction.atomic():
        files = {}
        for name, lines in (("output_file", output), ("error_file", errors)):
            if lines:
                data = b"".join(lines)
                files[name] = BatchFile.objects.create(
                    public_id=_public_id("file-"),
                    workspace_id=batch.workspace_id,
                    user_id=batch.user_id,
                    purpose=BatchFile.Purpose.BATCH_OUTPUT,
                    filename=f"{batch.public_id}_{name.split('_')[0]}.jsonl",
                    size=len(data),
                    data=data,
                    expires_at=_expires_at(batch.output_expires_seconds),
                )
        Batch.objects.filter(pk=batch.pk).update(
            status=final, runner="", **files, **{f"{final}_at": timezone.now()}
        )
    batch.refresh_from_db()
    return batch


def batch_run(*, batch_id: int) -> None:
    """Everything left to do on a batch, by whichever worker gets it first: validate it, run
    its requests (a few at a time, for BATCH_SLICE_SECONDS before it queues itself again),
    write its results. A batch whose runner stops midway (the worker killed) is taken up by
    another worker, from the requests not yet answered."""
    from .runner import requests_run

    runner = uuid.uuid4().hex
    batch = batch_claim(batch_id=batch_id, runner=runner)
    if batch is None:
        return
    try:
        if batch.status == Batch.Status.VALIDATING:
            batch = batch_validate(batch=batch)
        if batch.status == Batch.Status.IN_PROGRESS and timezone.now() < batch.expires_at:
            why = requests_run(batch=batch, runner=runner)
            if why == "lost":
                return  # another runner took it over
            if why == "slice":
                # Its time is up: it goes to the back of the queue, so that a long batch does
                # not hold a worker from every other task (usage rollups, e-mails, batches).
                _release(batch_id=batch_id, runner=runner)
                _run_now(batch_id)
                return
            batch.refresh_from_db()
        if batch.runner != runner or batch.status not in Batch.OPEN:
            return
        pending = batch.requests.filter(status=BatchRequest.Status.PENDING).exists()
        expired = timezone.now() >= batch.expires_at
        if batch.status == Batch.Status.CANCELLING:
            batch_finalize(batch=batch, final=Batch.Status.CANCELLED)
        elif not pending:
            batch_finalize(batch=batch, final=Batch.Status.COMPLETED)
        elif expired:
            batch_finalize(batch=batch, final=Batch.Status.EXPIRED)
        elif batch.status == Batch.Status.FINALIZING:
            # Its runner stopped while writing the results of a batch cancelled with requests
            # left (before it expired: those left would be said expired).
            batch_finalize(batch=batch, final=Batch.Status.CANCELLED)
    finally:
        _release(batch_id=batch_id, runner=runner)


def batches_resume() -> int:
    """Queue again the open batches no live worker is running (their worker was killed, or
    its task lost): the number queued. Each is marked as just queued, so that one still
    waiting behind a long queue is not queued again at every check."""
    now = timezone.now()
    stale = now - timedelta(seconds=settings.BATCH_STALE_SECONDS)
    silent = Q(heartbeat_at__lt=stale) | Q(heartbeat_at__isnull=True, created_at__lt=stale)
    queued = 0
    for batch_id in Batch.objects.filter(silent, status__in=Batch.OPEN).values_list(
        "pk", flat=True
    ):
        # Its silent runner, if it ever wakes, finds the batch no longer its own and stops.
        if Batch.objects.filter(silent, pk=batch_id).update(runner="", heartbeat_at=now):
            _run_now(batch_id)
            queued += 1
    return queued
