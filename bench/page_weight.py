"""What a cold load costs a visitor on a slow phone: the form vs the smallest Gradio app, and the owner's page.

    .venv/bin/python bench/page_weight.py [--runs 3]

Each app is served on 127.0.0.1 and loaded in Debian's chromium (Playwright) at 390 x 844, in a
fresh context with the cache off, throttled through the DevTools protocol as a phone on 3G:
`Network.emulateNetworkConditions` with Chrome's "Fast 3G" preset (562.5 ms latency, 1.44 Mbit/s
down, 675 kbit/s up) and `Emulation.setCPUThrottlingRate` 4 (a 4x slower CPU).

- requests, KB: every response of the load (until the network has been idle for 1 s), and the
  bytes on the wire (`encodedDataLength`, i.e. compressed as sent);
- usable: from navigation start until the page can be used: the minimal app's button and text box
  are drawn; the form's submit button and its five rating options are drawn; the owner's apply
  button is drawn;
- list: until the latest reviews (the form) or the owner's list are shown.
Times are in seconds. The apps are loaded in turns, one cold load each per round, the order
alternating from round to round (minimal first, then the form first...), so a change in the
machine's load hits both alike. The table gives medians of --runs rounds and, for "usable vs
minimal", the median of the per-round ratios (form / minimal of the same round) beside the
ratio of the medians; every round is printed, with the load average before and after.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import PYTHON, ROOT, median, stop_group, table

PASSWORD = "bench owner password"
VIEWPORT = {"width": 390, "height": 844}
FAST_3G = dict(offline=False, latency=562.5, downloadThroughput=1.6e6 / 8 * 0.9, uploadThroughput=750e3 / 8 * 0.9)
CPU_SLOWDOWN = 4
REVIEWS = 25  # the form shows the latest 10; the owner's page a page of them


@dataclass
class Target:
    name: str
    path: str
    usable: str  # a JS expression true once the page can be used
    listed: str | None = None  # true once the list of reviews shows
    owner: bool = False


MINIMAL = Target("minimal Gradio 6.31 app (Textbox + Button)", "/",
                 "!!document.querySelector('#send') && !!document.querySelector('#text textarea, #text input')")
FORM = Target("the form (public page)", "/",
              "!!document.querySelector('#submit') && document.querySelectorAll('#rating input[type=radio]').length === 5",
              "!!document.querySelector('#latest li.review, #latest .empty')")
OWNER = Target("the owner's page (logged in)", "/admin/",
               "!!document.querySelector('#admin-apply')",
               "!!document.querySelector('#admin-list [data-review], #admin-list .empty')", owner=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float = 90) -> None:
    import httpx
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{url} did not answer in {timeout:.0f} s")


def seed(data_dir: Path) -> None:
    from shared.store import Store
    from shared.reviews import validate
    store = Store(data_dir / "reviews.db")
    try:
        for i in range(REVIEWS):
            store.add(validate(f"Bench reviewer {i}", 1 + i % 5, "A comment about as long as a real one. " * (1 + i % 3)))
    finally:
        store.close()


def start(cmd: list[str], env: dict, log: Path) -> subprocess.Popen:
    return subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, **env}, stdout=log.open("w"),
                            stderr=subprocess.STDOUT, start_new_session=True)


def load_once(browser, base: str, target: Target) -> dict:
    context = browser.new_context(viewport=VIEWPORT)
    try:
        if target.owner:  # the login cookie first, unthrottled: the owner's page is what is measured
            r = context.request.post(base + "/admin/login", form={"username": "owner", "password": PASSWORD})
            assert r.ok, r.status
        page = context.new_page()
        cdp = context.new_cdp_session(page)
        cdp.send("Network.enable")
        cdp.send("Network.setCacheDisabled", {"cacheDisabled": True})
        cdp.send("Network.emulateNetworkConditions", FAST_3G)
        cdp.send("Emulation.setCPUThrottlingRate", {"rate": CPU_SLOWDOWN})
        sizes: dict[str, float] = {}
        cdp.on("Network.loadingFinished", lambda e: sizes.__setitem__(e["requestId"], e["encodedDataLength"]))
        page.goto(base + target.path, wait_until="commit", timeout=120_000)
        stamp = "() => ({cond}) ? performance.now() : false"
        usable = page.wait_for_function(stamp.format(cond=target.usable), polling="raf", timeout=120_000).json_value()
        listed = None
        if target.listed:
            listed = page.wait_for_function(stamp.format(cond=target.listed), polling="raf",
                                            timeout=120_000).json_value()
        quiet_since, count = time.monotonic(), len(sizes)
        while time.monotonic() - quiet_since < 1.5:  # until the network has been idle for a while
            page.wait_for_timeout(250)
            if len(sizes) != count:
                quiet_since, count = time.monotonic(), len(sizes)
        return {"requests": len(sizes), "kb": sum(sizes.values()) / 1000, "usable": usable / 1000,
                "listed": listed / 1000 if listed is not None else float("nan")}
    finally:
        context.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-owner", action="store_true", help="only the two public pages")
    parser.add_argument("--smoke", action="store_true", help="tiny and fast: the suite's smoke test (tests/test_bench_smoke.py)")
    args = parser.parse_args()
    if args.smoke:
        args.runs = 1
    targets = (MINIMAL, FORM) if args.no_owner else (MINIMAL, FORM, OWNER)
    from playwright.sync_api import sync_playwright

    from tests.browser_fixtures import CHROMIUM_ARGS, CHROMIUM_PATH

    load_before = loadavg()
    work = Path(tempfile.mkdtemp(prefix="page-weight-"))
    data = work / "data"
    data.mkdir()
    seed(data)
    minimal_port, form_port = free_port(), free_port()
    procs = [
        start([PYTHON, "bench/minimal_gradio_app.py"], {"GRADIO_SERVER_PORT": str(minimal_port)}, work / "minimal.log"),
        start([PYTHON, "-m", "web"], {"GRADIO_SERVER_PORT": str(form_port), "FEEDBACK_DATA_DIR": str(data),
                                      "ADMIN_PASSWORD": PASSWORD, "FEEDBACK_RATE_LIMIT_PER_MINUTE": "0"},
              work / "web.log"),
    ]
    try:
        bases = {MINIMAL.name: f"http://127.0.0.1:{minimal_port}", FORM.name: f"http://127.0.0.1:{form_port}",
                 OWNER.name: f"http://127.0.0.1:{form_port}"}
        for base in set(bases.values()):
            wait_http(base + "/")
        results: dict[str, list[dict]] = {t.name: [] for t in targets}
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM_PATH, args=CHROMIUM_ARGS)
            try:
                for target in targets:  # one warm-up each: server-side caches, not measured
                    load_once(browser, bases[target.name], target)
                for i in range(args.runs):
                    # Alternate who goes first: a load that builds up during a round
                    # then favours neither app.
                    for target in (targets if i % 2 == 0 else targets[::-1]):
                        results[target.name].append(load_once(browser, bases[target.name], target))
                    print(f"round {i + 1}: loadavg {loadavg()}  " + "  ".join(
                        f"{t.name.split(' (')[0]}: usable {results[t.name][-1]['usable']:.2f} s" for t in targets),
                        flush=True)
            finally:
                browser.close()
    finally:
        for p in procs:
            stop_group(p)
    load_after = loadavg()
    base = {k: median([r[k] for r in results[MINIMAL.name]]) for k in ("requests", "kb", "usable")}
    rows = []
    for target in targets:
        m = {k: median([r[k] for r in results[target.name]]) for k in ("requests", "kb", "usable", "listed")}
        ratios = [r["usable"] / b["usable"] for r, b in zip(results[target.name], results[MINIMAL.name])]
        rows.append([target.name, int(m["requests"]), round(m["kb"]), f"{m['kb'] / base['kb']:.2f}x",
                     m["usable"], f"{m['usable'] / base['usable']:.2f}x", f"{median(ratios):.2f}x",
                     " ".join(f"{x:.2f}" for x in ratios), m["listed"]])
    print(table(["cold load at 390 px, Fast 3G + 4x CPU", "requests", "KB", "KB vs minimal", "usable s",
                 "usable vs minimal (medians)", "median of per-round ratios", "per-round ratios",
                 "list shown s"], rows,
                title=f"median of {args.runs} rounds; loadavg before {load_before}, after {load_after} "
                      "(bench/page_weight.py)"))
    return 0


def loadavg() -> str:
    """The 1, 5 and 15 minute load averages: how busy the machine was (the times move with it)."""
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "n/a"


if __name__ == "__main__":
    raise SystemExit(main())
