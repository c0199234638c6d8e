"""Word of new reviews for the owner: a webhook and/or an e-mail, sent by the worker.

- Off the backup path: the notifier is its own thread with its own timer. It reads the live
  database (read-only) for reviews above the last one it announced and sends from there,
  so a webhook that hangs or an SMTP server that is down never delays a backup.
- One message per cycle that has new reviews: how many, the average, and the low ratings
  (1-2) with a short excerpt. While a channel is failing, new reviews join its pending
  message, so recovery sends one message, not one per missed cycle.
- Each channel retries on its own: exponential backoff from the interval up to
  NOTIFY_BACKOFF_CAP_SECONDS, and a webhook's Retry-After is honoured.
- The mark (the last review a channel announced: its id and its created_at) is kept in
  notify-state.json, so a restart neither resends nor misses. A review counts as new only
  when its id is above the mark AND its created_at is not older than the mark's: a merge
  after an outage brings back the backup's older reviews under ids above the mark, and a
  restore brings back the whole table; neither is news, and neither sends a flood. A first
  start (no state file, e.g. a fresh disk that was just restored) starts from the newest
  review. A restore of an older backup lowers the table's highest id below the mark: the
  mark follows it down, so the reviews written after it are not missed.
- Secrets (NOTIFY_WEBHOOK_URL, NOTIFY_SMTP_PASSWORD) are read here, from the worker's own
  environment, never into the shared config: the web loads that config too, and
  supervisord strips them from the web's environment. Logs and `status` show the webhook's
  host only; the SMTP password is only ever sent after STARTTLS.
"""

from __future__ import annotations

import json
import logging
import os
import smtplib
import socket
import ssl
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parsedate_to_datetime
from typing import Callable, Mapping, Protocol

from shared import utc
from shared.config import Config
from shared.db import connect, read_transaction
from shared.reviews import HIGHEST
from worker.errors import WorkerError
from worker.fsutil import write_text_atomic

log = logging.getLogger("worker.notify")

SECRET_VARIABLES = ("NOTIFY_WEBHOOK_URL", "NOTIFY_SMTP_PASSWORD")
LOW_RATING = 2  # ratings up to this are called out
LISTED_LOW_MAX = 5  # low ratings listed with an excerpt; the rest are counted
EXCERPT_CHARS = 140
# A Retry-After beyond this is a misconfigured server, not a plan: wait the cap instead.
RETRY_AFTER_MAX_SECONDS = 86400.0
STATE_VERSION = 1


class NotifyError(WorkerError):
    """A message that was not delivered; the text is safe to log (no secret, no review text)."""

    def __init__(self, message: str, *, retry_after: float | None = None, permanent: bool = False):
        super().__init__(message)
        self.retry_after = retry_after
        self.permanent = permanent


class NotifyConfigError(WorkerError):
    """A notifier setting that cannot work; names the variable, never a secret's value."""

    permanent = True  # the owner must change the setting


# --- what is new -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Mark:
    review_id: int
    created_at: str


@dataclass(frozen=True)
class Batch:
    count: int
    average: float
    last_id: int
    last_created_at: str
    first_created_at: str
    low_count: int
    low: list[tuple]  # (id, created_at, name, rating, comments), at most LISTED_LOW_MAX

    def mark(self) -> Mark:
        return Mark(self.last_id, self.last_created_at)


_NEW = "FROM reviews WHERE id > ? AND created_at >= ?"


def newest_mark(conn) -> Mark:
    row = conn.execute("SELECT id, created_at FROM reviews ORDER BY id DESC LIMIT 1").fetchone()
    return Mark(int(row[0]), str(row[1])) if row else Mark(0, "")


def read_new(conn, mark: Mark) -> tuple[Batch | None, Mark]:
    """The reviews above `mark`, and the mark to use (lowered when the table's highest id fell below it)."""
    with read_transaction(conn):
        top = newest_mark(conn)
        if top.review_id < mark.review_id:
            # An older backup was restored: new reviews get ids from its highest on.
            log.info("notify mark lowered to the database's newest review from_id=%d to_id=%d",
                     mark.review_id, top.review_id)
            mark = Mark(top.review_id, mark.created_at)
        params = (mark.review_id, mark.created_at)
        count, average, last_id, first_at, last_at, low_count = conn.execute(
            "SELECT COUNT(*), AVG(rating), MAX(id), MIN(created_at), MAX(created_at), "
            f"SUM(rating <= {LOW_RATING}) {_NEW}", params).fetchone()
        if not count:
            return None, mark
        low = conn.execute(f"SELECT id, created_at, name, rating, comments {_NEW} AND rating <= ? "
                           "ORDER BY id LIMIT ?", (*params, LOW_RATING, LISTED_LOW_MAX)).fetchall()
    return Batch(count=count, average=float(average or 0), last_id=last_id, last_created_at=last_at,
                 first_created_at=first_at, low_count=int(low_count or 0), low=low), mark


