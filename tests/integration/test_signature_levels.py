"""The three eIDAS levels through the application: a simple → advanced → qualified circuit on a 10-page
PDF, qualified on a PKCS#11 token (SoftHSM2) and on a remote CSC service; earlier signatures stay valid."""

import subprocess

import pytest
import yaml
from asn1crypto import pem

from parapheur.extensions import db
from parapheur.models import Dossier
from parapheur.samples import text_pdf
from parapheur.services import credentials, instance, validation
from parapheur.services.errors import Invalid
from parapheur.storage import store

from .conftest import ORG
from .factories import act, create_dossier, upload, user

RANK = {"B-B": 0, "B-T": 1, "B-LT": 2, "B-LTA": 3}


def at_least(levels, claimed) -> bool:
    """Each signature reaches at least the level it was made at (later DSS data can only raise it)."""
    return len(levels) == len(claimed) and all(RANK[a] >= RANK[b] for a, b in zip(levels, claimed, strict=True))


def armor(cert) -> str:
    return pem.armor("CERTIFICATE", cert.dump()).decode()


def organisation_with_qualified_circuit() -> str:
    data = yaml.safe_load(ORG)
    data["users"].append({"username": "maire.durand", "name": "Anne Durand", "email": "anne@example.fr",
                          "roles": ["signer"], "password": "secret-maire"})
    data["document_types"].append({
        "code": "arrete", "name": "Arrêté", "min_level": "simple",
        "steps": [{"kind": "signature", "level": "simple", "assignees": ["user:drh.bernard"]},
                  {"kind": "signature", "level": "advanced", "assignees": ["user:dgs.martin"]},
                  {"kind": "signature", "level": "qualified", "assignees": ["user:maire.durand"]}],
    })
    return yaml.safe_dump(data, allow_unicode=True)


@pytest.fixture
def qualified_app(make_app, test_pki, tmp_path):
    roots = tmp_path / "roots.pem"
    roots.write_text(armor(test_pki.root_cert))
    app = make_app("org", TRUST_ROOTS=str(roots))
    with app.app_context():
        instance.setup(organisation_with_qualified_circuit())
    return app


def pdfsig(data: bytes, tmp_path) -> str:
    path = tmp_path / "signed.pdf"
    path.write_bytes(data)
    return subprocess.run(["pdfsig", str(path)], capture_output=True, text=True, check=False).stdout


def run_circuit(app, tmp_path, register):
    with app.app_context():
        register(user("maire.durand"))
        db.session.commit()
        ten_pages = upload("arrete.pdf", text_pdf("Arrêté n° 2026-114", ["Le maire de Test arrête :"], pages=10))
        from parapheur import audit
        from parapheur.models import utcnow
        from parapheur.services import dossiers

        dossier = dossiers.create(db.session, user("rh.dupont"), "Arrêté de nomination", "arrete", [ten_pages], [],
                                  audit.Meta("rh.dupont"), utcnow())
        db.session.commit()
        act(dossier, "rh.dupont", "launch")
        claimed = []
        for username, expected in [("drh.bernard", "B-B"), ("dgs.martin", "B-T"), ("maire.durand", None)]:
            act(dossier, username, "sign")
            report = validation.validate_bytes(store().get(dossier.documents[0].current.sha256))
            assert report.valid, report.to_dict()
            signatures = [s for s in report.signatures if s.kind == "signature"]
            claimed.append(signatures[-1].level)
            # every earlier signature still valid, at least at the level it claimed
            assert all(s.valid for s in report.signatures)
            assert at_least([s.level for s in signatures[:-1]], claimed[:-1])
            if expected:
                assert signatures[-1].level == expected
        dossier = db.session.get(Dossier, dossier.id)
        assert dossier.status == "completed"
        final = store().get(dossier.documents[0].current.sha256)
        report = validation.validate_bytes(final)
        assert report.valid, report.to_dict()
        levels = [s.level for s in report.signatures if s.kind == "signature"]
        assert at_least(levels, ["B-B", "B-T", "B-LTA"]), levels
        assert [r.reason for r in dossier.documents[0].revisions][-1] == "timestamp"
        output = pdfsig(final, tmp_path)
        assert output.count("Signature is Valid.") >= 3, output
        return output


def test_simple_advanced_qualified_on_a_pkcs11_token(qualified_app, test_pki, softhsm_token, tmp_path):
    def register(maire):
        credentials.register_token(
            db.session, maire, "pkcs11",
            {"module": softhsm_token.module_path, "token_label": softhsm_token.token_label,
             "key_label": softhsm_token.key_labels["qualified"]},
            armor(test_pki.cert("qualified")), "".join(armor(c) for c in test_pki.chain("qualified")))
    from . import factories

    factories.PINS["maire.durand"] = softhsm_token.user_pin
    try:
        run_circuit(qualified_app, tmp_path, register)
    finally:
        factories.PINS.pop("maire.durand")


def test_simple_advanced_qualified_on_a_remote_csc_service(qualified_app, test_pki, csc_service, tmp_path):
    def register(maire):
        credentials.register_token(
            db.session, maire, "csc",
            {"url": csc_service.url, "credential_id": csc_service.qualified_credential_id,
             "oauth_token": csc_service.oauth_token},
            armor(test_pki.cert("qualified")), "".join(armor(c) for c in test_pki.chain("qualified")))
    from . import factories

    factories.PINS["maire.durand"] = csc_service.pin or "000000"
    try:
        run_circuit(qualified_app, tmp_path, register)
    finally:
        factories.PINS.pop("maire.durand")


def test_a_token_certificate_without_qcstatements_is_refused(qualified_app, test_pki, softhsm_token):
    with qualified_app.app_context():
        with pytest.raises(Invalid) as caught:
            credentials.register_token(
                db.session, user("maire.durand"), "pkcs11",
                {"module": softhsm_token.module_path, "token_label": softhsm_token.token_label,
                 "key_label": softhsm_token.key_labels["not-qualified"]},
                armor(test_pki.cert("not-qualified")))
        assert caught.value.code == "not_qualified"


def test_a_flipped_byte_is_reported_invalid(org):
    with org.app_context():
        dossier = create_dossier("attestation")
        act(dossier, "drh.bernard", "sign")
        data = bytearray(store().get(dossier.documents[0].current.sha256))
        position = data.index(b"stream") + 20  # inside the first page's content, covered by the signature
        data[position] ^= 0x01
        report = validation.validate_bytes(bytes(data))
        assert not report.valid
        assert report.signatures and not report.signatures[0].intact
