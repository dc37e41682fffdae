"""The server's start-up module: Twisted writes go to the socket at once when nothing waits,
and fall back to Twisted's buffering for whatever the socket does not take. (Every end-to-end
test runs its server through this module, so WebSocket frames and HTTP responses are covered
there; these check the fallbacks, which a fast local socket rarely needs.)"""

import socket

import pytest
from twisted.internet import main

from aurax.daphne_main import write_now


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