def excerpt(text: str | None, limit: int = EXCERPT_CHARS) -> str:
    """One line of at most `limit` characters: control characters and runs of space folded."""
    flat = " ".join("".join(c if c.isprintable() else " " for c in (text or "")).split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def summary_line(batch: Batch) -> str:
    reviews = "1 new review" if batch.count == 1 else f"{batch.count:,} new reviews"
    low = f", {batch.low_count:,} low (1-2)" if batch.low_count else ""
    return f"{reviews}, average {batch.average:.2f} / {HIGHEST}{low}"


def low_items(batch: Batch, include_names: bool) -> list[dict]:
    items = []
    for review_id, created_at, name, rating, comments in batch.low:
        item = {"id": review_id, "created_at": created_at, "rating": rating, "excerpt": excerpt(comments)}
        if include_names:
            item["name"] = excerpt(name, 60)
        items.append(item)
    return items


def render_text(batch: Batch, include_names: bool, escape: Callable[[str], str] = lambda s: s) -> str:
    """The message as plain text (e-mail, chat). `escape` guards user text for the chat's markup."""
    lines = [summary_line(batch) + f" (reviews up to #{batch.last_id}, since {batch.first_created_at} UTC)."]
    for item in low_items(batch, include_names):
        who = f" from {escape(item['name']) or 'Anonymous'}" if include_names else ""
        text = escape(item["excerpt"]) if item["excerpt"] else "(no comment)"
        lines.append(f"- #{item['id']} rated {item['rating']}/{HIGHEST}{who}: {text}")
    if batch.low_count > len(batch.low):
        lines.append(f"- and {batch.low_count - len(batch.low):,} more low ratings")
    lines.append("Read them all on the owner's page.")
    return "\n".join(lines)


# --- channels ------------------------------------------------------------------------------------

class Channel(Protocol):
    name: str

    def describe(self) -> str: ...
    def send(self, batch: Batch) -> None: ...


def url_host(url: str) -> str:
    """What logs and `status` may show of a webhook URL: its host (the path is the secret)."""
    try:
        return urllib.parse.urlsplit(url).hostname or "?"
    except ValueError:
        return "?"


def _slack_escape(text: str) -> str:
    # Slack's own rule: &, < and > are control characters (links, @channel mentions).
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _discord_escape(text: str) -> str:
    # Markdown in a review must not format the owner's message; mentions are off (allowed_mentions).
    return "".join("\\" + c if c in "\\*_~`|>[]()#@" else c for c in text)


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError):
            return None
    return min(RETRY_AFTER_MAX_SECONDS, max(0.0, seconds))


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # a redirect is an answer to report, not to follow
        return None


class WebhookChannel:
    name = "webhook"

    def __init__(self, url: str, body_format: str = "json", include_names: bool = False,
                 timeout: float = 10.0):
        self.url, self.format, self.include_names, self.timeout = url, body_format, include_names, timeout
        self._opener = urllib.request.build_opener(_NoRedirect)

    def describe(self) -> str:
        return f"webhook {self.format} host={url_host(self.url)}"

    def body(self, batch: Batch) -> dict:
        if self.format == "slack":
            return {"text": render_text(batch, self.include_names, _slack_escape)}
        if self.format == "discord":
            return {"content": render_text(batch, self.include_names, _discord_escape)[:2000],
                    "allowed_mentions": {"parse": []}}
        return {"event": "new_reviews", "count": batch.count, "average": round(batch.average, 2),
                "last_id": batch.last_id, "since": batch.first_created_at, "low_count": batch.low_count,
                "low": low_items(batch, self.include_names), "text": render_text(batch, self.include_names)}

    def send(self, batch: Batch) -> None:
        data = json.dumps(self.body(batch), ensure_ascii=False).encode("utf-8")
        request = urllib.request.Request(self.url, data=data, method="POST", headers={
            "Content-Type": "application/json; charset=utf-8", "User-Agent": "feedback-notifier/1"})
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                response.read(4096)
        except urllib.error.HTTPError as exc:
            status = exc.code
            exc.close()
            raise NotifyError(f"webhook answered HTTP {status}", retry_after=_retry_after(exc.headers.get("Retry-After")),
                              permanent=400 <= status < 500 and status not in (408, 425, 429)) from None
        except urllib.error.URLError as exc:
            raise NotifyError(f"webhook unreachable: {_reason(exc.reason)}") from None
        except (OSError, ValueError) as exc:  # a timeout while reading, a reset, a bad answer
            raise NotifyError(f"webhook failed: {_reason(exc)}") from None


