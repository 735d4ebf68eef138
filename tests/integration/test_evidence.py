"""The evidence bundle of a completed three-step dossier, checked with nothing but its own contents."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import pytest
from asn1crypto import crl as asn1_crl
from asn1crypto import pem, tsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.hashes import SHA256
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import async_validate_pdf_signature
from pyhanko_certvalidator import ValidationContext

from parapheur.extensions import db
from parapheur.models import Dossier
from parapheur.services import evidence

from .audit_data import TITLE, completed_dossier
from .factories import create_dossier

# -- the offline checker: it knows the bundle's documented format, nothing of Parapheur ---------------------


class Bundle:
    def __init__(self, data: bytes):
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            self.files = {name: archive.read(name) for name in archive.namelist()}
        self.problems: list[str] = []

    def json(self, name: str):
        return json.loads(self.files[name].decode("utf-8"))

    def certificate(self, name: str) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.files[name])

    def asn1_certificate(self, name: str) -> asn1_x509.Certificate:
        _, _, der = pem.unarmor(self.files[name])
        return asn1_x509.Certificate.load(der)

    def fail(self, message: str) -> None:
        self.problems.append(message)


def check_checksums(bundle: Bundle) -> None:
    listed = {}
    for line in bundle.files["SHA256SUMS"].decode().splitlines():
        digest, name = line.split("  ", 1)
        listed[name] = digest
    if set(listed) != set(bundle.files) - {"SHA256SUMS"}:
        bundle.fail("SHA256SUMS does not list every file")
    for name, digest in listed.items():
        if hashlib.sha256(bundle.files.get(name, b"")).hexdigest() != digest:
            bundle.fail(f"checksum of {name}")


def check_events(bundle: Bundle) -> dict[int, str]:
    """Recompute every event hash and dossier link; return dossier_seq → hash of the intact events."""
    document = bundle.json("events.json")
    fields = document["hash"]["canonical_fields"]
    previous, last_seq, hashes = document["hash"]["genesis"], 0, {}
    for event in document["events"]:
        canonical = json.dumps({f: event[f] for f in fields}, sort_keys=True, separators=(",", ":"),
                               ensure_ascii=False).encode("utf-8")
        recomputed = hashlib.sha256(event["prev_hash"].encode() + (event["dossier_prev_hash"] or "").encode()
                                    + canonical).hexdigest()
        if recomputed != event["hash"]:
            bundle.fail(f"event {event['seq']}: hash")
        if event["dossier_seq"] != last_seq + 1 or event["dossier_prev_hash"] != previous:
            bundle.fail(f"event {event['seq']}: dossier link")
        previous, last_seq = recomputed, event["dossier_seq"]
        hashes[event["dossier_seq"]] = recomputed
    if (document["chain"]["head_seq"], document["chain"]["head_hash"]) != (last_seq, previous):
        bundle.fail("chain head")
    return hashes


def _signed_attributes_der(signer_info) -> bytes:
    der = signer_info["signed_attrs"].dump()
    return b"\x31" + der[1:]  # signed over as a SET OF, not with the [0] implicit tag


def check_timestamps(bundle: Bundle, hashes: dict[int, str]) -> int:
    """Each token covers the hash of the event it names, and is signed by the bundle's TSA, issued by the root."""
    manifest = bundle.json("manifest.json")
    root, tsa = bundle.certificate(manifest["trust_root"]), bundle.certificate(manifest["tsa"])
    tsa.verify_directly_issued_by(root)
    stamps = bundle.json("events.json")["timestamps"]
    for stamp in stamps:
        response = tsp.TimeStampResp.load(bundle.files[stamp["file"]])
        if response["status"]["status"].native != "granted":
            bundle.fail(f"{stamp['file']}: status")
        signed_data = response["time_stamp_token"]["content"]
        content = signed_data["encap_content_info"]["content"]
        tst_info = content.parsed
        imprint = tst_info["message_imprint"]["hashed_message"].native
        if imprint.hex() != stamp["head_hash"] or hashes.get(stamp["dossier_seq"]) != stamp["head_hash"]:
            bundle.fail(f"{stamp['file']}: does not cover the hash of event {stamp['dossier_seq']}")
        [signer_info] = signed_data["signer_infos"]
        attributes = {a["type"].native: a["values"][0].native for a in signer_info["signed_attrs"]}
        if attributes["message_digest"] != hashlib.sha256(content.contents).digest():
            bundle.fail(f"{stamp['file']}: message digest")
        try:
            tsa.public_key().verify(signer_info["signature"].native, _signed_attributes_der(signer_info),
                                    ec.ECDSA(SHA256()))
        except InvalidSignature:
            bundle.fail(f"{stamp['file']}: not signed by the TSA certificate of the bundle")
        if shutil.which("openssl"):
            verdict = _openssl_verify(bundle, stamp, manifest)
            if "Verification: OK" not in verdict:
                bundle.fail(f"{stamp['file']}: openssl ts -verify says {verdict!r}")
    return len(stamps)


