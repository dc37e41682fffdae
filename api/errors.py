"""Errors of the /v1 API, in OpenAI's and Anthropic's shapes, so each SDK raises its own
exception class for each status."""

from __future__ import annotations

import json

from django.http import HttpResponse

# (OpenAI error type, Anthropic error type) per HTTP status.
_TYPES = {
    400: ("invalid_request_error", "invalid_request_error"),
    401: ("authentication_error", "authentication_error"),
    402: ("insufficient_quota", "rate_limit_error"),
    403: ("permission_error", "permission_error"),
    404: ("invalid_request_error", "not_found_error"),
    413: ("invalid_request_error", "request_too_large"),
    429: ("rate_limit_error", "rate_limit_error"),
    500: ("server_error", "api_error"),
    502: ("server_error", "api_error"),
    503: ("server_error", "overloaded_error"),
    504: ("server_error", "api_error"),
}


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        retry_after: float | None = None,
        param: str | None = None,
    ):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.retry_after = retry_after
        self.param = param

    @classmethod
    def from_gateway(cls, error) -> ApiError:
        status = error.status
        # OpenAI's SDKs treat 429 as "retry later"; an exhausted budget is said the same way.
        if error.code == "budget_reached":
            status = 429
        if status not in _TYPES:
            status = 502
        return cls(status, error.code, error.message, retry_after=error.retry_after)

    def openai_body(self) -> dict:
        return {
            "error": {
                "message": self.message,
                "type": _TYPES[self.status][0],
                "param": self.param,
                "code": self.code,
            }
        }

    def anthropic_body(self) -> dict:
        return {"type": "error", "error": {"type": _TYPES[self.status][1], "message": self.message}}

    def response(self, *, flavour: str = "openai") -> HttpResponse:
        body = self.anthropic_body() if flavour == "anthropic" else self.openai_body()
        response = HttpResponse(
            json.dumps(body), status=self.status, content_type="application/json"
        )
        if self.retry_after is not None:
            response["Retry-After"] = str(max(1, round(self.retry_after)))
        return response