def _reason(exc: object) -> str:
    if isinstance(exc, socket.timeout) or isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return type(exc).__name__ if isinstance(exc, BaseException) else str(exc)


class EmailChannel:
    name = "email"

    def __init__(self, *, host: str, port: int, sender: str, to: tuple[str, ...], user: str | None,
                 password: str | None, tls: str = "starttls", ca_file=None, include_names: bool = False,
                 timeout: float = 10.0):
        if password and tls != "starttls":
            raise NotifyConfigError("NOTIFY_SMTP_PASSWORD is set but NOTIFY_SMTP_TLS=none: a password is "
                                    "never sent without TLS")
        self.host, self.port, self.sender, self.to = host, port, sender, to
        self.user, self.password, self.tls, self.include_names, self.timeout = user, password, tls, include_names, timeout
        self.context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None) if tls == "starttls" else None

    def describe(self) -> str:
        return f"email host={self.host}:{self.port} tls={self.tls} to={len(self.to)}"

    def message(self, batch: Batch) -> EmailMessage:
        msg = EmailMessage()
        msg["Subject"] = "Feedback: " + summary_line(batch)  # numbers only: no review text in a header
        msg["From"] = self.sender
        msg["To"] = ", ".join(self.to)
        msg["Date"] = formatdate(usegmt=True)
        msg["Message-ID"] = make_msgid(domain=self.sender.rpartition("@")[2] or None)
        msg.set_content(render_text(batch, self.include_names))
        return msg

    def send(self, batch: Batch) -> None:
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
                smtp.ehlo()
                if self.tls == "starttls":
                    if not smtp.has_extn("starttls"):
                        raise NotifyError(f"SMTP server {self.host}:{self.port} offers no STARTTLS: nothing sent "
                                          "(set NOTIFY_SMTP_TLS=none only for a relay that takes no password)")
                    smtp.starttls(context=self.context)
                    smtp.ehlo()
                if self.user and self.password:
                    smtp.login(self.user, self.password)
                smtp.send_message(self.message(batch))
        except NotifyError:
            raise
        except smtplib.SMTPResponseException as exc:
            # 4xx: try again later; 5xx (bad password, refused address): ops must act.
            raise NotifyError(f"SMTP server answered {exc.smtp_code}",
                              permanent=500 <= exc.smtp_code < 600) from None
        except smtplib.SMTPRecipientsRefused:
            raise NotifyError("SMTP server refused every recipient (NOTIFY_EMAIL_TO)", permanent=True) from None
        except ssl.SSLError as exc:
            raise NotifyError(f"SMTP TLS failed: {exc.reason or type(exc).__name__}", permanent=True) from None
        except (smtplib.SMTPException, OSError) as exc:
            raise NotifyError(f"SMTP server {self.host}:{self.port} unreachable: {_reason(exc)}") from None


