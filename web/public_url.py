"""The form's own address comes from the configuration, never from the request.

Gradio builds the root URL it writes into /config, the page's embedded config and
the "Use via API" snippets from the request: X-Forwarded-Host, X-Gradio-Server and
X-Forwarded-Proto when present, else the Host header. Anyone can send those, with
any number of proxy hops, so a shared cache in front could keep and serve a page
whose API calls go to another site.

Gradio's own way out (`root_path` set to a full URL) also becomes the mounted
app's ASGI root_path, which breaks the routing of the owner's app at /admin. So
this middleware gives Gradio a request that names only our address: Host is
replaced by the configured one (FEEDBACK_PUBLIC_URL, shared/config.py), the
scheme set from it, and the forwarding headers that name a host or a scheme are
dropped (X-Forwarded-For stays: web/client_address.py reads it).
"""

from __future__ import annotations

from urllib.parse import urlsplit

DROPPED = {b"host", b"x-forwarded-host", b"x-forwarded-proto", b"x-forwarded-scheme", b"x-forwarded-port",
           b"x-forwarded-server", b"x-gradio-server", b"forwarded"}


class PublicOrigin:
    """Pure ASGI middleware: every request as if it came to `public_url`."""

    def __init__(self, app, public_url: str):
        self.app = app
        parts = urlsplit(public_url)
        self.scheme = parts.scheme
        self.host = parts.netloc.encode("idna" if not parts.netloc.isascii() else "ascii")

    async def __call__(self, scope, receive, send):
        if scope["type"] in ("http", "websocket"):
            headers = [(k, v) for k, v in scope.get("headers", []) if k not in DROPPED]
            headers.append((b"host", self.host))
            scheme = self.scheme if scope["type"] == "http" else ("wss" if self.scheme == "https" else "ws")
            scope = dict(scope, headers=headers, scheme=scheme)
        await self.app(scope, receive, send)
