"""Load test for the chat WebSocket (/ws/chat/, docs/websocket.md): N concurrent chats, each
through its own socket, against the fake upstream streaming 300 tokens at 20 ms per token.

    bench/setup_ws_bench.sh                       # upstream + daphne + user + conversations
    python bench/ws_load.py run -n 200 [--rounds 2] [--ramp 6] [--json out.json]
    python bench/ws_load.py upstream --port 8910  # (started by the setup script)

`upstream` serves providers/fake_upstream.py unchanged except that every streamed token
"tokK " becomes "tokK@S ", S being the time the upstream handed it to the socket (0.1 ms units,
wall clock modulo 10^8): each delta frame then tells exactly when the upstream emitted the last
token it carries, whatever the upstream's own jitter under load.

Each of the N clients opens its own socket (session cookie, same-origin `Origin`), waits a
random 0..--ramp s (so the N streams overlap in steady state rather than in one burst), then
sends --rounds questions one after the other in its own conversation, each
`@tokens=300 @delay=0.02`, waiting for `generation_finished` each time. Measured:

  added TTFT      (first `delta` arrival − `send` frame sent) − the upstream's own TTFT, measured
                  directly before the run with plain streaming requests (p50 of 20)
  in the run      the upstream also stamps its first token with when the request reached its
                  app ("tok1@S^R"): its own TTFT under the load (S − R), and the TTFT less it
  by streaming    added TTFT grouped by how many answers (of all chats) were streaming when
                  the question was sent, in steps of 50
  client lag      how late this client's own event loop wakes from a 5 ms sleep (a busy client
                  reads frames late, which would count as AURAX's time)
  frame delay     per `delta`: arrival − emission stamp of the last token it contains (includes
                  the by-design coalescing wait: one frame per ~30 ms, tokens every 20 ms)
  machine check   ms for a fixed pure-Python loop, before and after the load (the machine's
                  own speed at the time: a shared machine's changes by itself)
  niceness        of the upstream and of this client (--nice, HARNESS_NICE in the setup
                  script): at 10 the server's threads get a core first when they compete
  server CPU/RSS  /proc/<pid>/stat utime+stime over the load window, VmRSS before the sockets
                  open and its peak during the load (also for the upstream and this client);
                  CPU also per answer delivered (server_cpu_ms_per_answer). With WEB_PROCESSES
                  the server is bin/serve's parent and its web processes, summed

Bounded: the run ends when every answer has finished or after --timeout s (120).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import resource
import statistics
import sys
import time
from pathlib import Path

TOKENS = 300
DELAY = 0.02
STAMP_MOD = 10**8  # 0.1 ms units: wraps every 10^4 s
STAMPED = re.compile(r"tok(\d+)@(\d+)(?:\^(\d+))?( |$)")
TICK = os.sysconf("SC_CLK_TCK")


# --- the stamping upstream ----------------------------------------------------------------

TOKEN_BYTES = re.compile(rb'"content": "tok(\d+)')


def stamping(app):
    async def wrapped(scope, receive, send):
        if scope["type"] != "http":
            return await app(scope, receive, send)

        received = b"^%d" % (int(time.time() * 10_000) % STAMP_MOD)

        def stamp_token(match, stamp):
            # The first token also carries when this request reached the upstream's app.
            return match.group(0) + stamp + (received if match.group(1) == b"1" else b"")

        async def stamped_send(message):
            if message["type"] == "http.response.body" and b'"content": "tok' in (
                message.get("body") or b""
            ):
                stamp = b"@%d" % (int(time.time() * 10_000) % STAMP_MOD)
                body = TOKEN_BYTES.sub(lambda m: stamp_token(m, stamp), message["body"])
                message = {**message, "body": body}
            await send(message)

        return await app(scope, receive, stamped_send)

    return wrapped


def upstream_serve(port: int) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    import uvicorn

    from providers.fake_upstream import FakeUpstream

    app = stamping(FakeUpstream(keep_requests=False))
    print(f"stamping fake upstream on http://127.0.0.1:{port}/v1", flush=True)
    # httptools (C) rather than h11 (pure Python, a third of this process's CPU per token):
    # the upstream shares the machine's cores with the server it stands in front of.
    uvicorn.run(
        app, host="127.0.0.1", port=port, log_level="warning", lifespan="off", http="httptools"
    )


def stamp_resolve(stamp: int, near: float) -> float:
    """The wall-clock time of a stamp, taking the wrap nearest to `near`."""
    base = int(near * 10_000) // STAMP_MOD * STAMP_MOD
    best = min(
        (base + k * STAMP_MOD + stamp for k in (-1, 0, 1)),
        key=lambda v: abs(v - near * 10_000),
    )
    return best / 10_000


# --- measurement helpers --------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def proc_family(pid: int) -> list[int]:
    """The process and its children: the web processes under bin/serve's WEB_PROCESSES
    parent are counted together as the server."""
    children = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            children += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            pass
    return [pid, *children]


def proc_cpu(pid: int) -> float:
    """utime + stime of a process and its children, in seconds."""
    total = 0
    for member in proc_family(pid):
        fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / TICK


def system_busy() -> float:
    """CPU seconds spent busy by the whole machine (all cores), from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]
    return (sum(fields[:8]) - idle) / TICK


