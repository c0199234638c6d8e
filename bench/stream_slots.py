"""Connection slots that event streams hold: one address, and all addresses, with and without a proxy.

Baseline (issue 19, before the stream caps): one `curl -N` heartbeat stayed open 12 minutes;
999 heartbeat streams from 9 addresses took every slot (GET /config: 503 for everyone);
behind a proxy (hops 1) 1,100 streams from one address shut everyone out.

Here: the real app under supervisord, once with FEEDBACK_TRUSTED_PROXY_HOPS=0 (streams from
127.0.0.x source addresses) and once with 1 (all sockets from 127.0.0.1, the client named in
X-Forwarded-For, as a proxy would). For each: how many heartbeat streams one address gets
open, how many all addresses together get, and whether a fresh client still gets /config
(and how fast) while they are held. Bounded: at most --per-address x --addresses sockets
(default 40 x 40 = 1,600), held a few seconds.

    .venv/bin/python bench/stream_slots.py [--addresses 40] [--per-address 40]
"""

from __future__ import annotations

import resource
import socket
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from bench._common import parser as bench_parser  # noqa: E402
from bench._common import parse, report  # noqa: E402
from tests.apprunner import App  # noqa: E402


def open_stream(port: int, i: int, source: str, forwarded: str | None) -> tuple[socket.socket, bool]:
    s = socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(source, 0))
    extra = f"X-Forwarded-For: {forwarded}\r\n" if forwarded else ""
    s.sendall(f"GET /gradio_api/heartbeat/bench{i} HTTP/1.1\r\nHost: x\r\n{extra}\r\n".encode())
    status = s.recv(4096).split(b"\r\n", 1)[0]
    return s, status == b"HTTP/1.1 200 OK"


def probe(url: str, forwarded: str | None) -> tuple[int, float]:
    headers = {"x-forwarded-for": forwarded} if forwarded else {}
    with httpx.Client(timeout=15, headers=headers,
                      transport=httpx.HTTPTransport(local_address="127.0.0.254")) as client:
        started = time.perf_counter()
        try:
            code = client.get(url + "/config").status_code
        except httpx.HTTPError:
            code = 0
        return code, (time.perf_counter() - started) * 1000


def measure(hops: int, addresses: int, per_address: int) -> list[list]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-streams-") as tmp:
        env = {"FEEDBACK_TRUSTED_PROXY_HOPS": str(hops), "FEEDBACK_RATE_LIMIT_PER_MINUTE": "0"}
        with App(Path(tmp) / "data", env=env) as app:
            def who(a: int) -> tuple[str, str | None]:
                if hops:
                    return "127.0.0.1", f"198.18.0.1, 203.0.113.{a + 1}"  # left entry: forged, ignored
                return f"127.0.1.{a + 1}", None

            # One address alone.
            held, opened = [], 0
            source, fwd = who(0)
            for i in range(per_address):
                s, ok = open_stream(app.port, i, source, fwd)
                held.append(s)
                opened += ok
            code, ms = probe(app.url, "203.0.113.254" if hops else None)
            rows.append([f"hops={hops}", "one address", per_address, opened, code, round(ms)])
            for s in held:
                s.close()
            time.sleep(2)
            # Every address at once.
            held, opened = [], 0
            for a in range(addresses):
                source, fwd = who(a)
                for i in range(per_address):
                    s, ok = open_stream(app.port, a * per_address + i, source, fwd)
                    held.append(s)
                    opened += ok
            code, ms = probe(app.url, "203.0.113.254" if hops else None)
            rows.append([f"hops={hops}", f"{addresses} addresses", addresses * per_address, opened, code, round(ms)])
            for s in held:
                s.close()
    return rows


def main() -> int:
    parser = bench_parser(__doc__)
    parser.add_argument("--addresses", type=int, default=40)
    parser.add_argument("--per-address", type=int, default=40)
    args = parse(parser, smoke={"addresses": 3, "per_address": 3})
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    rows = measure(0, args.addresses, args.per_address) + measure(1, args.addresses, args.per_address)
    report(["proxy", "streams from", "asked", "held open", "GET /config from a new client", "its ms"], rows,
           title="Heartbeat streams held (web/streams.py caps: 16 per client, 500 in all)",
           baseline="(issue 19, before the caps): 999 streams from 9 addresses held every slot, /config 503; "
           "behind a proxy 1,100 streams from one address held every slot; a stream stayed open 12+ minutes "
           "(now FEEDBACK_STREAM_MAX_SECONDS, 300 s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
