"""Daphne's command line, with what its options cannot set (`bin/serve` runs this module):

- the soft limit of open files, raised to the hard limit (two sockets per streaming chat).
- the GIL switch interval (GIL_SWITCH_INTERVAL, seconds; 0.5 ms unless set). The event loop
  thread and the database threads share one interpreter, and a database thread that releases
  the GIL around each query waits up to the interval (5 ms by default) to get it back while
  the loop is busy. A chat send makes ~9 queries, so under load that wait, not the queries,
  made most of the time to first token (measured at 200 streams: p50 0.31 s at 5 ms, 0.12 s
  at 0.5 ms).
- the garbage collector's thresholds (GC_THRESHOLD, "gen0,gen1,gen2"; 20000,20,100 unless
  set, Python's default being 700,10,10). Every collection stops the event loop, and so every
  stream. Counted per run of bench/ws_load.py at N = 200 (Redis mode), with the default:
  239-254 collections, 0.36-0.57 s in all, the longest 51-116 ms (a full one); with 20000,20,100:
  6 collections, 55-67 ms in all, the longest 13-18 ms. Objects freed by reference counting
  still go at once; only garbage in reference cycles waits longer, until 20000 more tracked
  objects are alive than at the last collection.
- uvloop: daphne.server builds the loop that Twisted's reactor runs on from the event loop
  policy when it is imported, so the policy is set first.
- Twisted parses every urlencoded or multipart POST body into `request.args` (the
  Content-Type through the email package alone costs ~0.1 ms per request; a multipart upload
  is parsed whole, on the event loop). Daphne never reads `args`: it hands the raw body to the
  application, which parses it itself.
- Writes go to the socket at once when nothing is waiting to be written (`write_now`), as
  asyncio's own transports do. Twisted buffers every write and registers the socket with the
  loop to write it on the next turn, then unregisters it: two epoll_ctl calls and a loop turn
  for each WebSocket frame and each response.
- autobahn formats the arguments of a debug log line for every frame it sends, highlighting
  included, whether or not debug logging is on; those formatters are replaced by ones that
  return their argument unchanged unless AUTOBAHN_DEBUG=1.
- Twisted has no reason phrase for some standard statuses (429, 422, 451, ...) and sends
  "429 Unknown Status"; the standard phrases (`http.HTTPStatus`) fill the gaps.
- On SIGTERM or SIGINT the answers the process is generating are ended and saved before the
  reactor stops (`chat.generation.generations_interrupt`, at most 5 s; its comparisons are
  ended as well, `compare.comparisons.comparisons_interrupt`): daphne would otherwise
  stop the loop under them, leaving them "streaming" until the next start-up and the tokens
  they streamed unbilled.
"""

from __future__ import annotations

import asyncio
import gc
import os
import resource
import sys


def write_now(transport, data: bytes, buffered_write) -> None:
    """A TCP transport's `write`: straight to the socket when its buffers are empty; what the
    socket does not take (and any write while something waits) goes the buffered way."""
    if (
        data
        and not transport.TLS
        and transport.connected
        and not transport.disconnecting
        and not transport._writeDisconnected
        and not transport._tempDataBuffer
        and len(transport.dataBuffer) == transport.offset
    ):
        sent = transport.writeSomeData(data)
        if isinstance(sent, int):
            if sent == len(data):
                return
            data = memoryview(data)[sent:].tobytes()
        # Otherwise the connection is lost: the buffered path finds that out and reports it.
    buffered_write(transport, data)


def _patch_twisted_writes() -> None:
    from twisted.internet import tcp

    buffered_write = tcp.Connection.write

    def write(self, data):
        write_now(self, data, buffered_write)

    tcp.Connection.write = write


def _patch_autobahn_debug_arguments() -> None:
    from autobahn.websocket import protocol

    def unchanged(value, *args, **kwargs):
        return value

    protocol.hltype = protocol.hlval = unchanged


def _patch_twisted_form_parsing() -> None:
    from daphne import http_protocol

    class WebRequest(http_protocol.WebRequest):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, parsePOSTFormSubmission=False, **kwargs)

    http_protocol.WebRequest = WebRequest  # read by HTTPFactory.buildProtocol per connection


def reason_phrases_complete() -> None:
    """Give Twisted the standard reason phrase of every status it lacks one for."""
    from http import HTTPStatus

    from twisted.web import http

    for status in HTTPStatus:
        http.RESPONSES.setdefault(status.value, status.phrase.encode("ascii"))


def open_files_limit_raise() -> int:
    """Raise this process's soft limit of open files to its hard limit; the new soft limit.
    A streaming chat holds two sockets (the browser's, the upstream's), and the usual soft
    limit of 1024 would refuse connections from about 500 answers on."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):  # a hard limit the kernel caps lower: keep the soft one
            return soft
        return hard
    return soft


GC_THRESHOLD = "20000,20,100"


def gc_threshold_set(value: str | None) -> tuple[int, ...]:
    """Set the garbage collector's thresholds from "gen0,gen1,gen2" (GC_THRESHOLD when None);
    a value that is not three positive whole numbers is refused with a ValueError."""
    value = GC_THRESHOLD if value is None else value
    try:
        thresholds = tuple(int(part) for part in value.split(","))
    except ValueError:
        thresholds = ()
    if len(thresholds) != 3 or min(thresholds) < 1:
        raise ValueError(f"GC_THRESHOLD must be three positive whole numbers, not {value!r}")
    gc.set_threshold(*thresholds)
    return thresholds


async def _before_shutdown() -> None:
    # Modules the app never loaded have nothing to end.
    generation = sys.modules.get("chat.generation")
    if generation is not None:
        await generation.generations_interrupt()
    comparisons = sys.modules.get("compare.comparisons")
    if comparisons is not None:
        await comparisons.comparisons_interrupt()
    http = sys.modules.get("providers.http")
    if http is not None:
        await http.client_close()  # the loop's provider connections, closed (not warned about)


def _generations_interrupt():
    """The reactor's "before shutdown" trigger: a Deferred that fires once every answer this
    process generates is interrupted and saved, and the provider client is closed."""
    from twisted.internet import defer

    return defer.Deferred.fromFuture(asyncio.ensure_future(_before_shutdown()))


def main() -> None:
    sys.setswitchinterval(float(os.environ.get("GIL_SWITCH_INTERVAL", "0.0005")))
    try:
        gc_threshold_set(os.environ.get("GC_THRESHOLD"))
    except ValueError as error:
        sys.exit(str(error))
    open_files_limit_raise()
    try:
        import uvloop
    except ImportError:
        pass
    else:
        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())

    import daphne.server  # noqa: F401  (installs the reactor on the loop)
    from daphne.cli import CommandLineInterface
    from twisted.internet import reactor

    # Before daphne's own trigger (added when its server starts), which ends the sockets.
    reactor.addSystemEventTrigger("before", "shutdown", _generations_interrupt)

    reason_phrases_complete()
    _patch_twisted_form_parsing()
    _patch_twisted_writes()
    if os.environ.get("AUTOBAHN_DEBUG") != "1":
        _patch_autobahn_debug_arguments()
    CommandLineInterface.entrypoint()


if __name__ == "__main__":
    main()
