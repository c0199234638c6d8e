"""`python -m web`: serve the form on GRADIO_SERVER_NAME:GRADIO_SERVER_PORT."""

from __future__ import annotations

import os
import sys

# Before gradio is imported: no phoning home (the machine may have no network).
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
# Gradio's queue keeps a record of the last N events even with analytics off:
# bounded memory for a long-running form (see bench/web_rss.py).
os.environ.setdefault("GRADIO_ANALYTICS_MAX_EVENTS", "100")
# The web process must never hold the Hub token; supervisord.conf already
# strips it (`env -u`), this is the second lock on the door.
for _var in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"):
    os.environ.pop(_var, None)

from shared.config import ConfigError, load_config  # noqa: E402
from shared.logs import setup_logging  # noqa: E402

# How long the web waits for the worker's restore before opening anyway.
GATE_MARGIN_SECONDS = 60.0


def main() -> int:
    try:
        config = load_config()
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    log = setup_logging("web", config.log_level)

    import gradio as gr
    import uvicorn
    from fastapi import FastAPI
    from fastapi.responses import RedirectResponse

    from shared.db import Store
    from web.admin import CSS as ADMIN_CSS
    from web.admin import JS as ADMIN_JS
    from web.admin import build_admin, check_password, export_dir
    from web.app import CSS as PUBLIC_CSS
    from web.app import JS as PUBLIC_JS
    from web.app import build_app
    from web.gate import wait_for_worker
    from web.http_limits import BodySizeLimit, NoUploads

    if config.wait_for_worker:
        wait_for_worker(config, max_wait=config.restore_timeout_seconds + GATE_MARGIN_SECONDS)
    store = Store(config.db_path)
    app = FastAPI()
    if config.admin_password:
        # "/admin" without the slash would fall through to the public app (a 404): send it on.
        app.add_api_route("/admin", lambda: RedirectResponse("admin/"), include_in_schema=False)
        # Mounted before the public app: Starlette tries mounts in order, and "" matches everything.
        # run_history=False: the owner's results must not be kept in the browser's storage.
        app = gr.mount_gradio_app(app, build_admin(config, store), path="/admin", auth=check_password(config),
                                  auth_message="Owner's page: enter the admin password (any user name).",
                                  footer_links=[], run_history=False, css=ADMIN_CSS, js=ADMIN_JS)
    # Gradio's file route serves any file in its upload folder to whoever knows the path;
    # the owner's CSV exports live there, so the public app must refuse that folder.
    # run_history=False: on a shared computer, the next person must not find earlier reviews.
    app = gr.mount_gradio_app(app, build_app(config, store), path="", footer_links=["api"], run_history=False,
                              blocked_paths=[str(export_dir())], css=PUBLIC_CSS, js=PUBLIC_JS)
    app.add_middleware(BodySizeLimit, max_bytes=config.max_request_bytes)
    app.add_middleware(NoUploads)
    log.info("web starting address=%s:%d db=%s", config.server_name, config.server_port, config.db_path)
    try:
        uvicorn.run(app, host=config.server_name, port=config.server_port, log_level="warning",
                    timeout_graceful_shutdown=5)
    finally:
        store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
