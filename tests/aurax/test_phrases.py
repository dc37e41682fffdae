from decimal import ROUND_FLOOR, Decimal

from django.utils import translation

from aurax.phrases import number, phrase, phrase_join, phrase_say, usd
from billing.errors import RateLimited
from billing.ratelimits import RateLimitRule, ratelimit_check


def test_a_phrase_is_said_in_the_active_language_with_its_amounts_in_its_format():
    said = phrase_join(
        phrase(
            "%(name)s of %(amount)s for %(period)s reached: %(remedy)s.",
            name=phrase("Workspace budget"),
            amount=usd(Decimal("1234.5")),
            period="—",
            remedy=phrase("an administrator can raise it"),
        ),
        phrase(
            "Requests in progress hold %(held)s of it until they finish.",
            held=usd(Decimal("0.05409"), ROUND_FLOOR),
        ),
    )
    assert phrase_say(said) == (
        "Workspace budget of $1,234.50 for — reached: an administrator can raise it. "
        "Requests in progress hold $0.054 of it until they finish."
    )
    with translation.override("es"):
        assert phrase_say(said) == (
            "Presupuesto del espacio de trabajo de $1\xa0234,50 para — alcanzado: un administrador "
            "puede aumentarlo. Las solicitudes en curso retienen $0,054 hasta que terminen."
        )
    with translation.override("pt-br"):
        assert phrase_say(phrase("%(tokens)s tokens", tokens=number(4096))) == "4.096 tokens"


def test_a_message_said_before_phrases_is_shown_as_it_is():
    assert phrase_say("The provider said no.") == "The provider said no."


def test_a_rate_limit_refusal_keeps_its_phrase_for_later_readers(settings):
    settings.REDIS_URL = ""
    rule = RateLimitRule(key="user:1", rpm=1, tpm=None, label="your user limit")
    try:
        for _ in range(2):
            ratelimit_check(scopes=[rule], tokens=1)
    except RateLimited as refused:
        error = refused
    assert error.message.startswith("Rate limit reached (your user limit) — try again in ")
    with translation.override("es"):
        assert phrase_say(error.phrase).startswith(
            "Límite de frecuencia alcanzado (tu límite de usuario) — inténtalo de nuevo en "
        )