def _openssl_verify(bundle: Bundle, stamp: dict, manifest: dict) -> str:
    """The README's command, run on the bundle's files."""
    with tempfile.TemporaryDirectory() as folder:
        for name in (stamp["file"], manifest["trust_root"], manifest["tsa"]):
            path = Path(folder, name)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(bundle.files[name])
        result = subprocess.run(["openssl", "ts", "-verify", "-digest", stamp["head_hash"], "-in", stamp["file"],
                                 "-CAfile", manifest["trust_root"], "-untrusted", manifest["tsa"]],
                                cwd=folder, capture_output=True, text=True)
        return result.stdout + result.stderr


def validate_pdf(bundle: Bundle, name: str) -> list:
    """pyHanko with the bundle's root as the only trust anchor and the bundle's CRL; every signature good."""
    manifest = bundle.json("manifest.json")
    root = bundle.asn1_certificate(manifest["trust_root"])
    crls = [asn1_crl.CertificateList.load(bundle.files[c]) for c in manifest["crl"]]
    reader = PdfFileReader(io.BytesIO(bundle.files[name]))
    statuses = []
    for sig in reader.embedded_signatures:
        context = ValidationContext(trust_roots=[root], crls=crls, allow_fetching=False)
        status = asyncio.run(async_validate_pdf_signature(sig, signer_validation_context=context))
        if not status.bottom_line:
            bundle.fail(f"{name}: signature {sig.field_name} is not valid ({status.pretty_print_details()})")
        statuses.append(status)
    if not statuses:
        bundle.fail(f"{name}: no signature")
    return statuses


def check_documents(bundle: Bundle) -> None:
    manifest = bundle.json("manifest.json")
    events = bundle.json("events.json")["events"]
    for document in manifest["documents"]:
        if document["kind"] != "document":
            continue
        validate_pdf(bundle, document["file"])
        final = [e for e in events if e["kind"] in {"document.signed", "document.timestamped"}
                 and e["data"].get("document") == document["filename"]]
        if not final or final[-1]["data"]["sha256_after"] != hashlib.sha256(bundle.files[document["file"]]).hexdigest():
            bundle.fail(f"{document['file']}: not the revision the trail's last signature produced")
    [seal] = validate_pdf(bundle, "bordereau.pdf")
    seal_cert = bundle.asn1_certificate(manifest["seal"])
    if seal.signing_cert.dump() != seal_cert.dump():
        bundle.fail("bordereau: not sealed with the organisation's seal")
    if seal.timestamp_validity is None or not seal.timestamp_validity.valid:
        bundle.fail("bordereau: its seal has no valid timestamp (B-T)")


def check(data: bytes) -> Bundle:
    bundle = Bundle(data)
    check_checksums(bundle)
    hashes = check_events(bundle)
    bundle.stamps = check_timestamps(bundle, hashes)
    check_documents(bundle)
    return bundle


# -- the tests ------------------------------------------------------------------------------------------------


@pytest.fixture
def archive(org):
    with org.app_context():
        dossier = db.session.get(Dossier, completed_dossier(org))
        yield dossier, evidence.bundle(db.session, org, dossier)


def test_the_bundle_checks_out_with_its_own_contents_only(archive):
    dossier, data = archive
    db.session.close()  # nothing below reads the database
    bundle = check(data)
    assert bundle.problems == []
    assert bundle.stamps == 1
    names = set(bundle.files)
    assert {"bordereau.pdf", "events.json", "manifest.json", "LISEZMOI.txt", "SHA256SUMS", "crl/ca-racine.crl",
            "verifier_evenements.py", "documents/1-document-1.pdf", "documents/2-document-2.pdf"} <= names
    roles = {c["role"] for c in bundle.json("manifest.json")["certificates"]}
    assert {"racine", "cachet", "horodatage", "signataire"} <= roles
    signers = {c["subject"] for c in bundle.json("manifest.json")["certificates"] if c["role"] == "signataire"}
    assert any("Paul Martin" in s for s in signers)


