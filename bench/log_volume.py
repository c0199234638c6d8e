"""Log bytes a day under the worst anonymous requests (web/request_errors.py, shared/logs.py RepeatFilter).

Baseline (issue 19): an unknown session_hash on /gradio_api/queue/data, or a made-up event id
on /gradio_api/call/overview/<id>, logged a 7.5 KB traceback each: ~54 MB a day at 5 a minute,
against 60 MB of web logs kept (6 x 10 MB), so a day of requests rotated every older line out.

Here: the real app under supervisord. For each kind of anonymous request that writes a line,
one address sends it --rate times a second for --seconds (longer than the repeat filter's
60 s window, so a window rolls over), and the growth of web.log + web.err.log is measured.
Bytes a day = that growth scaled to 24 h at the same rate, from one address; N addresses
cost N times that (the repeat key includes the client, so each address's refusals are logged).

    .venv/bin/python bench/log_volume.py [--seconds 65] [--rate 5]
"""

from __future__ import annotations

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

SOURCE = "127.0.3.1"


def raw(port: int, payload: bytes) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=5, source_address=(SOURCE, 0)) as s:
        s.sendall(payload)
        try:
            s.recv(200)
        except OSError:
            pass


def kinds(url: str, port: int, client: httpx.Client):
    return {
        "unknown session_hash on queue/data": lambda i: client.get(url + "/gradio_api/queue/data",
                                                                   params={"session_hash": f"nope{i}"}),
        "made-up event id on call/overview": lambda i: client.get(url + f"/gradio_api/call/overview/nope{i}"),
        "wrong owner password": lambda i: client.post(url + "/admin/login", data={"username": "x", "password": f"{i}"}),
        "bare LF in the request head": lambda i: raw(port, b"GET / HTTP/1.1\nHost: x\n\n"),
        "120 KB request head": lambda i: raw(port, b"GET / HTTP/1.1\r\nX: " + b"a" * 120_000 + b"\r\n\r\n"),
    }


def log_bytes(app: App) -> int:
    return sum(p.stat().st_size for p in (app.data_dir / "logs").glob("web*.log*"))


def main() -> int:
    parser = bench_parser(__doc__)
    parser.add_argument("--seconds", type=float, default=65.0)
    parser.add_argument("--rate", type=float, default=5.0)
    args = parse(parser, smoke={"seconds": 3.0})
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-logs-") as tmp:
        env = {"ADMIN_PASSWORD": "bench-never-guessed", "FEEDBACK_LOGIN_COOLDOWN_SECONDS": "1",
               "FEEDBACK_RATE_LIMIT_PER_MINUTE": "0"}
        with App(Path(tmp) / "data", env=env) as app, \
                httpx.Client(timeout=10, transport=httpx.HTTPTransport(local_address=SOURCE)) as client:
            for name, send in kinds(app.url, app.port, client).items():
                time.sleep(2)
                before, sent = log_bytes(app), 0
                started = time.monotonic()
                while time.monotonic() - started < args.seconds:
                    try:
                        send(sent)
                    except (httpx.HTTPError, OSError):
                        pass
                    sent += 1
                    time.sleep(max(0.0, started + sent / args.rate - time.monotonic()))
                time.sleep(2)  # supervisord copies the output on its own schedule
                grown = log_bytes(app) - before
                per_day = grown * 86400 / args.seconds
                rows.append([name, sent, grown, round(grown / sent), f"{per_day / 1e6:.2f} MB"])
    report(["anonymous request (one address)", "sent", "log bytes", "bytes/request", "per day at this rate"],
           rows, title=f"Web log growth, {args.rate:g} requests/s for {args.seconds:g} s",
           baseline="(issue 19): 7.5 KB traceback per bogus queue/data or call id; ~54 MB a day at 5 a minute; "
           "60 MB of web logs kept")
    return 0


if __name__ == "__main__":
    sys.exit(main())
