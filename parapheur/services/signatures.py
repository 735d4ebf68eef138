"""Signing a dossier's documents at a step's level (DESIGN.md §4).

simple: the organisation seal, PAdES B-B, the stamp naming the authenticated signer.
advanced: the signer's own key, unlocked by their signing PIN, plus a TOTP code (two factors), PAdES B-T.
qualified: a key on a PKCS#11 token or a remote CSC service, certificate with QcCompliance + QcSSCD, B-LT.
A wrong PIN or code is counted; past the limit signing is locked. Any failure leaves documents unchanged:
revisions are only added once every document of the dossier is signed.
"""

from __future__ import annotations

import json
from datetime import datetime
from zoneinfo import ZoneInfo

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from signing import keys as signing_keys
from signing.errors import SigningError, WrongPin
from signing.levels import SignatureLevel
from signing.signer import sign
from signing.stamp import StampText

from ..models import Document, Dossier, Revision, SigningCredential, User
from ..storage import store
from . import accounts
from .credentials import instance_pki, timestamper, validation_context
from .documents import add_revision, field_name
from .errors import Forbidden, Invalid, Unavailable, Unprocessable

PARIS = ZoneInfo("Europe/Paris")


def credential_for(session: Session, user: User, level: str) -> SigningCredential | None:
    kinds = ["software", "pkcs11", "csc"] if level == "advanced" else ["pkcs11", "csc"]
    rows = session.scalars(select(SigningCredential).where(
        SigningCredential.user_id == user.id, SigningCredential.revoked_at.is_(None),
        SigningCredential.kind.in_(kinds)).order_by(SigningCredential.id.desc())).all()
    return rows[0] if rows else None


def _signer_for(session: Session, app: Flask, user: User, level: str, pin: str | None, otp: str | None,
                otp_verified: bool = False, opened: dict | None = None):
    """The pyHanko signer for ``user`` at ``level``; checks PIN and TOTP, counting failures.

    ``otp_verified``: a batch checked the TOTP code once when the signer started it (a code is good for
    30 s; a batch outlives it); the PIN is still checked for every dossier, by opening the key, unless the
    batch passes ``opened``: software keys it already opened with this PIN are reused rather than derived
    again from the PIN (argon2id: 160 ms of CPU each, which capped batch throughput)."""
    if level == "simple":
        return instance_pki(app).seal_signer()
    credential = credential_for(session, user, level)
    if credential is None:
        raise Forbidden(
            "Vous n'avez pas de certificat de signature à ce niveau : demandez-en un à l'administrateur.",
            "You have no signing certificate at this level: ask your administrator.", code="no_credential")
    if credential.locked:
        raise Forbidden("Signature bloquée après trop d'essais : l'administrateur doit la débloquer.",
                        "Signing locked after too many attempts: an administrator must unlock it.",
                        code="signing_locked")
    if not pin:
        raise Invalid("Saisissez votre code de signature.", "Enter your signing PIN.", code="pin_required")
    if level == "advanced" or credential.kind == "software":
        if not user.totp_secret or not user.totp_confirmed:
            raise Forbidden("Enregistrez d'abord une application d'authentification (profil).",
                            "Enrol an authenticator app first (profile).", code="totp_not_enrolled")
        if not otp_verified and not accounts.verify_totp(user, otp or ""):
            _count_failure(session, app, credential)
            raise Invalid("Code à usage unique incorrect.", "Wrong one-time code.", code="bad_otp")
    if opened is not None and credential.kind == "software" and credential.id in opened:
        return opened[credential.id]
    try:
        signer = _open(credential, pin, otp)
    except WrongPin:
        _count_failure(session, app, credential)
        raise Invalid("Code de signature incorrect.", "Wrong signing PIN.", code="bad_pin") from None
    if credential.failed_attempts:
        credential.failed_attempts = 0
    if opened is not None and credential.kind == "software":
        opened[credential.id] = signer
    return signer


def _open(credential: SigningCredential, pin: str, otp: str | None = None):
    cert = credential.certificate_pem.encode()
    chain = [c.public_bytes(Encoding.PEM) for c in x509.load_pem_x509_certificates(credential.chain_pem.encode())] \
        if credential.chain_pem else []
    settings = json.loads(credential.settings or "{}")
    if credential.kind == "software":
        return signing_keys.software_signer(credential.sealed_key, pin, cert, chain)
    if credential.kind == "pkcs11":
        return signing_keys.pkcs11_signer(settings["module"], settings["token_label"], pin,
                                          settings["key_label"], settings.get("cert_label"), cert=cert, chain=chain)
    return signing_keys.csc_signer(settings["url"], settings["credential_id"], oauth_token=settings.get("oauth_token"),
                                   pin=pin, otp=otp)


def _count_failure(session: Session, app: Flask, credential: SigningCredential) -> None:
    """Count a failed attempt in its own transaction, so the rollback of the act does not undo it."""
    from ..extensions import db

    with db.engine.begin() as connection:
        connection.execute(
            SigningCredential.__table__.update()
            .where(SigningCredential.id == credential.id)
            .values(failed_attempts=SigningCredential.failed_attempts + 1,
                    locked=SigningCredential.failed_attempts + 1 >= app.config["SIGNING_MAX_FAILURES"])
        )


def sign_dossier(session: Session, app: Flask, dossier: Dossier, step, user: User, on_behalf_of: str | None,
                 pin: str | None, otp: str | None, now: datetime, *, otp_verified: bool = False,
                 opened: dict | None = None,
                 ) -> list[tuple[Document, Revision, Revision]]:
    """Sign every document of the dossier for ``step``; all or nothing."""
    level = str(step.level)
    signer = _signer_for(session, app, user, level, pin, otp, otp_verified, opened)
    stamp_name = user.name if not on_behalf_of else f"{user.name} (pour le compte de {on_behalf_of})"
    stamp = StampText(stamp_name, step.name or f"étape {step.index + 1}", now.astimezone(PARIS))
    outputs = []
    for document in [d for d in dossier.documents if d.kind == "document"]:
        before = document.current
        data = store().get(before.sha256)
        first = not any(r.reason == "signature" for r in document.revisions if r.number <= before.number
                        and r.number > _round_start(document))
        try:
            signed = sign(
                data, signer=signer, level=SignatureLevel(level), field_name=field_name(step), stamp=stamp,
                certify=first, timestamper=timestamper(app) if level != "simple" else None,
                validation_context=validation_context(app) if level == "qualified" else None,
                reason=f"{step.name or 'Signature'} — {dossier.title}"[:200], location=app.config["ORG_NAME"],
            )
        except SigningError as error:
            if error.code in {"timestamp_unavailable", "token_unavailable", "remote_signing_failed"}:
                raise Unavailable(error.message_fr, error.message_en, code=error.code) from None
            raise Unprocessable(error.message_fr, error.message_en, code=error.code) from None
        outputs.append((document, before, signed))
    results = []
    for document, before, signed in outputs:
        results.append((document, before, add_revision(document, signed, "signature", user, now, step.index)))
    return results


def _round_start(document: Document) -> int:
    """Revision number where the current circuit round began (after the last relaunch)."""
    starts = [r.number for r in document.revisions if r.reason == "relaunch"]
    return max(starts) if starts else 0


def check_second_factor(session: Session, app: Flask, user: User, level: str, pin: str | None,
                        otp: str | None) -> None:
    """Check PIN and code once, as a batch starts: a wrong one stops the batch before any dossier."""
    if level != "simple":
        _signer_for(session, app, user, level, pin, otp)
