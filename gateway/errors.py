"""The one error type callers of the pipeline see: a code from the taxonomy, a message safe to
show a user, the HTTP status the /v1 API answers with, seconds to wait when known, and the
request parameter at fault when there is one."""

from __future__ import annotations

import math

from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from billing.errors import BillingError, QuotaExceeded, RateLimited, RequestTooLarge
from providers.types import ProviderError


class GatewayError(Exception):
    def __init__(
        self,
        code: str,
        message: str,
        *,
        status: int = 502,
        retry_after: float | None = None,
        param: str | None = None,
    ):
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.retry_after = retry_after
        self.param = param

    @classmethod
    def from_exception(cls, error: Exception) -> GatewayError:
        if isinstance(error, GatewayError):
            return error
        if isinstance(error, ProviderError):
            message = error.message
            if error.retry_after:
                message = _("%(message)s Retry in %(seconds)d s.") % {
                    "message": message.rstrip(),
                    "seconds": max(1, round(error.retry_after)),
                }
            return cls(error.code, message, status=error.status, retry_after=error.retry_after)
        if isinstance(error, RateLimited):
            return cls(
                "rate_limited", error.message, status=429, retry_after=error.retry_after_seconds
            )
        if isinstance(error, RequestTooLarge):  # waiting never helps: not a 429
            return cls("request_too_large_for_limit", error.message, status=400)
        if isinstance(error, QuotaExceeded):
            return cls("budget_reached", error.message, status=402)
        if isinstance(error, BillingError):
            return cls("billing", error.message, status=403)
        if store_unreachable(error):
            return service_unavailable()
        return cls("internal", _("Something went wrong while generating the answer."), status=500)


UNAVAILABLE_RETRY_AFTER = 5  # seconds


def store_unreachable(error: BaseException) -> bool:
    """Whether `error` is the database or Redis not answering (stopped, restarting, out of
    connections): the same request may well succeed in a moment."""
    import redis
    from django.db import InterfaceError, OperationalError

    return isinstance(
        error, (redis.ConnectionError, redis.TimeoutError, OperationalError, InterfaceError)
    )


def service_unavailable() -> GatewayError:
    return GatewayError(
        "unavailable",
        _("The service is briefly unavailable (its data store does not answer). Try again soon."),
        status=503,
        retry_after=UNAVAILABLE_RETRY_AFTER,
    )


# Messages with values in them. A chat answer's error is stored as it was said (in the
# server's language) and translated when shown: chat.selectors.message_error_text matches it
# against these to put the values back into the reader's translation.
MODEL_FAILING = gettext_noop(
    "The model “%(model)s” is temporarily unavailable: its provider is failing. "
    "Try again in %(seconds)d s."
)
MODEL_NOT_AVAILABLE = gettext_noop("The model “%(model)s” is not available to you.")
TEMPERATURE_UNSUPPORTED = gettext_noop(
    "The model “%(model)s” accepts a temperature from %(low)s to %(high)s, not %(temperature)s."
)
MESSAGES_WITH_VALUES = (MODEL_FAILING, MODEL_NOT_AVAILABLE, TEMPERATURE_UNSUPPORTED)


def _number(value: float) -> str:
    return f"{value:g}"


def model_unavailable(candidates) -> GatewayError:
    """Why a model resolved to no candidate (`candidates`: what `routing.candidates_resolve`
    returned): the caller may not use it (404), no provider of it accepts the requested
    temperature (400, nothing was sent), or every provider of it is failing and routing
    skips them for now (503 with Retry-After, the SDKs wait and retry)."""
    name = candidates.model_name or "?"
    if candidates.temperature_refused is not None:
        low, high = candidates.temperature_range
        return GatewayError(
            "temperature_unsupported",
            _(TEMPERATURE_UNSUPPORTED)
            % {
                "model": name,
                "low": _number(low),
                "high": _number(high),
                "temperature": _number(candidates.temperature_refused),
            },
            status=400,
            param="temperature",
        )
    if candidates.reopens_in is not None:
        seconds = max(1, math.ceil(candidates.reopens_in))
        return GatewayError(
            "overloaded",
            _(MODEL_FAILING) % {"model": name, "seconds": seconds},
            status=503,
            retry_after=seconds,
        )
    return GatewayError(
        "model_unavailable",
        _(MODEL_NOT_AVAILABLE) % {"model": name},
        status=404,
    )