def proc_nice(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[16])


def _status_sum(pid: int, name: str) -> int:
    total = 0
    for member in proc_family(pid):
        for line in Path(f"/proc/{member}/status").read_text().splitlines():
            if line.startswith(name):
                total += int(line.split()[1])
    return total


def proc_rss(pid: int) -> int:
    """VmRSS in bytes, of the process and its children."""
    return _status_sum(pid, "VmRSS:") * 1024


def proc_threads(pid: int) -> int:
    return _status_sum(pid, "Threads:")


def machine_check() -> float:
    """How fast this machine runs Python now: ms for a fixed pure-Python loop, the median of
    five, with nothing of the benchmark running. A shared machine changes speed by itself
    (16 against 25 ms idle, on one machine, within an hour), and figures from runs minutes
    apart compare only with this beside them."""
    times = []
    for _ in range(5):
        started = time.perf_counter()
        total = 0
        for i in range(300_000):
            total += i * i % 7
        times.append(time.perf_counter() - started)
    return round(statistics.median(times) * 1000, 1)


async def loop_lag(lags: list[float], period: float = 0.005) -> None:
    """How late this client's own event loop wakes from a `period` sleep, all run long: a
    busy client sees frames late, which the figures would otherwise count as AURAX's."""
    while True:
        started = time.perf_counter()
        await asyncio.sleep(period)
        lags.append(time.perf_counter() - started - period)


async def upstream_ttft(session, upstream: str, samples: int) -> list[float]:
    """The upstream's own time to first token: plain streaming requests, one at a time."""
    body = {
        "model": "fake-small",
        "messages": [{"role": "user", "content": f"@tokens={TOKENS} @delay={DELAY}"}],
        "stream": True,
    }
    values = []
    for _ in range(samples):
        started = time.perf_counter()
        async with session.post(
            f"{upstream}/chat/completions",
            json=body,
            headers={"Authorization": "Bearer sk-mock-upstream"},
        ) as response:
            async for line in response.content:
                if b'"content"' in line:
                    values.append(time.perf_counter() - started)
                    break
    return values


# --- one chat client --------------------------------------------------------------------------


STREAMING = [0]  # answers this client awaits now (all chats)


class Chat:
    def __init__(self, conversation_id: int):
        self.conversation_id = conversation_id
        self.ttft: list[float] = []  # send → first delta, s
        self.streaming_at_send: list[int] = []  # answers awaited (all chats) when it was sent
        self.to_upstream: list[float] = []  # send → upstream emitted the first token, s
        self.first_delivery: list[float] = []  # upstream emitted the first token → first delta
        # The upstream's own TTFT in the run (its app got the request → it emitted the first
        # token), and send → first delta less that.
        self.upstream_own: list[float] = []
        self.ttft_less_upstream: list[float] = []
        self.frame_delays: list[float] = []
        self.frames = 0
        self.tokens = 0
        self.errors: list[str] = []
        self.busy: list[tuple[float, float]] = []  # (send, finished) per answer
        self.connected = False


async def chat_run(chat: Chat, ws, rounds: int, ramp: float, start: asyncio.Event, deadline):
    await start.wait()
    await asyncio.sleep(random.uniform(0, ramp))
    for round_ in range(rounds):
        if time.time() > deadline:
            return
        frame = {
            "type": "send",
            "conversation_id": chat.conversation_id,
            "content": f"@tokens={TOKENS} @delay={DELAY} (bench round {round_})",
            "request_id": f"r{round_}",
        }
        streaming = STREAMING[0]
        STREAMING[0] += 1
        try:
            if not await answer_read(chat, ws, frame, streaming, deadline):
                return
        finally:
            STREAMING[0] -= 1


