"""`python -m web`: serve the form on GRADIO_SERVER_NAME:GRADIO_SERVER_PORT."""

from __future__ import annotations

import logging
import os
import sys

# Before gradio is imported: no phoning home (the machine may have no network).
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
# Gradio's queue keeps a record of the last N events even with analytics off:
# bounded memory for a long-running form (see bench/web_rss.py).
os.environ.setdefault("GRADIO_ANALYTICS_MAX_EVENTS", "100")
# The web process must never hold the Hub token or the notifier's secrets; supervisord.conf
# already strips them (`env -u`), this is the second lock on the door.
for _var in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "NOTIFY_WEBHOOK_URL", "NOTIFY_SMTP_PASSWORD"):
    os.environ.pop(_var, None)
# uvicorn reads this to trust X-Forwarded-For, taking its leftmost (client-written) entry;
# the client's address is ours to work out (web/client_address.py, FEEDBACK_TRUSTED_PROXY_HOPS).
os.environ.pop("FORWARDED_ALLOW_IPS", None)

from shared.config import ConfigError, load_config  # noqa: E402
from shared.logs import setup_logging  # noqa: E402
from web.login_throttle import MAX_FAILURES as LOGIN_MAX_FAILURES  # noqa: E402

# How long the web waits for the worker's restore before opening anyway.
GATE_MARGIN_SECONDS = 60.0
ADMIN_AUTH_MESSAGE = ("Enter the admin password. After {failures} wrong "
                      "passwords, logins from your address are refused for {minutes} minute(s).")


def owner_login_check(app, config):
    """Whether a request carries a valid, unexpired login cookie of the owner's Gradio app (mounted
    at /admin; see web/owner_session.py).

    Gradio leaves some routes of a mounted app open (heartbeat, app_id, token, manifest.json,
    openapi.json, POST reset...); web/http_limits.py asks this before letting any of them through."""
    from starlette.routing import Mount

    from web.owner_session import OwnerSessions

    owner = next(r.app for r in app.routes if isinstance(r, Mount) and r.path == "/admin")
    names = (f"access-token-{owner.cookie_id}", f"access-token-unsecure-{owner.cookie_id}")
    return OwnerSessions(owner.tokens, names, config.owner_session_idle_seconds,
                         config.owner_session_max_seconds).logged_in


