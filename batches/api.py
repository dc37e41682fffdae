"""/v1/files and /v1/batches, as OpenAI's Batch API: upload a file of requests, start a batch
on it, follow its status, download its results. Served by the /v1 ASGI app
(api.handlers.routes_register)."""

from __future__ import annotations

from io import BytesIO

from django.conf import settings
from django.core.files.uploadhandler import MemoryFileUploadHandler
from django.http.multipartparser import MultiPartParser, MultiPartParserError
from django.utils.http import content_disposition_header
from pydantic import BaseModel, ConfigDict

from api import schemas
from api.errors import ApiError
from api.handlers import (
    ApiRequest,
    ApiResponse,
    Route,
    authenticate,
    list_answer,
    list_limit,
    usage_with_details,
)
from api.openapi import object_schema
from aurax.db_threads import db_call

from . import selectors, services
from .models import Batch, BatchFile

# Room for the multipart envelope around the largest file.
_MULTIPART_OVERHEAD = 64 * 1024


# A batch's times besides `created_at`: each null until the batch gets there.
_BATCH_MOMENTS = (
    "in_progress_at",
    "expires_at",
    "finalizing_at",
    "completed_at",
    "failed_at",
    "expired_at",
    "cancelling_at",
    "cancelled_at",
)


def _timestamp(moment) -> int | None:
    return int(moment.timestamp()) if moment is not None else None


def _file_object(file: BatchFile) -> dict:
    return {
        "id": file.public_id,
        "object": "file",
        "bytes": file.size,
        "created_at": _timestamp(file.created_at),
        "expires_at": _timestamp(file.expires_at),
        "filename": file.filename,
        "purpose": file.purpose,
        "status": "processed",
        "status_details": None,
    }


def _batch_object(batch: Batch) -> dict:
    return {
        "id": batch.public_id,
        "object": "batch",
        "endpoint": batch.endpoint,
        "errors": {"object": "list", "data": batch.errors} if batch.errors else None,
        "input_file_id": batch.input_file_id,
        "completion_window": batch.completion_window,
        "status": batch.status,
        "output_file_id": batch.output_file.public_id if batch.output_file else None,
        "error_file_id": batch.error_file.public_id if batch.error_file else None,
        **{
            moment: _timestamp(getattr(batch, moment)) for moment in ("created_at", *_BATCH_MOMENTS)
        },
        "request_counts": {
            "total": batch.total,
            "completed": batch.completed,
            "failed": batch.failed,
        },
        "usage": usage_with_details(
            batch.input_tokens,
            batch.output_tokens,
            cached_tokens=batch.cached_tokens,
            reasoning_tokens=batch.reasoning_tokens,
        ),
        "metadata": batch.metadata,
    }


def _not_found(kind: str, public_id: str, param: str) -> ApiError:
    return ApiError(404, "not_found", f"No {kind} with the id '{public_id}'.", param=param)


# --- Files -------------------------------------------------------------------------------


class _KeptInMemory(MemoryFileUploadHandler):
    """The upload is already in memory (the request's body, capped by the route): keep the
    file there whatever its size, not only under FILE_UPLOAD_MAX_MEMORY_SIZE."""

    def handle_raw_input(self, input_data, META, content_length, boundary, encoding=None):
        self.activated = True


def _multipart(request: ApiRequest) -> tuple[dict, dict]:
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("multipart/form-data"):
        raise ApiError(
            400,
            "invalid_request",
            "Upload a file as multipart/form-data, with the fields 'file' and 'purpose'.",
        )
    meta = {"CONTENT_TYPE": content_type, "CONTENT_LENGTH": str(len(request.body))}
    try:
        fields, files = MultiPartParser(
            meta, BytesIO(request.body), [_KeptInMemory()], "utf-8"
        ).parse()
    except MultiPartParserError as exc:
        raise ApiError(400, "invalid_request", f"The upload could not be read: {exc}") from None
    return fields, files


def _file_upload(request: ApiRequest, key) -> dict:
    fields, files = _multipart(request)
    upload = files.get("file")
    if upload is None:
        raise ApiError(400, "invalid_request", "The upload has no 'file' field.", param="file")
    if upload.size > settings.BATCH_FILE_MAX_BYTES:
        raise ApiError(
            413,
            "file_too_large",
            f"The file is larger than {settings.BATCH_FILE_MAX_BYTES} bytes.",
            param="file",
        )
    file = services.batch_file_create(
        key=key,
        purpose=fields.get("purpose", ""),
        filename=upload.name,
        data=upload.read(),
        expires_after=_expires_after(fields),
    )
    return _file_object(file)


