"""The chat in Chromium against a real server and the fake upstream."""

import re

import pytest
from playwright.sync_api import expect

from tests.factories import PASSWORD

pytestmark = pytest.mark.browser

EMAIL = "reader@example.com"


@pytest.fixture
def chat_server(start_aurax_server, fake_upstream):
    server = start_aurax_server(PROVIDER_TRUST_ENV="false", PROVIDER_RETRY_ATTEMPTS="1")
    server.create_user(EMAIL, PASSWORD)
    server.shell(
        "from providers.services import credential_create\n"
        "from accounts.models import User\n"
        "c = credential_create(actor=None, scope='global', kind='openai', name='Fake', "
        f"api_key='sk-test-key-1234', base_url={fake_upstream.base_url('openai')!r}, "
        "allow_private_network=True)\n"
        f"User.objects.filter(email={EMAIL!r}).update(default_model=f'{{c.id}}:fake-small')\n"
    )
    return server


def log_in(page, server):
    """Log in as EMAIL, on the chat page once its socket is open."""
    page.goto(server.url + "/accounts/login/")
    page.fill("input[name=login]", EMAIL)
    page.fill("input[name=password]", PASSWORD)
    page.click("form button[type=submit]")
    page.wait_for_url(server.url + "/")
    page.wait_for_selector("#chat[data-socket=open]")


@pytest.fixture
def chat_page(chat_server, page):
    log_in(page, chat_server)
    return page


def ask(page, text):
    page.fill("#composer-input", text)
    page.press("#composer-input", "Enter")


def last_answer(page):
    return page.locator(".msg-assistant").last


def test_tokens_appear_progressively_and_the_answer_gets_a_badge(chat_page):
    stop = chat_page.locator("#stop-button")
    expect(stop).to_be_hidden()  # shown only while an answer streams
    estimate = chat_page.locator("#composer-estimate")
    chat_page.fill("#composer-input", "@tokens=120 @delay=0.02")
    expect(estimate).to_contain_text("input tokens")  # what sending it would cost
    chat_page.press("#composer-input", "Enter")
    expect(estimate).to_have_text("")  # sent: the emptied composer costs nothing
    chat_page.wait_for_selector(".msg-assistant[data-status=streaming]")
    assert chat_page.locator("#send-button").is_disabled()
    expect(stop).to_be_visible()
    states = []
    for _ in range(60):
        text = last_answer(chat_page).locator(".msg-body").inner_text()
        if not states or text != states[-1]:
            states.append(text)
        if last_answer(chat_page).get_attribute("data-status") == "complete":
            break
        chat_page.wait_for_timeout(50)
    assert len(states) >= 4, states
    chat_page.wait_for_selector(".msg-assistant[data-status=complete]")
    assert "tok120" in last_answer(chat_page).inner_text()
    assert re.search(
        r"fake-small · \d+/\d+ tok", last_answer(chat_page).locator(".badge").inner_text()
    )
    assert not chat_page.locator("#send-button").is_disabled()
    expect(stop).to_be_hidden()
    assert re.search(r"/c/\d+/$", chat_page.url)


def test_stop_keeps_the_partial_answer(chat_page):
    ask(chat_page, "@tokens=400 @delay=0.03")
    expect(chat_page.locator(".msg-assistant .msg-body").first).to_contain_text(
        "tok5", timeout=15_000
    )
    chat_page.click("#stop-button")
    chat_page.wait_for_selector(".msg-assistant[data-status=stopped]")
    text = last_answer(chat_page).locator(".msg-body").inner_text()
    assert "tok5" in text and "tok400" not in text
    assert "Stopped" in last_answer(chat_page).inner_text()


def test_a_reload_mid_stream_picks_the_stream_up(chat_page):
    ask(chat_page, "@tokens=150 @delay=0.03")
    expect(chat_page.locator(".msg-assistant .msg-body").first).to_contain_text(
        "tok20", timeout=15_000
    )
    chat_page.reload()
    expect(chat_page.locator(".msg-assistant .msg-body").first).to_contain_text(
        "tok100", timeout=15_000
    )
    chat_page.wait_for_selector(".msg-assistant[data-status=complete]", timeout=15_000)
    words = last_answer(chat_page).locator(".msg-body").inner_text().split()
    assert words == [f"tok{i}" for i in range(1, 151)]


