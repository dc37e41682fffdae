"""Throughput of a batch (/v1/files + /v1/batches) run by the Celery worker against the fake
upstream.

    CELERY_WORKER=1 PORT=8031 UPSTREAM_PORT=8930 DATA=/tmp/aurax-batchbench \
        bash bench/setup_api_bench.sh           # prints a key; AURAX with its Celery worker
    python bench/batch_load.py --url http://127.0.0.1:8031/v1 --key ax-... \
        --requests 200 --tokens 50 --latency 1.0 [--endpoint embeddings] [--json out.jsonl]

One batch of `--requests` requests, each asking the fake upstream for `--tokens` tokens
answered after `--latency` seconds (`@tokens=N @first_delay=S`: a batch asks for answers
whole, not streamed, so the wait stands for a real model's time to answer), or one embedding
each (`--endpoint embeddings`). Reports the time from the
batch's creation to its start (validation) and from its start to its end (as the client saw
them, polling every 0.1 s), requests per second, and the CPU the worker's processes used per
request (from /proc, summed over every process whose command line names the Celery worker).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import httpx

TERMINAL = ("completed", "failed", "cancelled", "expired")


def worker_cpu_seconds() -> dict[int, float]:
    """utime + stime of every Celery worker process (the pool's included), by pid."""
    tick = 100.0  # SC_CLK_TCK on Linux
    seconds = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            command = (proc / "cmdline").read_bytes().replace(b"\0", b" ")
            if b"celery" not in command or b" worker" not in command:
                continue
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        seconds[int(proc.name)] = (int(fields[11]) + int(fields[12])) / tick
    return seconds


def input_file(endpoint: str, requests: int, tokens: int, latency: float) -> bytes:
    lines = []
    for n in range(requests):
        if endpoint == "embeddings":
            url, body = "/v1/embeddings", {"model": "fake-small", "input": f"text number {n}"}
        else:
            content = f"@tokens={tokens} @first_delay={latency} question {n}"
            url = "/v1/chat/completions"
            body = {"model": "fake-small", "messages": [{"role": "user", "content": content}]}
        lines.append(json.dumps({"custom_id": f"r{n}", "method": "POST", "url": url, "body": body}))
    return ("\n".join(lines) + "\n").encode()


def run(url: str, key: str, endpoint: str, requests: int, tokens: int, latency: float) -> dict:
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=url, headers=headers, timeout=60) as client:
        data = input_file(endpoint, requests, tokens, latency)
        uploaded = client.post(
            "/files",
            data={"purpose": "batch"},
            files={"file": ("bench.jsonl", data, "application/jsonl")},
        )
        uploaded.raise_for_status()
        cpu_before = worker_cpu_seconds()
        created = client.post(
            "/batches",
            json={
                "input_file_id": uploaded.json()["id"],
                "endpoint": f"/v1/{endpoint}",
                "completion_window": "24h",
            },
        )
        created.raise_for_status()
        batch_id = created.json()["id"]
        asked = time.monotonic()
        started = None  # when the batch was first seen in progress (its own times are seconds)
        while True:
            batch = client.get(f"/batches/{batch_id}").json()
            if started is None and batch["status"] != "validating":
                started = time.monotonic()
            if batch["status"] in TERMINAL:
                ended = time.monotonic()
                break
            time.sleep(0.1)
        # What each process used meanwhile (one that started meanwhile: all it used).
        cpu = sum(used - cpu_before.get(pid, 0.0) for pid, used in worker_cpu_seconds().items())
    counts = batch["request_counts"]
    running = ended - started
    return {
        "endpoint": endpoint,
        "requests": requests,
        "tokens": tokens,
        "latency": latency,
        "status": batch["status"],
        "completed": counts["completed"],
        "failed": counts["failed"],
        # As the client saw them, polling every 0.1 s.
        "validation_s": round(started - asked, 2),
        "running_s": round(running, 2),
        "requests_per_s": round(counts["completed"] / running, 1) if running > 0 else None,
        "worker_cpu_ms_per_request": round(cpu * 1000 / max(1, requests), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--endpoint", choices=("chat/completions", "embeddings"))
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--tokens", type=int, default=50)
    parser.add_argument("--latency", type=float, default=1.0)
    parser.add_argument("--label", default="")
    parser.add_argument("--json", help="append the result as one JSON line to this file")
    args = parser.parse_args()
    result = run(
        args.url,
        args.key,
        args.endpoint or "chat/completions",
        args.requests,
        args.tokens,
        args.latency,
    )
    result["label"] = args.label
    print(json.dumps(result, indent=1))
    if args.json:
        with open(args.json, "a") as out:
            out.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
