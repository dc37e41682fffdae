"""The one error type callers of the pipeline see: a code from the taxonomy, a message safe to
show a user, the HTTP status the /v1 API answers with, seconds to wait when known and the
request parameter at fault when there is one. A
message with values also comes as a phrase (aurax.phrases): the chat says it in the language
of whoever reads the answer, later."""

from __future__ import annotations

import math

from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from aurax.phrases import number, phrase, phrase_say
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
        phrase: dict | None = None,
        param: str | None = None,
    ):
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.retry_after = retry_after
        self.phrase = phrase
        self.param = param  # the request parameter at fault, when there is one

    @classmethod
    def said(cls, code: str, said: dict, **kwargs) -> GatewayError:
        """An error whose message is `said` (a phrase), said now in the active language."""
        return cls(code, phrase_say(said), phrase=said, **kwargs)

    @classmethod
    def from_exception(cls, error: Exception) -> GatewayError:
        if isinstance(error, GatewayError):
            return error
        if isinstance(error, ProviderError):
            if error.retry_after:
                # The taxonomy's message (a message id) or the provider's own words, then the
                # seconds to wait: a phrase, said in the reader's language and number format.
                return cls.said(
                    error.code,
                    phrase(
                        gettext_noop("%(message)s Retry in %(seconds)s s."),
                        message=phrase(error.message.rstrip()),
                        seconds=number(max(1, round(error.retry_after))),
                    ),
                    status=error.status,
                    retry_after=error.retry_after,
                )
            return cls(
                error.code, error.message, status=error.status, retry_after=error.retry_after
            )
        if isinstance(error, RateLimited):
            return cls(
                "rate_limited",
                error.message,
                status=429,
                retry_after=error.retry_after_seconds,
                phrase=error.phrase,
            )
        if isinstance(error, RequestTooLarge):  # waiting never helps: not a 429
            return cls(
                "request_too_large_for_limit", error.message, status=400, phrase=error.phrase
            )
        if isinstance(error, QuotaExceeded):
            return cls("budget_reached", error.message, status=402, phrase=error.phrase)
        if isinstance(error, BillingError):
            return cls("billing", error.message, status=403, phrase=error.phrase)
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


def _plain(value: float) -> int | float:
    """1.0 said as 1, 1.5 as 1.5 (in the reader's number format)."""
    return int(value) if float(value).is_integer() else value


def model_unavailable(candidates) -> GatewayError:
    """Why a model resolved to no candidate (`candidates`: what `routing.candidates_resolve`
    returned): the caller may not use it (404), no provider of it accepts the requested
    temperature (400, nothing was sent), or every provider of it is failing and routing
    skips them for now (503 with Retry-After, the SDKs wait and retry)."""
    name = candidates.model_name or "?"
    if candidates.temperature_refused is not None:
        low, high = candidates.temperature_range
        return GatewayError.said(
            "temperature_unsupported",
            phrase(
                gettext_noop(
                    "The model “%(model)s” accepts a temperature from %(low)s to %(high)s,"
                    " not %(temperature)s."
                ),
                model=name,
                low=number(_plain(low)),
                high=number(_plain(high)),
                temperature=number(_plain(candidates.temperature_refused)),
            ),
            status=400,
            param="temperature",
        )
    if candidates.reopens_in is not None:
        seconds = max(1, math.ceil(candidates.reopens_in))
        return GatewayError.said(
            "overloaded",
            phrase(
                gettext_noop(
                    "The model “%(model)s” is temporarily unavailable: its provider is failing. "
                    "Try again in %(seconds)d s."
                ),
                model=name,
                seconds=seconds,
            ),
            status=503,
            retry_after=seconds,
        )
    return GatewayError.said(
        "model_unavailable",
        phrase(gettext_noop("The model “%(model)s” is not available to you."), model=name),
        status=404,
    )
