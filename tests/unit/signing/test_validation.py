"""signing.validation — reports, tampering, unreadable input."""

from __future__ import annotations

import datetime as dt
import json
from io import BytesIO

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader

from signing.fields import FieldSpec, prepare_fields
from signing.pki import create_instance_pki, issue_personal_certificate
from signing.signer import sign, timestamp_document
from signing.stamp import StampText
from signing.validation import TrustConfig, validate

SIGNATURE_KEYS = {"field", "signer", "level", "signing_time", "timestamp_time", "intact", "trusted",
                  "coverage", "modifications", "valid", "reasons"}


@pytest.fixture(scope="module")
def signed(instance_pki, personal_signer, pdf10, stamp_module) -> bytes:
    """Two signatures: the seal (certifying, B-B) then a personal B-T one."""
    pdf = prepare_fields(pdf10, [FieldSpec("s1"), FieldSpec("s2")])
    first = sign(pdf, signer=instance_pki.seal_signer(), level="simple", field_name="s1",
                 stamp=stamp_module, certify=True)
    return sign(first, signer=personal_signer, level="advanced", field_name="s2", stamp=stamp_module,
                timestamper=instance_pki.timestamper())


@pytest.fixture(scope="module")
def stamp_module():
    return StampText("Hélène Lefèvre", "Signature", dt.datetime.now(dt.UTC))


def test_report_shape(signed, instance_pki):
    report = validate(signed, instance_pki.trust_config())
    data = json.loads(json.dumps(report.to_dict()))
    assert data["valid"] is True and data["error"] is None
    assert len(data["signatures"]) == 2
    for entry in data["signatures"]:
        assert SIGNATURE_KEYS <= set(entry)
        assert entry["level"] in {"B-B", "B-T", "B-LT", "B-LTA"}
        assert entry["coverage"] in {"entire_file", "entire_revision", "partial"}
        assert entry["valid"] is True and entry["reasons"] == []
    first, second = data["signatures"]
    assert (first["field"], first["level"], first["coverage"], first["modifications"]) == (
        "s1", "B-B", "entire_revision", "FORM_FILLING")
    assert (second["field"], second["level"], second["coverage"], second["modifications"]) == (
        "s2", "B-T", "entire_file", "NONE")
    assert second["timestamp_time"] is not None and first["timestamp_time"] is None


def test_page_content_changed_after_signing(signed, instance_pki):
    """An incremental update that rewrites a page: pyHanko's difference analysis catches it."""
    writer = IncrementalPdfFileWriter(BytesIO(signed))
    page_ref, _ = writer.find_page_for_modification(0)
    page = page_ref.get_object()
    forged = generic.StreamObject(stream_data=b"BT /F1 24 Tf 72 700 Td (Montant : 1 000 000 EUR) Tj ET")
    page["/Contents"] = writer.add_object(forged)
    writer.update_container(page)
    out = BytesIO()
    writer.write(out)

    report = validate(out.getvalue(), instance_pki.trust_config())
    assert not report.valid
    for sig in report.signatures:
        assert not sig.valid and sig.intact  # the signed bytes are intact, what follows is not
        assert sig.modifications == "OTHER"
        assert any(reason.startswith("contenu modifié après la signature") for reason in sig.reasons)


def test_flipped_byte_in_signed_range(signed, instance_pki):
    position = signed.index(b"Article 5.") + len(b"Article ")
    tampered = signed[:position] + b"6" + signed[position + 1:]
    report = validate(tampered, instance_pki.trust_config())
    assert not report.valid
    for sig in report.signatures:
        assert not sig.valid and not sig.intact
        assert "octet modifié : intégrité rompue" in sig.reasons


def test_untrusted_root(signed):
    stranger = create_instance_pki("Autre commune")
    report = validate(signed, stranger.trust_config())
    assert not report.valid
    for sig in report.signatures:
        assert sig.intact and not sig.trusted
        assert any(reason.startswith("certificat non approuvé") for reason in sig.reasons)


@pytest.mark.parametrize(("data", "error"), [
    (b"", "fichier vide"),
    (b"\x00\x01garbage" * 100, "ce fichier n'est pas un PDF"),
    (b"%PDF-1.7\n" + b"\x8f" * 2000, "PDF illisible ou endommagé"),
])
def test_garbage_is_reported_not_raised(data, error, instance_pki):
    report = validate(data, instance_pki.trust_config())
    assert not report.valid and report.signatures == ()
    assert report.error.startswith(error)
    assert report.to_dict() == {"valid": False, "signatures": [], "error": report.error}


def test_truncated_signed_file(signed, instance_pki):
    report = validate(signed[: len(signed) - 3000], instance_pki.trust_config())
    assert not report.valid


def test_encrypted(encrypted_pdf, instance_pki):
    report = validate(encrypted_pdf, instance_pki.trust_config())
    assert not report.valid and report.error == "le PDF est protégé par un mot de passe"


def test_no_signature(pdf10, instance_pki):
    for pdf in (pdf10, prepare_fields(pdf10, [FieldSpec("vide")])):
        report = validate(pdf, instance_pki.trust_config())
        assert not report.valid and report.error == "aucune signature"


def test_signature_contents_garbled(signed, instance_pki):
    """A signature whose CMS blob is junk: reported invalid, with a reason, not an exception."""
    reader = PdfFileReader(BytesIO(signed))
    first = reader.embedded_regular_signatures[0]
    start = first.byte_range[1] + 1  # inside the hex string of /Contents
    garbled = signed[:start] + b"00" * 64 + signed[start + 128:]
    report = validate(garbled, instance_pki.trust_config())
    assert not report.valid
    broken = report.signatures[0]
    assert not broken.valid and broken.reasons


def test_trust_config_needs_a_root():
    with pytest.raises(ValueError):
        TrustConfig()
    with pytest.raises(ValueError):
        TrustConfig(trust_roots=[create_instance_pki("X").root_cert], revocation_mode="sometimes")


def test_b_lta_outlives_the_signer_certificate(pdf10, stamp_module):
    """Two months later the signer's 30-day certificate has expired: the B-LT signature alone
    is no longer valid, the archived (B-LTA) one still is, on the strength of its timestamps."""
    pki = create_instance_pki("Commune de Test")
    key = ec.generate_private_key(ec.SECP256R1())
    cert = issue_personal_certificate(pki, "Court Terme", "court@example.fr", key.public_key(),
                                      validity=dt.timedelta(days=30))
    pdf = prepare_fields(pdf10, [FieldSpec("s")])
    b_lt = sign(pdf, signer=pki.personal_signer(cert, key), level="qualified", field_name="s",
                stamp=stamp_module, certify=True, timestamper=pki.timestamper(),
                validation_context=pki.validation_context())
    b_lta = timestamp_document(b_lt, pki.timestamper(), pki.validation_context())
    # The instance CRL of today would be stale then: soft-fail for the "current" checks.
    trust = pki.trust_config(revocation_mode="soft-fail")
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=60)

    assert validate(b_lta, trust).valid
    (alone,) = validate(b_lt, trust, at=later).signatures
    assert not alone.valid and "certificat non approuvé (hors de la période de validité)" in alone.reasons

    report = validate(b_lta, trust, at=later)
    assert report.valid, report
    signature, archive = report.signatures
    assert signature.level == "B-LTA" and archive.kind == "document_timestamp"
    assert signature.reasons[0].startswith("validée à long terme : existence prouvée le ")
