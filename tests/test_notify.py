"""The owner's notifications (worker/notify.py) on a real database file, against a real webhook
receiver (http.server) and a real SMTP server with STARTTLS (aiosmtpd) on 127.0.0.1.

Each test drives the notifier cycle by cycle (`tick()`); the clock is passed in so a backoff
can be stepped through without sleeping. The worker under supervisord, with a webhook that is
down and then up while backups go on, is tests/test_notify_e2e.py."""

from __future__ import annotations

import email
import json
import shutil
from email import policy

import pytest

from shared.config import load_config
from shared.db import connect
from shared.schema import open_store_db
from shared.store import insert_review
from shared.reviews import validate
from tests.apprunner import free_port
from tests.notify_servers import SMTP_PASSWORD, SMTP_USER, WEBHOOK_PATH, Receiver, SmtpServer, make_cert
from worker.merge import merge_backup_into
from worker.notify import (EmailChannel, Mark, NotifyConfigError, Notifier, NotifyError, WebhookChannel,
                           channels_from, load_state, read_new, status_info)


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make_config(tmp_path, **env):
    base = {"FEEDBACK_DATA_DIR": str(tmp_path / "data"), "NOTIFY_INTERVAL_SECONDS": "10",
            "NOTIFY_BACKOFF_CAP_SECONDS": "60"}
    return load_config({**base, **env})


def add(config, *reviews):
    conn = open_store_db(config.db_path)
    try:
        return [insert_review(conn, validate(name, rating, comments)) for name, rating, comments in reviews]
    finally:
        conn.close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def notifier(config, *channels, clock=None) -> Notifier:
    n = Notifier(config, list(channels), clock=clock or Clock())
    n.prepare()
    return n


def test_one_webhook_message_per_cycle_with_low_ratings_called_out_and_no_names(tmp_path, receiver):
    config = make_config(tmp_path)
    add(config, ("Old Olga", 5, "before the notifier started"))
    n = notifier(config, WebhookChannel(receiver.url))
    n.tick()
    assert receiver.posts == []  # what was there at the first start is not news
    ids = add(config, ("Sam Secret", 5, "Great"), ("Lou Private", 1, "Broken\ncheckout " + "x" * 300),
              ("", 2, "meh"), ("Kim", 4, ""))
    n.tick()
    assert len(receiver.posts) == 1
    post = receiver.posts[0]
    assert post["path"] == WEBHOOK_PATH and post["headers"]["Content-Type"].startswith("application/json")
    body = post["json"]
    assert (body["count"], body["average"], body["low_count"], body["last_id"]) == (4, 3.0, 2, ids[-1])
    assert [(i["id"], i["rating"]) for i in body["low"]] == [(ids[1], 1), (ids[2], 2)]
    assert body["low"][0]["excerpt"].startswith("Broken checkout xxx") and len(body["low"][0]["excerpt"]) <= 140
    text = json.dumps(body)
    assert "Sam Secret" not in text and "Lou Private" not in text and "name" not in body["low"][0]
    assert "4 new reviews, average 3.00 / 5, 2 low (1-2)" in body["text"]
    n.tick()
    assert len(receiver.posts) == 1  # nothing new: no message


def test_names_only_when_the_owner_opted_in(tmp_path, receiver):
    config = make_config(tmp_path, NOTIFY_INCLUDE_NAMES="true")
    n = notifier(config, WebhookChannel(receiver.url, include_names=True))
    add(config, ("Lou", 1, "slow"))
    n.tick()
    assert receiver.posts[0]["json"]["low"][0]["name"] == "Lou"
    assert "from Lou: slow" in receiver.posts[0]["json"]["text"]


def test_a_restart_neither_resends_nor_misses(tmp_path, receiver):
    config = make_config(tmp_path)
    add(config, ("a", 3, "x"))
    first = notifier(config, WebhookChannel(receiver.url))
    add(config, ("b", 4, "announced once"))
    first.tick()
    add(config, ("c", 2, "written while the worker was down"))
    restarted = notifier(config, WebhookChannel(receiver.url))  # reads notify-state.json
    restarted.tick()
    restarted.tick()
    assert [p["json"]["count"] for p in receiver.posts] == [1, 1]
    assert receiver.posts[1]["json"]["low"][0]["excerpt"] == "written while the worker was down"
    state = json.loads(config.notify_state_path.read_text())
    assert state["channels"]["webhook"]["mark_id"] == 3
    assert oct(config.notify_state_path.stat().st_mode & 0o777) == "0o600"