def channels_from(config: Config, env: Mapping[str, str] | None = None) -> list[Channel]:
    """The channels the settings ask for. Raises NotifyConfigError for one that cannot work."""
    env = os.environ if env is None else env
    channels: list[Channel] = []
    url = (env.get("NOTIFY_WEBHOOK_URL") or "").strip()
    if url:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise NotifyConfigError("NOTIFY_WEBHOOK_URL is not an http(s) URL (its value is not shown: it is a secret)")
        channels.append(WebhookChannel(url, config.notify_webhook_format, config.notify_include_names,
                                       timeout=config.notify_timeout_seconds))
    password = env.get("NOTIFY_SMTP_PASSWORD") or None
    if config.notify_email_to:
        if not config.notify_smtp_host:
            raise NotifyConfigError("NOTIFY_EMAIL_TO is set but NOTIFY_SMTP_HOST is not")
        sender = config.notify_email_from or (config.notify_smtp_user if "@" in (config.notify_smtp_user or "")
                                              else None)
        if not sender:
            raise NotifyConfigError("NOTIFY_EMAIL_FROM is not set (and NOTIFY_SMTP_USER is not an address)")
        if password and not config.notify_smtp_user:
            raise NotifyConfigError("NOTIFY_SMTP_PASSWORD is set but NOTIFY_SMTP_USER is not")
        channels.append(EmailChannel(host=config.notify_smtp_host, port=config.notify_smtp_port, sender=sender,
                                     to=config.notify_email_to, user=config.notify_smtp_user, password=password,
                                     tls=config.notify_smtp_tls, ca_file=config.notify_smtp_ca_file,
                                     include_names=config.notify_include_names,
                                     timeout=config.notify_timeout_seconds))
    return channels


def secrets_from_env(env: Mapping[str, str] | None = None) -> list[str]:
    """Values the worker's log must never show."""
    env = os.environ if env is None else env
    return [env.get(name, "") for name in SECRET_VARIABLES]


# --- state ---------------------------------------------------------------------------------------

@dataclass
class ChannelState:
    mark: Mark
    failures: int = 0
    last_error: str | None = None
    last_sent_at: str | None = None
    next_try: float = 0.0  # monotonic; not saved (a restart tries at once)
    next_try_at: str | None = None  # the same, for `status`

    def as_json(self) -> dict:
        return {"mark_id": self.mark.review_id, "mark_created_at": self.mark.created_at, "failures": self.failures,
                "last_error": self.last_error, "last_sent_at": self.last_sent_at, "next_try_at": self.next_try_at}


def load_state(path) -> dict[str, ChannelState]:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        # A torn or unreadable file: start from the newest review (no flood), and say so.
        log.warning("notify state unreadable, starting from the newest review path=%s error=%s", path, exc)
        return {}
    states = {}
    for name, c in (raw.get("channels") or {}).items():
        try:
            states[name] = ChannelState(Mark(int(c["mark_id"]), str(c["mark_created_at"])),
                                        failures=int(c.get("failures") or 0), last_error=c.get("last_error"),
                                        last_sent_at=c.get("last_sent_at"), next_try_at=c.get("next_try_at"))
        except (KeyError, TypeError, ValueError):
            continue
    return states


def save_state(path, states: dict[str, ChannelState]) -> None:
    text = json.dumps({"version": STATE_VERSION, "channels": {n: s.as_json() for n, s in states.items()}}, indent=1)
    write_text_atomic(path, text + "\n", mode=0o600)


# --- the notifier --------------------------------------------------------------------------------

