"""Connection limits: one client holding thousands of idle sockets must not stop the form.

A probe held ~20,000 idle sockets: the web process ran out of file
descriptors, the form took 7-8 s or timed out, and asyncio's "accept() out
of system resource" tracebacks (56 MB in 10 s) rotated every earlier line
out of web.log. uvicorn alone does not prevent it: its keep-alive timer starts
only after a first response (a socket that never sends a request is kept
forever), and any byte received cancels it. `limit_concurrency` answers 503
to requests but still accepts (and keeps) every socket.

So the HTTP protocol here adds, per connection:
- a request deadline: a connection that has no complete request in progress
  within REQUEST_HEADER_TIMEOUT_SECONDS of opening, or of its last response,
  is closed (a slow drip of header bytes does not reset it);
- a body deadline: a request whose body is still arriving
  REQUEST_BODY_TIMEOUT_SECONDS after the request deadline is closed (a POST
  dripping a byte every 2 s held its slot for as long as it liked);
- a cap on open connections in all (MAX_CONNECTIONS, kept well under the
  process's open-file limit) and per client address (MAX_CONNECTIONS_PER_CLIENT,
  only when no proxy stands in front: behind one, every socket comes from the
  proxy; streams are capped per client there too, in web/streams.py). A
  connection over a cap gets a 503 and is closed at once;
- a strict request head, read before h11 sees it: at most MAX_HEADER_BYTES
  however it arrives (h11's own cap counts only a head that is still
  incomplete, so 120 KB in one write passed), lines ending in CRLF only (a bare
  LF is read differently by different parsers: request smuggling), and never
  both Content-Length and Transfer-Encoding (the same reason). Refused with
  431/400 and closed.
"""

from __future__ import annotations

import asyncio
import logging
import re
import resource
from collections import Counter

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from shared.logs import q

log = logging.getLogger("web.connections")

# A browser or script sends its request line and headers in well under a second;
# 5 s leaves room for a slow phone network and frees a flood's sockets quickly.
REQUEST_HEADER_TIMEOUT_SECONDS = 5.0
# A form's POST body is a few KB: it arrives within a second even on a slow phone network.
# This many seconds after the request deadline, a body still arriving is cut off.
REQUEST_BODY_TIMEOUT_SECONDS = 10.0
# uvicorn's default: an idle keep-alive connection closes 5 s after its last response.
KEEP_ALIVE_SECONDS = 5
# A form on a Space: a few hundred people at once at most; each browser tab holds
# 1-2 connections (one of them the SSE stream while a submit runs).
MAX_CONNECTIONS = 1000
# A browser opens at most 6 per host; an office behind one NAT address gets 128.
MAX_CONNECTIONS_PER_CLIENT = 128
# Descriptors kept free for the database, logs, Gradio's files and the event loop.
FD_RESERVE = 256
# Headers larger than this are refused by h11 (431/400) before they are buffered further.
MAX_HEADER_BYTES = 16 * 1024
# Connections the kernel queues before accept(): beyond it new SYNs wait or are dropped,
# which costs us nothing (no descriptor until accepted).
BACKLOG = 512

_BARE_LF = re.compile(rb"(?<!\r)\n")


def _refusal(status: bytes, text: bytes) -> bytes:
    return (b"HTTP/1.1 " + status + b"\r\ncontent-type: text/plain\r\ncontent-length: "
            + str(len(text)).encode() + b"\r\nconnection: close\r\n\r\n" + text)


_TOO_LARGE = _refusal(b"431 Request Header Fields Too Large", b"Request headers too large.\r\n")
_BAD_HEAD = _refusal(b"400 Bad Request", b"Malformed request.\r\n")
_BUSY = (b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain\r\ncontent-length: 23\r\n"
         b"connection: close\r\n\r\nToo many connections.\r\n")


