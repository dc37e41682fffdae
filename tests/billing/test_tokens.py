import sys
import threading
from collections import OrderedDict

from billing import tokens
from billing.tokens import messages_tokens_estimate, tokens_estimate


def test_it_counts_tokens_offline_with_the_bundled_vocabulary():
    # cl100k_base splits this into exactly these 8 tokens; a character estimate would say 7.
    assert tokens_estimate(text="Hello, world! How are you?") == 8


def test_empty_text_is_zero_tokens():
    assert tokens_estimate(text="") == 0


def test_chat_messages_include_the_per_message_overhead():
    messages = [{"role": "user", "content": "Hello, world! How are you?"}]

    assert messages_tokens_estimate(messages) == 3 + 3 + 1 + 8


def test_objects_with_role_and_content_are_accepted():
    class Message:
        role = "user"
        content = "Hello, world! How are you?"

    assert messages_tokens_estimate([Message()]) == messages_tokens_estimate(
        [{"role": "user", "content": "Hello, world! How are you?"}]
    )


def test_each_image_of_a_prompt_counts_as_a_detailed_1024_pixel_image():
    from providers.types import ImagePart
    from providers.types import Message as PromptMessage

    text_only = messages_tokens_estimate([{"role": "user", "content": "What is it?"}])
    parts = [
        {"type": "text", "text": "What is it?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
        {"type": "image_url", "image_url": {"url": "https://example.com/owl.png"}},
    ]
    assert messages_tokens_estimate([{"role": "user", "content": parts}]) == text_only + 2 * 765
    images = (ImagePart(url="data:image/png;base64,AAAA"),)
    with_image = PromptMessage(role="user", content="What is it?", images=images)
    assert messages_tokens_estimate([with_image]) == text_only + 765


def test_remembered_counts_keep_the_most_recently_used(monkeypatch):
    monkeypatch.setattr(tokens, "REMEMBERED_TEXTS", 3)
    monkeypatch.setattr(tokens, "_remembered", OrderedDict())
    for text in ("one", "two", "three"):
        tokens.tokens_remember(text=f"answer {text}", count=len(text))
    assert tokens_estimate(text="answer one") == 3, "a reported count is taken as it is"
    tokens.tokens_remember(text="answer four", count=4)  # "two" is the least recently used
    assert list(tokens._remembered) == ["answer three", "answer one", "answer four"]
    assert tokens_estimate(text="answer two") == tokens._tokens("answer two")


def test_remembered_counts_from_several_threads_at_once(monkeypatch):
    """The event loop and the database threads estimate at the same time; there is no lock
    (the loop must not wait for one): nothing fails, the limit holds, every count is right."""
    monkeypatch.setattr(tokens, "REMEMBERED_TEXTS", 50)
    monkeypatch.setattr(tokens, "_remembered", OrderedDict())
    texts = [f"text number {i} " * (i % 7 + 1) for i in range(200)]
    expected = {text: tokens._tokens(text) for text in texts}
    failures = []

    def estimate_all(offset):
        try:
            for i in range(2000):
                text = texts[(i * 7 + offset) % len(texts)]
                if tokens_estimate(text=text) != expected[text]:
                    failures.append(text)
        except Exception as exc:  # noqa: BLE001 - what a race would raise
            failures.append(exc)

    threads = [threading.Thread(target=estimate_all, args=(n,)) for n in range(4)]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # threads switch as often as they can
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
    finally:
        sys.setswitchinterval(interval)
    assert not failures
    assert len(tokens._remembered) <= 50
