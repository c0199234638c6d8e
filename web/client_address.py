"""Who is the client: the one rule for the rate limit, the login throttle and log lines.

FEEDBACK_TRUSTED_PROXY_HOPS says how many proxies stand in front of the app
(a Space has one). Each proxy appends the address it got the connection from
to X-Forwarded-For, so the client is the entry that many hops from the
RIGHT: everything to its left was written by the client itself and can never
change the key. With 0 hops (the default) the header is ignored and the
socket's peer is the client.

uvicorn's own proxy handling is switched off (`proxy_headers=False` in
web/__main__.py): with FORWARDED_ALLOW_IPS=* it took the LEFTMOST entry,
which any client can forge, so eight submits with eight forged addresses
all passed a limit of five.
"""

from __future__ import annotations

import ipaddress

MAX_ADDRESS_CHARS = 64  # a proxy's odd entry (e.g. "unknown") is kept, but bounded


def _normalise(entry: str) -> str:
    entry = entry.strip()
    candidates = [entry]
    if entry.startswith("[") and "]" in entry:  # "[2001:db8::1]:443"
        candidates.append(entry[1:entry.index("]")])
    elif entry.count(":") == 1:  # "203.0.113.9:5678"
        candidates.append(entry.split(":")[0])
    for candidate in candidates:
        try:
            return str(ipaddress.ip_address(candidate))
        except ValueError:
            continue
    return entry[:MAX_ADDRESS_CHARS] or "unknown"


def client_address(peer: str | None, forwarded_for: list[str], hops: int) -> str:
    """The client's address from the socket peer and the X-Forwarded-For header values (in order)."""
    if hops <= 0:
        return peer or "unknown"
    entries = [e for value in forwarded_for for e in value.split(",") if e.strip()]
    if not entries:
        return peer or "unknown"  # a request that did not come through the proxy
    # Fewer entries than hops: the leftmost one was still written by a proxy
    # (a client can only add entries on the left).
    return _normalise(entries[-hops] if len(entries) >= hops else entries[0])


class ClientAddress:
    """Pure ASGI middleware: put the client's address (by the rule above) in scope["client"],
    so Gradio's `request.client.host` and everything after it see the same address."""

    def __init__(self, app, hops: int):
        self.app = app
        self.hops = hops

    async def __call__(self, scope, receive, send):
        if scope["type"] in ("http", "websocket"):
            peer = scope.get("client")
            forwarded = [v.decode("latin-1") for k, v in scope.get("headers", []) if k == b"x-forwarded-for"]
            address = client_address(peer[0] if peer else None, forwarded, self.hops)
            scope = dict(scope, client=(address, peer[1] if peer and address == peer[0] else 0))
        await self.app(scope, receive, send)
