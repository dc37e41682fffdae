"""Typed refusals the pipeline turns into an inline chat message or an API error."""

from __future__ import annotations


class BillingError(Exception):
    """Base class; `message` is safe to show to the user as is (in the language active when
    it was made). `phrase`, when given, is the same message kept untranslated with its values
    (aurax.phrases), for a reader whose language is not known yet."""

    def __init__(self, message: str, *, phrase: dict | None = None):
        super().__init__(message)
        self.message = message
        self.phrase = phrase


class QuotaExceeded(BillingError):
    """A hard budget would be passed by this request.

    scope: "workspace" | "member" | "api_key"; limit: the limit in its unit (a Decimal of USD
    for cost budgets, an int for token budgets); period_label: "November 2026"-style label;
    reached: the budget is used up (otherwise this request's worst case does not fit in what
    is left of it).
    """

    def __init__(
        self,
        scope: str,
        limit,
        period_label: str,
        message: str,
        *,
        unit: str = "cost",
        reached: bool = True,
        phrase: dict | None = None,
    ):
        super().__init__(message, phrase=phrase)
        self.scope = scope
        self.limit = limit
        self.period_label = period_label
        self.unit = unit
        self.reached = reached


class RateLimited(BillingError):
    def __init__(
        self, retry_after_seconds: int, message: str, *, scope: str = "", phrase: dict | None = None
    ):
        super().__init__(message, phrase=phrase)
        self.retry_after_seconds = retry_after_seconds
        self.scope = scope


class RequestTooLarge(BillingError):
    """The request alone would pass a tokens-per-minute limit: waiting never helps."""

    def __init__(self, message: str, *, scope: str = "", phrase: dict | None = None):
        super().__init__(message, phrase=phrase)
        self.scope = scope
