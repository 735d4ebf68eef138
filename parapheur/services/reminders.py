"""Reminders for overdue steps (``parapheur remind``, run periodically)."""

from __future__ import annotations

from flask import current_app
from sqlalchemy import select

from ..extensions import db
from ..models import Dossier, utcnow
from . import notifications


def send_due() -> int:
    """Mail the assignees of every overdue active step once per step activation."""
    now = utcnow()
    session = db.session
    ids = session.scalars(select(Dossier.id).where(Dossier.status == "in_progress", Dossier.due_at <= now,
                                                   Dossier.reminded_at.is_(None))).all()
    sent = 0
    for dossier_id in ids:
        dossier = session.get(Dossier, dossier_id)
        sent += notifications.reminder(current_app._get_current_object(), dossier)
        session.execute(Dossier.__table__.update().where(Dossier.id == dossier_id, Dossier.version == dossier.version)
                        .values(reminded_at=now))
        session.commit()
    return sent
