"""bin/serve as `make run` starts it: daphne and the Celery worker together, stopped together."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.fixtures.servers import ROOT, bin_serve_start


def _session_members(session_id: int) -> list[int]:
    """Live processes of a session (the script's own, and every child it started)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()  # after "(comm)": state, ppid, pgrp, session
        if fields[0] != "Z" and int(fields[3]) == session_id:
            found.append(int(entry))
    return found


def _commands(pids: list[int]) -> str:
    commands = []
    for pid in pids:
        try:
            commands.append(Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" "))
        except OSError:
            pass
    return b" | ".join(commands).decode(errors="replace")


def _gone_within(session_id: int, seconds: float) -> list[int]:
    deadline = time.monotonic() + seconds
    while (left := _session_members(session_id)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


def _worker_of(process) -> int:
    """The Celery worker's main process, started by `process` (bin/serve)."""
    return next(
        pid
        for pid in _session_members(process.pid)
        if "celery" in _commands([pid])
        and f"\nPPid:\t{process.pid}\n" in Path(f"/proc/{pid}/status").read_text()
    )


@pytest.fixture
def serve_with_worker(tmp_path, _static_collected):
    """bin/serve in embedded mode with its worker, in a session of its own."""
    # Its session id is its pid: every child is found by it.
    process, _port = bin_serve_start(tmp_path, embedded=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while "celery" not in _commands(_session_members(process.pid)):
            assert time.monotonic() < deadline, (tmp_path / "serve.log").read_text()
            time.sleep(0.1)
        yield process
    finally:
        if _session_members(process.pid):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def test_sigterm_to_the_script_alone_stops_the_server_and_the_worker(serve_with_worker):
    process = serve_with_worker
    running = _commands(_session_members(process.pid))
    assert "aurax.daphne_main" in running and "celery" in running

    process.send_signal(signal.SIGTERM)  # as a supervisor or `kill` sends it: to the script only

    assert process.wait(timeout=60) == 0
    left = _gone_within(process.pid, 30)
    assert not left, _commands(left)


def test_ctrl_c_stops_the_server_and_the_worker(serve_with_worker):
    process = serve_with_worker

    os.killpg(process.pid, signal.SIGINT)  # a terminal sends it to the whole process group

    assert process.wait(timeout=60) == 0
    left = _gone_within(process.pid, 30)
    assert not left, _commands(left)


def test_a_server_that_dies_stops_the_worker_and_the_script_fails(serve_with_worker):
    process = serve_with_worker
    server = next(
        pid for pid in _session_members(process.pid) if "aurax.daphne_main" in _commands([pid])
    )

    os.kill(server, signal.SIGKILL)

    assert process.wait(timeout=60) != 0
    left = _gone_within(process.pid, 30)
    assert not left, _commands(left)


def test_a_worker_that_dies_stops_the_server_and_the_script_fails(serve_with_worker, tmp_path):
    process = serve_with_worker
    worker = _worker_of(process)

    # It exits by itself (as on losing its broker for good): a warm shutdown, its pool with it.
    os.kill(worker, signal.SIGTERM)

    assert process.wait(timeout=60) == 1
    left = _gone_within(process.pid, 30)
    assert not left, _commands(left)
    assert "the Celery worker exited" in (tmp_path / "serve.log").read_text()


def test_a_worker_killed_outright_leaves_no_pool_process_behind(serve_with_worker):
    """As by the OOM killer: SIGKILL gives the worker no time to stop its pool."""
    process = serve_with_worker
    worker = _worker_of(process)
    deadline = time.monotonic() + 30
    while not _children(worker):  # its pool has started
        assert time.monotonic() < deadline
        time.sleep(0.1)

    os.kill(worker, signal.SIGKILL)

    assert process.wait(timeout=60) == 1
    left = _gone_within(process.pid, 30)
    assert not left, _commands(left)


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


CHILD_OF_A_DEAD_WORKER = """
import os, sys, time
from aurax import celery
if os.fork():
    os._exit(0)  # the worker, killed right after it forked this child
time.sleep(0.5)  # the child starts later: its parent is gone
with open(sys.argv[1], "a") as out:
    out.write("starting\\n")
celery._end_with_the_worker()  # what a pool process (or the embedded beat) runs first
with open(sys.argv[1], "a") as out:
    out.write("running on\\n")
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_a_pool_process_whose_worker_died_before_it_started_ends(tmp_path):
    """The worker killed between forking a pool process and that process's start: no death
    signal will come (the worker is gone already), so the child must see it and end."""
    marks = tmp_path / "marks"
    subprocess.run(
        [sys.executable, "-c", CHILD_OF_A_DEAD_WORKER, str(marks)],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "aurax.settings"},
        check=True,
        timeout=60,
    )
    deadline = time.monotonic() + 30
    while "starting" not in (marks.read_text() if marks.exists() else ""):
        assert time.monotonic() < deadline, "the child never started"
        time.sleep(0.05)
    time.sleep(1)  # time to write its second line, if it went on

    assert marks.read_text() == "starting\n"


HUNG_WORKER = """#!/bin/sh
# A worker that hangs in its shutdown: SIGTERM changes nothing.
exec "{python}" -c "import signal as s, time; s.signal(s.SIGTERM, s.SIG_IGN); time.sleep(600)"
"""


def test_a_worker_hung_in_its_shutdown_is_killed_and_the_script_ends(tmp_path, _static_collected):
    """As billiard can, waiting forever at exit for a lock a killed pool process held: the
    script stops it all the same, after WORKER_STOP_SECONDS."""
    venv = tmp_path / "venv" / "bin"
    venv.mkdir(parents=True)
    (venv / "celery").write_text(HUNG_WORKER.format(python=sys.executable))
    (venv / "python").write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    for name in ("celery", "python"):
        (venv / name).chmod(0o755)
    (tmp_path / "data").mkdir()
    process, _port = bin_serve_start(
        tmp_path / "data",
        embedded=True,
        start_new_session=True,
        VENV=str(venv.parent),
        WORKER_STOP_SECONDS="2",
    )
    try:
        os.kill(process.pid, signal.SIGTERM)

        assert process.wait(timeout=30) == 0  # the server stopped as asked
        assert not _gone_within(process.pid, 10)  # the worker too, killed
        assert "did not stop in 2 s; killing it" in process.log_path.read_text()
    finally:
        if _session_members(process.pid):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
