"""Logging set-up: one line per event, `key=value` context, UTC timestamps.

Messages carry their context as key=value pairs in the text
(`log.info("backup published rows=%d target=%s", ...)`), which greps well in
`supervisorctl tail` and parses with any log tool.

Any value that comes from a request (a client address, a header, a user
name) goes through `q()`: a forged `9.9.9.9 level=CRITICAL proc=worker.backup`
then stays one quoted value instead of writing fake fields or lines.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import threading
import time

from shared import utc

FORMAT = "%(asctime)s level=%(levelname)s proc=%(name)s %(message)s"

# A value made only of these characters cannot start a new field or line: logged as it is.
_BARE = re.compile(r"[A-Za-z0-9._:/@+\-\[\]%]{1,200}")
QUOTED_MAX_CHARS = 200

# Repeated identical lines (same logger, level and message template, and the same
# client when the line names one with `client=%s`): the first REPEAT_BURST per
# window are written, the rest are counted and the count is added to the next line
# written. A flood of one error (asyncio's accept errors, uvicorn's "Invalid HTTP
# request") then costs a few lines a minute per client, supervisord's rotation
# cannot push older lines (failed logins) out, and one client's flood never hides
# another client's lines (a refused login from a second address is still written).
REPEAT_WINDOW_SECONDS = 60.0
REPEAT_BURST = 5
# The worker's INFO lines are its regular cycle ("backup published" every interval): only
# warnings and errors are limited there. The web limits INFO too ("rate limited" per refused submit).
REPEAT_MIN_LEVEL = logging.WARNING
REPEAT_MAX_KEYS = 1000


def q(value: object) -> str:
    """One log value from an untrusted source: bare if harmless, else a JSON string
    (quotes, backslashes, control and non-ASCII characters escaped), cut to 200 characters."""
    text = "" if value is None else str(value)
    if _BARE.fullmatch(text):
        return text
    cut = text[:QUOTED_MAX_CHARS]
    return json.dumps(cut + ("..." if len(text) > len(cut) else ""), ensure_ascii=True)


class RepeatFilter(logging.Filter):
    """Rate-limit repeated identical log lines (see REPEAT_BURST)."""

    def __init__(self, window: float = REPEAT_WINDOW_SECONDS, burst: int = REPEAT_BURST,
                 clock=time.monotonic, min_level: int = REPEAT_MIN_LEVEL):
        super().__init__()
        self.window, self.burst, self.clock, self.min_level = window, burst, clock, min_level
        self._seen: dict[tuple, list] = {}  # key -> [window start, written, suppressed]
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < self.min_level:
            return True
        exc = record.exc_info[0].__name__ if record.exc_info and record.exc_info[0] else ""
        key = (record.name, record.levelno, str(record.msg), exc, _client_of(record))
        now = self.clock()
        with self._lock:
            entry = self._seen.get(key)
            if entry is None or now - entry[0] >= self.window:
                suppressed = entry[2] if entry else 0
                if len(self._seen) >= REPEAT_MAX_KEYS:
                    self._seen.clear()  # bounded memory; worst case a few extra lines
                self._seen[key] = [now, 1, 0]
            else:
                if entry[1] >= self.burst:
                    entry[2] += 1
                    return False
                entry[1] += 1
                suppressed = 0
        if suppressed:
            record.msg, record.args = f"{record.getMessage()} suppressed_repeats={suppressed}", None
        return True


_CONVERSION = re.compile(r"%(?:\([^)]*\))?[-#0 +]*[\d*]*(?:\.[\d*]+)?[diouxXeEfFgGcrsa%]")


def _client_of(record: logging.LogRecord) -> str | None:
    """The value logged as `client=%s` in the record's template, if any: the repeat key's last part."""
    template = str(record.msg)
    at = template.find("client=%")
    if at < 0 or not isinstance(record.args, tuple):
        return None
    index = sum(1 for m in _CONVERSION.finditer(template, 0, at) if m.group() != "%%")
    return str(record.args[index])[:QUOTED_MAX_CHARS] if index < len(record.args) else None


class _Redact(logging.Filter):
    """Last line of defence: never let a secret reach a log line."""

    def __init__(self, secrets: list[str]):
        super().__init__()
        self.secrets = [s for s in secrets if s and len(s) >= 4]

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secrets:
            text = record.getMessage()
            if any(s in text for s in self.secrets):
                for s in self.secrets:
                    text = text.replace(s, "***")
                record.msg, record.args = text, None
            if record.exc_info and record.exc_info[1] is not None:
                exc_text = logging.Formatter().formatException(record.exc_info)
                for s in self.secrets:
                    exc_text = exc_text.replace(s, "***")
                record.exc_info, record.exc_text = None, None
                record.msg, record.args = record.getMessage() + "\n" + exc_text, None
        return True


def setup_logging(name: str, level: str = "INFO", secrets: list[str] | None = None,
                  repeat_min_level: int = REPEAT_MIN_LEVEL) -> logging.Logger:
    handler = logging.StreamHandler(sys.stdout)
    formatter = logging.Formatter(FORMAT, datefmt=utc.ISO)
    formatter.converter = time.gmtime
    handler.setFormatter(formatter)
    handler.addFilter(RepeatFilter(min_level=repeat_min_level))
    if secrets:
        handler.addFilter(_Redact(secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Libraries' chatter (httpx request lines, gradio banners) stays at WARNING.
    for noisy in ("httpx", "httpx2", "httpcore", "urllib3", "filelock", "huggingface_hub", "gradio", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return logging.getLogger(name)
