"""The OpenAPI description of /v1, built from the same pydantic schemas that validate requests."""

from functools import cache

from . import schemas


def _error_response(description: str, schema: str = "Error") -> dict:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}},
    }


# What apps above this one serve under /v1 (batches/): {path: operations}, and their schemas.
_more_paths: dict[str, dict] = {}
_more_schemas: dict[str, type | dict] = {}


def paths_register(paths: dict[str, dict], schemas_used: dict[str, type | dict]) -> None:
    """`schemas_used`: {name: a pydantic model (a request body), or a JSON Schema (an answer,
    built with `object_schema`)}."""
    _more_paths.update(paths)
    _more_schemas.update(schemas_used)


def object_schema(properties: dict, *, optional: tuple = ()) -> dict:
    """An object schema whose properties are all required but `optional`."""
    return {
        "type": "object",
        "required": [name for name in properties if name not in optional],
        "properties": properties,
    }


_INT = {"type": "integer"}
_STR = {"type": "string"}
_NULL_STR = {"type": ["string", "null"]}
_NULL_INT = {"type": ["integer", "null"]}
_NULL_NUM = {"type": ["number", "null"]}
_TEXT_PART = object_schema(
    {
        "type": {"const": "output_text"},
        "text": _STR,
        "annotations": {"type": "array", "maxItems": 0},
        "logprobs": {"type": "array", "maxItems": 0},
    }
)
# What the endpoints answer (200), as the SDKs read it.
_RESPONSE_SCHEMAS = {
    "ChatCompletion": object_schema(
        {
            "id": _STR,
            "object": {"const": "chat.completion"},
            "created": _INT,
            "model": _STR,
            "choices": {
                "type": "array",
                "minItems": 1,
                "maxItems": 1,
                "items": object_schema(
                    {
                        "index": {"const": 0},
                        "message": object_schema({"role": {"const": "assistant"}, "content": _STR}),
                        "finish_reason": {
                            "enum": ["stop", "length", "content_filter", "tool_calls"]
                        },
                        "logprobs": {"type": "null"},
                    }
                ),
            },
            "usage": {"$ref": "#/components/schemas/CompletionUsage"},
        }
    ),
    "CompletionUsage": object_schema(
        {
            "prompt_tokens": _INT,
            "completion_tokens": _INT,
            "total_tokens": _INT,
            "prompt_tokens_details": object_schema({"cached_tokens": _INT}),
            "completion_tokens_details": object_schema({"reasoning_tokens": _INT}),
        }
    ),
    "Response": object_schema(
        {
            "id": _STR,
            "object": {"const": "response"},
            "created_at": _INT,
            "status": {
                "enum": ["completed", "incomplete", "in_progress", "failed", "queued", "cancelled"]
            },
            "error": {
                "oneOf": [{"type": "null"}, object_schema({"code": _NULL_STR, "message": _STR})]
            },
            "incomplete_details": {
                "oneOf": [
                    {"type": "null"},
                    object_schema({"reason": {"enum": ["max_output_tokens", "content_filter"]}}),
                ]
            },
            "instructions": _NULL_STR,
            "max_output_tokens": _NULL_INT,
            "metadata": {"type": "object", "additionalProperties": _STR},
            "model": _STR,
            "output": {
                "type": "array",
                "maxItems": 1,
                "items": object_schema(
                    {
                        "id": _STR,
                        "type": {"const": "message"},
                        "status": {"enum": ["completed", "incomplete", "in_progress"]},
                        "role": {"const": "assistant"},
                        "content": {"type": "array", "items": _TEXT_PART},
                    }
                ),
            },
            "parallel_tool_calls": {"type": "boolean"},
            "previous_response_id": _NULL_STR,
            "reasoning": object_schema({"effort": _NULL_STR, "summary": {"type": "null"}}),
            "store": {
                "type": "boolean",
                "description": "Whether the answer was kept: false when the request said so, "
                "when the server keeps none, or when keeping it failed.",
            },
            "temperature": _NULL_NUM,
            "text": object_schema({"format": object_schema({"type": {"const": "text"}})}),
            "tool_choice": {"type": ["string", "object"]},
            "tools": {"type": "array", "maxItems": 0},
            "top_p": _NULL_NUM,
            "truncation": {"const": "disabled"},
            "usage": {
                "oneOf": [
                    {"type": "null"},
                    object_schema(
                        {
                            "input_tokens": _INT,
                            "input_tokens_details": object_schema({"cached_tokens": _INT}),
                            "output_tokens": _INT,
                            "output_tokens_details": object_schema({"reasoning_tokens": _INT}),
                            "total_tokens": _INT,
                        }
                    ),
                ]
            },
            "user": _NULL_STR,
        },
        optional=("background",),
    ),
    "AnthropicMessage": object_schema(
        {
            "id": _STR,
            "type": {"const": "message"},
            "role": {"const": "assistant"},
            "model": _STR,
            "content": {
                "type": "array",
                "items": object_schema({"type": {"const": "text"}, "text": _STR}),
            },
            "stop_reason": {"enum": ["end_turn", "max_tokens", "refusal", "tool_use"]},
            "stop_sequence": {"type": "null"},
            "usage": object_schema(
                {
                    "input_tokens": _INT,
                    "cache_creation_input_tokens": _INT,
                    "cache_read_input_tokens": _INT,
                    "cache_creation": object_schema(
                        {"ephemeral_5m_input_tokens": _INT, "ephemeral_1h_input_tokens": _INT}
                    ),
                    "output_tokens": _INT,
                }
            ),
        }
    ),
    "EmbeddingList": object_schema(
        {
            "object": {"const": "list"},
            "data": {
                "type": "array",
                "items": object_schema(
                    {
                        "object": {"const": "embedding"},
                        "index": _INT,
                        "embedding": {
                            "oneOf": [{"type": "array", "items": {"type": "number"}}, _STR],
                            "description": "Floats, or base64 of little-endian float32 "
                            "with encoding_format base64.",
                        },
                    }
                ),
            },
            "model": _STR,
            "usage": object_schema({"prompt_tokens": _INT, "total_tokens": _INT}),
        }
    ),
    "ModelList": object_schema(
        {
            "object": {"const": "list"},
            "data": {"type": "array", "items": {"$ref": "#/components/schemas/Model"}},
        }
    ),
    "ResponseDeleted": object_schema(
        {"id": _STR, "object": {"const": "response"}, "deleted": {"const": True}}
    ),
    "InputItemList": object_schema(
        {
            "object": {"const": "list"},
            "data": {
                "type": "array",
                "items": object_schema(
                    {
                        "id": _STR,
                        "type": {"const": "message"},
                        "role": {"enum": ["user", "assistant", "system", "developer"]},
                        "status": {"const": "completed"},
                        "content": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": ["type"],
                                "properties": {
                                    "type": {"enum": ["input_text", "output_text", "input_image"]},
                                    "text": _STR,
                                    "image_url": _STR,
                                },
                            },
                        },
                    }
                ),
            },
            "first_id": _NULL_STR,
            "last_id": _NULL_STR,
            "has_more": {"type": "boolean"},
        }
    ),
}


