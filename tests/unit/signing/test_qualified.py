"""signing.qualified — QcStatements checks (ETSI EN 319 412-5)."""

from __future__ import annotations

import datetime as dt
import pickle

import pytest
from asn1crypto import pem
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pyhanko.sign.ades.qualified_asn1 import QcStatements

from signing import errors
from signing.errors import NotQualified
from signing.qualified import (
    QC_COMPLIANCE,
    QC_SSCD,
    QC_TYPE,
    QC_TYPE_ESIGN,
    is_qualified,
    qc_statements,
    qc_types,
    require_qualified,
)
from tests.pki.fixtures import TestPKI

_KEY = ec.generate_private_key(ec.SECP256R1())


def _cert_with_qc(der_value: bytes | None) -> asn1_x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "QC test")])
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(_KEY.public_key())
        .serial_number(1)
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
    )
    if der_value is not None:
        ext = x509.UnrecognizedExtension(x509.ObjectIdentifier("1.3.6.1.5.5.7.1.3"), der_value)
        builder = builder.add_extension(ext, critical=False)
    cert = builder.sign(_KEY, hashes.SHA256())
    return asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))


def _qc(*statements: str) -> bytes:
    return QcStatements([{"statement_id": s} for s in statements]).dump()


def test_qualified_test_certificate(test_pki: TestPKI) -> None:
    cert = test_pki.cert("qualified")
    assert {QC_COMPLIANCE, QC_SSCD, QC_TYPE} <= qc_statements(cert)
    assert qc_types(cert) == {QC_TYPE_ESIGN}
    assert is_qualified(cert)
    require_qualified(cert)
    require_qualified(cert.dump())  # DER
    require_qualified(pem.armor("CERTIFICATE", cert.dump()))  # PEM


def test_not_qualified_certificate(test_pki: TestPKI) -> None:
    cert = test_pki.cert("not-qualified")
    assert qc_statements(cert) == frozenset() and qc_types(cert) == frozenset()
    assert not is_qualified(cert)
    with pytest.raises(NotQualified) as exc:
        require_qualified(cert)
    assert "QcCompliance" in exc.value.detail and "QcSSCD" in exc.value.detail
    assert exc.value.code == "not_qualified"
    assert exc.value.message("en").startswith("This certificate is not a qualified certificate")
    assert exc.value.to_dict("fr") == {"code": "not_qualified", "message": exc.value.message_fr}


@pytest.mark.parametrize(
    ("statements", "qualified"),
    [
        ((QC_COMPLIANCE, QC_SSCD), True),
        ((QC_COMPLIANCE,), False),  # qualified certificate, key not in a QSCD
        ((QC_SSCD,), False),
        (("0.4.0.1862.1.3",), False),  # retention period only (bogus but well-formed)
        ((), False),
    ],
)
def test_required_statements(statements: tuple[str, ...], qualified: bool) -> None:
    cert = _cert_with_qc(_qc(*statements))
    assert is_qualified(cert) is qualified
    if qualified:
        require_qualified(cert)
    else:
        with pytest.raises(NotQualified):
            require_qualified(cert)


def test_no_extension_and_malformed_extension() -> None:
    assert qc_statements(_cert_with_qc(None)) == frozenset()
    broken = _cert_with_qc(b"\x30\x03\x02\x01")  # truncated DER
    assert not is_qualified(broken)
    with pytest.raises(NotQualified):
        require_qualified(broken)


def test_error_hierarchy_and_messages() -> None:
    classes = [
        errors.WrongPin,
        errors.KeyLocked,
        errors.KeyCorrupted,
        errors.NotQualified,
        errors.TokenUnavailable,
        errors.RemoteSigningFailed,
        errors.TimestampUnavailable,
        errors.UnreadablePdf,
    ]
    codes = set()
    for cls in classes:
        err = cls("technical detail")
        assert isinstance(err, errors.SigningError)
        assert err.message_fr and err.message_en and err.message_fr != err.message_en
        assert err.detail == "technical detail" and "technical detail" in str(err)
        codes.add(err.code)
    assert len(codes) == len(classes)
    custom = errors.UnreadablePdf("x", message_fr="Fichier vide.", message_en="Empty file.")
    assert custom.message("fr") == "Fichier vide." and custom.message("en-GB") == "Empty file."
    for reason in ("expired", "not_yet_valid", "revoked", "untrusted", "key_mismatch", "unusable"):
        problem = errors.CertificateProblem(reason)
        assert problem.reason == reason and problem.message_fr != errors.CertificateProblem.message_fr


def test_errors_survive_pickling() -> None:
    for err in (
        errors.CertificateProblem("revoked", detail="serial 4101"),
        errors.InvalidPkcs12("wrong_passphrase"),
        errors.UnreadablePdf("x", message_fr="Fichier vide.", message_en="Empty file."),
    ):
        copy = pickle.loads(pickle.dumps(err))
        assert type(copy) is type(err) and copy.__dict__ == err.__dict__ and copy.args == err.args
