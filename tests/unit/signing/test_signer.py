"""signing.signer — PAdES signatures: levels, stamp, failures, reserved size, speed."""

from __future__ import annotations

import datetime as dt
import socket
import statistics
import time
from io import BytesIO

import pytest
from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import signers
from pyhanko.sign.fields import SigSeedSubFilter, enumerate_sig_fields
from pyhanko.sign.timestamps import HTTPTimeStamper
from pyhanko_certvalidator.registry import SimpleCertificateStore

from signing.errors import CertificateProblem, SigningError, TimestampUnavailable
from signing.fields import FieldSpec, prepare_fields
from signing.pki import issue_personal_certificate
from signing.signer import RevocationDataUnavailable, reserved_size, sign, timestamp_document
from signing.stamp import StampText, to_winansi
from signing.validation import validate


@pytest.fixture(scope="module")
def prepared(pdf10) -> bytes:
    return prepare_fields(pdf10, [FieldSpec("s1"), FieldSpec("s2"), FieldSpec("s3")])


def cms_sizes(pdf: bytes) -> dict[str, tuple[int, int]]:
    """field -> (bytes reserved for the signature container, bytes it actually takes)."""
    out = {}
    for sig in PdfFileReader(BytesIO(pdf)).embedded_signatures:
        start, end = sig.byte_range[1], sig.byte_range[2]
        reserved = (end - start - 2) // 2
        der = sig.pkcs7_content
        assert der[0] == 0x30
        if der[1] < 0x80:
            actual = 2 + der[1]
        else:
            width = der[1] & 0x7F
            actual = 2 + width + int.from_bytes(der[2:2 + width], "big")
        out[sig.field_name] = (reserved, actual)
    return out


def _appearance_bytes(pdf: bytes, field: str) -> bytes:
    """Every content stream drawing the appearance of ``field`` (nested forms included)."""
    reader = PdfFileReader(BytesIO(pdf))
    (widget,) = [ref.get_object() for name, _, ref in enumerate_sig_fields(reader) if name == field]
    chunks, todo = [], [widget["/AP"]["/N"]]
    while todo:
        stream = todo.pop().get_object()
        chunks.append(stream.data)
        xobjects = stream.get("/Resources", generic.DictionaryObject()).get("/XObject", {})
        todo.extend(xobjects.values())
    return b"\n".join(chunks)


def test_stamp_text_in_french(stamp):
    text = StampText("Hélène Lefèvre", "Visa", dt.datetime(2026, 3, 5, 14, 7, tzinfo=dt.UTC)).render()
    assert text == "Signé par Hélène Lefèvre\nle 05/03/2026 à 14:07 (UTC)\nétape : Visa"


def test_to_winansi():
    assert to_winansi("Signé à l’étape « Œuvre » — 5 €") == (
        b"Sign\xe9 \xe0 l\x92\xe9tape \xab \x8cuvre \xbb \x97 5 \x80"
    )
    assert to_winansi("Łukasz Ćwik\u202fþ 漢") == b"Lukasz Cwik \xfe ?"


def test_stamp_renders_accents_in_winansi(instance_pki, prepared, stamp):
    signed = sign(prepared, signer=instance_pki.seal_signer(), level="simple", field_name="s1",
                  stamp=stamp, certify=True)
    drawn = _appearance_bytes(signed, "s1")
    for line in stamp.render().splitlines():
        assert to_winansi(line).hex().encode() in drawn.lower() or to_winansi(line) in drawn
    assert b"/WinAnsiEncoding" in signed and b"\xfe\xff" not in drawn  # no UTF-16 in a Tj


def test_simple_certifies_then_later_signatures_fill_their_field(instance_pki, personal_signer,
                                                                 prepared, stamp):
    first = sign(prepared, signer=instance_pki.seal_signer(), level="simple", field_name="s1",
                 stamp=stamp, certify=True, reason="Visa du service", location="Lyon")
    second = sign(first, signer=personal_signer, level="advanced", field_name="s2", stamp=stamp,
                  timestamper=instance_pki.timestamper())
    assert second.startswith(first)
    reader = PdfFileReader(BytesIO(second))
    cert_sig, approval = reader.embedded_regular_signatures
    assert cert_sig.sig_object["/SubFilter"] == SigSeedSubFilter.PADES.value
    assert cert_sig.sig_object["/Reason"] == "Visa du service"
    assert cert_sig.docmdp_level is not None and cert_sig.docmdp_level.value == 2  # FILL_FORMS
    assert approval.docmdp_level is None
    report = validate(second, instance_pki.trust_config())
    assert report.valid, report
    assert [s.level for s in report.signatures] == ["B-B", "B-T"]


def test_refusals(instance_pki, personal_signer, prepared, stamp):
    seal = instance_pki.seal_signer()
    with pytest.raises(ValueError):
        sign(prepared, signer=personal_signer, level="advanced", field_name="s1", stamp=stamp)
    with pytest.raises(ValueError):
        sign(prepared, signer=personal_signer, level="qualified", field_name="s1", stamp=stamp,
             timestamper=instance_pki.timestamper())
    with pytest.raises(SigningError, match="no signature field"):
        sign(prepared, signer=seal, level="simple", field_name="nope", stamp=stamp)
    signed = sign(prepared, signer=seal, level="simple", field_name="s1", stamp=stamp, certify=True)
    with pytest.raises(SigningError, match="already signed"):
        sign(signed, signer=seal, level="simple", field_name="s1", stamp=stamp)
    with pytest.raises(SigningError, match="certification"):
        sign(signed, signer=seal, level="simple", field_name="s2", stamp=stamp, certify=True)


