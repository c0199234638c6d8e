"""The notifier inside the real worker under supervisord: a webhook that hangs and an SMTP server
that is down while reviews come in. Backups go on at their pace meanwhile; once both receivers
are up, the pending reviews arrive in one message each. The secrets never reach the web's
environment, a log line or `status`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests import gradio_api
from tests.apprunner import App, free_port, wait_until
from tests.notify_servers import SMTP_PASSWORD, SMTP_USER, WEBHOOK_PATH, BlackHole, Receiver, SmtpServer, make_cert

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def status(app: App) -> dict:
    return json.loads(app.worker("status", "--json").stdout)


def test_receivers_down_backups_unaffected_then_delivered_secrets_kept(tmp_path):
    cert, key = make_cert(tmp_path)
    hole = BlackHole()
    webhook_port, smtp_port = hole.port, free_port()
    url = f"http://127.0.0.1:{webhook_port}{WEBHOOK_PATH}"
    env = {"NOTIFY_WEBHOOK_URL": url, "NOTIFY_SMTP_PASSWORD": SMTP_PASSWORD, "NOTIFY_EMAIL_TO": "owner@example.test",
           "NOTIFY_EMAIL_FROM": "form@example.test", "NOTIFY_SMTP_HOST": "127.0.0.1",
           "NOTIFY_SMTP_PORT": str(smtp_port), "NOTIFY_SMTP_USER": SMTP_USER, "NOTIFY_SMTP_CA_FILE": str(cert),
           "NOTIFY_INTERVAL_SECONDS": "1", "NOTIFY_BACKOFF_CAP_SECONDS": "2",
           "NOTIFY_TIMEOUT_SECONDS": "120"}
    receiver = smtp = None
    app = App(tmp_path / "data", env=env)
    try:
        with app:
            assert gradio_api.add_review(app.url, "Lou", 1, "The checkout froze twice").ok
            # The webhook's send hangs (for its whole 120 s timeout), the mail server refuses:
            # the e-mail is retried, and backups go on at their pace meanwhile.
            wait_until(lambda: status(app)["notify_email_failures"] >= 2, 30, 0.3, "e-mail retried")
            assert gradio_api.add_review(app.url, "", 5, "Fine now").ok
            wait_until(lambda: status(app)["last_backup_rows"] == 2, 10, 0.3, "a backup while the webhook hangs")
            info = status(app)
            assert info["notify_webhook_failures"] == 0 and info["notify_webhook_last_sent_at"] is None  # in flight
            hole.close()  # the hanging connection is reset: a failure, retried after the backoff
            receiver = Receiver(port=webhook_port)
            smtp = SmtpServer(smtp_port, cert, key)
            wait_until(lambda: receiver.posts and smtp.messages, 30, 0.3, "both messages after recovery")
            info = status(app)
            assert info["notify_webhook_failures"] == 0 and info["notify_email_failures"] == 0
            web_environ = Path(f"/proc/{app.pid('web')}/environ").read_bytes()
            status_text = app.worker("status").stdout
        (post,) = receiver.posts
        assert post["path"] == WEBHOOK_PATH
        assert post["json"]["count"] == 2 and post["json"]["low"][0]["excerpt"] == "The checkout froze twice"
        assert "Lou" not in json.dumps(post["json"])  # names only on opt-in
        (mail,) = smtp.messages
        assert mail["tls"] and "2 new reviews" in mail["data"] and smtp.logins[0]["tls"]
        assert b"NOTIFY_WEBHOOK_URL" not in web_environ and b"NOTIFY_SMTP_PASSWORD" not in web_environ
        assert WEBHOOK_PATH.encode() not in web_environ and SMTP_PASSWORD.encode() not in web_environ
        logs = "\n".join(p.read_text(errors="replace") for p in (app.data_dir / "logs").glob("*.log"))
        assert "notify failed channel=webhook" in logs and "notify sent channel=email reviews=2" in logs
        for secret in (WEBHOOK_PATH, "B0SECRET", SMTP_PASSWORD):
            assert secret not in logs and secret not in status_text
        assert "host=127.0.0.1" in status_text
    finally:
        hole.close()
        if receiver:
            receiver.close()
        if smtp:
            smtp.close()
