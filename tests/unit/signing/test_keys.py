"""signing.keys — software keys: sealed keys (advanced level) and PKCS#12."""

from __future__ import annotations

import hashlib
import io
import json
import struct

import pytest
from asn1crypto import pem
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.pdf_utils.writer import PageObject, PdfFileWriter
from pyhanko.sign import fields, signers
from pyhanko.sign.validation import validate_pdf_signature

from signing import keys
from signing.errors import CertificateProblem, InvalidPkcs12, KeyCorrupted, SigningError, WrongPin
from tests.pki.fixtures import TestPKI

PIN = "2468"
# cheap KDF for tests that seal many times; the default parameters are covered separately
FAST_KDF = keys.KdfParams(time_cost=1, memory_cost_kib=1024, parallelism=1)


def small_pdf(pages: int = 1) -> bytes:
    w = PdfFileWriter()
    font = w.add_object(
        generic.DictionaryObject(
            {
                generic.pdf_name("/Type"): generic.pdf_name("/Font"),
                generic.pdf_name("/Subtype"): generic.pdf_name("/Type1"),
                generic.pdf_name("/BaseFont"): generic.pdf_name("/Helvetica"),
            }
        )
    )
    for n in range(pages):
        content = w.add_object(
            generic.StreamObject(stream_data=b"BT /F1 12 Tf 72 720 Td (Page %d) Tj ET" % n)
        )
        resources = generic.DictionaryObject(
            {generic.pdf_name("/Font"): generic.DictionaryObject({generic.pdf_name("/F1"): font})}
        )
        w.insert_page(PageObject(contents=content, media_box=[0, 0, 595, 842], resources=resources))
    out = io.BytesIO()
    w.write(out)
    return out.getvalue()


def sign_and_validate(signer: signers.Signer, test_pki: TestPKI) -> None:
    """B-B signature on a small PDF, validated against the test root."""
    out = signers.sign_pdf(
        IncrementalPdfFileWriter(io.BytesIO(small_pdf())),
        signers.PdfSignatureMetadata(field_name="Signature1", subfilter=fields.SigSeedSubFilter.PADES),
        signer=signer,
    )
    reader = PdfFileReader(out)
    (sig,) = reader.embedded_signatures
    status = validate_pdf_signature(sig, test_pki.validation_context())
    assert status.bottom_line, status.pretty_print_details()
    assert status.signing_cert.dump() == signer.signing_cert.dump()


def _rechecksum(body: bytes) -> bytes:
    return body + hashlib.sha256(body).digest()


# --------------------------------------------------------------------------- sealed keys


def test_generate_key_is_rsa_3072() -> None:
    key = keys.generate_key()
    assert isinstance(key, rsa.RSAPrivateKey) and key.key_size == keys.DEFAULT_KEY_SIZE == 3072
    with pytest.raises(ValueError):
        keys.generate_key(1024)


