import datetime as dt
import io
import json
import uuid
from decimal import Decimal

import pytest
from django.utils import timezone, translation

from chat import services
from chat.models import Conversation, Message
from chat.selectors import conversation_day_label
from tests.factories import UserFactory
from workspaces.selectors import personal_workspace_get

pytestmark = pytest.mark.django_db


def _conversation(user, title="Owls", **fields):
    conversation = services.conversation_create(
        user=user, workspace=personal_workspace_get(user=user)
    )
    Conversation.objects.filter(pk=conversation.pk).update(title=title, **fields)
    conversation.refresh_from_db()
    return conversation


def _exchange(conversation, question="What do owls eat?", answer="Mice, **mostly**."):
    q, a = services.message_send(conversation=conversation, content=question)
    services.message_finish(
        message_id=a.pk, content=answer, status="complete", input_tokens=10, output_tokens=4
    )
    return q, a


def _running_total(html: str) -> str:
    """The running total in the page header, as read (its markup left out)."""
    import re

    span = re.search(r'<span class="thread-total"[^>]*>(.*?)</span>\s*\n', html, re.DOTALL)
    shown = re.sub(r"<span data-total-estimated hidden>.*?</span>", "", span.group(1))
    return re.sub(r"<[^>]+>", "", shown)


def test_the_chat_page_is_the_home_page(logged_in_client):
    response = logged_in_client.get("/")
    assert response.status_code == 200
    assert b'id="composer"' in response.content


def test_the_sidebar_lists_my_conversations_newest_first_grouped_by_day(logged_in_client, user):
    old = _conversation(user, "Old one", updated_at=timezone.now() - dt.timedelta(days=3))
    new = _conversation(user, "New one")
    _conversation(UserFactory(), "Someone else's")
    html = logged_in_client.get("/chat/sidebar/").content.decode()
    assert html.index("New one") < html.index("Old one")
    assert "Today" in html and "Previous 7 days" in html
    assert "Someone else" not in html
    assert old.pk and new.pk


def test_older_day_groups_name_their_month_in_the_reader_language(user):
    today = dt.date(2026, 12, 6)
    october = _conversation(user, updated_at=dt.datetime(2026, 10, 14, 12, tzinfo=dt.UTC))
    last_year = _conversation(user, updated_at=dt.datetime(2025, 3, 2, 12, tzinfo=dt.UTC))
    with translation.override("es"):
        assert conversation_day_label(conversation=october, today=today) == "octubre"
        assert conversation_day_label(conversation=last_year, today=today) == "marzo de 2025"
    with translation.override("pt-br"):
        assert conversation_day_label(conversation=october, today=today) == "Outubro"
    with translation.override("en"):
        assert conversation_day_label(conversation=last_year, today=today) == "March 2025"


def test_the_sidebar_pages_through_thousands_of_conversations_with_constant_queries(
    logged_in_client, user, django_assert_max_num_queries
):
    workspace = personal_workspace_get(user=user)
    Conversation.objects.bulk_create(
        [Conversation(user=user, workspace=workspace, title=f"Chat {i}") for i in range(2000)]
    )
    seen, url = set(), "/chat/sidebar/"
    for _ in range(3):
        with django_assert_max_num_queries(8):
            response = logged_in_client.get(url)
        html = response.content.decode()
        seen.update(i for i in range(2000) if f">Chat {i}<" in html)
        url = (
            html.split(
                'hx-get="',
            )[-1]
            .split('"')[0]
            .replace("&amp;", "&")
        )
        assert url.startswith(f"/chat/sidebar/?workspace={workspace.slug}&cursor=")
    assert len(seen) == 150  # three distinct pages of 50


def test_search_matches_titles_and_message_text(logged_in_client, user):
    _exchange(_conversation(user, "Birds"), question="Tell me about herons")
    _conversation(user, "Cooking pasta")
    html = logged_in_client.get("/chat/sidebar/?q=heron").content.decode()
    assert "Birds" in html and "Cooking" not in html
    html = logged_in_client.get("/chat/sidebar/?q=pasta").content.decode()
    assert "Cooking" in html and "Birds" not in html


