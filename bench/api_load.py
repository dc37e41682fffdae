"""Load test for an OpenAI-compatible /v1/chat/completions endpoint.

    python bench/api_load.py --url http://127.0.0.1:8000/v1 --key ax-... --model fake-small \
        --concurrency 1 16 64 --requests 400 --tokens 64 [--stream] [--label aurax]

    # several gateways in the same run, each (label, URL, key, model), non-stream and stream:
    python bench/api_load.py --baseline http://127.0.0.1:8900/v1 --modes both \
        --target aurax http://127.0.0.1:8001/v1 ax-... fake-small \
        --target litellm http://127.0.0.1:4000/v1 sk-bench-1234 bench-mock

Each request asks the fake upstream (providers/fake_upstream.py) for `--tokens` tokens with
no delay (`@tokens=N` directive). Reports requests/s, streamed tokens/s (tokens counted in
the text received, not chunks) and latency
percentiles (for streams: time to the last byte). `--baseline URL` measures the fake upstream
directly with the same requests first, so the figures include the latency AURAX adds.
Bounded: every run stops after --requests requests or --seconds seconds.

`--header "Cache-Control: max-age=3600"` (repeatable) adds a header to the gateways' requests:
with it every request after the first is answered from AURAX's response cache (the requests
are identical), which measures a hit.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time

import aiohttp


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


async def one(session, url, key, model, tokens, stream, headers) -> tuple[float, int, bool]:
    body = {
        "model": model,
        "messages": [{"role": "user", "content": f"@tokens={tokens}"}],
        "stream": stream,
    }
    if stream:
        body["stream_options"] = {"include_usage": True}
    started = time.perf_counter()
    received = 0
    async with session.post(
        f"{url}/chat/completions", json=body, headers={"Authorization": f"Bearer {key}", **headers}
    ) as response:
        if response.status != 200:
            await response.read()
            return time.perf_counter() - started, 0, False
        if stream:
            # Tokens delivered, counted in the streamed text (the fake upstream's tokens are
            # the words "tok1 tok2 …"): a gateway may pass on tokens that arrived together
            # in one chunk, so chunks are not tokens.
            parts = []
            async for line in response.content:
                if line.startswith(b"data: {"):
                    chunk = json.loads(line[6:])
                    if chunk.get("choices") and chunk["choices"][0]["delta"].get("content"):
                        parts.append(chunk["choices"][0]["delta"]["content"])
            received = len("".join(parts).split())
        else:
            data = await response.json()
            received = data["usage"]["completion_tokens"]
    return time.perf_counter() - started, received, True


async def run(url, key, model, tokens, stream, concurrency, total, seconds, headers=None) -> dict:
    headers = headers or {}
    connector = aiohttp.TCPConnector(limit=concurrency * 2)
    latencies: list[float] = []
    tokens_seen = 0
    errors = 0
    issued = 0
    deadline = time.perf_counter() + seconds
    async with aiohttp.ClientSession(connector=connector) as session:
        # Warm-up: connections, caches.
        await asyncio.gather(
            *(one(session, url, key, model, tokens, stream, headers) for _ in range(concurrency))
        )

        async def worker():
            nonlocal tokens_seen, errors, issued
            while issued < total and time.perf_counter() < deadline:
                issued += 1
                latency, received, ok = await one(session, url, key, model, tokens, stream, headers)
                if ok:
                    latencies.append(latency)
                    tokens_seen += received
                else:
                    errors += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return {
        "concurrency": concurrency,
        "requests": len(latencies),
        "errors": errors,
        "rps": len(latencies) / elapsed,
        "tokens_per_s": tokens_seen / elapsed,
        "p50_ms": percentile(latencies, 0.5) * 1000,
        "p95_ms": percentile(latencies, 0.95) * 1000,
        "mean_ms": statistics.fmean(latencies) * 1000 if latencies else float("nan"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url")
    parser.add_argument("--key", default="sk-none")
    parser.add_argument("--model", default="fake-small")
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--stream", action="store_true")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 16, 64])
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--baseline", help="the fake upstream's own /v1 URL, measured first")
    parser.add_argument("--label", default="target")
    parser.add_argument(
        "--header",
        action="append",
        default=[],
        metavar="'NAME: VALUE'",
        help="a header for every request to the gateways (repeatable; not to --baseline)",
    )
    parser.add_argument(
        "--target",
        nargs=4,
        action="append",
        metavar=("LABEL", "URL", "KEY", "MODEL"),
        help="a gateway to measure (repeatable); replaces --url/--key/--model/--label",
    )
    parser.add_argument(
        "--modes",
        choices=["non-stream", "stream", "both"],
        help="default: stream with --stream, else non-stream",
    )
    args = parser.parse_args()
    headers = dict(h.split(":", 1) for h in args.header)
    headers = {name.strip(): value.strip() for name, value in headers.items()}
    targets = args.target or [(args.label, args.url, args.key, args.model)]
    if any(url is None for _label, url, _key, _model in targets):
        parser.error("give --url or --target")
    modes = {"both": [False, True], "stream": [True], "non-stream": [False]}[
        args.modes or ("stream" if args.stream else "non-stream")
    ]
    for stream in modes:
        mode = "stream" if stream else "non-stream"
        for concurrency in args.concurrency:
            base = None
            if args.baseline:
                base = asyncio.run(
                    run(
                        args.baseline,
                        "sk-none",
                        targets[0][3],
                        args.tokens,
                        stream,
                        concurrency,
                        args.requests,
                        args.seconds,
                    )
                )
                print(
                    f"{'upstream':8} {mode:10} c={concurrency:<3} {base['rps']:8.1f} req/s "
                    f"{base['tokens_per_s']:9.0f} tok/s p50 {base['p50_ms']:7.1f} ms "
                    f"p95 {base['p95_ms']:7.1f} ms",
                    flush=True,
                )
            for label, url, key, model in targets:
                result = asyncio.run(
                    run(
                        url,
                        key,
                        model,
                        args.tokens,
                        stream,
                        concurrency,
                        args.requests,
                        args.seconds,
                        headers,
                    )
                )
                line = (
                    f"{label:8} {mode:10} c={concurrency:<3} {result['rps']:8.1f} req/s "
                    f"{result['tokens_per_s']:9.0f} tok/s p50 {result['p50_ms']:7.1f} ms "
                    f"p95 {result['p95_ms']:7.1f} ms errors {result['errors']}"
                )
                if base:
                    line += (
                        f" | added p50 {result['p50_ms'] - base['p50_ms']:.1f} ms, "
                        f"p95 {result['p95_ms'] - base['p95_ms']:.1f} ms"
                    )
                print(line, flush=True)


if __name__ == "__main__":
    main()
