"""Errors of the /v1 API, in OpenAI's and Anthropic's shapes, so each SDK raises its own
exception class for each status."""

from __future__ import annotations

# (OpenAI error type, Anthropic error type) per HTTP status.
_TYPES = {
    400: ("invalid_request_error", "invalid_request_error"),
    401: ("authentication_error", "authentication_error"),
    402: ("insufficient_quota", "rate_limit_error"),
    403: ("permission_error", "permission_error"),
    404: ("invalid_request_error", "not_found_error"),
    405: ("invalid_request_error", "invalid_request_error"),
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
        headers: dict[str, str] | None = None,
    ):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.retry_after = retry_after
        self.param = param
        self.headers = headers or {}

    @classmethod
    def from_gateway(cls, error) -> ApiError:
        status = error.status
        # OpenAI's SDKs treat 429 as "retry later"; an exhausted budget is said the same way.
        if error.code == "budget_reached":
            status = 429
        if status not in _TYPES:
            status = 502
        return cls(
            status,
            error.code,
            error.message,
            retry_after=error.retry_after,
            param=error.param,
        )

    @property
    def _types(self) -> tuple[str, str]:
        # A status without its own entry still gets an error of its class, not a crash.
        fallback = _TYPES[400] if self.status < 500 else _TYPES[500]
        return _TYPES.get(self.status, fallback)

    def openai_body(self) -> dict:
        return {
            "error": {
                "message": self.message,
                "type": self._types[0],
                "param": self.param,
                "code": self.code,
            }
        }

    def anthropic_body(self) -> dict:
        return {"type": "error", "error": {"type": self._types[1], "message": self.message}}


# Worth waiting for and asking again, for work done later (a batch's requests, a background
# response): a rate limit (ours or the provider's), a provider overloaded, the data store
# briefly away. An exhausted budget is not (waiting does not help).
_WAIT_AND_RETRY = frozenset({"rate_limited", "overloaded", "unavailable"})
_WAIT_DEFAULT, _WAIT_MOST = 5.0, 60.0


def retry_wait(error: ApiError) -> float | None:
    """Seconds to wait before asking again after `error`, or None when waiting does not help:
    its Retry-After, else 5 s, at most a minute."""
    if error.code not in _WAIT_AND_RETRY:
        return None
    return min(_WAIT_DEFAULT if error.retry_after is None else error.retry_after, _WAIT_MOST)
