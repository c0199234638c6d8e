"""Logging set-up: one line per event, `key=value` context, UTC timestamps.

Messages carry their context as key=value pairs in the text
(`log.info("backup published rows=%d target=%s", ...)`), which greps well in
`supervisorctl tail` and parses with any log tool.
"""

from __future__ import annotations

import logging
import sys
import time

FORMAT = "%(asctime)s level=%(levelname)s proc=%(name)s %(message)s"


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


def setup_logging(name: str, level: str = "INFO", secrets: list[str] | None = None) -> logging.Logger:
    handler = logging.StreamHandler(sys.stdout)
    formatter = logging.Formatter(FORMAT, datefmt="%Y-%m-%dT%H:%M:%SZ")
    formatter.converter = time.gmtime
    handler.setFormatter(formatter)
    if secrets:
        handler.addFilter(_Redact(secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Libraries' chatter (httpx request lines, gradio banners) stays at WARNING.
    for noisy in ("httpx", "httpx2", "httpcore", "urllib3", "filelock", "huggingface_hub", "gradio", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return logging.getLogger(name)
