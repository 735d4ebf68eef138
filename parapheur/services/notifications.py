"""Emails to people: a step waits for them, a dossier was rejected, a step is overdue.

Each mail is recorded in ``sent_mails`` under a key (what, which dossier, which version) before sending, so
a retried job never mails twice. With no SMTP host configured, mails are logged instead.
"""

from __future__ import annotations

import logging
import smtplib
from email.message import EmailMessage

from flask import Flask
from sqlalchemy import select

from circuits import AssigneeKind

from ..extensions import db
from ..models import Desk, Dossier, SentMail, User
from .dossiers import snapshot_of

log = logging.getLogger(__name__)


def _recipients(session, step) -> list[User]:
    users: dict[int, User] = {}
    for assignee in step.assignees:
        if assignee.kind == AssigneeKind.USER:
            user = session.scalar(select(User).where(User.username == assignee.ref))
            if user:
                users[user.id] = user
        else:
            desk = session.scalar(select(Desk).where(Desk.code == assignee.ref))
            for member in desk.members if desk else []:
                users[member.user.id] = member.user
    return [u for u in users.values() if u.active and u.email]


def _link(app: Flask, dossier_id: int) -> str:
    return f"{app.config['BASE_URL'].rstrip('/')}/dossiers/{dossier_id}"


def step_activated(app: Flask, dossier_id: int, step_index: int, version: int) -> int:
    session = db.session
    dossier = session.get(Dossier, dossier_id)
    if dossier is None:
        return 0
    snapshot = snapshot_of(dossier)
    step = snapshot.steps[step_index]
    verb = "signer" if str(step.kind) == "signature" else "viser"
    sent = 0
    for user in _recipients(session, step):
        subject = f"[Parapheur] Dossier à {verb} : {dossier.title}"
        body = (
            f"Bonjour {user.name},\n\n"
            f"Le dossier « {dossier.title} » ({dossier.type.name}) attend votre {('signature' if verb == 'signer' else 'visa')}"
            f" (étape {step_index + 1}).\n\n"
            f"Pour le consulter : {_link(app, dossier.id)}\n\n"
            f"— {app.config['ORG_NAME']}, parapheur électronique\n"
        )
        sent += _send_once(app, f"activated:{dossier_id}:{step_index}:{version}", user, dossier_id, subject, body)
    return sent


def rejected(app: Flask, dossier_id: int) -> int:
    session = db.session
    dossier = session.get(Dossier, dossier_id)
    if dossier is None:
        return 0
    snapshot = snapshot_of(dossier)
    subject = f"[Parapheur] Dossier rejeté : {dossier.title}"
    body = (
        f"Bonjour {dossier.initiator.name},\n\n"
        f"Le dossier « {dossier.title} » a été rejeté par {snapshot.rejected_by}.\n"
        f"Motif : {snapshot.reject_reason}\n\n"
        f"Vous pouvez le corriger et le relancer : {_link(app, dossier.id)}\n"
    )
    return _send_once(app, f"rejected:{dossier_id}:{dossier.version}", dossier.initiator, dossier_id, subject, body)


def reminder(app: Flask, dossier: Dossier) -> int:
    snapshot = snapshot_of(dossier)
    step = snapshot.active_step
    if step is None:
        return 0
    sent = 0
    for user in _recipients(db.session, step):
        subject = f"[Parapheur] Relance : dossier en retard — {dossier.title}"
        body = (f"Bonjour {user.name},\n\nLe dossier « {dossier.title} » attend votre action depuis le "
                f"{step.activated_at:%d/%m/%Y} et a dépassé son délai.\n\n{_link(app, dossier.id)}\n")
        sent += _send_once(app, f"reminder:{dossier.id}:{dossier.version}", user, dossier.id, subject, body)
    return sent


def _send_once(app: Flask, key: str, user: User, dossier_id: int | None, subject: str, body: str) -> int:
    session = db.session
    if session.scalar(select(SentMail).where(SentMail.key == key, SentMail.user_id == user.id)):
        return 0
    session.add(SentMail(key=key, user_id=user.id, dossier_id=dossier_id))
    session.flush()
    send_mail(app, user.email, subject, body)
    session.commit()
    return 1


def send_mail(app: Flask, to: str, subject: str, body: str) -> None:
    message = EmailMessage()
    message["From"] = app.config["MAIL_FROM"]
    message["To"] = to
    message["Subject"] = subject
    message["Content-Language"] = "fr"
    message.set_content(body)
    host = app.config.get("SMTP_HOST")
    if not host:
        log.info("mail (no SMTP host set) to %s: %s", to, subject)
        return
    with smtplib.SMTP(host, int(app.config["SMTP_PORT"]), timeout=15) as smtp:
        if app.config.get("SMTP_STARTTLS"):
            smtp.starttls()
        if app.config.get("SMTP_USER"):
            smtp.login(app.config["SMTP_USER"], app.config.get("SMTP_PASSWORD", ""))
        smtp.send_message(message)