def test_events_json_holds_every_event_with_its_fields(archive):
    dossier, data = archive
    document = Bundle(data).json("events.json")
    assert document["dossier"]["title"] == TITLE
    kinds = [e["kind"] for e in document["events"]]
    assert kinds[0] == "dossier.created" and "dossier.chain_timestamped" in kinds
    assert kinds.count("document.signed") == 4  # two documents, two signature steps
    approved = next(e for e in document["events"] if e["kind"] == "step.approved")
    assert (approved["actor"], approved["on_behalf_of"]) == ("rh.lefevre", "drh.bernard")
    assert set(document["hash"]["canonical_fields"]) | {"id", "prev_hash", "dossier_prev_hash", "hash"} == set(approved)
    assert approved["at"].endswith("+00:00")


def test_the_bundled_script_and_readme_work(archive, tmp_path):
    _, data = archive
    with zipfile.ZipFile(io.BytesIO(data)) as bundle:
        bundle.extractall(tmp_path)
    result = subprocess.run([sys.executable, "verifier_evenements.py"], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout
    assert result.stdout.strip().endswith("OK")
    if shutil.which("sha256sum"):
        assert subprocess.run(["sha256sum", "--quiet", "-c", "SHA256SUMS"], cwd=tmp_path).returncode == 0
    readme = (tmp_path / "LISEZMOI.txt").read_text(encoding="utf-8")
    assert "VÉRIFIER" in readme and "HOW TO VERIFY" in readme and "openssl ts -verify" in readme


def _rewrite(data: bytes, name: str, content: bytes) -> bytes:
    """The bundle with one file replaced, and SHA256SUMS recomputed to match, as a careful forger would."""
    bundle = Bundle(data)
    bundle.files[name] = content
    bundle.files["SHA256SUMS"] = "".join(f"{hashlib.sha256(v).hexdigest()}  {k}\n" for k, v in
                                         sorted(bundle.files.items()) if k != "SHA256SUMS").encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for key, value in bundle.files.items():
            archive.writestr(key, value)
    return buffer.getvalue()


def test_an_edited_events_json_fails_the_check(archive, tmp_path):
    _, data = archive
    document = Bundle(data).json("events.json")
    signed = next(e for e in document["events"] if e["kind"] == "document.signed" and e["actor"] == "dgs.martin")
    signed["actor"] = "rh.dupont"
    forged = _rewrite(data, "events.json", json.dumps(document, ensure_ascii=False).encode())
    problems = check(forged).problems
    assert problems[0] == f"event {signed['seq']}: hash"
    assert all(p.startswith("event ") for p in problems)
    with zipfile.ZipFile(io.BytesIO(forged)) as bundle:
        bundle.extractall(tmp_path)
    script = subprocess.run([sys.executable, "verifier_evenements.py"], cwd=tmp_path, capture_output=True, text=True)
    assert script.returncode == 1 and "BROKEN" in script.stdout


def test_a_removed_event_or_a_swapped_pdf_fails_the_check(archive):
    dossier, data = archive
    document = Bundle(data).json("events.json")
    del document["events"][3]
    assert any("dossier link" in p for p in check(_rewrite(data, "events.json", json.dumps(document).encode())).problems)
    original = Bundle(data).files["documents/2-document-2.pdf"]
    swapped = _rewrite(data, "documents/1-document-1.pdf", original)
    assert "documents/1-document-1.pdf: not the revision the trail's last signature produced" in check(swapped).problems


def test_a_dossier_in_progress_has_a_bundle_without_chain_timestamp(org):
    with org.app_context():
        dossier = create_dossier("note-interne", title="Note en cours")
        data = evidence.bundle(db.session, org, db.session.get(Dossier, dossier.id))
    bundle = Bundle(data)
    check_checksums(bundle)
    check_events(bundle)
    assert bundle.problems == []
    assert bundle.json("events.json")["timestamps"] == []
    assert "pas encore horodatée" in bundle.files["LISEZMOI.txt"].decode()
