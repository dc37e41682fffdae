"""Retries before the first token, fallback to the next candidate, never after; circuit breaker."""

import time

import pytest

from providers.circuit import circuit_failure, circuit_state
from providers.routing import Candidate, NoCandidates, stream_with_fallback
from providers.types import (
    ProviderAuthenticationError,
    ProviderBadRequest,
    ProviderOverloaded,
    ProviderUpstreamError,
    TextDelta,
)

from .conftest import chat, target_for

pytestmark = pytest.mark.usefixtures("http_client_closed_after")


def candidate(fake_upstream, credential_id, model, kind="openai", api_key="sk-test-key-1234"):
    return Candidate(
        credential_id=credential_id,
        credential_name=f"cred {credential_id}",
        kind=kind,
        scope="global",
        model_id=model,
        target=target_for(fake_upstream, kind, api_key),
    )


async def run(candidates, text):
    stream = stream_with_fallback(candidates, chat(text))
    events = [e async for e in stream]
    return stream, "".join(e.text for e in events if isinstance(e, TextDelta))


async def test_a_whole_answer_falls_back_with_one_non_streaming_call_per_attempt(
    fake_upstream, settings
):
    settings.PROVIDER_RETRY_ATTEMPTS = 2
    candidates = [
        candidate(fake_upstream, 1, "a"),
        candidate(fake_upstream, 2, "b", kind="anthropic"),
    ]
    stream = stream_with_fallback(
        candidates, chat("@tokens=3 @status=500 @only_model=a"), whole=True
    )

    events = [e async for e in stream]

    assert [e.text for e in events if isinstance(e, TextDelta)] == ["tok1 tok2 tok3"]
    assert [r["model"] for r in fake_upstream.requests] == ["a", "a", "b"]
    assert not any(r["json"].get("stream") for r in fake_upstream.requests)
    assert stream.served_by.credential_id == 2


async def test_it_retries_a_retryable_error_then_succeeds_on_the_same_candidate(fake_upstream):
    stream, text = await run([candidate(fake_upstream, 1, "a")], "@tokens=2 @status=503 @times=2")

    assert text == "tok1 tok2"
    assert len(fake_upstream.requests) == 3
    assert stream.served_by.credential_id == 1
    assert [a.error.code for a in stream.attempts] == ["overloaded", "overloaded"]


async def test_it_falls_back_to_the_next_candidate_when_retries_run_out(fake_upstream, settings):
    settings.PROVIDER_RETRY_ATTEMPTS = 2
    candidates = [
        candidate(fake_upstream, 1, "a"),
        candidate(fake_upstream, 2, "b", kind="anthropic"),
    ]

    stream, text = await run(candidates, "@tokens=2 @status=500 @only_model=a")

    assert text == "tok1 tok2"
    assert [r["model"] for r in fake_upstream.requests] == ["a", "a", "b"]
    assert stream.served_by.credential_id == 2
    assert stream.served_by.model_id == "b"


async def test_an_authentication_error_falls_back_without_retrying(fake_upstream):
    candidates = [
        candidate(fake_upstream, 1, "a", api_key="sk-invalid-0000"),
        candidate(fake_upstream, 2, "b"),
    ]

    stream, text = await run(candidates, "@tokens=1")

    assert [r["model"] for r in fake_upstream.requests] == ["a", "b"]
    assert stream.served_by.credential_id == 2
    assert isinstance(stream.attempts[0].error, ProviderAuthenticationError)


async def test_a_bad_request_is_raised_without_trying_other_candidates(fake_upstream):
    candidates = [candidate(fake_upstream, 1, "a"), candidate(fake_upstream, 2, "b")]

    with pytest.raises(ProviderBadRequest):
        await run(candidates, "@error=context")

    assert len(fake_upstream.requests) == 1


async def test_it_never_retries_after_the_first_token(fake_upstream):
    candidates = [candidate(fake_upstream, 1, "a"), candidate(fake_upstream, 2, "b")]
    stream = stream_with_fallback(candidates, chat("@tokens=5 @cut_after=2"))
    received = []

    with pytest.raises(ProviderUpstreamError):
        async for event in stream:
            received.append(event)

    assert "".join(e.text for e in received) == "tok1 tok2 "
    assert len(fake_upstream.requests) == 1
    assert stream.served_by.credential_id == 1


async def test_it_waits_what_retry_after_asks(fake_upstream, settings):
    settings.PROVIDER_RETRY_MAX_WAIT = 1
    started = time.monotonic()

    stream, text = await run(
        [candidate(fake_upstream, 1, "a")], "@tokens=1 @status=429 @retry_after=0.4 @times=1"
    )

    assert time.monotonic() - started >= 0.4
    assert text == "tok1"


async def test_a_retry_after_beyond_the_cap_moves_on_at_once(fake_upstream, settings):
    settings.PROVIDER_RETRY_MAX_WAIT = 0.5
    candidates = [candidate(fake_upstream, 1, "a"), candidate(fake_upstream, 2, "b")]
    started = time.monotonic()

    stream, _text = await run(candidates, "@tokens=1 @status=429 @retry_after=30 @only_model=a")

    assert time.monotonic() - started < 0.5
    assert [r["model"] for r in fake_upstream.requests] == ["a", "b"]


async def test_when_every_candidate_fails_the_last_error_is_raised(fake_upstream, settings):
    settings.PROVIDER_RETRY_ATTEMPTS = 1
    candidates = [candidate(fake_upstream, 1, "a"), candidate(fake_upstream, 2, "b")]

    with pytest.raises(ProviderOverloaded):
        await run(candidates, "@status=529")

    assert len(fake_upstream.requests) == 2


async def test_no_candidates_is_a_clear_error():
    with pytest.raises(NoCandidates):
        await run([], "hi")


async def test_consecutive_failures_open_the_circuit(fake_upstream, settings):
    settings.PROVIDER_RETRY_ATTEMPTS = 3
    settings.PROVIDER_CIRCUIT_FAILURES = 3

    with pytest.raises(ProviderOverloaded):
        await run([candidate(fake_upstream, 41, "a")], "@status=503")

    assert circuit_state(41).state == "open"


async def test_a_success_closes_the_circuit_again(fake_upstream, settings):
    settings.PROVIDER_CIRCUIT_FAILURES = 2
    settings.PROVIDER_CIRCUIT_COOLDOWN = 0.2
    circuit_failure(42)
    circuit_failure(42)
    assert circuit_state(42).state == "open"
    time.sleep(0.25)
    assert circuit_state(42).state == "half_open"

    await run([candidate(fake_upstream, 42, "a")], "@tokens=1")

    assert circuit_state(42).state == "closed"


async def test_a_failed_probe_reopens_the_circuit(fake_upstream, settings):
    settings.PROVIDER_CIRCUIT_FAILURES = 2
    settings.PROVIDER_CIRCUIT_COOLDOWN = 0.2
    settings.PROVIDER_RETRY_ATTEMPTS = 1
    circuit_failure(43)
    circuit_failure(43)
    time.sleep(0.25)

    with pytest.raises(ProviderOverloaded):
        await run([candidate(fake_upstream, 43, "a")], "@status=503")

    assert circuit_state(43).state == "open"
