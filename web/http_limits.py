"""Cap the size of every request body before Gradio reads it.

A 10 MB comment must be refused at the door: Gradio would otherwise parse it
into memory (and copy it a few times) before our validation could say no.
"""

from __future__ import annotations

import json


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
        body = json.dumps({"error": f"Request too large: at most {self.max_bytes} bytes."}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"connection", b"close"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


class NoUploads:
    """404 for Gradio's file upload route: the form takes no files, and an open
    upload route would let anyone fill the disk 256 KiB at a time."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope.get("path", "").rstrip("/").endswith("/gradio_api/upload"):
            body = b'{"error": "Uploads are not accepted here."}'
            await send({"type": "http.response.start", "status": 404,
                        "headers": [(b"content-type", b"application/json"),
                                    (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})
            return
        await self.app(scope, receive, send)