@dataclass
class Notifier:
    config: Config
    channels: list[Channel]
    clock: Callable[[], float] = time.monotonic
    states: dict[str, ChannelState] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._stop = threading.Event()  # set by stop() from the main thread, never from a signal handler
        self._threads: list[threading.Thread] = []
        self._save_lock = threading.Lock()  # the channels' threads share one state file

    def _read(self, work: Callable):
        # A connection per cycle, not one kept open: a restore replaces the database file,
        # and a kept connection would go on reading the old one.
        conn = connect(self.config.db_path, readonly=True)
        try:
            return work(conn)
        finally:
            conn.close()

    def prepare(self) -> None:
        """Load the marks; a channel without one starts from the newest review (no flood)."""
        self.states = {n: s for n, s in load_state(self.config.notify_state_path).items()
                       if n in {c.name for c in self.channels}}
        missing = [c for c in self.channels if c.name not in self.states]
        if missing:
            # No database yet (a fresh disk with no backup): every review to come is new.
            top = self._read(newest_mark) if self.config.db_path.exists() else Mark(0, "")
            for channel in missing:
                self.states[channel.name] = ChannelState(top)
                log.info("notify starts after the newest review channel=%s after_id=%d", channel.name, top.review_id)
            self._save()

    def _save(self) -> None:
        try:
            with self._save_lock:
                save_state(self.config.notify_state_path, self.states)
        except OSError as exc:  # a full disk: the mark is kept in memory; a restart may resend once
            log.warning("could not save notify state error=%s", exc)

    def tick(self, only: Channel | None = None) -> None:
        """One cycle: each channel that is due sends what is new for it. Never raises."""
        for channel in [only] if only is not None else self.channels:
            try:
                self._tick_channel(channel)
            except Exception:  # the notifier must survive anything; logged with its traceback
                log.exception("notify cycle crashed channel=%s", channel.name)

    def _tick_channel(self, channel: Channel) -> None:
        state = self.states[channel.name]
        if self.clock() < state.next_try or not self.config.db_path.exists():
            return
        batch, mark = self._read(lambda conn: read_new(conn, state.mark))
        if mark != state.mark:
            state.mark = mark
            self._save()
        if batch is None:
            return
        try:
            channel.send(batch)
        except NotifyError as exc:
            self._failed(channel, state, exc)
        else:
            if state.failures:
                log.info("notify recovered channel=%s after_failures=%d", channel.name, state.failures)
            state.mark, state.failures, state.last_error = batch.mark(), 0, None
            state.last_sent_at, state.next_try, state.next_try_at = utc.iso(), 0.0, None
            self._save()
            log.info("notify sent channel=%s reviews=%d low=%d up_to_id=%d", channel.name, batch.count,
                     batch.low_count, batch.last_id)

    def _failed(self, channel: Channel, state: ChannelState, exc: NotifyError) -> None:
        state.failures += 1
        cap = self.config.notify_backoff_cap_seconds
        delay = cap if exc.permanent else min(cap, self.config.notify_interval_seconds * 2 ** (state.failures - 1))
        if exc.retry_after is not None:
            delay = max(delay, exc.retry_after)  # the server's word wins, even past the cap
        state.next_try = self.clock() + delay
        state.next_try_at = utc.iso(time.time() + delay)
        state.last_error = str(exc)
        self._save()
        level = logging.ERROR if state.failures == 1 else logging.WARNING
        log.log(level, "notify failed channel=%s %s failures=%d next_try_in_s=%.0f cause=%s", channel.name,
                channel.describe(), state.failures, delay, exc)

    def _wait_seconds(self, name: str) -> float:
        left = self.states[name].next_try - self.clock()
        return max(0.05, min(self.config.notify_interval_seconds, left) if left > 0
                   else self.config.notify_interval_seconds)

    def _run(self, channel: Channel) -> None:
        while not self._stop.wait(self._wait_seconds(channel.name)):
            self.tick(only=channel)

    def start(self) -> "Notifier":
        self.prepare()
        for channel in self.channels:
            log.info("notify on channel=%s %s every_s=%s", channel.name, channel.describe(),
                     self.config.notify_interval_seconds)
            # A thread per channel: a webhook stuck in its timeout does not hold up the e-mail.
            # Daemon threads: a send in progress never holds up the worker's exit.
            thread = threading.Thread(target=self._run, args=(channel,), name=f"notify-{channel.name}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout / max(1, len(self._threads)))


def start_notifier(config: Config) -> Notifier | None:
    """The worker's hook: a running notifier, or None when no channel is set (or one cannot work:
    that is logged, and backups go on; a notification setting must never cost a backup)."""
    try:
        channels = channels_from(config)
    except NotifyConfigError as exc:
        log.error("notifications off: %s", exc)
        return None
    if not channels:
        return None
    try:
        return Notifier(config, channels).start()
    except Exception:  # e.g. an unreadable database: backups still go on
        log.exception("notifications off: the notifier could not start")
        return None


def status_info(config: Config) -> dict:
    """The notifier's part of `python -m worker status`."""
    try:
        channels = channels_from(config)
        described = ", ".join(c.describe() for c in channels) or "off"
    except NotifyConfigError as exc:
        described = f"misconfigured: {exc}"
    info: dict = {"notify": described}
    for name, state in load_state(config.notify_state_path).items():
        info[f"notify_{name}_last_sent_at"] = state.last_sent_at
        info[f"notify_{name}_announced_up_to_id"] = state.mark.review_id
        info[f"notify_{name}_failures"] = state.failures
        info[f"notify_{name}_last_error"] = state.last_error
        info[f"notify_{name}_next_try_at"] = state.next_try_at
    return info
