"""The comparison page in Chromium against a real server and the fake upstream."""

import re

import pytest
from playwright.sync_api import expect

from tests.factories import PASSWORD

pytestmark = pytest.mark.browser

EMAIL = "comparer@example.com"


@pytest.fixture
def compare_server(start_aurax_server, fake_upstream):
    server = start_aurax_server(PROVIDER_TRUST_ENV="false", PROVIDER_RETRY_ATTEMPTS="1")
    server.create_user(EMAIL, PASSWORD)
    server.credential_id = server.shell_json(
        "from providers.services import catalog_refresh, credential_create\n"
        "from accounts.models import User\n"
        "c = credential_create(actor=None, scope='global', kind='openai', name='Fake', "
        f"api_key='sk-test-key-1234', base_url={fake_upstream.base_url('openai')!r}, "
        "allow_private_network=True)\n"
        "assert catalog_refresh(c.id).ok\n"  # the pickers list the catalog's models
        f"User.objects.filter(email={EMAIL!r}).update(default_model=f'{{c.id}}:fake-small')\n"
        "print(c.id)\n"
    )
    return server


@pytest.fixture
def compare_page(compare_server, page):
    """Logged in, on /compare/ once its socket is open."""
    page.goto(compare_server.url + "/accounts/login/")
    page.fill("input[name=login]", EMAIL)
    page.fill("input[name=password]", PASSWORD)
    page.click("form button[type=submit]")
    page.wait_for_url(compare_server.url + "/")
    page.goto(compare_server.url + "/compare/")
    page.wait_for_selector("#compare[data-socket=open]")
    return page


def model(server, name):
    return f"{server.credential_id}:{name}"


def pickers(page):
    return page.locator("#compare-pickers .compare-picker")


def pick(page, server, *names):
    for index, name in enumerate(names):
        pickers(page).nth(index).locator("select").select_option(model(server, name))


def ask(page, text):
    page.fill("#compare-input", text)
    page.press("#compare-input", "Enter")


def column(page, slot):
    return page.locator(f"#compare-columns .compare-column[data-slot='{slot}']")


def answer_text(page, slot):
    return column(page, slot).locator(".compare-answer").inner_text()


def tokens(text):
    return text.split()


def test_two_models_stream_side_by_side(compare_page, compare_server):
    page = compare_page
    pick(page, compare_server, "fake-small", "fake-large")
    ask(page, "@tokens=120 @delay=0.02")
    page.wait_for_selector(".compare-column[data-slot='1'][data-status=streaming]")
    expect(page.locator("#compare-columns .compare-column")).to_have_count(2)
    expect(page.locator("#compare-question")).to_have_text("@tokens=120 @delay=0.02")
    expect(page.locator("#compare-input")).to_have_value("")
    expect(page.locator("#compare-stop")).to_be_visible()
    assert page.locator("#compare-send").is_disabled()
    expect(column(page, 0).locator(".compare-model")).to_contain_text("fake-small")
    expect(column(page, 1).locator(".compare-model")).to_contain_text("fake-large")
    # No keeping while the answers stream.
    expect(page.locator("[data-keep]:visible")).to_have_count(0)

    lengths = {0: set(), 1: set()}
    both_partial = 0  # samples where both columns held part of their answer at once
    for _ in range(80):
        texts = [answer_text(page, 0), answer_text(page, 1)]
        for slot, text in enumerate(texts):
            lengths[slot].add(len(tokens(text)))
        if all(0 < len(tokens(t)) < 120 for t in texts):
            both_partial += 1
        statuses = [column(page, s).get_attribute("data-status") for s in (0, 1)]
        if statuses == ["complete", "complete"]:
            break
        page.wait_for_timeout(50)
    assert len(lengths[0]) >= 4, lengths
    assert len(lengths[1]) >= 4, lengths
    assert both_partial >= 2, lengths

    for slot, name in ((0, "fake-small"), (1, "fake-large")):
        expect(column(page, slot)).to_have_attribute("data-status", "complete", timeout=15_000)
        assert tokens(answer_text(page, slot)) == [f"tok{i}" for i in range(1, 121)]
        stats = column(page, slot).locator(".compare-stats").inner_text()
        assert re.search(rf"{name} · \d+ in, 120 out", stats), stats
        expect(column(page, slot).locator(".compare-failure")).to_be_hidden()
        expect(column(page, slot).locator("[data-stop-one]")).to_be_hidden()
        expect(column(page, slot).locator("[data-keep]")).to_be_visible()
        expect(column(page, slot).locator("[data-keep]")).to_be_enabled()
    expect(page.locator("#compare-stop")).to_be_hidden()
    expect(page.locator("#compare-send")).to_be_enabled()
    expect(page.locator("#compare-error")).to_be_hidden()


