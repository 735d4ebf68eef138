"""Helpers for API and webhook tests: tokens, an authenticated client, a webhook receiver on loopback."""

from __future__ import annotations

import io
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pyotp

from parapheur.samples import text_pdf
from parapheur.services import tokens

from .factories import PINS, TOTP

PREFIX = "/api/v1"


def token_for(app, username: str, name: str = "test") -> str:
    with app.app_context():
        return tokens.create_for(username, name)


class Api:
    """A test client sending ``Authorization: Bearer`` (and never a session cookie)."""

    def __init__(self, app, username: str | None = None, *, token: str | None = None, locale: str | None = None):
        self.app = app
        self.client = app.test_client(use_cookies=False)
        self.token = token or (token_for(app, username) if username else None)
        self.locale = locale

    def headers(self, extra: dict | None = None) -> dict:
        headers = {}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        if self.locale:
            headers["Accept-Language"] = self.locale
        headers.update(extra or {})
        return headers

    def get(self, path: str, headers: dict | None = None, **kwargs):
        return self.client.get(PREFIX + path, headers=self.headers(headers), **kwargs)

    def post(self, path: str, headers: dict | None = None, **kwargs):
        return self.client.post(PREFIX + path, headers=self.headers(headers), **kwargs)

    def create_dossier(self, type_code: str = "contrat", title: str = "Contrat de Mme Durand", documents: int = 1,
                       launch: bool = True, annexes: int = 0, **kwargs):
        data = {"title": title, "type": type_code, "launch": "true" if launch else "false",
                "documents": [pdf_file(f"document-{i + 1}.pdf") for i in range(documents)]}
        if annexes:
            data["annexes"] = [(io.BytesIO(b"annexe %d" % i), f"annexe-{i}.txt") for i in range(annexes)]
        return self.post("/dossiers", data=data, content_type="multipart/form-data", **kwargs)

    def act(self, dossier_id: int, action: str, **body):
        headers = body.pop("headers", None)
        return self.post(f"/dossiers/{dossier_id}/actions", json={"action": action, **body}, headers=headers)

    def sign_advanced(self, dossier_id: int, username: str = "dgs.martin", **body):
        """Sign with the signer's PIN and a fresh TOTP code (the two factors of an advanced signature)."""
        return self.act(dossier_id, "sign", pin=PINS[username], otp=pyotp.TOTP(TOTP[username]).now(), **body)


def pdf_file(name: str, pages: int = 2):
    return (io.BytesIO(text_pdf(f"Document {name}", ["Article 1 : le présent contrat…"], pages=pages)), name)


class Receiver:
    """A webhook receiver on 127.0.0.1 (a thread running http.server); answers ``statuses`` in turn
    (then the last one forever) and records every request."""

    def __init__(self, statuses: tuple[int, ...] = (200,)):
        self.requests: list[dict] = []
        self.statuses = list(statuses)
        self.event = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.requests.append({"path": self.path, "headers": dict(self.headers.items()), "body": body})
                status = receiver.statuses.pop(0) if len(receiver.statuses) > 1 else receiver.statuses[0]
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")
                receiver.event.set()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks/parapheur"

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)

    def events(self, name: str | None = None) -> list[dict]:
        found = []
        for request in self.requests:
            payload = json.loads(request["body"])
            if name is None or payload["event"] == name:
                found.append({**request, "payload": payload})
        return found


def add_webhook(app, url: str, events: list[str], secret: str = "s3cret-for-the-hr-system") -> int:
    from parapheur import audit
    from parapheur.extensions import db
    from parapheur.models import utcnow
    from parapheur.services import webhooks

    from .factories import user

    with app.app_context():
        hook = webhooks.create(db.session, user("admin"), url, events, "SIRH", secret, audit.Meta("admin"), utcnow())
        db.session.commit()
        return hook.id