def test_rename_pin_and_delete(logged_in_client, user):
    conversation = _conversation(user)
    logged_in_client.post(f"/c/{conversation.pk}/rename/", {"title": "  Night   birds "})
    logged_in_client.post(f"/c/{conversation.pk}/pin/", {"pinned": "1"})
    conversation.refresh_from_db()
    assert conversation.title == "Night birds" and conversation.pinned
    assert "Pinned" in logged_in_client.get("/chat/sidebar/").content.decode()
    logged_in_client.post(f"/c/{conversation.pk}/delete/")
    assert not Conversation.objects.filter(pk=conversation.pk).exists()


def test_a_rename_is_saved_when_announcing_it_to_the_tabs_fails(
    logged_in_client, user, monkeypatch, django_capture_on_commit_callbacks, caplog
):
    from channels.layers import get_channel_layer

    async def refused(group, message):
        raise ConnectionError("Error 111 connecting to the channel layer. Connection refused.")

    monkeypatch.setattr(get_channel_layer(), "group_send", refused)  # e.g. Redis unreachable
    conversation = _conversation(user)
    with django_capture_on_commit_callbacks(execute=True) as announced:
        response = logged_in_client.post(f"/c/{conversation.pk}/rename/", {"title": "Owls"})
    assert announced and response.status_code < 400
    conversation.refresh_from_db()
    assert conversation.title == "Owls"
    assert "Connection refused" in caplog.text  # logged for the operator


def test_it_rejects_a_foreign_conversation_everywhere(logged_in_client):
    foreign = _conversation(UserFactory(), "Secret")
    _exchange(foreign)
    for method, url in [
        ("get", f"/c/{foreign.pk}/"),
        ("get", f"/c/{foreign.pk}/thread/"),
        ("get", f"/c/{foreign.pk}/export.md"),
        ("get", f"/c/{foreign.pk}/export.json"),
        ("post", f"/c/{foreign.pk}/rename/"),
        ("post", f"/c/{foreign.pk}/pin/"),
        ("post", f"/c/{foreign.pk}/delete/"),
        ("post", f"/c/{foreign.pk}/settings/"),
        ("post", f"/c/{foreign.pk}/branch/"),
    ]:
        response = getattr(logged_in_client, method)(url, {"title": "x", "message_id": 1})
        assert response.status_code == 404, url
    foreign.refresh_from_db()
    assert foreign.title == "Secret"


def test_the_page_shows_the_answer_rendered_with_a_badge_and_the_running_total(
    logged_in_client, user
):
    conversation = _conversation(user)
    _exchange(conversation)
    html = logged_in_client.get(f"/c/{conversation.pk}/").content.decode()
    assert "<strong>mostly</strong>" in html
    assert "10/4 tok" in html
    assert _running_total(html) == "10 / 4 tokens · $0"
    assert "data-cached-tokens" not in html and "data-reasoning-tokens" not in html


def test_the_badge_says_what_was_read_from_the_prompt_cache_and_spent_reasoning(
    logged_in_client, user
):
    conversation = _conversation(user)
    _q, answer = services.message_send(conversation=conversation, content="Again?")
    services.message_finish(
        message_id=answer.pk,
        content="Yes.",
        status="complete",
        input_tokens=900,
        output_tokens=40,
        cache_read_tokens=600,
        reasoning_tokens=25,
    )

    html = logged_in_client.get(f"/c/{conversation.pk}/").content.decode()
    assert "900/40 tok" in html
    assert "(600 cached)</abbr>" in html and "(25 reasoning)</abbr>" in html
    data = json.loads(logged_in_client.get(f"/c/{conversation.pk}/export.json").content)
    assert (data["messages"][1]["cache_read_tokens"], data["messages"][1]["reasoning_tokens"]) == (
        600,
        25,
    )