def raise_open_file_limit() -> int:
    """Raise the soft RLIMIT_NOFILE to the hard limit; return the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError) as exc:
            log.warning("could not raise the open-file limit soft=%d hard=%d error=%s", soft, hard, q(exc))
    return soft


def connection_limits(open_file_limit: int) -> tuple[int, int]:
    """(total, per client), both under the open-file limit minus a reserve."""
    total = max(16, min(MAX_CONNECTIONS, open_file_limit - FD_RESERVE))
    return total, min(MAX_CONNECTIONS_PER_CLIENT, total)


def check_head(head: bytes) -> str | None:
    """Why a complete request head (up to and including its blank line) is refused, or None."""
    if len(head) > MAX_HEADER_BYTES:
        return "headers_too_large"
    if _BARE_LF.search(head):
        return "bare_lf"
    names = {line.split(b":", 1)[0].strip().lower() for line in head.split(b"\r\n")[1:] if b":" in line}
    if b"content-length" in names and b"transfer-encoding" in names:
        return "length_and_chunked"
    return None


def guarded_protocol(max_connections: int, per_client: int | None,
                     header_timeout: float = REQUEST_HEADER_TIMEOUT_SECONDS,
                     body_timeout: float = REQUEST_BODY_TIMEOUT_SECONDS) -> type[H11Protocol]:
    """An H11Protocol class with the deadlines, caps and head checks above
    (`per_client` None: no per-client cap)."""

    class GuardedH11Protocol(H11Protocol):
        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._deadline: asyncio.TimerHandle | None = None
            self._peer = self.client[0] if self.client else "unknown"
            counts = _peer_counts(self.server_state)
            counts[self._peer] += 1
            self._counted = True
            self._head = b""  # the request head read so far (only while h11 waits for one)
            self._body_late = False
            over_total = len(self.connections) > max_connections
            over_client = per_client is not None and counts[self._peer] > per_client
            if over_total or over_client:
                # Logged through the repeat filter: a flood costs a few lines a minute.
                log.warning("connection refused client=%s reason=%s", q(self._peer),
                            "total_cap" if over_total else "client_cap")
                transport.write(_BUSY)
                transport.close()
                return
            self._arm()

        def _arm(self, seconds: float = header_timeout) -> None:
            self._disarm()
            self._deadline = self.loop.call_later(seconds, self._request_deadline_passed)

        def data_received(self, data: bytes) -> None:
            if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
                start = max(0, len(self._head) - 3)
                self._head += data
                end = self._head.find(b"\r\n\r\n", start)
                if end < 0:
                    end = self._head.find(b"\n\n", start)  # bare-LF heads: refused by check_head
                    end = end + 2 if end >= 0 else -1
                else:
                    end += 4
                if end < 0:
                    reason = "headers_too_large" if len(self._head) > MAX_HEADER_BYTES else None
                    reason = reason or ("bare_lf" if _BARE_LF.search(self._head, max(0, start - 1)) else None)
                else:
                    reason = check_head(self._head[:end])
                    self._head = b""
                if reason:
                    self._head = b""
                    return self._refuse_head(reason)
            super().data_received(data)

        def _refuse_head(self, reason: str) -> None:
            log.warning("request refused client=%s reason=%s", q(self._peer), reason)
            self._disarm()
            self.transport.write(_TOO_LARGE if reason == "headers_too_large" else _BAD_HEAD)
            self.transport.close()

        def _disarm(self) -> None:
            deadline = getattr(self, "_deadline", None)
            if deadline is not None:
                deadline.cancel()
                self._deadline = None

        def _request_deadline_passed(self) -> None:
            self._deadline = None
            if self.transport.is_closing() or self.transport.get_protocol() is not self:
                return  # closed already, or upgraded to another protocol
            if self.cycle is not None and not self.cycle.response_complete or self.conn.their_state is h11.SEND_BODY:
                # Its headers arrived in time. Its body must follow soon; a response is not bounded here
                # (streams are, in web/streams.py).
                if self.conn.their_state is h11.SEND_BODY:
                    if self._body_late:
                        log.warning("request closed client=%s reason=slow_body", q(self._peer))
                        self.transport.close()
                    else:
                        self._body_late = True
                        self._arm(body_timeout)
                return
            self.transport.close()

        def on_response_complete(self) -> None:
            self._body_late = False
            super().on_response_complete()
            if not self.transport.is_closing():
                self._arm()  # the next request on this keep-alive connection gets the same deadline

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            if getattr(self, "_counted", False):
                self._counted = False
                counts = _peer_counts(self.server_state)
                counts[self._peer] -= 1
                if counts[self._peer] <= 0:
                    del counts[self._peer]
            super().connection_lost(exc)

    return GuardedH11Protocol


def _peer_counts(server_state) -> Counter:
    counts = getattr(server_state, "open_by_client", None)
    if counts is None:
        counts = server_state.open_by_client = Counter()
    return counts
