"""Test data: dossiers created and moved through the services as users would."""

from __future__ import annotations

import pyotp
from sqlalchemy import select

from parapheur import audit, jobs
from parapheur.extensions import db
from parapheur.models import User, utcnow
from parapheur.samples import text_pdf
from parapheur.services import dossiers
from parapheur.storage import store

TOTP = {"dgs.martin": "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"}
PINS = {"dgs.martin": "482913", "drh.bernard": "111222"}


def user(username: str) -> User:
    return db.session.scalar(select(User).where(User.username == username))


def upload(name: str = "contrat.pdf", data: bytes | None = None, pages: int = 2) -> dossiers.Upload:
    data = data if data is not None else text_pdf(f"Document {name}", ["Texte de l'acte."], pages=pages)
    digest = store().put(data)
    return dossiers.Upload(name, digest, len(data))


def create_dossier(type_code: str = "contrat", title: str = "Contrat de Mme Dupont", initiator: str = "rh.dupont",
                   documents: int = 1, launch: bool = True):
    docs = [upload(f"document-{i + 1}.pdf") for i in range(documents)]
    dossier = dossiers.create(db.session, user(initiator), title, type_code, docs, [], audit.Meta(initiator),
                              utcnow())
    db.session.flush()
    if launch:
        act(dossier, initiator, "launch")
    db.session.commit()
    return dossier


def act(dossier, username: str, action: str, **kwargs):
    from flask import current_app

    if action == "sign" and username in PINS:
        kwargs.setdefault("pin", PINS[username])
        if username in TOTP:
            kwargs.setdefault("otp", pyotp.TOTP(TOTP[username]).now())
    result = dossiers.perform(db.session, current_app._get_current_object(), dossier, user(username), action,
                              audit.Meta(username), utcnow(), **kwargs)
    db.session.commit()
    jobs.enqueue_after_commit(result.jobs)
    return result
