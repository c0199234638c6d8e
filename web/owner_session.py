"""The owner's login: which requests carry a valid, unexpired login cookie.

Gradio keeps a login token for ever (in `app.tokens`, until a logout or a
restart): a cookie left in a shared computer's browser opened every review
months later. Here a token is valid only while it is used at least every
`idle` seconds and for at most `maximum` seconds from its first use
(FEEDBACK_OWNER_SESSION_IDLE_SECONDS, FEEDBACK_OWNER_SESSION_MAX_SECONDS);
an expired token is removed from Gradio's own table too, so every route of the
owner's app refuses it, not only those our allowlist guards.

web/http_limits.py asks `logged_in(scope)` for every request under /admin.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable

log = logging.getLogger("web.owner_session")


class OwnerSessions:
    def __init__(self, tokens: dict, cookie_names: tuple[str, ...], idle: float, maximum: float,
                 clock: Callable[[], float] = time.monotonic):
        self.tokens, self.cookie_names = tokens, cookie_names
        self.idle, self.maximum, self.clock = idle, maximum, clock
        self._seen: dict[str, list[float]] = {}  # token -> [first use, last use]
        self._lock = threading.Lock()

    def valid(self, token: str | None) -> bool:
        if not token or token not in self.tokens:
            return False
        now = self.clock()
        with self._lock:
            for gone in [t for t in self._seen if t not in self.tokens]:  # logged out: forget it
                del self._seen[gone]
            first, last = self._seen.get(token, (now, now))
            reason = "max" if now - first > self.maximum else "idle" if now - last > self.idle else None
            if reason:
                self._seen.pop(token, None)
                self.tokens.pop(token, None)
                log.info("owner session expired reason=%s", reason)
                return False
            self._seen[token] = [first, now]
            return True

    def logged_in(self, scope) -> bool:
        from starlette.requests import cookie_parser

        cookies: dict[str, str] = {}
        for key, value in scope.get("headers", []):
            if key == b"cookie":
                cookies.update(cookie_parser(value.decode("latin-1")))
        return any(self.valid(cookies.get(name)) for name in self.cookie_names if cookies.get(name))
