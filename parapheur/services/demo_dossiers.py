"""Sample dossiers for the demo, created once (running ``parapheur demo`` again adds none)."""

from __future__ import annotations

from flask import Flask
from sqlalchemy import func, select

from .. import audit, jobs
from ..extensions import db
from ..models import Dossier, User, utcnow
from ..samples import text_pdf
from ..storage import store
from . import dossiers

SAMPLES = [
    ("contrat", "Contrat de travail — Mme Leroy", "rh.dupont", [], 3),
    ("contrat", "Contrat de travail — M. Garnier", "rh.dupont", [("drh.bernard", "approve")], 3),
    ("attestation", "Attestation employeur — M. Petit", "rh.dupont", [], 1),
    ("arrete-rh", "Arrêté de nomination — Mme Roux", "rh.lefevre", [], 2),
    ("note-interne", "Note interne — horaires d'été", "rh.dupont", None, 1),
]


def create_samples(app: Flask) -> int:
    session = db.session
    if session.scalar(select(func.count()).select_from(Dossier)):
        return 0
    users = {u.username: u for u in session.scalars(select(User))}
    for type_code, title, initiator, acts, pages in SAMPLES:
        data = text_pdf(title, ["Ville de Techniville — Direction des ressources humaines.",
                                "Document de démonstration du parapheur électronique."], pages=pages)
        upload = dossiers.Upload(f"{type_code}.pdf", store().put(data), len(data))
        now = utcnow()
        dossier = dossiers.create(session, users[initiator], title, type_code, [upload], [],
                                  audit.Meta("demo"), now)
        session.flush()
        pending = []
        if acts is not None:
            pending.extend(dossiers.perform(session, app, dossier, users[initiator], "launch",
                                            audit.Meta(initiator), now).jobs)
            for username, action in acts:
                pending.extend(dossiers.perform(session, app, dossier, users[username], action,
                                                audit.Meta(username), utcnow()).jobs)
        session.commit()
        jobs.enqueue_after_commit(pending)
    return len(SAMPLES)
