"""The server's start-up module: Twisted writes go to the socket at once when nothing waits,
and fall back to Twisted's buffering for whatever the socket does not take. (Every end-to-end
test runs its server through this module, so WebSocket frames and HTTP responses are covered
there; these check the fallbacks, which a fast local socket rarely needs.) And the garbage
collector's thresholds it sets."""

import gc
import os
import socket
import subprocess
import sys

import pytest
from twisted.internet import main

from aurax.daphne_main import gc_threshold_set, write_now


class TransportState:
    """The part of a Twisted TCP connection `write_now` reads, around a real socket pair."""

    TLS = False

    def __init__(self, sock, *, accept: int | None = None):
        self.socket = sock
        self.connected = True
        self.disconnecting = False
        self._writeDisconnected = False
        self._tempDataBuffer: list[bytes] = []
        self.dataBuffer = b""
        self.offset = 0
        self.accept = accept  # at most this many bytes per send, like a full socket buffer
        self.buffered: list[bytes] = []

    def writeSomeData(self, data):
        if self.accept is None:
            return self.socket.send(data)
        if self.accept < 0:
            return main.CONNECTION_LOST
        return self.socket.send(data[: self.accept])


def buffered_write(transport, data):
    transport.buffered.append(bytes(data))


@pytest.fixture
def sockets():
    a, b = socket.socketpair()
    yield a, b
    a.close()
    b.close()


def test_a_write_with_nothing_waiting_goes_to_the_socket_at_once(sockets):
    left, right = sockets
    transport = TransportState(left)

    write_now(transport, b"frame", buffered_write)

    assert right.recv(100) == b"frame"
    assert transport.buffered == []


def test_what_the_socket_does_not_take_is_buffered_in_order(sockets):
    left, right = sockets
    transport = TransportState(left, accept=3)

    write_now(transport, b"abcdef", buffered_write)

    assert right.recv(100) == b"abc"
    assert transport.buffered == [b"def"]


def test_a_write_behind_buffered_data_waits_its_turn(sockets):
    left, right = sockets
    transport = TransportState(left)
    transport._tempDataBuffer = [b"earlier"]

    write_now(transport, b"later", buffered_write)

    assert transport.buffered == [b"later"]
    right.setblocking(False)
    with pytest.raises(BlockingIOError):
        right.recv(100)


def test_a_lost_connection_is_left_to_the_buffered_path_to_report(sockets):
    left, _right = sockets
    transport = TransportState(left, accept=-1)

    write_now(transport, b"frame", buffered_write)

    assert transport.buffered == [b"frame"]


def test_the_open_files_limit_is_raised_to_the_hard_limit():
    """Two sockets per streaming chat: the usual soft limit (1024) would refuse connections
    from ~500 answers on. Run in a child process, whose limits this may change."""
    import resource
    import subprocess
    import sys

    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard <= 256:
        pytest.skip("the hard limit is already at most 256")
    code = (
        "import resource\n"
        "from aurax.daphne_main import open_files_limit_raise\n"
        "hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]\n"
        "resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))\n"
        "print(open_files_limit_raise(), *resource.getrlimit(resource.RLIMIT_NOFILE))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    returned, soft_after, hard_after = (int(v) for v in out.stdout.split())
    assert soft_after == hard_after == returned
    assert soft_after > 256


# --- The garbage collector's thresholds -----------------------------------------------------


@pytest.fixture
def gc_thresholds_kept():
    before = gc.get_threshold()
    yield
    gc.set_threshold(*before)


def test_the_server_collects_garbage_far_less_often_than_python_s_default(gc_thresholds_kept):
    assert gc_threshold_set(None) == (20000, 20, 100)
    assert gc.get_threshold() == (20000, 20, 100)
    assert gc_threshold_set("5000,10,50") == (5000, 10, 50)
    assert gc.get_threshold() == (5000, 10, 50)


@pytest.mark.parametrize("value", ["", "700", "700,10", "a,b,c", "700,0,10", "-1,10,10"])
def test_a_malformed_threshold_is_refused_and_changes_nothing(gc_thresholds_kept, value):
    gc.set_threshold(700, 10, 10)
    with pytest.raises(ValueError, match="GC_THRESHOLD"):
        gc_threshold_set(value)
    assert gc.get_threshold() == (700, 10, 10)


def test_a_malformed_threshold_stops_the_server_at_start_with_the_reason():
    env = {**os.environ, "GC_THRESHOLD": "many"}
    done = subprocess.run(
        [sys.executable, "-m", "aurax.daphne_main", "-b", "127.0.0.1", "-p", "0", "x:y"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert "GC_THRESHOLD must be three positive whole numbers, not 'many'" in done.stderr
