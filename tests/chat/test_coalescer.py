"""The delta coalescer of chat.generation: at most one frame per FRAME_INTERVAL, in order, with
offsets that add up, whether the layer delivers inline or needs to be awaited."""

import asyncio
import logging

import pytest

from chat import generation
from chat.generation import _Coalescer

INTERVAL = 0.05


@pytest.fixture(autouse=True)
def _interval(monkeypatch):
    monkeypatch.setattr(generation, "FRAME_INTERVAL", INTERVAL)


def assert_contiguous(frames, text):
    offset = 0
    for frame_offset, frame_text in frames:
        assert frame_offset == offset
        offset += len(frame_text)
    assert "".join(t for _, t in frames) == text


async def test_an_inline_layer_gets_the_first_text_at_once_and_the_rest_one_frame_per_interval():
    loop = asyncio.get_running_loop()
    frames, times, awaited = [], [], []

    def send_nowait(offset, text):
        frames.append((offset, text))
        times.append(loop.time())

    async def send(offset, text):
        awaited.append((offset, text))

    coalescer = _Coalescer(send, send_nowait)
    coalescer.push("a")
    assert frames == [(0, "a")]  # no timer, no task: sent by the push itself
    for text in "bcd":
        coalescer.push(text)
    assert len(frames) == 1
    await asyncio.sleep(INTERVAL * 1.5)
    assert frames == [(0, "a"), (1, "bcd")]
    assert times[1] - times[0] >= INTERVAL * 0.9
    coalescer.push("e")
    coalescer.push("f")
    await coalescer.close()
    assert frames + awaited == [(0, "a"), (1, "bcd"), (4, "ef")]


async def test_a_layer_that_must_be_awaited_gets_one_send_at_a_time_and_larger_frames_when_slow():
    frames, in_flight, most_in_flight = [], 0, 0
    release = asyncio.Event()

    async def send(offset, text):
        nonlocal in_flight, most_in_flight
        in_flight += 1
        most_in_flight = max(most_in_flight, in_flight)
        if offset:  # every frame after the first waits for the test
            await release.wait()
        frames.append((offset, text))
        in_flight -= 1

    coalescer = _Coalescer(send)
    coalescer.push("a")
    await asyncio.sleep(0.01)
    assert frames == [(0, "a")]
    coalescer.push("b")
    await asyncio.sleep(INTERVAL * 1.5)  # the frame with "b" is stuck in send
    for text in "cdef":
        coalescer.push(text)
        await asyncio.sleep(INTERVAL / 2)
    assert frames == [(0, "a")]
    release.set()
    await asyncio.sleep(INTERVAL * 1.5)
    assert frames == [(0, "a"), (1, "b"), (2, "cdef")]  # what waited left as one frame
    coalescer.push("g")
    await coalescer.close()
    assert_contiguous(frames, "abcdefg")
    assert most_in_flight == 1


async def test_closing_waits_for_the_frame_in_flight_and_sends_the_rest_after_it():
    frames = []

    async def send(offset, text):
        await asyncio.sleep(INTERVAL / 2)
        frames.append((offset, text))

    coalescer = _Coalescer(send)
    coalescer.push("a")
    await asyncio.sleep(0.01)  # "a" is being sent
    coalescer.push("b")
    coalescer.push("c")
    await coalescer.close()
    assert frames == [(0, "a"), (1, "bc")]


async def test_a_failed_send_is_logged_and_later_frames_keep_their_offsets(caplog):
    frames = []

    async def send(offset, text):
        if text == "a":
            raise ConnectionError("layer down")
        frames.append((offset, text))

    coalescer = _Coalescer(send)
    with caplog.at_level(logging.ERROR, logger="chat.generation"):
        coalescer.push("a")
        await asyncio.sleep(0.01)
        coalescer.push("bc")
        await coalescer.close()
    # The client sees the gap in `offset` and asks for a snapshot.
    assert frames == [(1, "bc")]
    assert "sending a delta frame failed" in caplog.text


async def test_a_busy_process_spaces_frames_further_apart(monkeypatch):
    monkeypatch.setattr(generation, "BUSY_FRAME_INTERVAL", INTERVAL * 6)
    loop = asyncio.get_running_loop()
    times = []
    streams = generation.BUSY_STREAMS

    async def send(offset, text):
        pass

    coalescer = _Coalescer(send, lambda offset, text: times.append(loop.time()), lambda: streams)
    coalescer.push("a")
    coalescer.push("b")
    await asyncio.sleep(INTERVAL * 1.5)
    assert len(times) == 2  # not busy yet: the usual interval

    streams += 1
    coalescer.push("c")
    await asyncio.sleep(INTERVAL * 1.5)
    assert len(times) == 2  # busy: the longer interval
    await asyncio.sleep(INTERVAL * 5)
    assert len(times) == 3 and times[2] - times[1] >= INTERVAL * 6 * 0.9
    await coalescer.close()


async def test_text_read_when_the_frame_is_due_leaves_with_the_text_that_waited():
    """The generation reads again at `next_frame_at()`. Its wake-up comes one loop turn after
    a timer due at the same time, so the timer is held back for that read."""
    loop = asyncio.get_running_loop()
    frames = []

    async def send(offset, text):
        raise AssertionError("an inline layer is never awaited")

    coalescer = _Coalescer(send, lambda offset, text: frames.append((offset, text)))
    coalescer.push("a")
    coalescer.push("b")  # waits for the interval
    coalescer.read_first()
    wake = loop.create_future()
    loop.call_at(coalescer.next_frame_at(), wake.set_result, None)
    await wake  # as the generation waits: the push below comes a turn after the due time
    coalescer.push("c")

    assert frames == [(0, "a"), (1, "bc")]


async def test_waiting_text_leaves_alone_when_the_read_brings_nothing():
    frames = []

    async def send(offset, text):
        raise AssertionError("an inline layer is never awaited")

    coalescer = _Coalescer(send, lambda offset, text: frames.append((offset, text)))
    coalescer.push("a")
    coalescer.push("b")
    coalescer.read_first()
    await asyncio.sleep(INTERVAL * 1.6)  # past the interval and the half interval of grace

    assert frames == [(0, "a"), (1, "b")]


async def test_the_last_frame_failing_is_logged_and_closing_ends_all_the_same(caplog):
    """The answer's finish (saving it, telling the tabs) comes after the close: a layer that
    fails on the last frame must not stop it there."""

    frames = []

    async def send(offset, text):
        if text == "b":
            raise ConnectionError("layer down")
        frames.append((offset, text))

    coalescer = _Coalescer(send)
    coalescer.push("a")
    await asyncio.sleep(0.01)
    coalescer.push("b")  # waits for the interval: what the close sends
    with caplog.at_level(logging.ERROR, logger="chat.generation"):
        await coalescer.close()
    assert frames == [(0, "a")]
    assert "sending a delta frame failed" in caplog.text
