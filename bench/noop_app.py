"""The benchmark floor: the real form (`web.app.build_app`) over a store that does nothing.

    GRADIO_SERVER_PORT=7861 .venv/bin/python bench/noop_app.py [--like-web]

The page, its handlers and their outputs are the form's own (built by `build_app`, so the
floor cannot drift from the form): validation, the status line, the cleared inputs, the
latest-reviews list (HTML), the total, the average and the chart's DataFrame. Only the store is replaced: `add` stores
nothing and `latest`/`summary` return fixed rows and totals, so the difference to the real
app is the database (the insert and the two queries) plus how `python -m web` serves the
page. By default the floor is mounted the plainest way (`gr.mount_gradio_app` on a bare
FastAPI app: no middlewares, no blocked paths, no CSS, uvicorn's defaults); `--like-web`
serves it through `web.__main__.build_web`, exactly as `python -m web` serves the form (mount
arguments, middlewares, uvicorn settings), which separates the cost of the mount and
middlewares from the cost of the database.
The rate limiter is off (FEEDBACK_RATE_LIMIT_PER_MINUTE=0), as in the real app under load.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("GRADIO_ANALYTICS_MAX_EVENTS", "100")  # as web/__main__.py
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from shared.store import Summary
from shared.reviews import Review

ROWS = [(1000 - i, f"2025-01-01T12:00:{i:02d}.000Z", f"Person {i}", 1 + i % 5,
         "A fixed comment, about as long as a real one, so the payload has a realistic size.")
        for i in range(10)]
COUNTS = (80, 70, 150, 300, 400)
SUMMARY = Summary(total=sum(COUNTS), counts=COUNTS, max_id=1000, changes=1000, public_counts=COUNTS)


class _NoConnection:
    """Enough of a connection for `read_transaction`: it believes a transaction is open, so it issues nothing."""

    in_transaction = True

    def execute(self, sql: str, params=()):
        return iter(())  # no rows: e.g. the form's open/closed setting reads as "open"


class NoopStore:
    """The `Store` interface the public page uses, touching no database."""

    path = Path(os.devnull)

    def add(self, review: Review, *, pending: bool = False) -> int:
        return 1000

    def latest(self, limit: int = 10) -> list[tuple]:
        return ROWS[:limit]

    def summary(self) -> Summary:
        return SUMMARY

    def conn(self):
        return _NoConnection()

    def close(self) -> None:
        pass


def build_floor(like_web: bool):
    """(config, ASGI app, uvicorn keyword arguments) of the floor."""
    import gradio as gr
    from fastapi import FastAPI

    from shared.config import load_config
    from web.app import build_app

    # No spam checks on the floor: its store keeps nothing to compare a duplicate with. Its page still
    # signs and checks the load-time token (web/bot_guard.py), which needs a key in the data folder.
    config = load_config({**os.environ, "FEEDBACK_RATE_LIMIT_PER_MINUTE": "0", "FEEDBACK_MIN_SUBMIT_SECONDS": "0",
                          "FEEDBACK_DUPLICATE_WINDOW_SECONDS": "0", "FEEDBACK_MAX_LINKS": "1000",
                          "FEEDBACK_DATA_DIR": os.environ.get("FEEDBACK_DATA_DIR", "/tmp/noop-floor")})
    if like_web:
        from web.__main__ import build_web

        app, server, _ = build_web(config, NoopStore())
        return config, app, server
    app = gr.mount_gradio_app(FastAPI(), build_app(config, NoopStore()), path="")
    return config, app, dict(host=config.server_name, port=config.server_port, log_level="warning",
                             timeout_graceful_shutdown=5)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--like-web", action="store_true", help="served as web/__main__.py serves the form")
    parser.add_argument("--smoke", action="store_true", help="build both floors and exit (the suite's smoke test)")
    args = parser.parse_args()
    import uvicorn

    if args.smoke:
        for like_web in (False, True):
            build_floor(like_web)
        print("both floors built")
        return 0

    config, app, server = build_floor(args.like_web)
    print(f"no-op floor on http://{server['host']}:{server['port']} like_web={args.like_web}", flush=True)
    uvicorn.run(app, **server)
    return 0

if __name__ == "__main__":
    sys.exit(main())
