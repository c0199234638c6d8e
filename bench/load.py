"""A bounded load generator for the form's HTTP API, with raw httpx (not gradio_client).

    .venv/bin/python bench/load.py --url http://127.0.0.1:7860 [--concurrency 1,8,32]
                                   [--requests 400] [--timeout 30] [--max-seconds 60]

One request = POST /gradio_api/call/add_review {"data": [name, rating, comments]} -> event_id,
then GET /gradio_api/call/add_review/{event_id}, reading the SSE stream until `event: complete`
(ok) or `event: error` (counted as an error). Latency is the time of the pair.

Each concurrency level runs `--requests` requests in total on that many threads, each with its
own keep-alive httpx.Client, after a short warm-up (not counted); a level also stops at
--max-seconds. Bounded in count and in time, to 127.0.0.1 only.

Each thread is one visitor with a source address of its own (127.0.1.N, N = thread + 1: all of
127/8 is loopback): the web caps event streams per client address (web/streams.py, 16), which
32 threads from one address would hit, as 32 visitors do not. The real app also has a
per-client rate limit: run it with FEEDBACK_RATE_LIMIT_PER_MINUTE=0.

As a library: `run_level(url, concurrency, requests)` -> LevelResult (req/s, p50/p95/p99 ms,
errors); `run(url, levels, requests)` -> list of them.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import table

API = "add_review"
WORDS = "the form was easy quick slow great fine bad thanks page phone support price delivery".split()


@dataclass
class LevelResult:
    concurrency: int
    requests: int          # attempted (counted)
    ok: int
    errors: int
    seconds: float
    latencies_ms: list[float] = field(repr=False, default_factory=list)  # of the ok requests
    error_samples: list[str] = field(default_factory=list)
    client_cpu_s: float = 0.0  # CPU of this load generator during the level (it shares the machine)

    @property
    def rps(self) -> float:
        return self.ok / self.seconds if self.seconds > 0 else 0.0

    def pct(self, q: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        s = sorted(self.latencies_ms)
        return s[min(len(s) - 1, int(q * (len(s) - 1) + 0.5))]

    @property
    def p50(self) -> float:
        return self.pct(0.50)

    @property
    def p95(self) -> float:
        return self.pct(0.95)

    @property
    def p99(self) -> float:
        return self.pct(0.99)


def _check_local(url: str) -> None:
    host = urlparse(url).hostname
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit(f"refusing to load {host}: this tool only targets 127.0.0.1")


def one_request(client: httpx.Client, url: str, data: list) -> tuple[bool, str]:
    """(ok, error text). Raises httpx errors (timeouts, refused) to the caller."""
    r = client.post(f"{url}/gradio_api/call/{API}", json={"data": data})
    if r.status_code != 200:
        return False, f"POST {r.status_code}: {r.text[:120]}"
    event_id = r.json()["event_id"]
    event = None
    with client.stream("GET", f"{url}/gradio_api/call/{API}/{event_id}") as stream:
        if stream.status_code != 200:
            return False, f"GET {stream.status_code}"
        for line in stream.iter_lines():
            if line.startswith("event:"):
                event = line.split(":", 1)[1].strip()
            elif line.startswith("data:") and event in ("complete", "error"):
                if event == "complete":
                    return True, ""
                payload = line.split(":", 1)[1].strip()
                try:
                    parsed = json.loads(payload) if payload and payload != "null" else None
                except ValueError:
                    parsed = payload
                message = parsed.get("error") if isinstance(parsed, dict) else parsed
                return False, f"event: error {str(message)[:120]}"
    return False, "stream ended without a result"


def review_inputs(rng: random.Random) -> list:
    return [rng.choice(["Anna", "Ben", "", "Chloé Dubois", "@bench"]), rng.randint(1, 5),
            " ".join(rng.choices(WORDS, k=rng.randint(3, 25)))]


def run_level(url: str, concurrency: int, requests: int, *, timeout: float = 30.0,
              max_seconds: float = 120.0, warmup: int | None = None, seed: int = 1,
              send=None) -> LevelResult:
    """Send `requests` requests on `concurrency` threads (bounded by `max_seconds`).

    `send(client, url, data) -> (ok, error)`: one submit; the API's add_review by default."""
    send = send or one_request
    _check_local(url)
    url = url.rstrip("/")
    warmup = concurrency if warmup is None else warmup
    lock = threading.Lock()
    tickets = {"warm": warmup, "left": requests}
    latencies: list[float] = []
    errors: list[str] = []
    attempted = [0]
    start_barrier = threading.Barrier(concurrency + 1)
    go = threading.Event()
    deadline = [0.0]

    def worker(idx: int) -> None:
        rng = random.Random(seed * 1000 + idx)
        limits = httpx.Limits(max_connections=2, max_keepalive_connections=2)
        transport = httpx.HTTPTransport(local_address=f"127.0.1.{1 + idx % 250}", limits=limits)
        with httpx.Client(timeout=timeout, transport=transport) as client:
            # warm-up: connections open, the server's first-call costs paid, not counted
            while True:
                with lock:
                    if tickets["warm"] <= 0:
                        break
                    tickets["warm"] -= 1
                try:
                    send(client, url, review_inputs(rng))
                except Exception:  # noqa: BLE001 - warm-up only; the counted part reports errors
                    pass
            start_barrier.wait()
            go.wait()
            while time.perf_counter() < deadline[0]:
                with lock:
                    if tickets["left"] <= 0:
                        return
                    tickets["left"] -= 1
                    attempted[0] += 1
                t0 = time.perf_counter()
                try:
                    ok, err = send(client, url, review_inputs(rng))
                except (httpx.HTTPError, ValueError, KeyError) as exc:
                    ok, err = False, f"{type(exc).__name__}: {str(exc)[:100]}"
                ms = (time.perf_counter() - t0) * 1e3
                with lock:
                    if ok:
                        latencies.append(ms)
                    else:
                        errors.append(err)

    threads = [threading.Thread(target=worker, args=(i,), daemon=True, name=f"load-{i}") for i in range(concurrency)]
    for t in threads:
        t.start()
    start_barrier.wait(timeout=max_seconds + timeout)
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    deadline[0] = t0 + max_seconds
    go.set()
    for t in threads:
        t.join(timeout=max_seconds + timeout + 5)
    elapsed = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    samples = sorted(set(errors))[:5]
    return LevelResult(concurrency=concurrency, requests=attempted[0], ok=len(latencies), errors=len(errors),
                       seconds=elapsed, latencies_ms=latencies, error_samples=samples, client_cpu_s=cpu)