def test_merge_after_an_outage_and_a_restore_send_no_flood(tmp_path, receiver):
    backup_config = make_config(tmp_path / "old")
    add(backup_config, *[(f"old-{i}", 1, f"old review {i}") for i in range(50)])
    backup = tmp_path / "backup.db"
    conn = connect(backup_config.db_path)
    conn.execute("VACUUM INTO ?", (str(backup),))
    conn.close()

    config = make_config(tmp_path / "new")  # a fresh disk while the backup target was unreachable
    add(config, ("local-0", 5, "first"))
    n = notifier(config, WebhookChannel(receiver.url))
    add(config, ("local-1", 4, "during the outage"))
    n.tick()
    assert [p["json"]["count"] for p in receiver.posts] == [1]
    merge_backup_into(config.db_path, backup)  # the backup's 50 reviews land with ids 1..50, ours after
    n.tick()
    assert len(receiver.posts) <= 2 and all(p["json"]["count"] <= 1 for p in receiver.posts)
    sent = len(receiver.posts)
    add(config, ("after-merge", 3, "genuinely new"))
    n.tick()
    assert len(receiver.posts) == sent + 1 and receiver.posts[-1]["json"]["count"] == 1

    # An older backup restored over the database: the highest id falls below the mark.
    shutil.copy(backup, config.db_path)
    for suffix in ("-wal", "-shm"):
        config.db_path.with_name(config.db_path.name + suffix).unlink(missing_ok=True)
    n.tick()
    assert len(receiver.posts) == sent + 1  # the restored reviews are not news
    add(config, ("after-restore", 2, "written after the restore"))
    n.tick()
    assert receiver.posts[-1]["json"]["count"] == 1
    assert receiver.posts[-1]["json"]["low"][0]["excerpt"] == "written after the restore"


def test_slack_and_discord_bodies_keep_review_text_inert(tmp_path, receiver):
    config = make_config(tmp_path)
    hostile = "<!channel> @everyone **bold** <https://evil.example|click> & more"
    add(config, ("x", 1, hostile))
    for fmt in ("slack", "discord"):
        n = Notifier(config, [WebhookChannel(receiver.url, fmt)], clock=Clock())
        n.states = {}
        config.notify_state_path.unlink(missing_ok=True)
        n.prepare()
        n.states["webhook"].mark = Mark(0, "")
        n.tick()
    slack, discord = receiver.posts[0]["json"], receiver.posts[1]["json"]
    assert set(slack) == {"text"} and "&lt;!channel&gt;" in slack["text"] and "<!channel>" not in slack["text"]
    assert "&amp; more" in slack["text"]
    assert set(discord) == {"content", "allowed_mentions"} and discord["allowed_mentions"] == {"parse": []}
    assert "\\@everyone" in discord["content"] and "\\*\\*bold\\*\\*" in discord["content"]


def test_webhook_failure_backs_off_exponentially_capped_and_honours_retry_after(tmp_path, receiver):
    config = make_config(tmp_path)  # interval 10 s, cap 60 s
    clock = Clock()
    n = notifier(config, WebhookChannel(receiver.url), clock=clock)
    add(config, ("a", 5, "x"))
    receiver.status = 503
    delays = []
    for _ in range(5):
        before = len(receiver.posts)
        n.tick()
        assert len(receiver.posts) == before + 1
        state = n.states["webhook"]
        delays.append(state.next_try - clock.now)
        clock.now += 1
        n.tick()  # not due yet: nothing sent
        assert len(receiver.posts) == before + 1
        clock.now = state.next_try
    assert delays == [10, 20, 40, 60, 60]
    assert n.states["webhook"].last_error == "webhook answered HTTP 503"
    receiver.status, receiver.retry_after = 429, "300"
    n.tick()
    assert n.states["webhook"].next_try - clock.now == 300  # the server's word, past the cap
    receiver.status, receiver.retry_after = 200, None
    add(config, ("b", 1, "joined the pending message"))
    clock.now += 300
    n.tick()
    assert receiver.posts[-1]["json"]["count"] == 2  # everything pending, in one message
    assert n.states["webhook"].failures == 0
    info = status_info(config)
    assert info["notify_webhook_failures"] == 0 and info["notify_webhook_last_sent_at"]


