"""Several daphne processes on one listening socket: `bin/serve` with WEB_PROCESSES=N (N > 1).

Daphne serves from one event loop, so one process works on one core. In services mode the
channel layer, the cache, quotas and rate limits are shared through Redis and PostgreSQL, so N
processes on one machine serve as one server from N cores, as gunicorn's workers do: this
process binds HOST:PORT once and each child accepts connections from that socket (daphne
`--fd`), the kernel handing each new connection to a child that is waiting for one. Embedded
mode keeps its channel layer in the process (a tab on one process would not see an answer
streamed by another), so it refuses more than one.

A child that exits stops the others, and this process then exits with that child's status, so
that whatever supervises the server (compose's restart policy, systemd) restarts all of it.
SIGTERM and SIGINT are passed on to every child, and on Linux the children get SIGTERM when
this process dies in any way.

    python -m aurax.web_processes HOST PORT N [daphne options…] APPLICATION
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import sys

STOP_GRACE = 20  # seconds a child has to finish after SIGTERM before it is killed
PR_SET_PDEATHSIG = 1  # linux/prctl.h


def shared_state_missing() -> bool:
    return not (os.environ.get("REDIS_URL") or os.environ.get("REDIS_URL_FILE"))


def listening_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.create_server((host, port), family=family, backlog=2048)
    sock.set_inheritable(True)
    return sock


def _exit_with(parent: int):
    """Run in the child before daphne starts (Linux): SIGTERM when `parent` dies, however it
    dies (even SIGKILL), so that no web process is left serving the socket on its own."""

    def set_up() -> None:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # it died before that was in place
            os._exit(1)

    return set_up


def children_start(sock: socket.socket, count: int, daphne_args: list[str]) -> list:
    command = [sys.executable, "-m", "aurax.daphne_main", "--fd", str(sock.fileno())]
    on_start = _exit_with(os.getpid()) if sys.platform == "linux" else None
    return [
        subprocess.Popen(command + daphne_args, pass_fds=[sock.fileno()], preexec_fn=on_start)
        for _ in range(count)
    ]


def children_stop(children: list) -> None:
    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    for child in children:
        try:
            child.wait(timeout=STOP_GRACE)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def main(argv: list[str]) -> int:
    if len(argv) < 4:
        print(__doc__, file=sys.stderr)
        return 2
    host, port, count, daphne_args = argv[0], int(argv[1]), int(argv[2]), argv[3:]
    if count > 1 and shared_state_missing():
        print(
            f"WEB_PROCESSES={count} needs services mode (REDIS_URL): without Redis the"
            " channel layer and the caches live in one process.",
            file=sys.stderr,
        )
        return 2
    sock = listening_socket(host, port)
    children = children_start(sock, count, daphne_args)
    sock.close()  # the children hold it
    stopping = False

    def stop(signum, frame):
        nonlocal stopping
        stopping = True
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    by_pid = {child.pid: child for child in children}
    while True:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            return 0
        except InterruptedError:
            continue
        if pid in by_pid:
            break
    code = os.waitstatus_to_exitcode(status)
    by_pid[pid].returncode = code
    if not stopping:
        print(f"web process {pid} exited ({code}): stopping the others", file=sys.stderr)
    children_stop(children)
    return 0 if stopping else (code if code > 0 else 1)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
