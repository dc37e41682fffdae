"""A server process loads the tokenizer at start-up, not on the first chat send."""

from aurax import asgi
from billing import tokens


def test_the_tokenizer_is_loaded_at_start_up_by_the_warm_up_thread():
    tokens._encoding.cache_clear()

    asgi.warm_up().join(timeout=30)

    assert tokens._encoding.cache_info().currsize == 1
    assert tokens.tokens_estimate(text="hello world") == 2