def _expires_after(fields) -> dict | None:
    """`expires_after` as a form sends it (`expires_after[anchor]`, `expires_after[seconds]`:
    the `openai` SDK's way), for the service to check."""
    anchor, seconds = fields.get("expires_after[anchor]"), fields.get("expires_after[seconds]")
    if anchor is None and seconds is None:
        return None
    try:
        seconds = int(seconds)
    except (TypeError, ValueError):
        pass  # refused by the service, which says what it takes
    return {"anchor": anchor, "seconds": seconds}


def _handler(work):
    """An async handler that authenticates the key, then does `work(request, key)` (sync:
    database work and parsing) on the pipeline's database threads."""

    async def handle(request: ApiRequest) -> ApiResponse:
        key = await authenticate(request.headers)
        result = await db_call(work, request, key)
        return result if isinstance(result, ApiResponse) else ApiResponse.json(result)

    return handle


def _file_mine(request: ApiRequest, key, with_data: bool = False) -> BatchFile:
    public_id = request.params["file_id"]
    file = selectors.batch_file_get_for_key(key=key, public_id=public_id, with_data=with_data)
    if file is None:
        raise _not_found("file", public_id, "file_id")
    return file


def _file_list(request: ApiRequest, key) -> ApiResponse:
    order = request.query.get("order", "desc")
    if order not in ("asc", "desc"):
        raise ApiError(400, "invalid_request", "'order' is 'asc' or 'desc'.", param="order")
    files, has_more = selectors.batch_files_for_key(
        key=key,
        purpose=request.query.get("purpose") or None,
        after=request.query.get("after") or None,
        limit=list_limit(request, default=100, most=10_000),
        newest_first=order == "desc",
    )
    return list_answer(files, has_more, _file_object)


def _file_retrieve(request: ApiRequest, key) -> dict:
    return _file_object(_file_mine(request, key))


def _file_delete(request: ApiRequest, key) -> dict:
    file = _file_mine(request, key)
    services.batch_file_delete(file=file)
    return {"id": file.public_id, "object": "file", "deleted": True}


def _file_content(request: ApiRequest, key) -> ApiResponse:
    file = _file_mine(request, key, with_data=True)
    return ApiResponse(
        body=bytes(file.data),
        content_type="application/jsonl",
        headers={"content-disposition": content_disposition_header(True, file.filename)},
    )


# --- Batches -----------------------------------------------------------------------------


class BatchCreateRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    input_file_id: str
    endpoint: str
    completion_window: str
    metadata: dict | None = None
    output_expires_after: dict | None = None


def _batch_mine(request: ApiRequest, key) -> Batch:
    public_id = request.params["batch_id"]
    batch = selectors.batch_get_for_key(key=key, public_id=public_id)
    if batch is None:
        raise _not_found("batch", public_id, "batch_id")
    return batch


def _batch_create(request: ApiRequest, key) -> dict:
    body = schemas.parse(BatchCreateRequest, request.body)
    input_file = selectors.batch_file_get_for_key(key=key, public_id=body.input_file_id)
    if input_file is None:
        raise _not_found("file", body.input_file_id, "input_file_id")
    batch = services.batch_create(
        key=key,
        input_file=input_file,
        endpoint=body.endpoint,
        completion_window=body.completion_window,
        metadata=body.metadata,
        output_expires_after=body.output_expires_after,
    )
    return _batch_object(batch)


def _batch_list(request: ApiRequest, key) -> ApiResponse:
    batches, has_more = selectors.batches_for_key(
        key=key,
        after=request.query.get("after") or None,
        limit=list_limit(request, default=20, most=100),
    )
    return list_answer(batches, has_more, _batch_object)


def _batch_retrieve(request: ApiRequest, key) -> dict:
    return _batch_object(_batch_mine(request, key))


def _batch_cancel(request: ApiRequest, key) -> dict:
    batch = services.batch_cancel(batch=_batch_mine(request, key))
    return _batch_object(selectors.batch_get_for_key(key=key, public_id=batch.public_id))


def _route(work, method: str, max_body=None) -> dict[str, Route]:
    return {method: Route(_handler(work), "openai", (method,), max_body)}


ROUTES = {
    "/v1/files": {
        **_route(
            _file_upload,
            "POST",
            max_body=lambda: settings.BATCH_FILE_MAX_BYTES + _MULTIPART_OVERHEAD,
        ),
        **_route(_file_list, "GET"),
    },
    "/v1/files/{file_id}": {**_route(_file_retrieve, "GET"), **_route(_file_delete, "DELETE")},
    "/v1/files/{file_id}/content": _route(_file_content, "GET"),
    "/v1/batches": {**_route(_batch_create, "POST"), **_route(_batch_list, "GET")},
    "/v1/batches/{batch_id}": _route(_batch_retrieve, "GET"),
    "/v1/batches/{batch_id}/cancel": _route(_batch_cancel, "POST"),
}


