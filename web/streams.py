"""Long-lived responses (event streams) get their own caps and a lifetime.

A stream holds its connection for as long as it runs: `GET /gradio_api/heartbeat/<id>`
writes "ALIVE" every 15 s for ever, and `queue/data` and `call/<fn>/<id>` stay open
while an event is pending. 999 heartbeats from 9 addresses took every connection
slot (the form answered 503 to everyone), and behind a proxy, where the socket's
peer is the proxy, there was no per-address cap at all.

So, at the ASGI layer, where the client's address is the one web/client_address.py
computed (the proxy rule included):
- at most `per_client` streams open per client address and `total` in all; one
  more gets a 503 at once. `total` is kept well under the connection cap
  (web/connections.py), so streams alone can never take every slot: ordinary
  requests (the page, /config, a submit) still find one;
- a stream ends after `lifetime` seconds (the response is closed cleanly, as the
  end of a chunked body). The public page opens no heartbeat (it keeps no
  session state) and its result streams last well under a second; the owner's
  page, behind the login, gets `owner_lifetime` (its session's absolute limit).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections import Counter

from shared.logs import q
from web.http_limits import json_error
from web.request_errors import ResponseWatch

log = logging.getLogger("web.streams")

# A browser tab of the form holds at most one result stream while a submit runs, and a
# heartbeat only on the owner's page: 16 per address leaves room for an office behind one NAT.
MAX_STREAMS_PER_CLIENT = 16
# Half the connection cap (web/connections.py MAX_CONNECTIONS): the other half is for ordinary requests.
MAX_STREAMS = 500
# A public stream carries one submit's result: seconds. Five minutes covers a queue under load
# (FEEDBACK_STREAM_MAX_SECONDS, shared/config.py).
STREAM_LIFETIME_SECONDS = 300.0

STREAM_PATHS = re.compile(r"(/admin)?/gradio_api/(heartbeat/[^/]+|queue/data/?|call/[^/]+/[^/]+)")

BUSY_MESSAGE = "Too many open streams from your address; close some and try again."


class StreamLimit:
    """Pure ASGI middleware; must sit inside ClientAddress (scope["client"] is the computed client)."""

    def __init__(self, app, per_client: int = MAX_STREAMS_PER_CLIENT, total: int = MAX_STREAMS,
                 lifetime: float = STREAM_LIFETIME_SECONDS, owner_lifetime: float | None = None):
        self.app = app
        self.per_client, self.total = per_client, total
        self.lifetime = lifetime
        self.owner_lifetime = owner_lifetime or lifetime
        self.open: Counter[str] = Counter()
        self.open_total = 0

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope.get("method") != "GET" or not STREAM_PATHS.fullmatch(scope.get("path", "")):
            return await self.app(scope, receive, send)
        client = (scope.get("client") or ("unknown", 0))[0]
        if self.open_total >= self.total or self.open[client] >= self.per_client:
            log.warning("stream refused client=%s reason=%s", q(client),
                        "total_cap" if self.open_total >= self.total else "client_cap")
            return await json_error(send, 503, BUSY_MESSAGE, headers=[(b"retry-after", b"10")])
        self.open[client] += 1
        self.open_total += 1
        lifetime = self.owner_lifetime if scope["path"].startswith("/admin/") else self.lifetime
        response = ResponseWatch(send)
        try:
            await asyncio.wait_for(self.app(scope, receive, response.send), lifetime)
        except TimeoutError:
            log.info("stream closed client=%s reason=lifetime seconds=%d", q(client), lifetime)
            if not response.started:
                await send({"type": "http.response.start", "status": 504, "headers": [(b"content-length", b"0")]})
            if not response.finished:
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            self.open_total -= 1
            self.open[client] -= 1
            if self.open[client] <= 0:
                del self.open[client]
