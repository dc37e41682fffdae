"""A server process loads the tokenizer at start-up, not on the first chat send, then keeps
the garbage collector off what it loaded."""

import gc

from aurax import asgi
from billing import tokens


def test_the_tokenizer_is_loaded_at_start_up_by_the_warm_up_thread():
    tokens._encoding.cache_clear()

    asgi.warm_up().join(timeout=30)

    assert tokens._encoding.cache_info().currsize == 1
    assert tokens.tokens_estimate(text="hello world") == 2


def test_what_start_up_loaded_is_frozen_out_of_garbage_collection():
    gc.unfreeze()  # an earlier start-up in this test process froze it already
    gc.collect()  # whatever survives is in the oldest generation now
    assert any(o is asgi.application for o in gc.get_objects(generation=2))
    try:
        asgi.warm_up().join(timeout=30)

        assert gc.get_freeze_count() > 0
        # The ASGI application, loaded at start, is no longer among what a collection walks.
        assert not any(o is asgi.application for o in gc.get_objects(generation=2))
    finally:
        gc.unfreeze()