def build_web(config, store):
    """The ASGI app and uvicorn's settings, exactly as `python -m web` serves the form.

    Returns (app, uvicorn keyword arguments, (open_files, max_connections, per_client)).
    bench/noop_app.py --like-web serves its floor through this too, so the two cannot drift."""
    import gradio as gr
    from fastapi import FastAPI
    from fastapi.responses import RedirectResponse
    from starlette.middleware.gzip import GZipMiddleware

    from web.admin import CSS as ADMIN_CSS
    from web.admin import JS as ADMIN_JS
    from web.admin import build_admin, check_password, export_dir
    from web.app import CSS as PUBLIC_CSS
    from web.app import JS as PUBLIC_JS
    from web.app import build_app, quiet_input_count_check, theme
    from web.client_address import ClientAddress
    from web.connections import (BACKLOG, KEEP_ALIVE_SECONDS, MAX_HEADER_BYTES, REQUEST_HEADER_TIMEOUT_SECONDS,
                                 connection_limits, guarded_protocol, raise_open_file_limit)
    from web.http_limits import BodySizeLimit, RouteAllowlist
    from web.login_page import OwnerLoginPage
    from web.login_throttle import Failures, LoginThrottle
    from web.preload import PreloadLinks
    from web.public_url import PublicOrigin
    from web.request_errors import OneLineErrors
    from web.streams import StreamLimit

    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)  # no schema pages of our own
    owner_logged_in = None
    if config.admin_password:
        # "/admin" without the slash would fall through to the public app (a 404): send it on.
        app.add_api_route("/admin", lambda: RedirectResponse("admin/"), include_in_schema=False)
        # Mounted before the public app: Starlette tries mounts in order, and "" matches everything.
        # run_history=False: the owner's results must not be kept in the browser's storage.
        auth_message = ADMIN_AUTH_MESSAGE.format(failures=LOGIN_MAX_FAILURES,
                                                 minutes=max(1, round(config.login_cooldown_seconds / 60)))
        # allowed_paths: the owner's CSV exports, in a folder of this instance's own (web/admin.py export_dir).
        app = gr.mount_gradio_app(app, quiet_input_count_check(build_admin(config, store)), path="/admin",
                                  auth=check_password(config), auth_message=auth_message,
                                  footer_links=[], run_history=False, css=ADMIN_CSS, js=ADMIN_JS,
                                  allowed_paths=[str(export_dir(config.data_dir))], theme=theme())
        owner_logged_in = owner_login_check(app, config)
    # Gradio's file route serves files to whoever knows the path: the public app refuses the data
    # folder (the database, the owner's CSV exports) even if its route allowlist were opened up.
    # run_history=False: on a shared computer, the next person must not find earlier reviews.
    app = gr.mount_gradio_app(app, build_app(config, store), path="", footer_links=["api"], run_history=False,
                              blocked_paths=[str(export_dir(config.data_dir)), str(config.data_dir)],
                              css=PUBLIC_CSS, js=PUBLIC_JS, theme=theme())
    # Innermost: the page's HTML and JSON compressed (its config holds the components and CSS, ~45 KB;
    # ~10 KB gzipped, a quarter second on 3G). Starlette leaves event streams and responses that
    # are already compressed (Gradio's assets) as they are.
    app.add_middleware(GZipMiddleware, minimum_size=1024)
    # The HTML component's code requested with the page, not a round trip later (see web/preload.py).
    app.add_middleware(PreloadLinks)
    if owner_logged_in is not None:  # our own login form at /admin/ (see web/login_page.py)
        app.add_middleware(OwnerLoginPage, logged_in=owner_logged_in, auth_message=auth_message)
    # Outermost last: the client's address first, our own address (web/public_url.py), one-line errors, the allowlist, the stream caps,
    # the login throttle, the size cap.
    app.add_middleware(BodySizeLimit, max_bytes=config.max_request_bytes)
    app.add_middleware(LoginThrottle, failures=Failures(config.login_cooldown_seconds))
    app.add_middleware(StreamLimit, lifetime=config.stream_max_seconds,
                       owner_lifetime=config.owner_session_max_seconds)
    app.add_middleware(RouteAllowlist, logged_in=owner_logged_in)
    app.add_middleware(OneLineErrors)
    app.add_middleware(PublicOrigin, public_url=config.public_url)
    app.add_middleware(ClientAddress, hops=config.trusted_proxy_hops)
    open_files = raise_open_file_limit()
    max_connections, per_client = connection_limits(open_files)
    if config.trusted_proxy_hops:
        # Every socket comes from the proxy: only the total is capped here; streams, the one kind of
        # request that holds a connection for long, are capped per client in web/streams.py.
        per_client = None
    # proxy_headers=False: X-Forwarded-For is read by ClientAddress alone (see web/client_address.py).
    # log_config=None: uvicorn's lines go through our handler (key=value, repeat filter) to web.log.
    # limit_concurrency: requests beyond it get 503 rather than queueing without bound.
    server = dict(host=config.server_name, port=config.server_port, log_level="warning", log_config=None,
                  timeout_graceful_shutdown=5, proxy_headers=False, forwarded_allow_ips="",
                  http=guarded_protocol(max_connections, per_client, REQUEST_HEADER_TIMEOUT_SECONDS),
                  timeout_keep_alive=KEEP_ALIVE_SECONDS, limit_concurrency=max_connections,
                  h11_max_incomplete_event_size=MAX_HEADER_BYTES, backlog=BACKLOG)
    return app, server, (open_files, max_connections, per_client)


def main() -> int:
    try:
        config = load_config()
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    # INFO lines are limited too: "rate limited" is written per refused submit, which a client repeats at will.
    log = setup_logging("web", config.log_level, repeat_min_level=logging.INFO)

    import uvicorn

    from shared.store import Store
    from web.gate import wait_for_worker

    if config.wait_for_worker:
        wait_for_worker(config, max_wait=config.restore_timeout_seconds + GATE_MARGIN_SECONDS)
    store = Store(config.db_path)
    try:
        app, server, (open_files, max_connections, per_client) = build_web(config, store)
        log.info("web starting address=%s:%d public_url=%s db=%s trusted_proxy_hops=%d open_file_limit=%d "
                 "max_connections=%d max_per_client=%s", config.server_name, config.server_port, config.public_url,
                 config.db_path, config.trusted_proxy_hops, open_files, max_connections, per_client or "off")
        uvicorn.run(app, **server)
    finally:
        store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