def test_stop_all_keeps_the_partial_answers(compare_page, compare_server):
    page = compare_page
    pick(page, compare_server, "fake-small", "fake-large")
    ask(page, "@tokens=400 @delay=0.02")
    for slot in (0, 1):
        expect(column(page, slot).locator(".compare-answer")).to_contain_text(
            "tok5", timeout=15_000
        )
    page.click("#compare-stop")
    for slot in (0, 1):
        expect(column(page, slot)).to_have_attribute("data-status", "stopped", timeout=15_000)
    expect(page.locator("#compare-stop")).to_be_hidden()
    expect(page.locator("#compare-send")).to_be_enabled()
    for slot in (0, 1):
        words = tokens(answer_text(page, slot))
        assert 5 <= len(words) < 400, words
        assert words == [f"tok{i}" for i in range(1, len(words) + 1)]
        expect(column(page, slot).locator(".compare-failure")).to_have_text("Stopped.")
        # A stopped answer with some text may still be continued.
        expect(column(page, slot).locator("[data-keep]")).to_be_visible()
    # Nothing more arrives once stopped.
    before = [answer_text(page, s) for s in (0, 1)]
    page.wait_for_timeout(300)
    assert [answer_text(page, s) for s in (0, 1)] == before


def test_continue_with_the_second_answer_as_a_chat(compare_page, compare_server):
    page = compare_page
    pick(page, compare_server, "fake-small", "fake-large")
    # fake-small stalls after 10 tokens (then stopped on its own); fake-large says all 30.
    ask(page, "@tokens=30 @delay=0.01 @hang_after=10 @only_model=fake-small")
    expect(column(page, 1)).to_have_attribute("data-status", "complete", timeout=15_000)
    expect(column(page, 0).locator(".compare-answer")).to_contain_text("tok10")
    expect(column(page, 0)).to_have_attribute("data-status", "streaming")
    expect(page.locator("[data-keep]:visible")).to_have_count(0)  # not every answer ended
    column(page, 0).locator("[data-stop-one]").click()
    expect(column(page, 0)).to_have_attribute("data-status", "stopped")
    assert tokens(answer_text(page, 0)) == [f"tok{i}" for i in range(1, 11)]
    assert tokens(answer_text(page, 1)) == [f"tok{i}" for i in range(1, 31)]

    column(page, 1).locator("[data-keep]").click()
    page.wait_for_url(re.compile(r"/c/\d+/$"))
    page.wait_for_selector("#chat[data-socket=open]")

    expect(page.locator(".msg-user .msg-body")).to_contain_text("@tokens=30")
    answer = page.locator(".msg-assistant").last
    expect(answer).to_have_attribute("data-status", "complete")
    assert tokens(answer.locator(".msg-body").inner_text()) == [f"tok{i}" for i in range(1, 31)]
    expect(answer.locator(".badge")).to_contain_text("fake-large")
    expect(answer.locator(".branch-pos")).to_have_text("2/2")

    answer.locator(".branch-nav button >> nth=0").click()  # the previous version
    answer = page.locator(".msg-assistant").last
    expect(answer.locator(".branch-pos")).to_have_text("1/2")
    expect(answer).to_have_attribute("data-status", "stopped")
    assert tokens(answer.locator(".msg-body").inner_text()) == [f"tok{i}" for i in range(1, 11)]
    expect(answer.locator(".badge")).to_contain_text("fake-small")
    expect(answer.locator(".msg-flag")).to_have_text("Stopped")

    answer.locator(".branch-nav button >> nth=1").click()  # and back
    answer = page.locator(".msg-assistant").last
    expect(answer.locator(".branch-pos")).to_have_text("2/2")
    expect(answer.locator(".msg-body")).to_contain_text("tok30")


