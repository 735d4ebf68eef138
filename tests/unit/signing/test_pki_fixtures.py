"""The test PKI itself works: TSA, OCSP, CRLs, QcStatements, SoftHSM2 token, CSC dummy."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import urllib.request
from datetime import UTC, datetime, timedelta

from asn1crypto import crl, ocsp, x509
from pyhanko.sign.ades.qualified_asn1 import get_qc_statements

from tests.pki.fixtures import TOKEN_LABELS, CSCService, SoftHSMToken, TestPKI


def _now() -> datetime:
    return datetime.now(tz=UTC)


def _ocsp_status(test_pki: TestPKI, label: str) -> ocsp.SingleResponse:
    cert, issuer = test_pki.cert(label), test_pki.intermediate_cert
    req = ocsp.OCSPRequest(
        {
            "tbs_request": {
                "request_list": [
                    {
                        "req_cert": {
                            "hash_algorithm": {"algorithm": "sha1"},
                            "issuer_name_hash": issuer.subject.sha1,
                            "issuer_key_hash": issuer.public_key.sha1,
                            "serial_number": cert.serial_number,
                        }
                    }
                ]
            }
        }
    )
    http_req = urllib.request.Request(
        test_pki.ocsp_url, data=req.dump(), headers={"Content-Type": "application/ocsp-request"}
    )
    with urllib.request.urlopen(http_req, timeout=5) as resp:
        ocsp_resp = ocsp.OCSPResponse.load(resp.read())
    assert ocsp_resp["response_status"].native == "successful"
    basic = ocsp_resp["response_bytes"]["response"].parsed
    return basic["tbs_response_data"]["responses"][0]


def test_certificates_valid_now(test_pki: TestPKI) -> None:
    now = _now()
    for label in ("root", "interm", "interm-ocsp", "tsa", "alice", "bob", "qualified", "not-qualified"):
        cert = test_pki.cert(label)
        assert cert.not_valid_before <= now <= cert.not_valid_after, label
    assert test_pki.cert("expired").not_valid_after < now
    assert test_pki.chain("alice") == [test_pki.intermediate_cert, test_pki.root_cert]
    # AIA / CRL DP point at the loopback services
    assert test_pki.cert("alice").ocsp_urls == [test_pki.ocsp_url]
    assert test_pki.cert("alice").crl_distribution_points[0].url == test_pki.crl_urls["interm"]


def test_tsa_token(test_pki: TestPKI) -> None:
    cert = test_pki.tsa_cert
    eku = next(
        e for e in cert["tbs_certificate"]["extensions"] if e["extn_id"].native == "extended_key_usage"
    )
    assert eku["critical"].native is True and eku["extn_value"].native == ["time_stamping"]

    digest = hashlib.sha256(b"parapheur").digest()
    token = asyncio.run(test_pki.timestamper().async_timestamp(digest, "sha256"))
    signed_data = token["content"]
    tst_info = signed_data["encap_content_info"]["content"].parsed
    assert tst_info["message_imprint"]["hashed_message"].native == digest
    gen_time = tst_info["gen_time"].native
    assert abs(gen_time - _now()) < timedelta(minutes=5)
    assert any(c.chosen.dump() == cert.dump() for c in signed_data["certificates"])


def test_ocsp_good_for_alice_revoked_for_revoked(test_pki: TestPKI) -> None:
    single = _ocsp_status(test_pki, "alice")
    assert single["cert_status"].name == "good"
    assert single["this_update"].native <= _now() + timedelta(minutes=1)
    assert single["next_update"].native is None or single["next_update"].native > _now()
    assert _ocsp_status(test_pki, "revoked")["cert_status"].name == "revoked"


def test_crls_current(test_pki: TestPKI) -> None:
    for label, url in test_pki.crl_urls.items():
        with urllib.request.urlopen(url, timeout=5) as resp:
            the_crl = crl.CertificateList.load(resp.read())
        tbs = the_crl["tbs_cert_list"]
        assert tbs["this_update"].native <= _now() < tbs["next_update"].native, label
        revoked = {entry["user_certificate"].native for entry in tbs["revoked_certificates"]}
        if label == "interm":
            assert revoked == {test_pki.cert("revoked").serial_number}


def test_qualified_cert_has_qc_statements(test_pki: TestPKI) -> None:
    ids = {st["statement_id"].native for st in get_qc_statements(test_pki.cert("qualified"))}
    assert {"qc_compliance", "qc_sscd", "qc_type"} <= ids
    assert len(get_qc_statements(test_pki.cert("not-qualified"))) == 0
    ku = test_pki.cert("qualified").key_usage_value.native
    assert set(ku) == {"digital_signature", "non_repudiation"}


def test_pkcs12_and_key_pem(test_pki: TestPKI) -> None:
    from cryptography.hazmat.primitives.serialization import load_pem_private_key, pkcs12

    key, cert, extra = pkcs12.load_key_and_certificates(test_pki.pkcs12("alice", b"pw"), b"pw")
    assert cert is not None and key is not None and len(extra) == 2
    pem_key = load_pem_private_key(test_pki.key_pem("alice"), None)
    assert pem_key.public_key().public_numbers() == key.public_key().public_numbers()  # type: ignore[union-attr]


def test_softhsm_token_contents(softhsm_token: SoftHSMToken, test_pki: TestPKI) -> None:
    import pkcs11
    from pkcs11 import Attribute, ObjectClass

    lib = pkcs11.lib(softhsm_token.module_path)
    token = lib.get_token(token_label=softhsm_token.token_label)
    with token.open(user_pin=softhsm_token.user_pin) as session:
        for label in TOKEN_LABELS:
            key = session.get_key(object_class=ObjectClass.PRIVATE_KEY, label=softhsm_token.key_labels[label])
            assert key[Attribute.ID] == softhsm_token.key_ids[label]
            (cert_obj,) = session.get_objects(
                {Attribute.CLASS: ObjectClass.CERTIFICATE, Attribute.LABEL: softhsm_token.cert_labels[label]}
            )
            assert x509.Certificate.load(cert_obj[Attribute.VALUE]).dump() == test_pki.cert(label).dump()


def test_csc_service_serves_same_certificates(csc_service: CSCService, test_pki: TestPKI) -> None:
    body = json.dumps({"credentialID": csc_service.qualified_credential_id, "certificates": "chain"}).encode()
    req = urllib.request.Request(
        f"{csc_service.url}/csc/v1/credentials/info", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=5) as resp:
        info = json.loads(resp.read())
    certs = [base64.b64decode(c) for c in info["cert"]["certificates"]]
    assert certs[0] == test_pki.cert("qualified").dump()
    assert info["SCAL"] == "2"