def test_the_running_total_counts_the_call_that_titled_the_conversation(logged_in_client, user):
    from billing.models import UsageEvent

    conversation = _conversation(user)
    _exchange(conversation)
    Message.objects.filter(conversation=conversation, role="assistant").update(
        cost=Decimal("0.0300")
    )
    calls = []
    for reference, cost in ((f"chat.title:{conversation.pk}", "0.0600"), ("chat.title:0", "9")):
        calls.append(
            UsageEvent.objects.create(
                workspace=conversation.workspace,
                user=user,
                provider_kind="openai",
                model="m",
                input_tokens=50,
                output_tokens=6,
                cost=Decimal(cost),
                reference=reference,
                uid=uuid.uuid4(),
            )
        )

    html = logged_in_client.get(f"/c/{conversation.pk}/").content.decode()

    assert "10/4 tok" in html  # the answer's own badge
    assert _running_total(html) == "60 / 10 tokens · $0.09"
    # The page adds a title's call that comes later (`title_usage.call_id`) only while this
    # does not name it.
    assert f'data-cost="0.09000000" data-title-calls="{calls[0].uid.hex}"' in html


def test_settings_are_remembered_per_conversation(logged_in_client, user):
    conversation = _conversation(user)
    response = logged_in_client.post(
        f"/c/{conversation.pk}/settings/",
        {"model": "smart", "system_prompt": "Be brief.", "temperature": "0.3", "max_tokens": "256"},
    )
    assert response.status_code == 204
    conversation.refresh_from_db()
    assert (
        conversation.model,
        conversation.system_prompt,
        conversation.temperature,
        conversation.max_tokens,
    ) == (
        "smart",
        "Be brief.",
        0.3,
        256,
    )


def test_a_new_conversation_defaults_to_the_users_preferred_model(user):
    user.default_model = "fast"
    user.save()
    assert _conversation(user).model == "fast"


def test_branch_switching_shows_the_other_version(logged_in_client, user):
    conversation = _conversation(user)
    question, first = _exchange(conversation, answer="First version")
    second = services.message_regenerate(message=first)
    services.message_finish(message_id=second.pk, content="Second version", status="complete")
    html = logged_in_client.get(f"/c/{conversation.pk}/thread/").content.decode()
    assert "Second version" in html and "First version" not in html and "2/2" in html
    html = logged_in_client.post(
        f"/c/{conversation.pk}/branch/", {"message_id": first.pk}
    ).content.decode()
    assert "First version" in html and "Second version" not in html and "1/2" in html


def test_export_as_markdown_and_json(logged_in_client, user):
    conversation = _conversation(user, "Owl facts")
    _exchange(conversation)
    md = logged_in_client.get(f"/c/{conversation.pk}/export.md")
    assert (
        md["Content-Disposition"].startswith("attachment")
        and "owl-facts.md" in md["Content-Disposition"]
    )
    assert "# Owl facts" in md.content.decode() and "What do owls eat?" in md.content.decode()
    data = json.loads(logged_in_client.get(f"/c/{conversation.pk}/export.json").content)
    assert [m["role"] for m in data["messages"]] == ["user", "assistant"]
    assert data["messages"][1]["output_tokens"] == 4


def test_answers_left_streaming_by_a_dead_process_are_marked_interrupted(user):
    conversation = _conversation(user)
    _q, answer = services.message_send(conversation=conversation, content="hi")
    services.message_progress_save(message_id=answer.pk, content="Half an ans")
    from django.core.management import call_command

    call_command("chat_mark_interrupted", "--all")
    answer.refresh_from_db()
    assert answer.status == Message.Status.INTERRUPTED and answer.content == "Half an ans"


def test_a_start_up_beside_running_servers_leaves_their_live_answers_streaming(user):
    from django.core.management import call_command

    conversation = _conversation(user)
    _q, live = services.message_send(conversation=conversation, content="hi")
    services.message_progress_save(message_id=live.pk, content="Still going")
    _q, dead = services.message_send(conversation=_conversation(user), content="hi")
    services.message_progress_save(message_id=dead.pk, content="Half an ans")
    stale = timezone.now() - services.STALE_AFTER - dt.timedelta(seconds=1)
    Message.objects.filter(pk=dead.pk).update(heartbeat_at=stale)

    call_command("aurax_startup", "--servers-running", stdout=io.StringIO())

    live.refresh_from_db()
    dead.refresh_from_db()
    assert live.status == Message.Status.STREAMING and live.content == "Still going"
    assert dead.status == Message.Status.INTERRUPTED and dead.content == "Half an ans"


