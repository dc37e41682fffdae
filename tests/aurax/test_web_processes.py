"""bin/serve with WEB_PROCESSES=N: N daphne processes on one socket (aurax/web_processes.py)."""

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import SERVICES_MODE
from tests.fixtures.servers import ROOT, bin_serve_start, free_port, make_server_env

services_only = pytest.mark.skipif(not SERVICES_MODE, reason="needs DATABASE_URL and REDIS_URL")


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                status = Path(f"/proc/{entry}/status").read_text()
            except OSError:
                continue
            if f"\nPPid:\t{pid}\n" in status:
                found.append(int(entry))
    return found


def _sockets(pid: int) -> set[str]:
    found = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:"):
            found.add(target)
    return found


@pytest.fixture
def serve(tmp_path_factory, _static_collected):
    """bin/serve in services mode, web processes only; stopped when the test ends."""
    started = []

    def start(processes: int):
        process, port = bin_serve_start(
            tmp_path_factory.mktemp("aurax-serve"),
            embedded=False,
            WEB_PROCESSES=str(processes),
            CELERY_WORKER="0",
        )
        started.append(process)
        return process, port

    yield start
    for process in started:
        children = _children(process.pid)  # before the parent goes: then they are re-parented
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGKILL)


@services_only
def test_every_process_takes_connections_from_the_one_port(serve):
    process, port = serve(2)
    children = _children(process.pid)
    assert len(children) == 2
    before = {child: _sockets(child) for child in children}

    connections = []
    gained = set()
    for _ in range(200):  # until each process holds one of them
        connection = socket.create_connection(("127.0.0.1", port))
        connection.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert b" 200 " in connection.recv(4096).split(b"\r\n")[0]
        connections.append(connection)
        gained = {child for child in children if _sockets(child) - before[child]}
        if len(gained) == 2:
            break
    for connection in connections:
        connection.close()

    assert gained == set(children)


@services_only
def test_a_process_that_dies_stops_the_server_so_that_it_is_restarted_whole(serve):
    process, _port = serve(2)
    first, second = _children(process.pid)

    os.kill(first, signal.SIGKILL)

    assert process.wait(timeout=30) != 0
    assert not Path(f"/proc/{second}").exists()
    assert f"web process {first} exited" in process.log_path.read_text()


@services_only
def test_sigterm_stops_every_process(serve):
    process, _port = serve(2)
    children = _children(process.pid)

    process.send_signal(signal.SIGTERM)

    assert process.wait(timeout=30) == 0
    time.sleep(0.2)
    assert not [child for child in children if Path(f"/proc/{child}").exists()]


@services_only
def test_the_processes_end_when_the_parent_is_killed(serve):
    process, _port = serve(2)
    children = _children(process.pid)

    process.kill()  # SIGKILL: no handler of its own runs
    process.wait()

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and [c for c in children if _alive(c)]:
        time.sleep(0.1)
    assert not [child for child in children if _alive(child)]


def _alive(pid: int) -> bool:
    try:
        return "zombie" not in Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False


def test_embedded_mode_refuses_more_than_one_process(tmp_path):
    env = make_server_env(tmp_path, embedded=True)
    env.pop("REDIS_URL_FILE", None)

    result = subprocess.run(
        [sys.executable, "-m", "aurax.web_processes", "127.0.0.1", str(free_port()), "2"]
        + ["aurax.asgi:application"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 2
    assert "REDIS_URL" in result.stderr and "WEB_PROCESSES=2" in result.stderr