def test_add_and_remove_models(compare_page, compare_server):
    page = compare_page
    add = page.locator("#add-model")
    removes = page.locator("#compare-pickers [data-remove-model]")
    expect(pickers(page)).to_have_count(2)
    expect(pickers(page).nth(0).locator("select")).to_have_value(
        model(compare_server, "fake-small")  # the user's default model comes first
    )
    expect(add).to_be_enabled()
    for index in range(2):
        expect(removes.nth(index)).to_be_disabled()

    add.click()
    expect(pickers(page)).to_have_count(3)
    values = [pickers(page).nth(i).locator("select").input_value() for i in range(3)]
    assert len(set(values)) == 3, values  # the new picker offers a model not picked yet
    for index in range(3):
        expect(removes.nth(index)).to_be_enabled()
    expect(add).to_be_enabled()

    add.click()
    expect(pickers(page)).to_have_count(4)
    expect(add).to_be_disabled()
    add.click(force=True)  # disabled: nothing happens
    expect(pickers(page)).to_have_count(4)

    removes.nth(3).click()
    expect(pickers(page)).to_have_count(3)
    expect(add).to_be_enabled()
    removes.nth(0).click()
    expect(pickers(page)).to_have_count(2)
    for index in range(2):
        expect(removes.nth(index)).to_be_disabled()
    removes.nth(0).click(force=True)  # disabled: at least two models stay
    expect(pickers(page)).to_have_count(2)

    # Three models asked: three columns.
    add.click()
    pick(page, compare_server, "fake-small", "fake-large", "gpt-4o-mini")
    ask(page, "@tokens=3")
    expect(page.locator("#compare-columns .compare-column")).to_have_count(3)
    for slot in range(3):
        expect(column(page, slot)).to_have_attribute("data-status", "complete")
        expect(column(page, slot).locator(".compare-answer")).to_have_text("tok1 tok2 tok3")
    expect(column(page, 2).locator(".compare-model")).to_contain_text("gpt-4o-mini")


def test_an_ended_answer_is_copied_whole_or_a_code_block_alone(
    compare_page, compare_server, browser_context
):
    browser_context.grant_permissions(
        ["clipboard-read", "clipboard-write"], origin=compare_server.url
    )
    page = compare_page
    reply = "Plain words.\n```python\ndef answer():\n    return 42\n```"
    pick(page, compare_server, "fake-small", "fake-large")
    ask(page, f'@reply="{reply}"')
    for slot in (0, 1):
        page.wait_for_selector(f".compare-column[data-slot='{slot}'][data-status=complete]")

    first = column(page, 0)
    code_copy = first.locator("pre .copy-code")
    expect(code_copy).to_have_count(1)
    code_copy.click()
    expect(code_copy).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == "def answer():\n    return 42\n"

    whole = first.locator("[data-copy-answer]")
    expect(whole).to_be_visible()
    whole.click()
    expect(whole).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == reply


def test_a_reload_mid_comparison_takes_it_up_where_it_stands(compare_page, compare_server):
    page = compare_page
    pick(page, compare_server, "fake-small", "fake-large")
    ask(page, "@tokens=150 @delay=0.03")
    page.wait_for_function(
        "() => [0, 1].every(s => document.querySelector("
        "`.compare-column[data-slot='${s}'] .compare-answer`)?.textContent.includes('tok3'))"
    )
    page.reload()
    page.wait_for_selector("#compare[data-socket=open]")
    # Taken up: the question, both columns with the text so far, still streaming.
    expect(page.locator("#compare-question")).to_have_text("@tokens=150 @delay=0.03")
    expect(page.locator("#compare-columns .compare-column")).to_have_count(2)
    expect(column(page, 1).locator(".compare-model")).to_contain_text("fake-large")
    expect(page.locator("#compare-stop")).to_be_visible()
    assert "tok3" in answer_text(page, 0)
    for slot in (0, 1):
        expect(column(page, slot)).to_have_attribute("data-status", "complete", timeout=15_000)
        assert tokens(answer_text(page, slot)) == [f"tok{i}" for i in range(1, 151)]
    expect(page.locator("#compare-error")).to_be_hidden()

    # Reloaded again once it ended: still there, and an answer can be kept.
    page.reload()
    page.wait_for_selector("#compare[data-socket=open]")
    expect(column(page, 0)).to_have_attribute("data-status", "complete")
    column(page, 0).locator("[data-keep]").click()
    page.wait_for_url(re.compile(r"/c/\d+/"))