def _stored_response_operation(summary: str, answer: str, *query: str) -> dict:
    """An operation on a stored response (GET /v1/responses/{response_id}…)."""
    return {
        "summary": summary,
        "parameters": [
            {"name": "response_id", "in": "path", "required": True, "schema": _STR},
            *({"name": name, "in": "query", "required": False, "schema": _STR} for name in query),
        ],
        "responses": {
            "200": _answer(answer),
            "401": _error_response("Missing, invalid, revoked or expired key"),
            "404": _error_response(
                "Code not_found: no such response among those this key's user stored in its "
                "workspace (or it expired)"
            ),
        },
    }


def _answer(schema: str, description: str = "OK") -> dict:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}},
    }


@cache
def openapi_document() -> dict:
    components = {}
    for name, schema in {
        "ChatCompletionRequest": schemas.ChatCompletionRequest,
        "AnthropicMessagesRequest": schemas.AnthropicMessagesRequest,
        "EmbeddingsRequest": schemas.EmbeddingsRequest,
        "ResponsesRequest": schemas.ResponsesRequest,
        **_more_schemas,
    }.items():
        if isinstance(schema, dict):
            components[name] = schema
            continue
        document = schema.model_json_schema(ref_template="#/components/schemas/{model}")
        components.update(document.pop("$defs", {}))
        components[name] = document
    components["Error"] = {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["message", "type", "param", "code"],
                "properties": {
                    "message": {"type": "string"},
                    "type": {"type": "string"},
                    "param": {"type": ["string", "null"]},
                    "code": {"type": ["string", "null"]},
                },
            }
        },
    }
    # /messages answers errors in Anthropic's shape, which the anthropic SDK reads.
    components["AnthropicError"] = {
        "type": "object",
        "required": ["type", "error"],
        "properties": {
            "type": {"const": "error"},
            "error": {
                "type": "object",
                "required": ["type", "message"],
                "properties": {"type": {"type": "string"}, "message": {"type": "string"}},
            },
        },
    }
    components.update(_RESPONSE_SCHEMAS)
    components["Model"] = {
        "type": "object",
        "required": ["id", "object", "created", "owned_by"],
        "properties": {
            "id": {"type": "string"},
            "object": {"const": "model"},
            "created": {"type": "integer"},
            "owned_by": {"type": "string"},
        },
    }

    def error_responses(schema: str) -> dict:
        return {
            "400": _error_response(
                "Invalid request. Code unsupported_parameter (param names it): a parameter "
                "this server does not implement, such as tools or a JSON response_format, "
                "given a value other than one that asks for nothing. Code "
                "temperature_unsupported (param temperature): no provider of the model "
                "accepts the temperature. Neither reaches a provider nor is billed."
                if schema == "Error"
                else "Invalid request: a malformed body, a parameter this server does not "
                "implement (tools, tool_choice, thinking), or a temperature no provider of "
                "the model accepts. None reaches a provider nor is billed.",
                schema,
            ),
            "401": _error_response("Missing, invalid, revoked or expired key", schema),
            "403": _error_response("Model not allowed for this key", schema),
            "404": _error_response("Unknown model", schema),
            "413": _error_response("Request body too large", schema),
            "429": _error_response(
                "Rate limit reached (see Retry-After), or"
                + (" code budget_reached:" if schema == "Error" else "")
                + " a monthly budget refused the request (no Retry-After; lower max_tokens or "
                "raise the budget)",
                schema,
            ),
            "502": _error_response("Upstream provider failed", schema),
            "503": _error_response(
                "Upstream overloaded, or the service briefly unavailable; see Retry-After",
                schema,
            ),
        }

    errors = error_responses("Error")

    def post(ref: str, summary: str, stream_note: str, answer: str, errors: dict = errors) -> dict:
        ok = _answer(answer, "OK: JSON, or SSE when stream is true" if stream_note else "OK")
        if stream_note:
            ok["content"]["text/event-stream"] = {"schema": {"type": "string"}}
        return {
            "post": {
                "summary": summary,
                "description": stream_note,
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}
                    },
                },
                "responses": {"200": ok, **errors},
            }
        }

    retrieve = _stored_response_operation(
        "Retrieve a stored response; with stream=true, a background response's stream "
        "(after the event starting_after), followed until it ends (400 for a response not "
        "made in the background)",
        "Response",
        "stream",
        "starting_after",
    )
    retrieve["responses"]["200"]["content"]["text/event-stream"] = {"schema": {"type": "string"}}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "AURAX API",
            "version": "1",
            "description": "OpenAI- and Anthropic-compatible gateway.",
        },
        "servers": [{"url": "/v1"}],
        "security": [{"bearer": []}, {"apiKeyHeader": []}],
        "paths": {
            "/chat/completions": post(
                "ChatCompletionRequest",
                "Create a chat completion",
                "SSE chunks ending with data: [DONE] when stream is true; usage in a last "
                "chunk with stream_options.include_usage.",
                "ChatCompletion",
            ),
            "/messages": post(
                "AnthropicMessagesRequest",
                "Create a message (Anthropic format)",
                "Anthropic SSE events when stream is true. Errors in Anthropic's shape.",
                "AnthropicMessage",
                error_responses("AnthropicError"),
            ),
            "/responses": post(
                "ResponsesRequest",
                "Create a response (OpenAI Responses API)",
                "OpenAI's Responses SSE events when stream is true (response.created … "
                "response.output_text.delta … response.completed, or error and "
                "response.failed when the provider fails mid-answer; with background, as "
                "its worker says it). The answer is kept unless store is false; "
                "previous_response_id follows a kept one (400 "
                "previous_response_not_found when this key's user has none by that id).",
                "Response",
            ),
            "/responses/{response_id}": {
                "get": retrieve,
                "delete": _stored_response_operation("Delete a stored response", "ResponseDeleted"),
            },
            "/responses/{response_id}/cancel": {
                "post": _stored_response_operation(
                    "Cancel a background response (400 response_not_cancellable once it has "
                    "finished)",
                    "Response",
                )
            },
            "/responses/{response_id}/input_items": {
                "get": _stored_response_operation(
                    "List a stored response's input items (limit, order, after)",
                    "InputItemList",
                    "limit",
                    "order",
                    "after",
                )
            },
            "/embeddings": post("EmbeddingsRequest", "Create embeddings", "", "EmbeddingList"),
            "/models": {
                "get": {
                    "summary": "List the models and aliases this key may use",
                    "responses": {"200": _answer("ModelList"), "401": errors["401"]},
                }
            },
            "/models/{model}": {
                "get": {
                    "summary": "Retrieve one model or alias this key may use",
                    "parameters": [
                        {
                            "name": "model",
                            "in": "path",
                            "required": True,
                            "description": "A model id as listed by /models; a / in it is "
                            "sent as %2F",
                            "schema": {"type": "string"},
                        }
                    ],
                    "responses": {
                        "200": {
                            "description": "OK",
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": "#/components/schemas/Model"}
                                }
                            },
                        },
                        "401": errors["401"],
                        "404": _error_response(
                            "Code model_not_found: no such model, or not one this key may use"
                        ),
                    },
                }
            },
            **_more_paths,
        },
        "components": {
            "schemas": components,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "apiKeyHeader": {"type": "apiKey", "in": "header", "name": "x-api-key"},
            },
        },
    }
