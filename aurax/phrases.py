"""Messages kept in the words of the code (English, marked for the catalog) with their values,
and said in the reader's language only when shown.

A message that is shown later, possibly to someone else (an answer's error, saved with the
answer and relayed to every tab of the conversation), cannot be translated when it is made:
whoever made it did not know who would read it. A phrase is plain JSON (stored in a JSON column,
sent through the channel layer):

    {"text": "The model “%(model)s” is not available to you.", "values": {"model": "gpt-x"}}

A value is said as it is (a string: a model name, a provider's own words; a number), or is
itself a phrase (translated in turn), or an amount said in the reader's number format:
`usd(...)`, `number(...)`, `month(...)`. `phrase_join` puts phrases one after the other.
"""

from __future__ import annotations

from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from django.utils import formats
from django.utils.translation import gettext


def phrase(text: str, **values) -> dict:
    """`text` is a message id (mark it with gettext_noop where it is written)."""
    return {"text": text, "values": values} if values else {"text": text}


def phrase_join(*phrases: dict) -> dict:
    return {"join": list(phrases)}


def usd(amount: Decimal, rounding: str = ROUND_HALF_UP) -> dict:
    return {"usd": str(amount), "rounding": rounding}


def number(count: int) -> dict:
    return {"number": count}


def month(day: date) -> dict:
    return {"month": day.isoformat()}


def usd_text(amount: Decimal, rounding: str = ROUND_HALF_UP) -> str:
    """Dollars as people read them: cents from $1 up, four decimals below (a budget of $0.15
    has $0.054 left, not "$0.05")."""
    places = 2 if abs(amount) >= 1 else 4
    value = amount.quantize(Decimal(1).scaleb(-places), rounding=rounding)
    text = formats.number_format(value, places, use_l10n=True, force_grouping=True)
    if places > 2:  # no trailing zeros past the cents
        sep = formats.get_format("DECIMAL_SEPARATOR")
        whole, _sep, fraction = text.partition(sep)
        text = f"{whole}{sep}{fraction[:2]}{fraction[2:].rstrip('0')}"
    return f"${text}"


def number_text(count: int) -> str:
    return formats.number_format(count, use_l10n=True, force_grouping=True)


def _value(value):
    if not isinstance(value, dict):
        return value
    if "usd" in value:
        return usd_text(Decimal(value["usd"]), value.get("rounding", ROUND_HALF_UP))
    if "number" in value:
        return number_text(value["number"])
    if "month" in value:
        return formats.date_format(date.fromisoformat(value["month"]), "F")
    return phrase_say(value)


def phrase_say(said) -> str:
    """`said` in the active language, its amounts in its number format. A string (a message
    said before phrases existed, or a provider's own words) is returned as it is."""
    if isinstance(said, str):
        return said
    if "join" in said:
        return " ".join(phrase_say(part) for part in said["join"])
    text = said.get("text", "")
    values = said.get("values")
    if not values:
        return gettext(text) if text else ""
    values = {name: _value(value) for name, value in values.items()}
    try:
        return gettext(text) % values
    except (KeyError, ValueError, TypeError):  # a translation that lost a placeholder
        return text % values
