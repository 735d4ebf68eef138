"""Emails: the assignees of a newly active step get a French email with a link; reminders once."""

import socket
from datetime import timedelta

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import update

from parapheur.extensions import db
from parapheur.models import Dossier, utcnow
from parapheur.services import reminders

from .factories import act, create_dossier


class Inbox:
    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        from email import message_from_bytes
        from email.policy import default

        self.messages.append((envelope.rcpt_tos, message_from_bytes(envelope.content, policy=default)))
        return "250 OK"


@pytest.fixture
def smtp():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield port, inbox
    controller.stop()


def test_next_assignee_gets_a_french_email_with_a_link(make_app, smtp):
    port, inbox = smtp
    app = make_app("org", SMTP_HOST="127.0.0.1", SMTP_PORT=port, BASE_URL="https://parapheur.example.fr")
    with app.app_context():
        dossier = create_dossier("contrat", title="Contrat de Mme Lenoir")
        desk_mails = {tuple(rcpt)[0]: msg for rcpt, msg in inbox.messages}
        assert set(desk_mails) == {"julien@example.fr", "sophie@example.fr"}  # desk drh
        act(dossier, "drh.bernard", "approve")
        rcpt, message = inbox.messages[-1]
        assert rcpt == ["paul@example.fr"]
        assert message["Subject"] == "[Parapheur] Dossier à signer : Contrat de Mme Lenoir"
        body = message.get_content()
        assert "Bonjour Paul Martin" in body and "attend votre signature" in body
        assert f"https://parapheur.example.fr/dossiers/{dossier.id}" in body


def test_a_retried_notification_job_sends_nothing_twice(make_app, smtp):
    port, inbox = smtp
    app = make_app("org", SMTP_HOST="127.0.0.1", SMTP_PORT=port)
    with app.app_context():
        dossier = create_dossier("note-interne")
        count = len(inbox.messages)
        from parapheur import jobs

        jobs.notify_step_activated(dossier.id, 0, dossier.version)
        assert len(inbox.messages) == count


def test_overdue_steps_get_one_reminder(make_app, smtp):
    port, inbox = smtp
    app = make_app("org", SMTP_HOST="127.0.0.1", SMTP_PORT=port)
    with app.app_context():
        dossier = create_dossier("contrat")
        db.session.execute(update(Dossier).where(Dossier.id == dossier.id)
                           .values(due_at=utcnow() - timedelta(days=1)))
        db.session.commit()
        before = len(inbox.messages)
        assert reminders.send_due() == 2
        assert "Relance" in inbox.messages[-1][1]["Subject"]
        assert reminders.send_due() == 0
        assert len(inbox.messages) == before + 2
