"""Throttle the owner's login: a client that keeps guessing is refused for a while.

A probe made ~1,150 guesses a second at /admin/login with no slowdown, and the
"login refused" line did not say from where. Here, per client address (the
proxy rule of web/client_address.py, so a forged X-Forwarded-For cannot
reset the count): after MAX_FAILURES refused passwords within
FAILURE_WINDOW_SECONDS the client is refused with 429 for the cool-down
(FEEDBACK_LOGIN_COOLDOWN_SECONDS) without its password being checked at all.
Every refusal is logged with the client's address, never the password. Once
the cool-down ends the owner logs in as usual, and a success clears the count.

An attempt is counted BEFORE its password is checked, not after the answer:
counted after, 120 logins sent at once all passed the "blocked?" test before
the first failure was counted, and all 120 were checked. Now the fifth attempt
in a window starts the cool-down as it goes in, so however many arrive at once,
at most MAX_FAILURES per client are checked per cool-down.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable

from shared.logs import q
from web.capped_table import CappedTable
from web.http_limits import json_error

log = logging.getLogger("web.login")

MAX_FAILURES = 5
FAILURE_WINDOW_SECONDS = 15 * 60.0
MAX_TRACKED_CLIENTS = 10_000  # bounded memory, whatever the number of addresses
LOGIN_PATHS = ("/admin/login", "/admin/login/")
COOLDOWN_MESSAGE = ("Too many wrong passwords from your address. Logins from it are refused for "
                    "{minutes} more minute(s); try again after that.")


class Failures:
    """Refused logins per client; `blocked_for` > 0 while a client is cooling down."""

    def __init__(self, cooldown: float, max_failures: int = MAX_FAILURES,
                 window: float = FAILURE_WINDOW_SECONDS, clock: Callable[[], float] = time.monotonic):
        self.cooldown, self.max_failures, self.window, self.clock = cooldown, max_failures, window, clock
        # client -> [first failure, count, blocked until]
        self._state: CappedTable[str, list[float]] = CappedTable(MAX_TRACKED_CLIENTS)
        self._lock = threading.Lock()

    def blocked_for(self, client: str) -> float:
        with self._lock:
            entry = self._state.get(client)
            return max(0.0, entry[2] - self.clock()) if entry else 0.0

    def attempt(self, client: str) -> tuple[float, int, bool]:
        """Count one login attempt before its password is checked, as if it will fail (a success
        clears the count). Returns (seconds of cool-down left: refuse unchecked if > 0,
        attempts counted in the window, whether this attempt starts the cool-down)."""
        now = self.clock()
        with self._lock:
            entry = self._state.pop(client)
            if entry is not None and entry[2] > now:
                self._state.put(client, entry)
                return entry[2] - now, self.max_failures, False
            if entry is None or now - entry[0] >= self.window:
                entry = [now, 0, 0.0]
            entry[1] += 1
            starts = entry[1] >= self.max_failures
            if starts:
                entry = [now, 0, now + self.cooldown]  # counting starts afresh after the cool-down
            self._state.put(client, entry)
            return 0.0, (self.max_failures if starts else int(entry[1])), starts

    def succeeded(self, client: str) -> None:
        with self._lock:
            self._state.pop(client)

    def not_checked(self, client: str) -> None:
        """Give back an attempt that never reached the password check (a malformed form: 422)."""
        with self._lock:
            entry = self._state.get(client)
            if entry is None:
                return
            if entry[1] == 0 and entry[2] > self.clock():  # this attempt started the cool-down: undo it
                entry[1], entry[2] = self.max_failures - 1, 0.0
            elif entry[1] > 0:
                entry[1] -= 1


class LoginThrottle:
    """Pure ASGI middleware in front of Gradio's POST /admin/login."""

    def __init__(self, app, failures: Failures):
        self.app = app
        self.failures = failures

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope.get("method") != "POST" or scope.get("path") not in LOGIN_PATHS:
            return await self.app(scope, receive, send)
        client = (scope.get("client") or ("unknown", 0))[0]
        wait, count, starts = self.failures.attempt(client)
        if wait > 0:
            log.warning("owner login refused client=%s reason=cool_down retry_after_s=%d", q(client), wait)
            # "detail": the key Gradio's login form shows.
            return await json_error(send, 429, COOLDOWN_MESSAGE.format(minutes=max(1, round(wait / 60))),
                                    headers=[(b"retry-after", str(int(wait) + 1).encode())], key="detail")
        status = 0

        async def watching(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        await self.app(scope, receive, watching)
        if status == 200:
            self.failures.succeeded(client)
            log.info("owner login accepted client=%s", q(client))
        elif status == 422:
            self.failures.not_checked(client)  # no password to check: not a guess
            log.warning("owner login refused client=%s reason=malformed", q(client))
        else:
            log.warning("owner login refused client=%s reason=wrong_password failures=%d status=%d",
                        q(client), count, status)
            if starts:
                log.warning("owner login cool-down client=%s seconds=%d", q(client), self.failures.cooldown)
