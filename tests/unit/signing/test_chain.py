"""A whole circuit on a 10-page PDF: simple → advanced → qualified → document timestamp.

After every step each earlier signature must still be valid, at (at least) the level it was
made at, by our validator and by poppler's pdfsig as an independent integrity check (only
its "Signature is Valid." verdict: its certificate verdict is broken on this Debian).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from signing import keys
from signing.fields import FieldSpec, prepare_fields
from signing.signer import sign, timestamp_document
from signing.validation import validate

LEVELS = ["B-B", "B-T", "B-LT", "B-LTA"]


def pdfsig(pdf: bytes, tmp_path: Path) -> list[dict[str, str | bool]]:
    """pdfsig's verdict per filled signature: field, 'valid' (signature is valid), 'total' (whole file)."""
    if shutil.which("pdfsig") is None:
        pytest.skip("poppler-utils (pdfsig) is not installed")
    path = tmp_path / "checked.pdf"
    path.write_bytes(pdf)
    output = subprocess.run(["pdfsig", str(path)], capture_output=True, text=True, check=False).stdout
    blocks = re.split(r"^Signature #\d+:$", output, flags=re.M)[1:]
    results = []
    for block in blocks:
        if "The signature form field is not signed." in block:
            continue  # pdfsig also lists the empty fields waiting for the next steps
        field = re.search(r"Signature Field Name: (.*)", block).group(1).strip()
        results.append({
            "field": field,
            "valid": "Signature Validation: Signature is Valid." in block,
            "total": "- Total document signed" in block,
        })
    return results


def check(pdf: bytes, expected: dict[str, str], trust, tmp_path: Path, *, timestamps: int = 0) -> None:
    report = validate(pdf, trust)
    assert report.valid, report
    signatures = [s for s in report.signatures if s.kind == "signature"]
    assert [s.field for s in signatures] == list(expected)
    for sig in signatures:
        assert sig.valid and sig.intact and sig.trusted, sig
        assert LEVELS.index(sig.level) >= LEVELS.index(expected[sig.field]), sig
    assert len(report.signatures) - len(signatures) == timestamps

    poppler = pdfsig(pdf, tmp_path)
    assert [p["field"] for p in poppler][: len(expected)] == list(expected)
    for entry in poppler[: len(expected)]:
        assert entry["valid"], entry
    assert poppler[-1]["total"], "the last signature covers the whole file"
    assert not any(p["total"] for p in poppler[:-1])


@pytest.fixture(params=["software", "pkcs11", "csc"])
def qualified_signer(request, test_pki):
    """The qualified signer: a software key from the test PKI, the same key on SoftHSM2, or
    behind a remote CSC service."""
    if request.param == "software":
        yield test_pki.software_signer("qualified")
        return
    if request.param == "csc":
        service = request.getfixturevalue("csc_service")
        yield keys.csc_signer(service.url, service.qualified_credential_id,
                              oauth_token=service.oauth_token, pin=service.pin)
        return
    token = request.getfixturevalue("softhsm_token")
    with keys.pkcs11_signer(token.module_path, token.token_label, token.user_pin,
                            token.key_labels["qualified"], chain=test_pki.chain("qualified")) as signer:
        yield signer
    keys.close_pkcs11_sessions()


def test_three_signature_circuit(instance_pki, personal_signer, qualified_signer, test_pki, test_tsa,
                                 trust_both, pdf10, stamp, tmp_path):
    pdf = prepare_fields(pdf10, [FieldSpec("visa-drh"), FieldSpec("dgs"), FieldSpec("maire")])

    simple = sign(pdf, signer=instance_pki.seal_signer(), level="simple", field_name="visa-drh",
                  stamp=stamp, certify=True)
    check(simple, {"visa-drh": "B-B"}, trust_both, tmp_path)

    advanced = sign(simple, signer=personal_signer, level="advanced", field_name="dgs", stamp=stamp,
                    timestamper=instance_pki.timestamper())
    check(advanced, {"visa-drh": "B-B", "dgs": "B-T"}, trust_both, tmp_path)

    qualified = sign(advanced, signer=qualified_signer, level="qualified", field_name="maire",
                     stamp=stamp, timestamper=test_tsa, validation_context=test_pki.validation_context())
    check(qualified, {"visa-drh": "B-B", "dgs": "B-T", "maire": "B-LT"}, trust_both, tmp_path)
    report = validate(qualified, trust_both)
    assert report.signatures[-1].level == "B-LT" and report.signatures[-1].coverage == "entire_file"

    archived = timestamp_document(qualified, test_tsa, trust_both.validation_context())
    check(archived, {"visa-drh": "B-B", "dgs": "B-T", "maire": "B-LTA"}, trust_both, tmp_path,
          timestamps=1)
    levels = {s.field: s.level for s in validate(archived, trust_both).signatures}
    assert levels["maire"] == "B-LTA"
    assert levels["visa-drh"] == "B-B"  # no timestamp token: never more than B-B
