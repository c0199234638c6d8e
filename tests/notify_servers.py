"""Real receivers for the owner's notifications, on 127.0.0.1: a webhook (http.server) and an
SMTP server with STARTTLS and AUTH (aiosmtpd, requirements-test.txt) whose certificate is
made at test time with the openssl command."""

from __future__ import annotations

import json
import socket
import ssl
import subprocess
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

WEBHOOK_PATH = "/hooks/T0SECRET/B0SECRET/xoxSECRETPATH"  # the secret part of a Slack-like URL
SMTP_USER = "notifier@example.test"
SMTP_PASSWORD = "smtp-Pa55-secret"


@dataclass
class Receiver:
    """Records every POST; answers with `status` (and Retry-After when `retry_after` is set)."""
    port: int = 0
    status: int = 200
    retry_after: str | None = None
    posts: list[dict] = field(default_factory=list)

    def __post_init__(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.posts.append({"path": self.path, "headers": dict(self.headers), "json": json.loads(body)})
                self.send_response(receiver.status)
                if receiver.retry_after is not None:
                    self.send_header("Retry-After", receiver.retry_after)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}{WEBHOOK_PATH}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class BlackHole:
    """Accepts connections and never answers: a webhook that hangs."""

    def __init__(self, port: int = 0):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]

    def close(self) -> None:
        self.sock.close()


def make_cert(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (the client trusts it through NOTIFY_SMTP_CA_FILE)."""
    cert, key = folder / "smtp-cert.pem", folder / "smtp-key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    return cert, key


class SmtpServer:
    """aiosmtpd with STARTTLS required before AUTH and before mail (when `tls`), recording messages
    and whether each AUTH and message arrived over TLS."""

    def __init__(self, port: int, cert: Path | None = None, key: Path | None = None, *, tls: bool = True):
        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import AuthResult

        self.messages: list[dict] = []
        self.logins: list[dict] = []
        server = self

        class Handler:
            async def handle_DATA(self, smtp, session, envelope):
                server.messages.append({"from": envelope.mail_from, "to": list(envelope.rcpt_tos),
                                        "data": envelope.content.decode("utf-8", "replace"),
                                        "tls": session.ssl is not None})
                return "250 OK"

        def authenticator(smtp, session, envelope, mechanism, auth_data):
            server.logins.append({"user": auth_data.login.decode(), "password": auth_data.password.decode(),
                                  "tls": session.ssl is not None})
            ok = auth_data.login.decode() == SMTP_USER and auth_data.password.decode() == SMTP_PASSWORD
            return AuthResult(success=ok)

        kwargs: dict = {"authenticator": authenticator, "auth_require_tls": tls, "auth_required": tls}
        if tls:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(cert, key)
            kwargs.update(tls_context=context, require_starttls=True)
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=port, **kwargs)
        self.controller.start()
        self.port = port

    def close(self) -> None:
        self.controller.stop()
