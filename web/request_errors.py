"""An exception from a request is one log line, not a traceback.

Anyone can make Gradio raise: an unknown `session_hash` on /gradio_api/queue/data or a
made-up event id on /gradio_api/call/<fn>/<id> raised from inside the event stream,
and uvicorn logged "Exception in ASGI application" with a 7.5 KB traceback each
time: at 5 a minute, ~54 MB a day against 60 MB of logs kept.

Here every exception that leaves the app is logged once, as one line with the
client, the route and the error, each escaped (`q`), plus the file and line it came
from; the line goes through the repeat filter per client (shared/logs.py). If no
response has started the client gets a plain 500; a stream already started is
ended cleanly. uvicorn then has nothing left to log.
"""

from __future__ import annotations

import logging
import traceback

from shared.logs import q
from web.http_limits import json_error

log = logging.getLogger("web.errors")

FAILED_MESSAGE = "Something went wrong on our side."


def _where(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return "?"
    last = frames[-1]
    return f"{last.filename.rsplit('/site-packages/', 1)[-1]}:{last.lineno}"


class ResponseWatch:
    """Passes an app's messages on to `send` and remembers how far the response got, so a
    middleware that ends a request early knows whether to start a response or only to close it."""

    def __init__(self, send):
        self._send = send
        self.started = self.finished = False

    async def send(self, message) -> None:
        if message["type"] == "http.response.start":
            self.started = True
        elif message["type"] == "http.response.body" and not message.get("more_body", False):
            self.finished = True
        await self._send(message)


class OneLineErrors:
    """Pure ASGI middleware; the outermost one but ClientAddress, so the line names the client."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        response = ResponseWatch(send)
        try:
            await self.app(scope, receive, response.send)
        except Exception as exc:  # noqa: BLE001 - whatever Gradio raises: one line, never a traceback
            cause = exc.__cause__ or exc.__context__
            shown = cause if cause is not None and "response already started" in str(exc) else exc
            # A refusal Gradio raised (404 for an unknown session) is the client's doing: a warning.
            level = logging.WARNING if 400 <= getattr(shown, "status_code", 500) < 500 else logging.ERROR
            log.log(level, "request failed client=%s method=%s path=%s error=%s where=%s",
                      q((scope.get("client") or ("unknown",))[0]), q(scope.get("method")), q(scope.get("path")),
                      q(f"{type(shown).__name__}: {shown}"), q(_where(shown)))
            try:
                if not response.started:
                    await json_error(send, 500, FAILED_MESSAGE)
                elif not response.finished:
                    await send({"type": "http.response.body", "body": b"", "more_body": False})
            except Exception:  # noqa: BLE001 - the client left: nothing more to say
                pass
