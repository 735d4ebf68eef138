"""Instance keys and signers' credentials.

The instance PKI (CA, seal, TSA) is created once at ``parapheur init`` and loaded once per process: parsing
keys is the costly part of signing (DESIGN.md §4), so the loaded object lives in the app's extensions.
"""

from __future__ import annotations

import json
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


def _pem(cert) -> str:
    """PEM text of an asn1crypto or cryptography certificate."""
    if hasattr(cert, "public_bytes"):
        return cert.public_bytes(serialization.Encoding.PEM).decode()
    from asn1crypto import pem

    return pem.armor("CERTIFICATE", cert.dump()).decode()


def import_pkcs12(session: Session, user: User, data: bytes, passphrase: str, pin: str) -> SigningCredential:
    """Import a certificate and key from a real CA (PKCS#12); the key is re-sealed under the signing PIN."""
    from signing.errors import InvalidPkcs12
    from signing.qualified import is_qualified

    from .errors import Invalid

    try:
        private_key, cert, chain = signing_keys.import_pkcs12(data, passphrase)
    except InvalidPkcs12 as error:
        raise Invalid(error.message_fr, error.message_en, code="bad_pkcs12") from None
    if not (pin.isdigit() and 6 <= len(pin) <= 12):
        raise Invalid("Le code de signature doit compter 6 à 12 chiffres.", "The signing PIN must be 6-12 digits.")
    der = private_key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
    credential = SigningCredential(
        user_id=user.id, kind="software", level="advanced", certificate_pem=_pem(cert),
        chain_pem="".join(_pem(c) for c in chain), sealed_key=signing_keys.seal_private_key(der, pin),
        settings=json.dumps({"imported": True, "qualified_certificate": is_qualified(cert)}),
    )
    session.add(credential)
    session.flush()
    return credential


def register_token(session: Session, user: User, kind: str, settings: dict, certificate_pem: str,
                   chain_pem: str = "") -> SigningCredential:
    """Record a qualified credential held outside the instance: a PKCS#11 token (``module``,
    ``token_label``, ``key_label``) or a remote CSC service (``url``, ``credential_id``, ``oauth_token``).
    The certificate must carry QcCompliance and QcSSCD."""
    from signing.errors import NotQualified
    from signing.qualified import require_qualified

    from .errors import Invalid

    required = {"pkcs11": ("module", "token_label", "key_label"), "csc": ("url", "credential_id")}[kind]
    missing = [key for key in required if not settings.get(key)]
    if missing:
        raise Invalid(f"Paramètres manquants : {', '.join(missing)}.", f"Missing settings: {', '.join(missing)}.")
    try:
        require_qualified(certificate_pem.encode())
    except NotQualified as error:
        raise Invalid(error.message_fr, error.message_en, code="not_qualified") from None
    credential = SigningCredential(user_id=user.id, kind=kind, level="qualified", certificate_pem=certificate_pem,
                                   chain_pem=chain_pem, settings=json.dumps(settings))
    session.add(credential)
    session.flush()
    return credential
