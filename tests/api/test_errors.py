import ast
import json
from pathlib import Path

import httpx
import pytest

from api.errors import _TYPES, ApiError

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parents[2]


async def request(method, path, headers, body=None):
    from aurax.asgi import application

    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=application), base_url="http://testserver"
    ) as client:
        content = json.dumps(body).encode() if body is not None else None
        return await client.request(method, path, headers=headers, content=content)


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("GET", "/v1/chat/completions", "POST"),
        ("PUT", "/v1/chat/completions", "POST"),
        ("GET", "/v1/embeddings", "POST"),
        ("POST", "/v1/models", "GET"),
        ("DELETE", "/v1/models", "GET"),
        ("POST", "/v1/openapi.json", "GET"),
    ],
)
async def test_a_wrong_method_is_405_with_allow_in_openais_shape(auth, method, path, allowed):
    response = await request(method, path, auth, {"model": "fake-small"})

    assert response.status_code == 405
    assert response.headers["allow"] == allowed
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["code"] == "method_not_allowed"
    assert f"{method} is not allowed" in error["message"] and allowed in error["message"]


async def test_a_wrong_method_on_messages_is_405_in_anthropics_shape(auth):
    response = await request("GET", "/v1/messages", auth)

    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert response.json() == {
        "type": "error",
        "error": {
            "type": "invalid_request_error",
            "message": "GET is not allowed on /v1/messages: use POST.",
        },
    }


def _statuses_raised_in(path: Path) -> set[int]:
    """The literal statuses of every `ApiError(<status>, ...)` in a module."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if (
            isinstance(node, ast.Call)
            and getattr(node.func, "id", None) == "ApiError"
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            found.add(node.args[0].value)
    return found


def test_every_status_an_api_error_is_raised_with_has_its_error_types():
    raised = set()
    for path in (ROOT / "api").rglob("*.py"):
        raised |= _statuses_raised_in(path)
    assert {401, 404, 405, 413}.issubset(raised)  # the walk finds the raise sites

    assert raised - set(_TYPES) == set()


def test_every_status_a_provider_error_maps_to_is_kept_for_the_sdks():
    from gateway.errors import GatewayError
    from providers.types import ProviderError

    kinds, statuses = [ProviderError], set()
    while kinds:
        kind = kinds.pop()
        statuses.add(kind.status)
        kinds.extend(kind.__subclasses__())

    for status in statuses:
        error = ApiError.from_gateway(GatewayError("x", "m", status=status))
        assert error.status == status
        assert error.openai_body()["error"]["type"] == _TYPES[status][0]


@pytest.mark.parametrize(("status", "kind"), [(418, "invalid_request_error"), (507, "api_error")])
def test_a_status_without_an_entry_still_gets_an_error_body_of_its_class(status, kind):
    assert ApiError(status, "x", "m").anthropic_body()["error"]["type"] == kind
