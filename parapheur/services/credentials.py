"""Instance keys and signers' credentials.

The instance PKI (CA, seal, TSA) is created once at ``parapheur init`` and loaded once per process: parsing
keys is the costly part of signing (DESIGN.md §4), so the loaded object lives in the app's extensions.
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from signing import keys as signing_keys
from signing import pki as signing_pki

from ..models import SigningCredential, User

_PKI_KEY = "parapheur.pki"


def _keys_dir(app: Flask) -> Path:
    return Path(app.config["KEYS_DIR"])


def ensure_instance_pki(app: Flask) -> bool:
    """Create the instance CA, seal and TSA keys if they are not there yet; True if created."""
    directory = _keys_dir(app)
    if (directory / "root.pem").exists():
        return False
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    pki = signing_pki.create_instance_pki(app.config["ORG_NAME"])
    pki.save(directory)
    app.extensions[_PKI_KEY] = pki
    return True


def instance_pki(app: Flask):
    """The instance PKI, loaded once per process."""
    pki = app.extensions.get(_PKI_KEY)
    if pki is None:
        pki = app.extensions[_PKI_KEY] = signing_pki.load_instance_pki(_keys_dir(app))
    return pki


def ensure_personal_credential(session: Session, app: Flask, user: User, pin: str) -> bool:
    """Give ``user`` a personal certificate from the instance CA, its key sealed by ``pin``.

    Does nothing if the user already has a software credential (issued or imported): set-up stays
    idempotent and never replaces a key a signer already relies on. True if one was created.
    """
    existing = session.scalar(
        select(SigningCredential).where(
            SigningCredential.user_id == user.id,
            SigningCredential.kind == "software",
            SigningCredential.revoked_at.is_(None),
        )
    )
    if existing is not None:
        return False
    pki = instance_pki(app)
    private_key = signing_keys.generate_key()
    cert = signing_pki.issue_personal_certificate(pki, user.name, user.email, private_key.public_key())
    der = private_key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    session.add(
        SigningCredential(
            user_id=user.id,
            kind="software",
            level="advanced",
            certificate_pem=cert.public_bytes(serialization.Encoding.PEM).decode(),
            chain_pem=pki.root_cert.public_bytes(serialization.Encoding.PEM).decode(),
            sealed_key=signing_keys.seal_private_key(der, pin),
        )
    )
    session.flush()
    return True


def timestamper(app: Flask):
    """The RFC 3161 client: ``PARAPHEUR_TSA_URL`` if set, else the instance's in-process TSA. One per
    process, reused for every signature (DESIGN.md §4)."""
    ts = app.extensions.get("parapheur.timestamper")
    if ts is None:
        url = app.config.get("TSA_URL")
        if url:
            from pyhanko.sign.timestamps import HTTPTimeStamper

            ts = HTTPTimeStamper(url, timeout=10)
        else:
            ts = instance_pki(app).timestamper()
        app.extensions["parapheur.timestamper"] = ts
    return ts


def trust_roots(app: Flask) -> list:
    """Roots a signature must chain to: the instance CA plus ``PARAPHEUR_TRUST_ROOTS`` (a PEM bundle)."""
    from asn1crypto import pem
    from asn1crypto import x509 as asn1_x509

    roots = list(instance_pki(app).trust_roots)
    bundle = app.config.get("TRUST_ROOTS")
    if bundle:
        data = Path(bundle).read_bytes()
        for _, _, der in pem.unarmor(data, multiple=True):
            roots.append(asn1_x509.Certificate.load(der))
    return roots


def validation_context(app: Flask):
    """Validation context for embedding revocation data (B-LT): our roots, the instance CRL, fetching on."""
    from pyhanko_certvalidator import ValidationContext

    return ValidationContext(trust_roots=trust_roots(app), crls=[instance_pki(app).crl_der],
                             allow_fetching=True)
