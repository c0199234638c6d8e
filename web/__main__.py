"""`python -m web`: serve the form on GRADIO_SERVER_NAME:GRADIO_SERVER_PORT."""

from __future__ import annotations

import os
import sys

# Before gradio is imported: no phoning home (the machine may have no network).
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
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

    from shared.db import Store
    from web.app import build_app
    from web.gate import wait_for_worker
    from web.http_limits import BodySizeLimit

    if config.wait_for_worker:
        wait_for_worker(config, max_wait=config.restore_timeout_seconds + GATE_MARGIN_SECONDS)
    store = Store(config.db_path)
    app = FastAPI()
    if config.admin_password:
        from web.admin import build_admin, check_password

        app = gr.mount_gradio_app(app, build_admin(config, store), path="/admin", auth=check_password(config),
                                  auth_message="Owner's page: enter the admin password (any user name).")
    app = gr.mount_gradio_app(app, build_app(config, store), path="", footer_links=["api"])
    app.add_middleware(BodySizeLimit, max_bytes=config.max_request_bytes)
    log.info("web starting address=%s:%d db=%s", config.server_name, config.server_port, config.db_path)
    try:
        uvicorn.run(app, host=config.server_name, port=config.server_port, log_level="warning",
                    timeout_graceful_shutdown=5)
    finally:
        store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
