"""The OpenAPI document describes the bodies the endpoints really answer."""

import json

import pytest

from tests.api.client import AsyncClient

pytestmark = pytest.mark.django_db(transaction=True)


def conforms(value, schema: dict, document: dict) -> bool:
    """Whether `value` matches `schema`, for the keywords the document's error schemas use
    ($ref, type, const, required, properties)."""
    if "$ref" in schema:
        name = schema["$ref"].removeprefix("#/components/schemas/")
        return conforms(value, document["components"]["schemas"][name], document)
    if "const" in schema and value != schema["const"]:
        return False
    kinds = {"object": dict, "string": str, "null": type(None), "integer": int}
    types = schema.get("type")
    if types is not None:
        types = [types] if isinstance(types, str) else types
        if not any(isinstance(value, kinds[t]) for t in types):
            return False
    if isinstance(value, dict):
        if any(name not in value for name in schema.get("required", ())):
            return False
        for name, inner in schema.get("properties", {}).items():
            if name in value and not conforms(value[name], inner, document):
                return False
    return True


def error_schema(document: dict, path: str, status: str) -> dict:
    response = document["paths"][path]["post"]["responses"][status]
    return response["content"]["application/json"]["schema"]


async def test_messages_errors_are_documented_in_anthropics_shape(credential):
    document = (await AsyncClient().get("/v1/openapi.json")).json()
    bad_key = await AsyncClient().post(
        "/v1/messages",
        data=json.dumps({"model": "fake-small", "max_tokens": 5, "messages": []}),
        headers={"x-api-key": "ax-wrong"},
    )
    assert bad_key.status_code == 401

    openai_body = {"error": {"message": "m", "type": "x", "param": None, "code": "c"}}
    for status in ("400", "401", "403", "404", "429", "502", "503"):
        schema = error_schema(document, "/messages", status)
        assert conforms(bad_key.json(), schema, document)
        assert not conforms(openai_body, schema, document)


async def test_chat_completions_errors_stay_documented_in_openais_shape(credential):
    document = (await AsyncClient().get("/v1/openapi.json")).json()
    bad_key = await AsyncClient().post(
        "/v1/chat/completions",
        data=json.dumps({"model": "fake-small", "messages": []}),
        headers={"Authorization": "Bearer ax-wrong"},
    )
    assert bad_key.status_code == 401

    schema = error_schema(document, "/chat/completions", "401")
    assert conforms(bad_key.json(), schema, document)
    anthropic_body = {"type": "error", "error": {"type": "x", "message": "m"}}
    assert not conforms(anthropic_body, schema, document)


async def test_responses_is_documented_with_its_body_and_openais_errors(credential):
    document = (await AsyncClient().get("/v1/openapi.json")).json()
    body = document["paths"]["/responses"]["post"]["requestBody"]["content"]["application/json"]
    assert body["schema"] == {"$ref": "#/components/schemas/ResponsesRequest"}
    fields = document["components"]["schemas"]["ResponsesRequest"]["properties"]
    assert {"model", "input", "instructions", "max_output_tokens", "stream"} <= fields.keys()
    assert "stored response" in fields["previous_response_id"]["description"]
    stored = document["paths"]["/responses/{response_id}"]
    assert stored["get"]["responses"]["200"] == {
        "description": "OK",
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/Response"}},
            "text/event-stream": {"schema": {"type": "string"}},  # a background one, streamed
        },
    }
    assert {p["name"] for p in stored["get"]["parameters"]} == {
        "response_id",
        "stream",
        "starting_after",
    }
    assert "404" in stored["delete"]["responses"]
    bad_key = await AsyncClient().post(
        "/v1/responses",
        data=json.dumps({"model": "fake-small", "input": "hi"}),
        headers={"Authorization": "Bearer ax-wrong"},
    )
    assert bad_key.status_code == 401
    assert conforms(bad_key.json(), error_schema(document, "/responses", "401"), document)


def answer_schema(document: dict, path: str, method: str = "post") -> dict:
    """The documented 200 body of `path`, as one JSON Schema document (its references
    resolved within the OpenAPI document's components)."""
    response = document["paths"][path][method]["responses"]["200"]
    return {
        **response["content"]["application/json"]["schema"],
        "components": document["components"],
    }


def valid(value, schema) -> list[str]:
    import jsonschema

    validator = jsonschema.Draft202012Validator(schema)
    return [
        f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(value)
    ]


async def test_every_completion_endpoint_answers_the_body_it_documents(auth):
    document = (await AsyncClient().get("/v1/openapi.json")).json()

    async def answered(path, payload):
        response = await AsyncClient().post(path, data=json.dumps(payload), headers=auth)
        assert response.status_code == 200, response.content
        return response.json()

    cases = [
        (
            "/chat/completions",
            {"model": "fake-small", "messages": [{"role": "user", "content": "hi"}]},
        ),
        ("/responses", {"model": "fake-small", "input": "hi", "metadata": {"a": "b"}}),
        ("/responses", {"model": "fake-small", "input": "@tokens=3 @finish=length"}),
        (
            "/messages",
            {
                "model": "fake-small",
                "max_tokens": 20,
                "messages": [{"role": "user", "content": "hi"}],
            },
        ),
        ("/embeddings", {"model": "fake-small", "input": ["one", "two"]}),
        ("/embeddings", {"model": "fake-small", "input": "one", "encoding_format": "base64"}),
    ]
    for path, payload in cases:
        body = await answered("/v1" + path, payload)
        assert valid(body, answer_schema(document, path)) == [], (path, body)
    models = (await AsyncClient().get("/v1/models", headers=auth)).json()
    assert valid(models, answer_schema(document, "/models", "get")) == []


def test_the_schemas_would_catch_a_body_that_is_not_what_they_say(settings):
    from api.openapi import openapi_document

    document = openapi_document()
    schema = answer_schema(document, "/responses")
    wrong = {"id": "resp_1", "object": "response", "status": "done", "output": [{}]}
    assert len(valid(wrong, schema)) >= 3