def run(url: str, levels: list[int], requests: int, **kwargs) -> list[LevelResult]:
    return [run_level(url, c, requests, **kwargs) for c in levels]


def result_rows(results: list[LevelResult], label: str = "") -> list[list]:
    return [[label, r.concurrency, r.ok, r.errors, r.rps, r.p50, r.p95, r.p99, r.seconds, r.client_cpu_s]
            for r in results]


HEADERS = ["target", "concurrency", "ok", "errors", "req/s", "p50 ms", "p95 ms", "p99 ms", "seconds", "client CPU s"]


def smoke() -> int:
    import os

    from bench._common import OUT, PYTHON, Server

    OUT.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "FEEDBACK_", "GRADIO_"))}
    with Server("floor", [PYTHON, "bench/noop_app.py"], {**env, "GRADIO_ANALYTICS_ENABLED": "False"},
                OUT / "load-smoke.log") as server:
        results = run(server.url, [2], 10, max_seconds=60)
    print(table(HEADERS, result_rows(results, "floor"), title=f"POST+SSE {API}, smoke"))
    return 1 if any(r.ok == 0 or r.errors for r in results) else 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--url", default="http://127.0.0.1:7860")
    p.add_argument("--concurrency", default="1,8,32", help="comma-separated levels")
    p.add_argument("--requests", type=int, default=400, help="requests per level (total, all threads)")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds per HTTP call")
    p.add_argument("--max-seconds", type=float, default=60.0, help="time bound per level")
    p.add_argument("--smoke", action="store_true",
                   help="start the floor (bench/noop_app.py) and send it 10 requests at c=2 (the suite's smoke test)")
    args = p.parse_args(argv)
    if args.smoke:
        return smoke()
    levels = [int(c) for c in args.concurrency.split(",")]
    if any(c < 1 or c > 256 for c in levels) or not 1 <= args.requests <= 100_000:
        p.error("concurrency must be 1..256 and requests 1..100000")
    results = run(args.url, levels, args.requests, timeout=args.timeout, max_seconds=args.max_seconds)
    print(table(HEADERS, result_rows(results, args.url), title=f"POST+SSE {API}, {args.requests} requests per level"))
    for r in results:
        for e in r.error_samples:
            print(f"  c={r.concurrency} error: {e}")
    return 1 if any(r.ok == 0 for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