def _failed(conversation, *, code, message, retry_after=None):
    _, answer = _exchange(conversation)
    Message.objects.filter(pk=answer.pk).update(
        status="error", error_code=code, error_message=message, retry_after=retry_after
    )


def _failed_with(conversation, error) -> None:
    """An answer failed with a gateway error, stored as the generation stores it: its English
    text and its phrase."""
    _, answer = _exchange(conversation)
    Message.objects.filter(pk=answer.pk).update(
        status="error",
        error_code=error.code,
        error_message=error.message,
        error_phrase=error.phrase,
        retry_after=error.retry_after,
    )


def test_an_answer_s_error_is_shown_in_the_reader_s_language(logged_in_client, user):
    from gateway.errors import GatewayError
    from providers.types import ProviderRateLimited

    user.language = "es"
    user.save(update_fields=["language"])
    waited = _conversation(user, "Waited")
    error = GatewayError.from_exception(ProviderRateLimited(retry_after=1500))
    assert error.message == "The provider is rate limiting requests. Retry in 1,500 s."
    _failed_with(waited, error)
    html = logged_in_client.get(f"/c/{waited.pk}/").content.decode()
    assert (
        "El proveedor está limitando la frecuencia de las solicitudes. Reintenta en 1\xa0500 s."
        in html
    )
    assert "Reintentar" in html and "rate limiting" not in html
    user.language = "pt-br"
    user.save(update_fields=["language"])
    html = logged_in_client.get(f"/c/{waited.pk}/").content.decode()
    assert "O provedor está limitando a taxa de solicitações. Tente novamente em 1.500 s." in html
    user.language = "es"
    user.save(update_fields=["language"])

    # A provider's own words are kept as they came, the wait said in the reader's words.
    with translation.override("en"):  # as the generation's task makes it
        words = GatewayError.from_exception(
            ProviderRateLimited("Slow down, please.", retry_after=7.4)
        )
    assert words.message == "Slow down, please. Retry in 7 s."
    _, answer = _exchange(waited)
    Message.objects.filter(pk=answer.pk).update(
        status="error", error_message=words.message, error_phrase=words.phrase
    )
    html = logged_in_client.get(f"/c/{waited.pk}/").content.decode()
    assert "Slow down, please. Reintenta en 7 s." in html

    restarted = _conversation(user, "Restarted")
    _failed(
        restarted,
        code="interrupted",
        message="The server restarted while this answer was being generated.",
    )
    html = logged_in_client.get(f"/c/{restarted.pk}/").content.decode()
    assert "El servidor se reinició mientras se generaba esta respuesta." in html

    # A provider's own words have no translation: shown as they came.
    refused = _conversation(user, "Refused")
    _failed(refused, code="bad_request", message="Unsupported parameter: 'top_k'")
    html = logged_in_client.get(f"/c/{refused.pk}/").content.decode()
    assert "Unsupported parameter: &#x27;top_k&#x27;" in html


def test_an_error_with_values_in_it_is_shown_in_the_reader_s_language(logged_in_client, user):
    """As the generation stores a refusal (its English text and its phrase), from the errors
    the gateway raises."""
    from types import SimpleNamespace

    from gateway.errors import model_unavailable

    user.language = "es"
    user.save(update_fields=["language"])

    too_warm = _conversation(user, "Too warm")
    _failed_with(
        too_warm,
        model_unavailable(
            SimpleNamespace(
                model_name="claude-sonnet (Claude)",
                temperature_refused=1.5,
                temperature_range=(0.0, 1.0),
                reopens_in=None,
            )
        ),
    )
    html = logged_in_client.get(f"/c/{too_warm.pk}/").content.decode()
    assert "El modelo “claude-sonnet (Claude)” acepta una temperatura de 0 a 1, no 1,5." in html

    failing = _conversation(user, "Failing")
    _failed_with(
        failing,
        model_unavailable(
            SimpleNamespace(model_name="fake-small", temperature_refused=None, reopens_in=29.2)
        ),
    )
    html = logged_in_client.get(f"/c/{failing.pk}/").content.decode()
    assert "El modelo “fake-small” no está disponible por el momento" in html
    assert "30 s" in html and "its provider is failing" not in html