def test_regenerate_and_flip_between_versions(chat_page):
    ask(chat_page, '@reply="first version"')
    chat_page.wait_for_selector(".msg-assistant[data-status=complete]")
    chat_page.click(".msg-assistant [data-regenerate]")
    chat_page.wait_for_selector(".branch-pos:text('2/2')")
    chat_page.wait_for_selector(".msg-assistant[data-status=complete]")
    chat_page.click(".msg-assistant .branch-nav button >> nth=0")
    chat_page.wait_for_selector(".msg-assistant .branch-pos:text('1/2')")
    # Edit the question: a new branch, the old one stays reachable.
    chat_page.click(".msg-user [data-edit]")
    chat_page.fill(".msg-user .edit-form textarea", '@reply="edited branch"')
    chat_page.click(".msg-user .edit-form button[type=submit]")
    expect(
        chat_page.locator(".msg-assistant[data-status=complete] .msg-body").first
    ).to_contain_text("edited branch", timeout=15_000)
    assert chat_page.locator(".msg-user .branch-pos").inner_text() == "2/2"
    chat_page.click(".msg-user .branch-nav button >> nth=0")
    expect(chat_page.locator(".msg-assistant .msg-body").first).to_contain_text(
        "first version", timeout=15_000
    )


def test_hostile_output_stays_inert_in_the_dom(chat_page):
    ask(
        chat_page,
        '@reply="<img src=x onerror=window.pwned=1> <script>window.pwned=2</script> [x](javascript:window.pwned=3)"',  # noqa: E501
    )
    chat_page.wait_for_selector(".msg-assistant[data-status=complete]")
    body = last_answer(chat_page).locator(".msg-body")
    assert body.locator("img, script").count() == 0
    assert "<img" in body.inner_text()
    assert chat_page.evaluate("window.pwned") is None
    hrefs = body.locator("a").evaluate_all("els => els.map(a => a.getAttribute('href'))")
    assert not any(h and h.lower().startswith("javascript") for h in hrefs)


def test_the_dark_theme_renders_the_chat_readable(chat_page):
    ask(chat_page, '@reply="Readable ```code``` text"')
    chat_page.wait_for_selector(".msg-assistant[data-status=complete]")
    chat_page.evaluate("document.documentElement.dataset.theme = 'dark'")
    colors = chat_page.evaluate(
        """() => {
          const body = getComputedStyle(document.body).backgroundColor;
          const text = getComputedStyle(document.querySelector('.msg-assistant .msg-body')).color;
          const user = getComputedStyle(document.querySelector('.msg-user')).color;
          return {body, text, user};
        }"""
    )

    def luminance(css):
        r, g, b = (int(v) / 255 for v in re.findall(r"\d+", css)[:3])
        lin = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in (r, g, b)]
        return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]

    background = luminance(colors["body"])
    assert background < 0.1, colors
    for key in ("text", "user"):
        ratio = (luminance(colors[key]) + 0.05) / (background + 0.05)
        assert ratio > 7, (key, colors)


ANSWER_BACKGROUNDS = """() => {
  const bg = (el) => getComputedStyle(el).backgroundColor;
  const answer = document.querySelector('.msg-assistant:last-of-type .msg-body');
  return {
    body: bg(answer),
    paragraph: bg(answer.querySelector('p')),
    block: bg(answer.querySelector('pre')),
    keyword: getComputedStyle(answer.querySelector('pre .hl-k')).color,
  };
}"""


def test_only_code_blocks_of_an_answer_get_the_code_background(chat_page):
    chat_page.emulate_media(color_scheme="light")
    ask(chat_page, '@reply="Plain words.\n```python\ndef answer():\n    return 42\n```"')
    chat_page.wait_for_selector(".msg-assistant[data-status=complete] .msg-body pre .hl-k")
    transparent = "rgba(0, 0, 0, 0)"

    light = chat_page.evaluate(ANSWER_BACKGROUNDS)
    assert light == {
        "body": transparent,
        "paragraph": transparent,
        "block": "rgb(248, 248, 248)",
        "keyword": "rgb(0, 128, 0)",
    }
    chat_page.evaluate("document.documentElement.dataset.theme = 'dark'")
    dark = chat_page.evaluate(ANSWER_BACKGROUNDS)
    assert dark == {
        "body": transparent,
        "paragraph": transparent,
        "block": "rgb(39, 40, 34)",
        "keyword": "rgb(102, 217, 239)",
    }


