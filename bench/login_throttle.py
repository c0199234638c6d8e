"""Logins checked per 15 minutes per address, sequential and parallel (web/login_throttle.py).

Baseline (issue 19, before an attempt was counted before its check): 120 logins sent at once
from one address were all checked (119 x 400 + 1 x 200); about 25 guesses per 5 allowed, and
up to ~1,000 behind a proxy.

Here: the real app under supervisord, the default cool-down (300 s, 5 refused passwords per
15-minute window), a password that is never guessed. For one address:
- sequential: logins one after another until refused (429);
- parallel: --burst logins released at once (threads behind a barrier);
each also behind a proxy (hops 1, the client named in X-Forwarded-For, a forged left entry).
A refused login (429) was not checked; a 400 was. Per 15 minutes = checked per cool-down x 3
(a cool-down of 300 s, then the count starts afresh).

    .venv/bin/python bench/login_throttle.py [--burst 120]
"""

from __future__ import annotations

import sys
import tempfile
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from bench._common import parser as bench_parser  # noqa: E402
from bench._common import parse, report  # noqa: E402
from tests.apprunner import App  # noqa: E402
from web.login_throttle import FAILURE_WINDOW_SECONDS  # noqa: E402

PASSWORD = "bench-owner-password-never-guessed"


def client_for(source: str, headers: dict) -> httpx.Client:
    return httpx.Client(timeout=60, headers=headers, transport=httpx.HTTPTransport(local_address=source))


def sequential(url: str, source: str, headers: dict, limit: int = 30) -> tuple[int, int]:
    checked = refused = 0
    with client_for(source, headers) as client:
        for i in range(limit):
            code = client.post(url + "/admin/login", data={"username": "o", "password": f"seq-{i}"}).status_code
            checked += code in (400, 401)
            refused += code == 429
            if code == 429 and refused >= 3:
                break
    return checked, checked + refused


def parallel(url: str, source: str, headers: dict, n: int) -> tuple[int, int]:
    barrier = threading.Barrier(n)
    codes: list[int] = []

    def one(i):
        with client_for(source, headers) as client:
            barrier.wait()
            try:
                codes.append(client.post(url + "/admin/login",
                                         data={"username": "o", "password": f"par-{i}"}).status_code)
            except httpx.HTTPError:
                codes.append(0)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return sum(c in (400, 401) for c in codes), len(codes)


def main() -> int:
    parser = bench_parser(__doc__)
    parser.add_argument("--burst", type=int, default=120)
    args = parse(parser, smoke={"burst": 12})
    rows = []
    per_window = int(FAILURE_WINDOW_SECONDS // 300)
    for hops in (0, 1):
        with tempfile.TemporaryDirectory(prefix="bench-login-") as tmp:
            env = {"ADMIN_PASSWORD": PASSWORD, "FEEDBACK_TRUSTED_PROXY_HOPS": str(hops)}
            with App(Path(tmp) / "data", env=env) as app:
                for kind, address in (("sequential", 1), ("parallel", 2)):
                    if hops:
                        headers = {"x-forwarded-for": f"198.18.0.{address}, 203.0.113.{address}"}
                        source = "127.0.0.1"
                    else:
                        headers, source = {}, f"127.0.2.{address}"
                    if kind == "sequential":
                        checked, sent = sequential(app.url, source, headers)
                    else:
                        checked, sent = parallel(app.url, source, headers, args.burst)
                    rows.append([f"hops={hops}", kind, sent, checked, checked * per_window])
    report(["proxy", "logins", "sent", "checked (400)", "checked per 15 min"], rows,
           title="Owner logins checked per address (5 per 300 s cool-down)",
           baseline="(issue 19): 120 parallel logins from one address were all checked "
           "(119 x 400 + 1 x 200); ~25 guesses per 5 allowed, up to ~1,000 behind a proxy")
    return 0


if __name__ == "__main__":
    sys.exit(main())
