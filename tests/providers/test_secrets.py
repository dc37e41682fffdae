"""A recognisable API key never shows up in logs, exception messages or pages, whatever fails."""

import logging

import pytest
from django.urls import reverse

from providers.adapters import adapter_for
from providers.models import Scope
from providers.routing import Candidate, stream_with_fallback
from providers.types import ProviderError, Target
from tests.factories import UserFactory

from .conftest import chat
from .factories import credential

KEY = "sk-live-RECOGNISABLE-7f3a9c2e-KEY9"  # the fake upstream echoes it in its error bodies
FAULTS = [
    "@status=401",
    "@status=400",
    "@status=429 @retry_after=0",
    "@status=500",
    "@status=503",
    "@error=context",
    "@error=content_filter",
    "@error=bad_request",
    "@cut_after=1",
    "@malformed_after=1",
    "@stream_error=server",
    "@hang",
]


@pytest.fixture
def all_logs(caplog):
    caplog.set_level(logging.DEBUG)
    for name in ("httpx", "aiohttp", "providers", "asyncio", "django"):
        logging.getLogger(name).setLevel(logging.DEBUG)
    return caplog


@pytest.mark.usefixtures("http_client_closed_after")
@pytest.mark.parametrize("kind", ["openai", "anthropic", "gemini", "ollama"])
async def test_no_error_kind_leaks_the_key(kind, fake_upstream, all_logs, settings):
    settings.PROVIDER_READ_TIMEOUT = 0.3
    settings.PROVIDER_RETRY_ATTEMPTS = 2
    target = Target(kind=kind, base_url=fake_upstream.base_url(kind), api_key=KEY)
    candidate = Candidate(
        credential_id=7, credential_name="c", kind=kind, scope="user", model_id="m", target=target
    )
    errors: list[ProviderError] = []
    for directive in FAULTS:
        stream = stream_with_fallback([candidate], chat(f"@tokens=3 {directive}"))
        with pytest.raises(ProviderError) as caught:
            async for _event in stream:
                pass
        errors.append(caught.value)
        for call in (adapter_for(kind).complete, adapter_for(kind).stream):
            try:
                result = call(target, chat(directive))
                if hasattr(result, "__anext__"):
                    async for _event in result:
                        pass
                else:
                    await result
            except ProviderError as error:
                errors.append(error)

    assert len(errors) >= len(FAULTS) * 2
    assert {e.code for e in errors} >= {"authentication", "rate_limited", "upstream_error"}
    for error in errors:
        assert KEY not in str(error) and KEY not in repr(error)
        assert KEY not in repr(error.args)
    assert KEY not in all_logs.text
    assert KEY not in repr(candidate) and KEY not in repr(target)


@pytest.mark.django_db
def test_pages_admin_and_test_results_never_show_the_key(client, fake_upstream, all_logs):
    admin = UserFactory(is_staff=True, is_superuser=True)
    rejected = KEY + "-invalid"  # the fake upstream answers 401 and echoes it
    made = credential(
        scope=Scope.USER, user=admin, api_key=rejected, base_url=fake_upstream.base_url("openai")
    )
    glob = credential(
        kind="anthropic", api_key=rejected, base_url=fake_upstream.base_url("anthropic")
    )
    client.force_login(admin)

    pages = [
        client.get(reverse("providers:keys")),
        client.post(reverse("providers:credential_test", args=[made.id])),
        client.post(
            reverse("providers:credential_refresh", args=[made.id]), HTTP_HX_REQUEST="true"
        ),
        client.get(reverse("admin:providers_providercredential_changelist")),
        client.get(reverse("admin:providers_providercredential_change", args=[glob.id])),
        client.post(
            reverse("admin:providers_providercredential_changelist"),
            {"action": "test_connection", "_selected_action": [glob.id]},
            follow=True,
        ),
    ]

    for page in pages:
        assert page.status_code == 200
        assert KEY not in page.text
    assert "rejected the API key" in pages[1].text
    assert glob.api_key_masked == "…alid" and "…alid" in pages[3].text
    assert KEY not in all_logs.text