def test_a_tab_that_missed_an_answer_s_end_finds_it_once_the_stream_goes_quiet(chat_server, page):
    """As a tab on another server process while Redis was down: `generation_finished` never
    reaches it. Once nothing has come for a while, it asks, and shows the saved answer."""
    page.clock.install()
    dropped = []

    def route(ws):
        server = ws.connect_to_server()

        def from_server(message):
            if '"generation_finished"' in str(message):
                dropped.append(message)
            else:
                ws.send(message)

        server.on_message(from_server)

    page.route_web_socket(re.compile(r".*/ws/chat/"), route)
    log_in(page, chat_server)

    ask(page, "@tokens=5")
    expect(last_answer(page)).to_contain_text("tok5")
    for _ in range(50):  # the frame that did not reach the page
        if dropped:
            break
        page.wait_for_timeout(100)
    assert dropped
    expect(page.locator("#chat")).to_have_attribute("data-streaming", "1")  # still waiting

    page.clock.fast_forward(60_000)

    expect(page.locator("#chat")).to_have_attribute("data-streaming", "0")
    expect(last_answer(page)).to_have_attribute("data-status", "complete")
    expect(last_answer(page)).to_contain_text("tok5")


def test_a_refused_message_goes_back_into_the_composer(chat_page, chat_server):
    ask(chat_page, '@reply="first"')
    expect(last_answer(chat_page)).to_have_attribute("data-status", "complete")
    # Deleted meanwhile (another tab, an admin): the next message there is refused.
    chat_server.shell("from chat.models import Conversation\nConversation.objects.all().delete()")

    ask(chat_page, "a question I took a while to write")

    expect(chat_page.locator("#chat-error")).to_be_visible()
    expect(chat_page.locator("#composer-input")).to_have_value("a question I took a while to write")
    expect(chat_page.locator("#send-button")).to_be_enabled()


# The sidebar's parts: nothing may be drawn over another (each link clickable where it shows).
SIDEBAR_OVERLAPS = """() => {
  const parts = [...document.querySelectorAll(
    '.chat-sidebar > *, .sidebar .nav a, .sidebar-footer > *')];
  const boxes = parts.map(e => [e.className || e.tagName, e.getBoundingClientRect()]);
  const found = [];
  boxes.forEach(([a, r], i) => boxes.slice(i + 1).forEach(([b, s]) => {
    if (r.bottom > s.top + 0.5 && s.bottom > r.top + 0.5
        && r.right > s.left && s.right > r.left) found.push(`${a} / ${b}`);
  }));
  return found;
}"""


@pytest.mark.parametrize("height", [600, 720, 1100])
def test_the_conversation_list_is_never_drawn_over_the_sidebar_links(chat_page, height):
    chat_page.set_viewport_size({"width": 1280, "height": height})
    ask(chat_page, '@reply="first"')
    expect(last_answer(chat_page)).to_have_attribute("data-status", "complete")
    expect(chat_page.locator(".conversation-item")).to_have_count(1)

    assert chat_page.evaluate(SIDEBAR_OVERLAPS) == []
    assert chat_page.locator("#conversation-list").bounding_box()["height"] >= 8 * 16
    link = chat_page.locator(".sidebar .nav a", has_text="Prompt templates")
    link.scroll_into_view_if_needed()
    link.click()  # Playwright clicks only what would receive the click
    chat_page.wait_for_url("**/prompts/**")


def test_a_prompt_template_is_picked_with_the_keyboard_and_its_variable_filled(
    chat_page, chat_server
):
    chat_page.goto(chat_server.url + "/prompts/")
    chat_page.fill("input[name=title]", "Explain")
    chat_page.fill("textarea[name=body]", "Explain {{topic}} in two sentences.")
    chat_page.click("text=Save template")
    chat_page.fill("input[name=title]", "Summarize")
    chat_page.fill("textarea[name=body]", "Summarize this.")
    chat_page.click("text=Save template")
    chat_page.goto(chat_server.url + "/")
    chat_page.wait_for_selector("#chat[data-socket=open]")

    chat_page.click("#composer-input")
    chat_page.keyboard.type("/")
    picker = chat_page.locator(".prompt-picker")
    expect(picker.locator("[role=option]")).to_have_count(2)
    # Above the input, not beside it: the input keeps its width.
    assert picker.bounding_box()["y"] + picker.bounding_box()["height"] <= (
        chat_page.locator("#composer-input").bounding_box()["y"] + 1
    )
    chat_page.keyboard.type("Expl")
    expect(picker.locator("[role=option]")).to_have_count(1)
    chat_page.keyboard.press("Enter")  # picks the template: nothing is sent
    variable = chat_page.locator(".prompt-variables input[name=topic]")
    expect(variable).to_be_focused()
    chat_page.keyboard.type("owls")
    chat_page.keyboard.press("Enter")

    expect(chat_page.locator("#composer-input")).to_have_value("Explain owls in two sentences.")
    expect(chat_page.locator(".prompt-variables")).to_have_count(0)
    expect(chat_page.locator(".msg-user")).to_have_count(0)  # filled in, not sent

    chat_page.fill("#composer-input", "")
    chat_page.keyboard.type("/Expl")
    chat_page.keyboard.press("Enter")
    expect(variable).to_be_focused()
    chat_page.keyboard.press("Escape")  # changed my mind
    expect(chat_page.locator(".prompt-variables")).to_have_count(0)
    expect(chat_page.locator("#composer-input")).to_be_focused()

    chat_page.fill("#composer-input", "")
    chat_page.keyboard.type("/")
    expect(picker.locator("[role=option]")).to_have_count(2)
    chat_page.keyboard.press("ArrowDown")
    chat_page.keyboard.press("Enter")
    expect(chat_page.locator("#composer-input")).to_have_value("Summarize this.")
    chat_page.keyboard.press("Enter")  # the list is closed: Enter sends
    expect(chat_page.locator(".msg-user")).to_have_count(1)
    expect(last_answer(chat_page)).to_have_attribute("data-status", "complete")


