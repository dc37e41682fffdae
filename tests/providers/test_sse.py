"""The text/event-stream parser under every adapter that streams SSE: the same events whatever
way the body is cut into network chunks."""

import gzip

import httpx
import pytest

from providers.adapters.base import SSEParser, sse_events

BODY = (
    b": keep-alive comment\n"
    b"\n"
    b'data: {"n": 1}\n'
    b"\n"
    b"event: content_block_delta\n"
    b'data: {"text": "caf\xc3\xa9 \xe2\x80\xa8 \xf0\x9f\x98\x80"}\n'
    b"\n"
    b"data: first line\n"
    b"data:second line, no space\n"
    b"id: 7\n"
    b"retry: 1000\n"
    b"\n"
    b"event: ping\n"
    b"\n"
    b"data\n"
    b"\n"
    b"data: [DONE]\n"
    b"\n"
)
EVENTS = [
    ("message", '{"n": 1}'),
    ("content_block_delta", '{"text": "café \u2028 😀"}'),
    ("message", "first line\nsecond line, no space"),
    ("message", ""),
    ("message", "[DONE]"),
]


def parse(chunks) -> list[tuple[str, str]]:
    parser = SSEParser()
    events = [event for chunk in chunks for event in parser.feed(chunk)]
    return events + parser.close()


@pytest.mark.parametrize("newline", [b"\n", b"\r\n", b"\r"], ids=["LF", "CRLF", "CR"])
def test_it_reads_the_same_events_wherever_the_body_is_split(newline):
    body = BODY.replace(b"\n", newline)
    assert parse([body]) == EVENTS
    for cut in range(1, len(body)):
        assert parse([body[:cut], body[cut:]]) == EVENTS, cut
    for first in range(1, len(body), 7):
        for second in range(first + 1, len(body), 5):
            parts = [body[:first], body[first:second], body[second:]]
            assert parse(parts) == EVENTS, (first, second)


@pytest.mark.parametrize("newline", [b"\n", b"\r\n", b"\r"], ids=["LF", "CRLF", "CR"])
def test_it_reads_a_body_arriving_byte_by_byte(newline):
    body = BODY.replace(b"\n", newline)
    assert parse([body[i : i + 1] for i in range(len(body))]) == EVENTS


def test_a_crlf_split_between_chunks_is_one_line_end_not_two():
    # "\r" | "\n" must not read as an empty line, which would end the event early.
    assert parse([b"data: a\r", b"\ndata: b\r\n\r\n"]) == [("message", "a\nb")]
    assert parse([b"data: a\r", b"\n", b"\n", b"data: b\n\n"]) == [
        ("message", "a"),
        ("message", "b"),
    ]


def test_an_event_is_returned_as_soon_as_its_blank_line_arrives():
    parser = SSEParser()
    assert parser.feed(b'data: {"n": 1}\n') == []
    assert parser.feed(b"\n") == [("message", '{"n": 1}')]
    assert parser.feed(b"data: two\n\ndata: three\n\ndata: fo") == [
        ("message", "two"),
        ("message", "three"),
    ]
    assert parser.feed(b"ur\n\n") == [("message", "four")]


def test_an_event_cut_off_by_the_end_of_the_body_is_still_returned():
    assert parse([b"data: one\n\ndata: last"]) == [("message", "one"), ("message", "last")]
    assert parse([b"event: x\ndata: last\n"]) == [("x", "last")]


def test_a_leading_byte_order_mark_is_skipped_even_when_split():
    assert parse([b"\xef\xbb", b"\xbfdata: x\n\n"]) == [("message", "x")]
    assert parse([b"data: \xef\xbb\xbfx\n\n"]) == [("message", "\ufeffx")]


def test_invalid_utf8_is_replaced_not_raised():
    assert parse([b"data: \xff\n\n"]) == [("message", "\ufffd")]


class Chunks(httpx.AsyncByteStream):
    def __init__(self, chunks):
        self.chunks = chunks

    async def __aiter__(self):
        for chunk in self.chunks:
            yield chunk


async def test_sse_events_reads_a_streamed_response_chunk_by_chunk():
    response = httpx.Response(200, stream=Chunks([BODY[:40], BODY[40:41], BODY[41:]]))
    assert [event async for event in sse_events(response)] == EVENTS


async def test_sse_events_reads_a_compressed_body():
    compressed = gzip.compress(BODY)
    response = httpx.Response(
        200,
        headers={"content-encoding": "gzip"},
        stream=Chunks([compressed[:10], compressed[10:]]),
    )
    assert [event async for event in sse_events(response)] == EVENTS
