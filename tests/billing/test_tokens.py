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