_INT, _STR = {"type": "integer"}, {"type": "string"}
_WHEN = {"type": ["integer", "null"]}
FILE_SCHEMA = object_schema(
    {
        "id": _STR,
        "object": {"const": "file"},
        "bytes": _INT,
        "created_at": _INT,
        "expires_at": _WHEN,
        "filename": _STR,
        "purpose": {"enum": ["batch", "batch_output"]},
        "status": {"const": "processed"},
        "status_details": {"type": "null"},
    }
)
BATCH_SCHEMA = object_schema(
    {
        "id": _STR,
        "object": {"const": "batch"},
        "endpoint": _STR,
        "errors": {
            "oneOf": [
                {"type": "null"},
                object_schema(
                    {
                        "object": {"const": "list"},
                        "data": {
                            "type": "array",
                            "items": object_schema(
                                {"code": _STR, "message": _STR, "param": {}, "line": _WHEN},
                                optional=("param", "line"),
                            ),
                        },
                    }
                ),
            ]
        },
        "input_file_id": _STR,
        "completion_window": _STR,
        "status": {"enum": [status.value for status in Batch.Status]},
        "output_file_id": {"type": ["string", "null"]},
        "error_file_id": {"type": ["string", "null"]},
        **{moment: _WHEN for moment in _BATCH_MOMENTS},
        "created_at": _INT,
        "request_counts": object_schema({"total": _INT, "completed": _INT, "failed": _INT}),
        "usage": {"type": "object"},
        "metadata": {"type": ["object", "null"], "additionalProperties": _STR},
    }
)


def _list_schema(item: str) -> dict:
    return object_schema(
        {
            "object": {"const": "list"},
            "data": {"type": "array", "items": {"$ref": f"#/components/schemas/{item}"}},
            "first_id": {"type": ["string", "null"]},
            "last_id": {"type": ["string", "null"]},
            "has_more": {"type": "boolean"},
        }
    )


# What the API answers, by name: the OpenAPI document's components (batches.apps).
ANSWER_SCHEMAS = {
    "File": FILE_SCHEMA,
    "FileList": _list_schema("File"),
    "FileDeleted": object_schema(
        {"id": _STR, "object": {"const": "file"}, "deleted": {"const": True}}
    ),
    "Batch": BATCH_SCHEMA,
    "BatchList": _list_schema("Batch"),
}


def _operation(
    summary: str, *, path_id: str = "", body: dict | None = None, answer: str = "", **extra
) -> dict:
    ok = {"description": "OK"}
    if answer:
        ok["content"] = {"application/json": {"schema": {"$ref": f"#/components/schemas/{answer}"}}}
    operation = {"summary": summary, "responses": {"200": ok}, **extra}
    responses = operation["responses"]
    responses["401"] = {"description": "Missing, invalid, revoked or expired key"}
    if path_id:
        operation["parameters"] = [
            {"name": path_id, "in": "path", "required": True, "schema": {"type": "string"}}
        ]
        responses["404"] = {"description": "No such id among this key's user's"}
    if body is not None:
        operation["requestBody"] = {"required": True, "content": body}
        responses["400"] = {"description": "Invalid request (the message names what)"}
    return operation


def _listing(summary: str, answer: str, *names: str) -> dict:
    return _operation(
        summary,
        answer=answer,
        parameters=[
            {"name": name, "in": "query", "required": False, "schema": {"type": "string"}}
            for name in ("limit", "after", *names)
        ],
    )


OPENAPI_PATHS = {
    "/files": {
        "post": _operation(
            "Upload a batch's input (JSON Lines, purpose 'batch')",
            answer="File",
            body={
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": ["file", "purpose"],
                        "properties": {
                            "file": {"type": "string", "format": "binary"},
                            "purpose": {"const": "batch"},
                        },
                    }
                }
            },
        ),
        "get": _listing(
            "List this key's user's files, newest first", "FileList", "order", "purpose"
        ),
    },
    "/files/{file_id}": {
        "get": _operation("Retrieve a file's description", path_id="file_id", answer="File"),
        "delete": _operation("Delete a file", path_id="file_id", answer="FileDeleted"),
    },
    "/files/{file_id}/content": {
        "get": _operation("Download a file's content", path_id="file_id"),
    },
    "/batches": {
        "post": _operation(
            "Create a batch on an uploaded file; it runs on the workers",
            answer="Batch",
            body={
                "application/json": {"schema": {"$ref": "#/components/schemas/BatchCreateRequest"}}
            },
        ),
        "get": _listing("List this key's user's batches, newest first", "BatchList"),
    },
    "/batches/{batch_id}": {
        "get": _operation("Retrieve a batch", path_id="batch_id", answer="Batch")
    },
    "/batches/{batch_id}/cancel": {
        "post": _operation(
            "Cancel a batch (409 batch_not_cancellable once finished)",
            path_id="batch_id",
            answer="Batch",
        )
    },
}