async def answer_read(chat: Chat, ws, frame: dict, streaming: int, deadline) -> bool:
    """Send one question and read its answer's frames; False when the chat cannot go on."""
    sent = time.time()
    await ws.send_str(json.dumps(frame))
    text = ""
    first = True
    while True:
        remaining = deadline - time.time()
        if remaining <= 0:
            chat.errors.append("timeout")
            return False
        try:
            msg = await ws.receive(timeout=remaining)
        except TimeoutError:
            chat.errors.append("timeout")
            return False
        now = time.time()
        if msg.type.name != "TEXT":
            chat.errors.append(f"socket {msg.type.name}")
            return False
        event = json.loads(msg.data)
        kind = event.get("type")
        if kind == "delta":
            if event["offset"] != len(text):
                chat.errors.append("offset mismatch")
            text += event["text"]
            chat.frames += 1
            last = None
            for match in STAMPED.finditer(text, max(0, len(text) - len(event["text"]) - 30)):
                if match.group(4) == " " or int(match.group(1)) == TOKENS:
                    last = match
            if last is None:
                continue
            emitted = stamp_resolve(int(last.group(2)), now)
            chat.frame_delays.append(now - emitted)
            if first:
                first = False
                chat.ttft.append(now - sent)
                chat.streaming_at_send.append(streaming)
                first_match = STAMPED.search(text)
                first_emitted = stamp_resolve(int(first_match.group(2)), now)
                chat.to_upstream.append(first_emitted - sent)
                if first_match.group(3):
                    reached = stamp_resolve(int(first_match.group(3)), now)
                    chat.upstream_own.append(first_emitted - reached)
                    chat.ttft_less_upstream.append(now - sent - (first_emitted - reached))
                chat.first_delivery.append(now - first_emitted)
        elif kind == "generation_finished":
            chat.busy.append((sent, now))
            chat.tokens += len(STAMPED.findall(text))
            if event["status"] != "complete":
                chat.errors.append(f"{event['status']}:{event.get('error_code')}")
            return True
        elif kind == "error":
            chat.errors.append(f"error:{event.get('code')}")
            return False