def test_qualified_without_revocation_data_signs_nothing(test_pki, test_tsa, prepared, stamp):
    offline = test_pki.validation_context(allow_fetching=False)  # OCSP/CRL out of reach
    with pytest.raises(RevocationDataUnavailable) as caught:
        sign(prepared, signer=test_pki.software_signer("qualified"), level="qualified",
             field_name="s1", stamp=stamp, certify=True, timestamper=test_tsa,
             validation_context=offline)
    assert "révocation" in caught.value.message_fr


@pytest.mark.parametrize(("label", "reason"), [("revoked", "revoked"), ("expired", "expired")])
def test_qualified_refuses_a_bad_certificate(test_pki, test_tsa, prepared, stamp, label, reason):
    with pytest.raises(CertificateProblem) as caught:
        sign(prepared, signer=test_pki.software_signer(label), level="qualified", field_name="s1",
             stamp=stamp, certify=True, timestamper=test_tsa,
             validation_context=test_pki.validation_context(revocation_mode="hard-fail"))
    assert caught.value.reason == reason


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # nobody listens there once the socket is closed


@pytest.mark.parametrize("level", ["advanced", "qualified"])
def test_unreachable_tsa_signs_nothing(instance_pki, personal_signer, prepared, stamp, level):
    dead = HTTPTimeStamper(f"http://127.0.0.1:{_closed_port()}/tsa", timeout=2)
    result = None
    with pytest.raises(TimestampUnavailable) as caught:
        result = sign(prepared, signer=personal_signer, level=level, field_name="s2", stamp=stamp,
                      timestamper=dead, validation_context=instance_pki.validation_context())
    assert result is None
    assert "horodatage" in caught.value.message_fr
    with pytest.raises(TimestampUnavailable):
        timestamp_document(prepared, dead, instance_pki.validation_context())


def test_tsa_dying_after_first_token_signs_nothing(instance_pki, personal_signer, prepared, stamp):
    class FlakyTSA(type(instance_pki.timestamper())):
        calls = 0

        def request_tsa_response(self, req):
            FlakyTSA.calls += 1
            if FlakyTSA.calls > 1:  # the size probe succeeds, the real token request fails
                raise OSError("connection reset")
            return super().request_tsa_response(req)

    tsa = instance_pki.timestamper()
    flaky = FlakyTSA(instance_pki.tsa_cert, instance_pki.tsa_key)
    assert tsa is not flaky
    with pytest.raises(TimestampUnavailable):
        sign(prepared, signer=personal_signer, level="advanced", field_name="s2", stamp=stamp,
             timestamper=flaky)


def test_reserved_size_is_enough_and_not_wasteful(test_pki, test_tsa, instance_pki, personal_signer,
                                                  prepared, stamp, capsys):
    """The reservation is computed, not measured by a throw-away signature: check it fits."""
    seal = instance_pki.seal_signer()
    b_b = sign(prepared, signer=seal, level="simple", field_name="s1", stamp=stamp, certify=True)
    b_t = sign(b_b, signer=personal_signer, level="advanced", field_name="s2", stamp=stamp,
               timestamper=instance_pki.timestamper())
    qualified = test_pki.software_signer("qualified")
    b_lt = sign(b_t, signer=qualified, level="qualified", field_name="s3", stamp=stamp,
                timestamper=test_tsa, validation_context=test_pki.validation_context())
    sizes = cms_sizes(b_lt)
    assert sizes["s1"][0] * 2 == reserved_size(seal)
    for field, (reserved, actual) in sizes.items():
        assert actual <= reserved, field
        assert reserved - actual < 4096, f"{field}: {reserved} reserved for {actual}"
    with capsys.disabled():
        print("\nreserved vs actual signature container (bytes): "
              + ", ".join(f"{f}={r}/{a}" for f, (r, a) in sizes.items()))


def _median_ms(fn, runs: int = 7) -> float:
    fn()
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples) * 1000


def test_faster_than_pyhanko_default(instance_pki, prepared, stamp, capsys):
    """DESIGN §4: parsed key kept, size reserved (no throw-away signature)."""
    key = rsa.generate_private_key(65537, 2048)
    cert = issue_personal_certificate(instance_pki, "Rsa User", "rsa@example.fr", key.public_key())
    ours = instance_pki.personal_signer(cert, key)
    der = serialization.Encoding.DER
    plain = signers.SimpleSigner(  # what a pyHanko user writes
        signing_cert=asn1_x509.Certificate.load(cert.public_bytes(der)),
        signing_key=asn1_keys.PrivateKeyInfo.load(key.private_bytes(
            der, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())),
        cert_registry=SimpleCertificateStore.from_certs(instance_pki.trust_roots),
    )

    def ours_b_b():
        sign(prepared, signer=ours, level="simple", field_name="s1", stamp=stamp, certify=True)

    def default_b_b():
        meta = signers.PdfSignatureMetadata(field_name="s1", subfilter=SigSeedSubFilter.PADES,
                                            certify=True)
        signers.sign_pdf(IncrementalPdfFileWriter(BytesIO(prepared)), meta, signer=plain)

    ours_ms, default_ms = _median_ms(ours_b_b), _median_ms(default_b_b)
    with capsys.disabled():
        print(f"\nB-B, 10 pages, RSA-2048: ours {ours_ms:.1f} ms, pyHanko sign_pdf {default_ms:.1f} ms")
    assert ours_ms < default_ms
