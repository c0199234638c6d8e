"""What reaches Gradio at all: a body size cap, a route allowlist, the owner's login gate.

A 10 MB comment must be refused at the door: Gradio would otherwise parse it
into memory (and copy it a few times) before our validation could say no.

Gradio serves many routes the form never uses (uploads, `process_recording`,
which ran ffmpeg on an anonymous file and served the result from `file=`,
streams, monitoring...). A blocklist misses the next one; the public app
answers only PUBLIC_ROUTES, found by loading the page, submitting and opening
"Use via API" in a browser (tests/test_harden_web.py and tests/test_browser.py check the page still works).

Every refusal a middleware of ours sends (here, streams, login_throttle, request_errors) is the
same small JSON reply, `json_error`.
"""

from __future__ import annotations

import json
import re
from typing import Callable, Iterable


async def json_error(send, status: int, message: str, *, headers: Iterable[tuple[bytes, bytes]] = (),
                     key: str = "error") -> None:
    """A whole JSON reply from a pure ASGI middleware: `{"error": message}`, the one shape of every
    refusal of ours (`key` "detail" where Gradio's own login form reads that one)."""
    body = json.dumps({key: message}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()), *headers]})
    await send({"type": "http.response.body", "body": body})


class BodySizeLimit:
    """Pure ASGI middleware: 413 for a body over `max_bytes`, declared or streamed."""

    def __init__(self, app, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        for key, value in scope.get("headers", []):
            if key == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0
                if declared > self.max_bytes:
                    return await self._reject(send)
        received = 0
        started = False   # the app has begun its response: too late for a 413
        answered = False  # we sent the 413: whatever the app sends now goes nowhere

        async def limited_receive():
            nonlocal received, answered
            if answered:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    # Answer now, and tell the app the client left, so it stops reading.
                    # (Raising here instead would be caught by the body parser: a 400.)
                    if not started:
                        answered = True
                        await self._reject(send)
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message):
            nonlocal started
            if answered:
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            if answered:
                return  # e.g. Starlette's ClientDisconnect from a route still reading: expected, the 413 is out
            raise

    async def _reject(self, send):
        await json_error(send, 413, f"Request too large: at most {self.max_bytes} bytes.",
                         headers=[(b"connection", b"close")])


# (methods, path) the public page and its two API calls use; everything else is 404.
PUBLIC_ROUTES: list[tuple[frozenset[str], re.Pattern]] = [
    (frozenset({"GET", "HEAD"}), re.compile(r"/")),
    (frozenset({"GET", "HEAD"}), re.compile(r"/(assets|static)/[^\x00]+")),
    (frozenset({"GET", "HEAD"}), re.compile(r"/(theme\.css|favicon\.ico|robots\.txt|config/?)")),
    (frozenset({"GET"}), re.compile(r"/gradio_api/info/?")),          # "Use via API" and API clients
    (frozenset({"POST"}), re.compile(r"/gradio_api/queue/join/?")),   # the page's submits and load
    (frozenset({"GET"}), re.compile(r"/gradio_api/queue/data/?")),    # their results (SSE)
    (frozenset({"GET"}), re.compile(r"/gradio_api/heartbeat/[^/]+")),
    (frozenset({"POST"}), re.compile(r"/gradio_api/call/(add_review|overview)/?")),  # the HTTP API
    (frozenset({"GET"}), re.compile(r"/gradio_api/call/(add_review|overview)/[^/]+")),
]
# The owner's page answers these without the login cookie: the login form and what it loads.
OWNER_PREFIX = "/admin"
OWNER_OPEN_ROUTES: list[tuple[frozenset[str], re.Pattern]] = [
    (frozenset({"GET", "HEAD"}), re.compile(r"/admin/?")),
    (frozenset({"GET", "HEAD"}), re.compile(r"/admin/(assets|static)/[^\x00]+")),
    (frozenset({"GET", "HEAD"}), re.compile(r"/admin/(theme\.css|favicon\.ico)")),
    (frozenset({"POST"}), re.compile(r"/admin/login/?")),
]
# Logout is a POST only: a GET could be sent by any other site (an <img src>), logging the owner out.
OWNER_LOGOUT = re.compile(r"/admin/logout/?")
# Sec-Fetch-Site, which browsers send with every request: a POST from another site is refused too.
FOREIGN_SITES = (b"cross-site", b"same-site")
# Never, login or not: the owner's page takes no files either.
OWNER_NEVER = re.compile(r"/admin/gradio_api/(upload|process_recording|stream)(/.*)?")


def _matches(routes, method: str, path: str) -> bool:
    return any(method in methods and pattern.fullmatch(path) for methods, pattern in routes)


class RouteAllowlist:
    """Pure ASGI middleware: the public app answers only PUBLIC_ROUTES; under /admin only the
    login form answers without a valid login (`logged_in(scope)`), every other route 401.
    Without an owner's page (`logged_in` None) /admin is simply not a route (404)."""

    def __init__(self, app, logged_in: Callable[[dict], bool] | None):
        self.app = app
        self.logged_in = logged_in

    async def __call__(self, scope, receive, send):
        if scope["type"] == "websocket":  # the form uses none (Gradio 6 streams over SSE)
            return await send({"type": "websocket.close", "code": 1008})
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        method = scope.get("method", "GET")
        path = scope.get("path", "/")
        owner = path == OWNER_PREFIX or path.startswith(OWNER_PREFIX + "/")
        if owner and self.logged_in is not None:
            if OWNER_NEVER.fullmatch(path):
                return await json_error(send, 404, "Not found.")
            logged_in = self.logged_in(scope)  # also ends an expired session (web/owner_session.py)
            if OWNER_LOGOUT.fullmatch(path):
                if method != "POST":
                    return await json_error(send, 405, "Log out with POST.", headers=[(b"allow", b"POST")])
                if dict(scope.get("headers", [])).get(b"sec-fetch-site") in FOREIGN_SITES:
                    return await json_error(send, 403, "Log out from the owner's page itself.")
                # Gradio's own logout route is a GET: the checked POST is handed to it as one.
                return await self.app(dict(scope, method="GET"), receive, _owner_cookie_path(send))
            if _matches(OWNER_OPEN_ROUTES, method, path) or path == OWNER_PREFIX or logged_in:
                return await self.app(scope, receive, _owner_cookie_path(send))
            return await json_error(send, 401, "Not authenticated.")
        if not owner and _matches(PUBLIC_ROUTES, method, path):
            return await self.app(scope, receive, send)
        return await json_error(send, 404, "Not found.")


_COOKIE_PATH = re.compile(rb"(?i)(;\s*path=)/(?=;|$)")


def _owner_cookie_path(send):
    """Gradio sets its login cookie with Path=/, so browsers would send it to the public app too.
    Narrowed to /admin here (login and logout alike), where the owner's page lives."""

    async def narrowed(message):
        if message["type"] == "http.response.start":
            message = dict(message, headers=[
                (k, _COOKIE_PATH.sub(rb"\1" + OWNER_PREFIX.encode(), v) if k.lower() == b"set-cookie" else v)
                for k, v in message.get("headers", [])])
        await send(message)

    return narrowed