def test_webhook_url_is_a_secret_host_only_in_status_and_errors(tmp_path, receiver):
    env = {"NOTIFY_WEBHOOK_URL": receiver.url}
    config = make_config(tmp_path)
    (channel,) = channels_from(config, env)
    assert channel.describe() == "webhook json host=127.0.0.1"
    with pytest.raises(NotifyConfigError) as err:
        channels_from(config, {"NOTIFY_WEBHOOK_URL": "ftp://x/" + WEBHOOK_PATH})
    assert WEBHOOK_PATH not in str(err.value) and "NOTIFY_WEBHOOK_URL" in str(err.value)
    receiver.status = 404
    add(config, ("a", 5, "x"))
    batch, _ = Notifier(config, [])._read(lambda conn: read_new(conn, Mark(0, "")))
    with pytest.raises(NotifyError) as failed:
        channel.send(batch)
    assert failed.value.permanent and WEBHOOK_PATH not in str(failed.value)


@pytest.fixture(scope="module")
def cert(tmp_path_factory):
    return make_cert(tmp_path_factory.mktemp("smtp-cert"))


def email_config(tmp_path, port, cert_path, **extra):
    return make_config(tmp_path, NOTIFY_EMAIL_TO="owner@example.test, second@example.test",
                       NOTIFY_EMAIL_FROM="form@example.test", NOTIFY_SMTP_HOST="127.0.0.1",
                       NOTIFY_SMTP_PORT=str(port), NOTIFY_SMTP_USER=SMTP_USER, NOTIFY_SMTP_CA_FILE=str(cert_path),
                       **extra)


def test_email_over_starttls_logs_in_only_after_tls(tmp_path, cert):
    port = free_port()
    server = SmtpServer(port, *cert)
    try:
        config = email_config(tmp_path, port, cert[0])
        (channel,) = channels_from(config, {"NOTIFY_SMTP_PASSWORD": SMTP_PASSWORD})
        n = notifier(config, channel)
        add(config, ("Lou", 1, "The page froze"), ("", 5, "fine"))
        n.tick()
        assert server.logins == [{"user": SMTP_USER, "password": SMTP_PASSWORD, "tls": True}]
        (msg,) = server.messages
        assert msg["tls"] and msg["to"] == ["owner@example.test", "second@example.test"]
        parsed = email.message_from_string(msg["data"], policy=policy.default)
        assert parsed["Subject"] == "Feedback: 2 new reviews, average 3.00 / 5, 1 low (1-2)"
        body = parsed.get_content()
        assert "rated 1/5: The page froze" in body and "Lou" not in body
    finally:
        server.close()


def test_email_never_sends_a_password_without_tls(tmp_path, cert):
    port = free_port()
    server = SmtpServer(port, tls=False)  # offers no STARTTLS
    try:
        config = email_config(tmp_path, port, cert[0])
        (channel,) = channels_from(config, {"NOTIFY_SMTP_PASSWORD": SMTP_PASSWORD})
        n = notifier(config, channel)
        add(config, ("a", 4, "x"))
        n.tick()
        assert server.logins == [] and server.messages == []
        assert "offers no STARTTLS" in n.states["email"].last_error
    finally:
        server.close()
    with pytest.raises(NotifyConfigError, match="never sent without TLS"):
        channels_from(email_config(tmp_path, port, cert[0], NOTIFY_SMTP_TLS="none"),
                      {"NOTIFY_SMTP_PASSWORD": SMTP_PASSWORD})


def test_email_server_down_then_up_delivers_the_pending_reviews(tmp_path, cert):
    port = free_port()
    config = email_config(tmp_path, port, cert[0])
    clock = Clock()
    (channel,) = channels_from(config, {"NOTIFY_SMTP_PASSWORD": SMTP_PASSWORD})
    assert isinstance(channel, EmailChannel)
    n = notifier(config, channel, clock=clock)
    add(config, ("a", 2, "sent while the mail server was down"))
    n.tick()
    assert n.states["email"].failures == 1 and "unreachable" in n.states["email"].last_error
    server = SmtpServer(port, *cert)
    try:
        n.tick()  # still backing off
        assert server.messages == []
        clock.now = n.states["email"].next_try
        n.tick()
        assert len(server.messages) == 1 and "sent while the mail server was down" in server.messages[0]["data"]
        assert load_state(config.notify_state_path)["email"].failures == 0
    finally:
        server.close()