async def run(args) -> dict:
    import aiohttp

    data = Path(args.data)
    session_key = (data / "session").read_text().strip()
    all_ids = [int(x) for x in (data / "conversations").read_text().split()]
    used_file = data / "conversations.used"
    used = int(used_file.read_text()) if used_file.exists() else 0
    if used + args.n + 1 > len(all_ids):
        raise SystemExit("not enough fresh conversations left: re-run bench/setup_ws_bench.sh")
    take = args.n + (1 if args.warmup else 0)
    ids = all_ids[used : used + take]
    used_file.write_text(str(used + take))
    server_pid = int((data / "server.pid").read_text())
    upstream_pid = int((data / "upstream.pid").read_text())
    me = os.getpid()

    origin = f"http://127.0.0.1:{args.port}"
    url = f"ws://127.0.0.1:{args.port}/ws/chat/"
    headers = {"Origin": origin, "Cookie": f"sessionid={session_key}"}
    connector = aiohttp.TCPConnector(limit=0)
    check_before = machine_check()
    async with aiohttp.ClientSession(connector=connector) as session:
        baseline = await upstream_ttft(session, args.upstream, args.upstream_samples)
        upstream_ttft_p50 = statistics.median(baseline)

        if args.warmup:
            # One answer first, so that cold imports and caches are not counted.
            warm = Chat(ids.pop())
            ws = await session.ws_connect(url, headers=headers)
            start = asyncio.Event()
            start.set()
            await chat_run(warm, ws, 1, 0, start, time.time() + 30)
            await ws.close()
            if warm.errors or not warm.busy:
                raise SystemExit(f"warm-up answer failed: {warm.errors}")
        await asyncio.sleep(0.5)
        rss_idle = proc_rss(server_pid)
        chats = [Chat(i) for i in ids]
        sockets = []
        gate = asyncio.Semaphore(32)  # daphne's listen backlog is 50

        async def connect(chat):
            async with gate:
                ws = await asyncio.wait_for(
                    session.ws_connect(url, headers=headers, heartbeat=None, max_msg_size=0), 30
                )
            chat.connected = True
            return ws

        t0 = time.time()
        sockets = await asyncio.gather(*(connect(c) for c in chats))
        connect_s = time.time() - t0
        await asyncio.sleep(1.0)
        rss_connected = proc_rss(server_pid)

        start = asyncio.Event()
        deadline = time.time() + args.timeout
        tasks = [
            asyncio.create_task(chat_run(c, ws, args.rounds, args.ramp, start, deadline))
            for c, ws in zip(chats, sockets, strict=True)
        ]
        cpu0 = {p: proc_cpu(p) for p in (server_pid, upstream_pid, me)}
        busy0 = system_busy()
        t_load0 = time.time()
        rss_peak = {p: proc_rss(p) for p in (server_pid, upstream_pid, me)}
        threads_peak = proc_threads(server_pid)
        lags: list[float] = []
        lag_watch = asyncio.create_task(loop_lag(lags))
        start.set()
        done = asyncio.gather(*tasks, return_exceptions=True)
        while not done.done() and time.time() < deadline + 5:
            await asyncio.wait([done], timeout=0.25)
            for p in rss_peak:
                rss_peak[p] = max(rss_peak[p], proc_rss(p))
            threads_peak = max(threads_peak, proc_threads(server_pid))
        t_load1 = time.time()
        lag_watch.cancel()
        cpu1 = {p: proc_cpu(p) for p in (server_pid, upstream_pid, me)}
        busy1 = system_busy()
        for task in tasks:
            task.cancel()
        # A backed-up server may not answer close frames: don't wait for it one by one.
        await asyncio.wait(
            [asyncio.ensure_future(asyncio.wait_for(ws.close(), 2)) for ws in sockets], timeout=5
        )

    check_after = machine_check()
    wall = t_load1 - t_load0
    busy = [b for c in chats for b in c.busy]
    stream_seconds = sum(end - begin for begin, end in busy)
    avg_open = stream_seconds / wall if wall else 0
    cpu = {
        name: (cpu1[p] - cpu0[p]) / wall
        for name, p in (("server", server_pid), ("upstream", upstream_pid), ("client", me))
    }
    # CPU used meanwhile by anything else on the machine (other benchmarks share it).
    cpu["other"] = (busy1 - busy0) / wall - cpu["server"] - cpu["upstream"] - cpu["client"]
    ttft = [v for c in chats for v in c.ttft]
    added_ttft = [v - upstream_ttft_p50 for v in ttft]
    delays = [v for c in chats for v in c.frame_delays]
    # Added TTFT by how many answers were streaming when the question was sent (the load
    # rises during the ramp and falls at the end): where the time to first token degrades.
    by_streaming: dict[int, list[float]] = {}
    for c in chats:
        for value, streaming in zip(c.ttft, c.streaming_at_send, strict=True):
            by_streaming.setdefault(streaming // 50 * 50, []).append(value - upstream_ttft_p50)
    errors: dict[str, int] = {}
    for c in chats:
        for e in c.errors:
            errors[e] = errors.get(e, 0) + 1
    ms = 1000

    def across(name: str, q: float) -> float:
        """A percentile, in ms, of one per-answer measure of every chat."""
        return round(percentile([v for c in chats for v in getattr(c, name)], q) * ms, 1)

    result = {
        "n": args.n,
        "mode": args.mode,
        "rounds": args.rounds,
        "nice_upstream_client": [proc_nice(upstream_pid), proc_nice(me)],
        "ramp_s": args.ramp,
        "answers_complete": len(busy) - sum(v for k, v in errors.items() if ":" in k),
        "answers_expected": args.n * args.rounds,
        "tokens_received": sum(c.tokens for c in chats),
        "errors": errors,
        "connect_s": round(connect_s, 2),
        "load_wall_s": round(wall, 2),
        "machine_check_ms_before": check_before,
        "machine_check_ms_after": check_after,
        "avg_open_streams": round(avg_open, 1),
        "upstream_ttft_ms_p50": round(upstream_ttft_p50 * ms, 2),
        "upstream_ttft_ms_p95": round(percentile(baseline, 0.95) * ms, 2),
        "ttft_ms_p50": round(percentile(ttft, 0.5) * ms, 1),
        "added_ttft_ms_p50": round(percentile(added_ttft, 0.5) * ms, 1),
        "added_ttft_ms_p95": round(percentile(added_ttft, 0.95) * ms, 1),
        "added_ttft_ms_max": round(max(added_ttft, default=float("nan")) * ms, 1),
        "send_to_upstream_first_token_ms_p50": across("to_upstream", 0.5),
        "send_to_upstream_first_token_ms_p95": across("to_upstream", 0.95),
        "upstream_first_token_to_ws_ms_p50": across("first_delivery", 0.5),
        "upstream_first_token_to_ws_ms_p95": across("first_delivery", 0.95),
        # The upstream's own TTFT under the load (it is one Python process serving every
        # stream), and each answer's TTFT less its own.
        "upstream_ttft_in_run_ms_p50": across("upstream_own", 0.5),
        "upstream_ttft_in_run_ms_p95": across("upstream_own", 0.95),
        "ttft_less_upstream_in_run_ms_p50": across("ttft_less_upstream", 0.5),
        "ttft_less_upstream_in_run_ms_p95": across("ttft_less_upstream", 0.95),
        "client_loop_lag_ms_p50": round(percentile(lags, 0.5) * ms, 2),
        "client_loop_lag_ms_p95": round(percentile(lags, 0.95) * ms, 2),
        "client_loop_lag_ms_p99": round(percentile(lags, 0.99) * ms, 2),
        "added_ttft_by_streaming_at_send": {
            f"{low}-{low + 49}": {
                "answers": len(values),
                "p50_ms": round(percentile(values, 0.5) * ms, 1),
                "p95_ms": round(percentile(values, 0.95) * ms, 1),
            }
            for low, values in sorted(by_streaming.items())
        },
        "frames": len(delays),
        "frames_per_answer": round(len(delays) / max(1, len(busy)), 1),
        "frame_delay_ms_p50": round(percentile(delays, 0.5) * ms, 1),
        "frame_delay_ms_p95": round(percentile(delays, 0.95) * ms, 1),
        "frame_delay_ms_p99": round(percentile(delays, 0.99) * ms, 1),
        "server_cpu_cores": round(cpu["server"], 3),
        "upstream_cpu_cores": round(cpu["upstream"], 3),
        "client_cpu_cores": round(cpu["client"], 3),
        "other_cpu_cores": round(cpu["other"], 3),
        "server_cpu_pct_per_open_stream": round(100 * cpu["server"] / avg_open, 3)
        if avg_open
        else None,
        # Steadier than the per-stream share when the machine is shared: it does not depend
        # on how long the answers took, only on the work done for them.
        "server_cpu_ms_per_answer": round(1000 * cpu["server"] * wall / len(busy), 1)
        if busy
        else None,
        "server_rss_idle_mb": round(rss_idle / 2**20, 1),
        "server_rss_connected_mb": round(rss_connected / 2**20, 1),
        "server_rss_peak_mb": round(rss_peak[server_pid] / 2**20, 1),
        "server_rss_kb_per_socket": round((rss_connected - rss_idle) / 1024 / args.n, 1),
        "server_rss_kb_per_open_stream": round(
            (rss_peak[server_pid] - rss_idle) / 1024 / args.n, 1
        ),
        "server_threads_peak": threads_peak,
        "upstream_rss_peak_mb": round(rss_peak[upstream_pid] / 2**20, 1),
        "client_rss_peak_mb": round(rss_peak[me] / 2**20, 1),
    }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("upstream", help="serve the stamping fake upstream")
    up.add_argument("--port", type=int, default=8910)
    nice_help = (
        "run at this niceness (0..19): the kernel then gives the server's threads a core "
        "first when they compete with the harness (see bench/README.md)"
    )
    up.add_argument("--nice", type=int, default=0, help=nice_help)
    r = sub.add_parser("run", help="run the load")
    r.add_argument("-n", type=int, required=True, help="concurrent chats (sockets)")
    r.add_argument("--rounds", type=int, default=2, help="answers per chat, one after the other")
    r.add_argument("--ramp", type=float, default=6.0, help="random start spread, seconds")
    r.add_argument("--timeout", type=float, default=120.0)
    r.add_argument("--port", type=int, default=int(os.environ.get("PORT", 8011)))
    r.add_argument(
        "--upstream", default=f"http://127.0.0.1:{os.environ.get('UPSTREAM_PORT', 8910)}/v1"
    )
    r.add_argument("--upstream-samples", type=int, default=20)
    r.add_argument("--data", default=os.environ.get("DATA", "/tmp/aurax-wsbench"))
    r.add_argument("--mode", default="redis" if os.environ.get("REDIS_URL") else "embedded")
    r.add_argument("--no-warmup", dest="warmup", action="store_false")
    r.add_argument("--json", help="append the result as one JSON line to this file")
    r.add_argument("--nice", type=int, default=0, help=nice_help)
    args = parser.parse_args()
    if args.nice:
        os.nice(args.nice)
    if args.command == "upstream":
        return upstream_serve(args.port)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    result = asyncio.run(run(args))
    print(json.dumps(result, indent=1))
    if args.json:
        with open(args.json, "a") as f:
            f.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