def test_a_conversation_s_menu_opens_whole_in_a_short_sidebar_list(chat_page):
    chat_page.set_viewport_size({"width": 1280, "height": 720})  # the list: a few rows high
    for text in ("first", "second", "third"):
        chat_page.click("[data-new-chat]")
        chat_page.wait_for_selector("#chat[data-socket=open]")
        ask(chat_page, f'@reply="{text}"')
        expect(last_answer(chat_page)).to_have_attribute("data-status", "complete")
    items = chat_page.locator(".conversation-item")
    expect(items).to_have_count(3)

    for index in (2, 0):
        items.nth(index).locator("summary").click()
        expect(items.nth(index).get_by_role("button", name="Delete")).to_be_visible()
        # Within the list's scroll box, not cut by it (the menu is scrolled to on opening).
        chat_page.wait_for_function(DELETE_IN_THE_LIST, arg=index, timeout=5000)
    expect(chat_page.locator(".conversation-menu[open]")).to_have_count(1)  # the last opened


def test_an_open_menu_stays_open_with_its_draft_while_the_list_changes_elsewhere(
    chat_page, chat_server
):
    """What happens elsewhere (a title arriving, another tab's chat) reloads the list only
    once the menu in use closes: it is not closed under the user, nor a title being typed
    lost. What the menu itself does shows at once."""
    for text in ("first", "second"):
        chat_page.click("[data-new-chat]")
        chat_page.wait_for_selector("#chat[data-socket=open]")
        ask(chat_page, f'@reply="{text}"')
        expect(last_answer(chat_page)).to_have_attribute("data-status", "complete")
    items = chat_page.locator(".conversation-item")
    expect(items.nth(0).locator(".conversation-link")).to_have_text("second")  # titled
    items.nth(1).locator("summary").click()
    draft = items.nth(1).locator("input[name=title]")
    draft.fill("A title half typed")

    chat_server.shell(
        "from chat.models import Conversation\n"
        "Conversation.objects.filter(title='second').update(title='Renamed elsewhere')\n"
    )
    chat_page.evaluate("document.body.dispatchEvent(new CustomEvent('chat:sidebar-changed'))")
    chat_page.wait_for_timeout(500)  # time for a reload that must not come
    expect(chat_page.locator(".conversation-menu[open]")).to_have_count(1)
    expect(draft).to_have_value("A title half typed")
    expect(items.nth(0).locator(".conversation-link")).to_have_text("second")

    items.nth(1).locator("summary").click()  # closed: the list catches up
    expect(items.nth(0).locator(".conversation-link")).to_have_text("Renamed elsewhere")

    items.nth(1).locator("summary").click()
    items.nth(1).locator("input[name=title]").fill("Mine now")
    items.nth(1).get_by_role("button", name="Rename").click()
    expect(chat_page.locator(".conversation-link", has_text="Mine now")).to_have_count(1)


DELETE_IN_THE_LIST = """(index) => {
  const list = document.getElementById("conversation-list").getBoundingClientRect();
  const item = document.querySelectorAll(".conversation-item")[index];
  const box = item.querySelector("[data-delete-conversation] button").getBoundingClientRect();
  return list.top <= box.top && box.bottom <= list.bottom;
}"""