def test_seal_round_trip_default_kdf(test_pki: TestPKI) -> None:
    der = test_pki.key_der("alice")
    blob = keys.seal_private_key(test_pki.key_pem("alice"), PIN)
    assert der not in blob and blob.startswith(b"PPHSEAL\x01")
    header = keys.sealed_key_header(blob)
    assert header["kdf"] == "argon2id" and header["aead"] == "aes-256-gcm"
    assert (header["t"], header["m"], header["p"]) == (3, 65536, 4)
    key = keys.open_sealed_key(blob, PIN)
    assert (
        key.private_bytes(
            serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        == der
    )
    # two seals of the same key differ (fresh salt + nonce)
    assert keys.seal_private_key(der, PIN, kdf=FAST_KDF) != keys.seal_private_key(der, PIN, kdf=FAST_KDF)


def test_seal_accepts_der_pem_and_key_objects(test_pki: TestPKI) -> None:
    key = keys.open_sealed_key(keys.seal_private_key(test_pki.key_der("bob"), PIN, kdf=FAST_KDF), PIN)
    for source in (test_pki.key_pem("bob"), test_pki.key_der("bob"), key):
        reopened = keys.open_sealed_key(keys.seal_private_key(source, PIN, kdf=FAST_KDF), PIN)
        assert reopened.public_key().public_numbers() == key.public_key().public_numbers()  # type: ignore[union-attr]
    with pytest.raises(ValueError):
        keys.seal_private_key(b"not a key", PIN, kdf=FAST_KDF)
    with pytest.raises(ValueError):
        keys.seal_private_key(test_pki.key_der("bob"), "", kdf=FAST_KDF)


def test_pin_is_unicode_normalised(test_pki: TestPKI) -> None:
    blob = keys.seal_private_key(test_pki.key_der("alice"), "caf\u00e9", kdf=FAST_KDF)
    keys.open_sealed_key(blob, "cafe\u0301")  # same PIN typed with a combining accent


def test_wrong_pin(test_pki: TestPKI) -> None:
    blob = keys.seal_private_key(test_pki.key_der("alice"), PIN, kdf=FAST_KDF)
    for wrong in ("2469", "", PIN + " "):
        with pytest.raises(WrongPin) as exc:
            keys.open_sealed_key(blob, wrong)
        assert exc.value.code == "wrong_pin"
        assert exc.value.message("fr") == "Code PIN de signature incorrect."
        assert PIN not in str(exc.value)


def test_tampered_blob(test_pki: TestPKI) -> None:
    blob = keys.seal_private_key(test_pki.key_der("alice"), PIN, kdf=FAST_KDF)
    body = blob[:-32]
    # storage damage anywhere: checksum mismatch -> KeyCorrupted (not a PIN failure)
    for pos in (3, 20, len(body) - 40, len(body) - 1, len(blob) - 1):
        damaged = bytearray(blob)
        damaged[pos] ^= 0x01
        with pytest.raises(KeyCorrupted):
            keys.open_sealed_key(bytes(damaged), PIN)
    for junk in (b"", b"PPHSEAL", blob[:50], b"\x00" * 400):
        with pytest.raises(KeyCorrupted):
            keys.open_sealed_key(junk, PIN)
    # a forger who also fixes the checksum: GCM (header as AAD) still refuses
    forged = bytearray(body)
    forged[-5] ^= 0x01
    with pytest.raises(WrongPin):
        keys.open_sealed_key(_rechecksum(bytes(forged)), PIN)


def test_forged_header_is_bounded(test_pki: TestPKI) -> None:
    blob = keys.seal_private_key(test_pki.key_der("alice"), PIN, kdf=FAST_KDF)
    body = blob[:-32]
    _, version, hlen = struct.unpack_from(">7sBH", body)
    header = json.loads(body[10 : 10 + hlen])
    for field, value in (("m", 64 * 1024 * 1024), ("t", 10_000), ("kdf", "pbkdf2"), ("nonce", "AAAA")):
        evil = json.dumps({**header, field: value}).encode()
        forged = struct.pack(">7sBH", b"PPHSEAL", version, len(evil)) + evil + body[10 + hlen :]
        with pytest.raises(KeyCorrupted):  # rejected before running any KDF
            keys.open_sealed_key(_rechecksum(forged), PIN)


def test_change_pin(test_pki: TestPKI) -> None:
    blob = keys.seal_private_key(test_pki.key_der("alice"), PIN, kdf=FAST_KDF)
    with pytest.raises(WrongPin):
        keys.change_pin(blob, "0000", "1357", kdf=FAST_KDF)
    new_blob = keys.change_pin(blob, PIN, "1357", kdf=FAST_KDF)
    keys.open_sealed_key(new_blob, "1357")
    with pytest.raises(WrongPin):
        keys.open_sealed_key(new_blob, PIN)


def test_software_signer_signs_and_validates(test_pki: TestPKI) -> None:
    blob = keys.seal_private_key(test_pki.key_der("alice"), PIN, kdf=FAST_KDF)
    signer = keys.software_signer(blob, PIN, test_pki.cert("alice"), test_pki.chain("alice"))
    assert isinstance(signer, keys.CachedKeySigner)
    sign_and_validate(signer, test_pki)


def test_software_signer_accepts_pem_certificates(test_pki: TestPKI) -> None:
    blob = keys.seal_private_key(test_pki.key_der("bob"), PIN, kdf=FAST_KDF)
    cert_pem = pem.armor("CERTIFICATE", test_pki.cert("bob").dump())
    chain = [c.dump() for c in test_pki.chain("bob")]
    signer = keys.software_signer(blob, PIN, cert_pem, chain)
    assert signer.signing_cert.dump() == test_pki.cert("bob").dump()


def test_pin_checked_at_every_call_despite_cache(test_pki: TestPKI) -> None:
    blob = keys.seal_private_key(test_pki.key_der("alice"), PIN, kdf=FAST_KDF)
    first = keys.software_signer(blob, PIN, test_pki.cert("alice"), test_pki.chain("alice"))
    with pytest.raises(WrongPin):
        keys.software_signer(blob, "9999", test_pki.cert("alice"), test_pki.chain("alice"))
    second = keys.software_signer(blob, PIN, test_pki.cert("alice"), test_pki.chain("alice"))
    assert second.private_key is first.private_key  # parsed once per process


def test_cached_signer_never_reparses_the_key(test_pki: TestPKI, monkeypatch: pytest.MonkeyPatch) -> None:
    blob = keys.seal_private_key(test_pki.key_der("alice"), PIN, kdf=FAST_KDF)
    signer = keys.software_signer(blob, PIN, test_pki.cert("alice"), test_pki.chain("alice"))

    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("private key re-parsed while signing")

    monkeypatch.setattr(serialization, "load_der_private_key", forbidden)
    sign_and_validate(signer, test_pki)


def test_software_signer_refuses_key_of_another_cert(test_pki: TestPKI) -> None:
    blob = keys.seal_private_key(test_pki.key_der("alice"), PIN, kdf=FAST_KDF)
    with pytest.raises(CertificateProblem) as exc:
        keys.software_signer(blob, PIN, test_pki.cert("bob"), test_pki.chain("bob"))
    assert exc.value.reason == "key_mismatch"


def test_software_signer_refuses_expired_certificate(test_pki: TestPKI) -> None:
    blob = keys.seal_private_key(test_pki.key_der("expired"), PIN, kdf=FAST_KDF)
    with pytest.raises(CertificateProblem) as exc:
        keys.software_signer(blob, PIN, test_pki.cert("expired"), test_pki.chain("expired"))
    assert exc.value.reason == "expired"
    assert "expiré" in exc.value.message_fr
    # explicit opt-out (e.g. to build test material)
    keys.software_signer(blob, PIN, test_pki.cert("expired"), check_validity=False)


# --------------------------------------------------------------------------- PKCS#12


def test_import_pkcs12(test_pki: TestPKI) -> None:
    key, cert, chain = keys.import_pkcs12(test_pki.pkcs12("alice", b"secret"), b"secret")
    assert cert.dump() == test_pki.cert("alice").dump()
    assert {c.dump() for c in chain} == {c.dump() for c in test_pki.chain("alice")}
    assert key.public_key().public_numbers() == (  # type: ignore[union-attr]
        serialization.load_der_public_key(cert.public_key.dump()).public_numbers()  # type: ignore[union-attr]
    )
    keys.import_pkcs12(test_pki.pkcs12("alice", "pâssé"), "pâssé")  # str passphrase
    keys.import_pkcs12(test_pki.pkcs12("alice", None), None)  # unencrypted


def test_import_pkcs12_wrong_passphrase(test_pki: TestPKI) -> None:
    data = test_pki.pkcs12("alice", b"secret")
    for wrong in (b"Secret", b"", None):
        with pytest.raises(InvalidPkcs12) as exc:
            keys.import_pkcs12(data, wrong)
        assert exc.value.reason == "wrong_passphrase"
        assert "Mot de passe" in exc.value.message_fr
        assert isinstance(exc.value, SigningError)


def test_import_pkcs12_not_a_pkcs12(test_pki: TestPKI) -> None:
    for junk in (b"", b"hello", test_pki.key_pem("alice"), test_pki.cert("alice").dump(), small_pdf()):
        with pytest.raises(InvalidPkcs12) as exc:
            keys.import_pkcs12(junk, b"secret")
        assert exc.value.reason == "not_pkcs12"


def test_import_pkcs12_without_key(test_pki: TestPKI) -> None:
    from cryptography import x509 as pyca_x509
    from cryptography.hazmat.primitives.serialization import BestAvailableEncryption, pkcs12

    cert = pyca_x509.load_der_x509_certificate(test_pki.cert("alice").dump())
    data = pkcs12.serialize_key_and_certificates(b"x", None, cert, None, BestAvailableEncryption(b"pw"))
    with pytest.raises(InvalidPkcs12) as exc:
        keys.import_pkcs12(data, b"pw")
    assert exc.value.reason == "incomplete"


def test_pkcs12_signer_loaded_once(test_pki: TestPKI, monkeypatch: pytest.MonkeyPatch) -> None:
    keys.clear_key_caches()
    data = test_pki.pkcs12("bob", b"secret")
    first = keys.pkcs12_signer(data, b"secret")
    calls = []
    real = keys.import_pkcs12
    monkeypatch.setattr(keys, "import_pkcs12", lambda *a: calls.append(a) or real(*a))
    second = keys.pkcs12_signer(data, b"secret")
    assert calls == [] and second.private_key is first.private_key
    # a wrong passphrase is never served from the cache
    with pytest.raises(InvalidPkcs12):
        keys.pkcs12_signer(data, b"wrong")
    assert len(calls) == 1
    sign_and_validate(second, test_pki)
