"""signing.pki — the instance CA, seal and in-process TSA of the embedded default."""

from __future__ import annotations

import datetime as dt
import stat

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from signing.fields import FieldSpec, prepare_fields
from signing.levels import SignatureLevel
from signing.pki import (
    CRL_REFRESH_AFTER,
    create_instance_pki,
    issue_personal_certificate,
    load_instance_pki,
)
from signing.signer import sign
from signing.validation import validate


def _public_der(key) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def test_certificates_say_what_they_are(instance_pki):
    seal = instance_pki.seal_cert
    assert seal.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == instance_pki.org_name
    assert seal.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == (
        f"Cachet {instance_pki.org_name}"
    )
    usage = seal.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature and usage.content_commitment and not usage.key_cert_sign

    eku = instance_pki.tsa_cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    assert eku.critical and list(eku.value) == [ExtendedKeyUsageOID.TIME_STAMPING]

    root = instance_pki.root_cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert root.critical and root.value.ca
    for cert in (seal, instance_pki.tsa_cert):
        assert cert.issuer == instance_pki.root_cert.subject
    assert instance_pki.crl_url is None  # not published unless asked


def test_personal_certificate(instance_pki):
    key = ec.generate_private_key(ec.SECP256R1())
    cert = issue_personal_certificate(instance_pki, "Paul Martin", "paul.martin@example.fr", key.public_key())
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "Paul Martin"
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical and usage.value.digital_signature and usage.value.content_commitment
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.RFC822Name) == ["paul.martin@example.fr"]
    assert cert.not_valid_after_utc - cert.not_valid_before_utc > dt.timedelta(days=365)


def test_save_and_load_round_trip(tmp_path):
    pki = create_instance_pki("Mairie de Lyon", crl_url="https://parapheur.example.fr/pki/crl")
    pki.save(tmp_path)
    for name in ("root.key", "seal.key", "tsa.key"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600
    for name in ("root.pem", "seal.pem", "tsa.pem", "crl.pem"):
        assert (tmp_path / name).exists()

    loaded = load_instance_pki(tmp_path)
    assert loaded.org_name == "Mairie de Lyon"
    assert loaded.crl_url == "https://parapheur.example.fr/pki/crl"
    for attr in ("root", "seal", "tsa"):
        assert getattr(loaded, f"{attr}_cert") == getattr(pki, f"{attr}_cert")
        assert _public_der(getattr(loaded, f"{attr}_key")) == _public_der(getattr(pki, f"{attr}_key"))
    assert loaded.crl == pki.crl

    # Parsed once per process: the same object (and its signer) come back...
    assert load_instance_pki(tmp_path) is loaded
    assert loaded.seal_signer() is loaded.seal_signer()
    assert loaded.timestamper() is loaded.timestamper()
    # ... until a file changes.
    loaded.revoke(pki.seal_cert)
    loaded.save(tmp_path)
    reloaded = load_instance_pki(tmp_path)
    assert reloaded is not loaded
    assert [entry.serial_number for entry in reloaded.crl] == [pki.seal_cert.serial_number]


def test_encrypted_keys(tmp_path):
    pki = create_instance_pki("Commune de Test")
    pki.save(tmp_path, passphrase=b"correct horse")
    assert b"ENCRYPTED" in (tmp_path / "seal.key").read_bytes()
    with pytest.raises(TypeError):
        load_instance_pki(tmp_path)  # no passphrase
    assert load_instance_pki(tmp_path, passphrase=b"correct horse").seal_cert == pki.seal_cert


def test_crl_is_reissued_when_stale():
    pki = create_instance_pki("Commune de Test")
    aged = dt.datetime.now(dt.UTC) - CRL_REFRESH_AFTER - dt.timedelta(hours=1)
    pki.crl = (x509.CertificateRevocationListBuilder().issuer_name(pki.root_cert.subject)
               .last_update(aged).next_update(aged + dt.timedelta(days=7))
               .sign(pki.root_key, hashes.SHA256()))
    fresh = x509.load_der_x509_crl(pki.crl_der)
    assert fresh.last_update_utc > dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    assert fresh.is_signature_valid(pki.root_cert.public_key())


def test_seal_b_b_validates_against_instance_root(instance_pki, pdf10, stamp):
    pdf = prepare_fields(pdf10, [FieldSpec("cachet")])
    signed = sign(pdf, signer=instance_pki.seal_signer(), level=SignatureLevel.SIMPLE,
                  field_name="cachet", stamp=stamp, certify=True)
    report = validate(signed, instance_pki.trust_config())
    assert report.valid, report
    (sig,) = report.signatures
    assert (sig.field, sig.level, sig.signer) == ("cachet", "B-B", f"Cachet {instance_pki.org_name}")
    assert sig.intact and sig.trusted and sig.revocation == "good"
    assert sig.timestamp_time is None and sig.coverage == "entire_file"


def test_b_t_with_in_process_tsa(instance_pki, personal_signer, pdf10, stamp):
    pdf = prepare_fields(pdf10, [FieldSpec("agent")])
    before = dt.datetime.now(dt.UTC)
    signed = sign(pdf, signer=personal_signer, level=SignatureLevel.ADVANCED, field_name="agent",
                  stamp=stamp, certify=True, timestamper=instance_pki.timestamper())
    report = validate(signed, instance_pki.trust_config())
    assert report.valid, report
    (sig,) = report.signatures
    assert sig.level == "B-T" and sig.signer == "Hélène Lefèvre"
    assert sig.timestamp_time is not None
    assert before - dt.timedelta(seconds=2) <= sig.timestamp_time <= dt.datetime.now(dt.UTC)


def test_revoked_personal_certificate_is_refused(pdf10, stamp):
    pki = create_instance_pki("Commune de Test")
    key = ec.generate_private_key(ec.SECP256R1())
    cert = issue_personal_certificate(pki, "Jean Dupont", "jean.dupont@example.fr", key.public_key())
    signed = sign(prepare_fields(pdf10, [FieldSpec("s")]), signer=pki.personal_signer(cert, key),
                  level="advanced", field_name="s", stamp=stamp, certify=True,
                  timestamper=pki.timestamper())
    assert validate(signed, pki.trust_config()).valid
    pki.revoke(cert)
    # Both with certvalidator requiring revocation data, and in soft-fail mode where it would
    # not consult a CRL for a certificate naming no distribution point: our check does.
    for mode in ("require", "soft-fail"):
        (sig,) = validate(signed, pki.trust_config(revocation_mode=mode)).signatures
        assert not sig.valid and sig.revocation == "revoked", mode
        assert any("révoqué" in reason for reason in sig.reasons)