def test_the_running_total_counts_the_title_when_it_arrives(chat_page, chat_server):
    """The total counts the call that titled the conversation: it changes when the title
    comes, to what a reload shows, not only after a reload."""
    chat_server.shell(
        "from decimal import Decimal\n"
        "from billing.models import ModelPriceOverride\n"
        "ModelPriceOverride.objects.create(provider_kind='openai', model='fake-small', "
        "input_per_mtok=Decimal('1.25'), output_per_mtok=Decimal('3.75'))\n"
    )
    total = chat_page.locator(".thread-total")
    # The title's call waits a second before it answers: the thread is redrawn at the
    # answer's end long before the title comes.
    ask(chat_page, '@reply="Owls hunt at night" @first_delay=1 tell me about owls')
    chat_page.wait_for_selector(".msg-assistant[data-status=complete]")
    expect(chat_page.locator("#thread-title")).to_have_text("Owls hunt at night")
    badge = last_answer(chat_page).locator(".badge").inner_text()
    answer_in, answer_out = (int(n) for n in re.search(r"(\d+)/(\d+) tok", badge).groups())
    answer_cost = re.search(r"tok · (\$[\d.]+)", badge).group(1)

    def figures():
        text = total.inner_text()
        tokens_in, tokens_out = (int(n) for n in re.search(r"(\d+) / (\d+)", text).groups())
        return tokens_in, tokens_out, re.search(r"\$[\d.]+", text).group(0)

    # The title's call is in it: more than the answer's own figures.
    expect(total.locator("[data-total-output]")).not_to_have_text(str(answer_out))
    live = figures()
    assert live[0] > answer_in and live[1] > answer_out and live[2] != answer_cost, (live, badge)
    chat_page.reload()
    chat_page.wait_for_selector("#chat[data-socket=open]")
    assert figures() == live


def test_a_file_attached_in_the_composer_reaches_the_model_and_shows_in_the_thread(
    chat_page, fake_upstream, tmp_path
):
    from tests.chat.files import png

    picture = tmp_path / "owl.png"
    picture.write_bytes(png(6, 6, (90, 60, 30)))
    tool = tmp_path / "tool.exe"
    tool.write_bytes(b"MZ\x90\x00\x03\x00\x00\x00\x04\x00")
    chat_page.set_input_files("#composer-file", [str(picture), str(tool)])
    files = chat_page.locator(".composer-file")
    expect(files).to_have_count(2)
    expect(files.nth(0)).to_have_attribute("data-state", "ready")
    expect(files.nth(0).locator("img")).to_be_visible()
    expect(files.nth(1)).to_have_attribute("data-state", "failed")
    expect(files.nth(1)).to_contain_text("“tool.exe” cannot be attached")
    files.nth(1).locator("[data-file-remove]").click()
    expect(files).to_have_count(1)
    # An upload taken back is deleted on the server.
    notes = tmp_path / "notes.txt"
    notes.write_text("first draft")
    chat_page.set_input_files("#composer-file", [str(notes)])
    expect(files.nth(1)).to_have_attribute("data-state", "ready")
    url = f"/chat/attachments/{files.nth(1).get_attribute('data-attachment-id')}/"
    assert chat_page.evaluate("url => fetch(url).then(r => r.status)", url) == 200
    files.nth(1).locator("[data-file-remove]").click()
    expect(files).to_have_count(1)
    for _ in range(50):  # the delete is sent as the chip goes
        if chat_page.evaluate("u => fetch(u, {cache: 'no-store'}).then(r => r.status)", url) == 404:
            break
        chat_page.wait_for_timeout(100)
    else:
        raise AssertionError("the upload taken back is still on the server")
    # What sending it would cost, the image counted, before a word is typed.
    expect(chat_page.locator("#composer-estimate")).to_contain_text("input tokens")
    ask(chat_page, '@reply="A brown owl."')
    expect(files).to_have_count(0)  # sent with the message
    chat_page.wait_for_selector(".msg-assistant[data-status=complete]")
    expect(last_answer(chat_page)).to_contain_text("A brown owl.")
    shown = chat_page.locator(".msg-user .msg-file img")
    expect(shown).to_have_attribute("alt", "owl.png")
    assert shown.evaluate("img => img.complete && img.naturalWidth") == 6  # loaded, not broken
    answer_request = fake_upstream.posted()[0]  # then the title's
    parts = answer_request["json"]["messages"][-1]["content"]
    assert parts[0] == {"type": "text", "text": '@reply="A brown owl."'}
    assert parts[1]["image_url"]["url"].startswith("data:image/png;base64,")
