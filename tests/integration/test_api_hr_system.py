"""An HR system drives a contrat through the API and learns of its completion by webhook."""

from __future__ import annotations

import hashlib
import hmac
import io
import time
import zipfile

from .apiclient import Api, Receiver, add_webhook, pdf_file

SECRET = "s3cret-partage-avec-le-SIRH"


def _check_signature(request: dict, secret: str = SECRET) -> None:
    headers, body = request["headers"], request["body"]
    timestamp = headers["X-Parapheur-Timestamp"]
    expected = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(headers["X-Parapheur-Signature"], f"sha256={expected}")
    assert abs(time.time() - int(timestamp)) < 120
    assert headers["Content-Type"] == "application/json"


def test_an_hr_system_creates_a_contrat_and_collects_it_signed(org):
    with Receiver() as receiver:
        add_webhook(org, receiver.url, ["dossier.launched", "step.done", "dossier.rejected", "dossier.completed"],
                    SECRET)
        hr = Api(org, "rh.dupont")
        created = hr.post("/dossiers", data={
            "title": "Contrat de travail de M. Petit", "type": "contrat", "launch": "true",
            "documents": [pdf_file("contrat-petit.pdf", pages=3), pdf_file("avenant-petit.pdf", pages=1)],
        }, content_type="multipart/form-data")
        assert created.status_code == 201, created.get_data(as_text=True)
        dossier_id = created.json["id"]
        assert created.json["status"] == "in_progress"
        assert [d["filename"] for d in created.json["documents"]] == ["contrat-petit.pdf", "avenant-petit.pdf"]

        launched = receiver.events("dossier.launched")
        assert len(launched) == 1 and launched[0]["payload"]["dossier"]["id"] == dossier_id
        _check_signature(launched[0])

        # the DRH desk gives its visa, from its own software, on the version it read
        drh = Api(org, "drh.bernard")
        waiting = drh.get("/dossiers?status=in_progress").json["items"]
        assert [d["id"] for d in waiting] == [dossier_id]
        read = drh.get(f"/dossiers/{dossier_id}")
        approved = drh.act(dossier_id, "approve", headers={"If-Match": read.headers["ETag"]})
        assert approved.status_code == 200, approved.json
        assert approved.json["current_step"] == 1

        # the DGS signs (advanced signature: signing PIN + TOTP code)
        dgs = Api(org, "dgs.martin")
        signed = dgs.sign_advanced(dossier_id, version=approved.json["version"])
        assert signed.status_code == 200, signed.json
        assert signed.json["status"] == "completed"
        assert signed.json["steps"][1]["acted_by"] == "dgs.martin"

        assert receiver.event.wait(10)
        completed = receiver.events("dossier.completed")
        assert len(completed) == 1, [r["payload"]["event"] for r in receiver.events()]
        _check_signature(completed[0])
        payload = completed[0]["payload"]
        assert payload["dossier"]["id"] == dossier_id and payload["dossier"]["status"] == "completed"
        assert completed[0]["headers"]["X-Parapheur-Event"] == "dossier.completed"
        assert completed[0]["headers"]["X-Parapheur-Delivery"] == payload["id"]
        assert [r["payload"]["step"]["index"] for r in receiver.events("step.done")] == [0, 1]
        assert [r["payload"]["event"] for r in receiver.events()] == [
            "dossier.launched", "step.done", "step.done", "dossier.completed"]

    # the HR system fetches the dossier named by the webhook, downloads and checks the signed PDFs
    final = hr.get(payload["dossier"]["links"]["self"].removeprefix("/api/v1")).json
    for document in final["documents"]:
        pdf = hr.get(document["links"]["download"].removeprefix("/api/v1"))
        assert pdf.status_code == 200 and pdf.mimetype == "application/pdf"
        assert hashlib.sha256(pdf.data).hexdigest() == document["sha256"]
        assert document["revisions"][-1]["reason"] in {"signature", "timestamp"}
        report = hr.post("/validate", data={"file": (io.BytesIO(pdf.data), document["filename"])},
                         content_type="multipart/form-data").json
        assert report["valid"] is True, report
        assert [(s["signer"], s["level"]) for s in report["signatures"] if s["kind"] == "signature"] == [
            ("Paul Martin", "B-T")]

    trail = hr.get(f"/dossiers/{dossier_id}/audit").json
    assert trail["chain_valid"] is True
    assert {"dossier.created", "dossier.launched", "document.signed", "dossier.completed"} <= {
        e["kind"] for e in trail["events"]}

    bundle = hr.get(f"/dossiers/{dossier_id}/evidence")
    assert bundle.status_code == 200 and bundle.mimetype == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(bundle.data))
    assert archive.testzip() is None
    signed = {hashlib.sha256(archive.read(name)).hexdigest() for name in archive.namelist()
              if name.startswith("documents/")}
    assert signed == {d["sha256"] for d in final["documents"]}


def test_auditors_and_participants_download_the_evidence_bundle(org):
    hr = Api(org, "rh.dupont")
    dossier = hr.create_dossier("note-interne").json
    assert Api(org, "dgs.martin").act(dossier["id"], "approve").status_code == 200
    for api in (hr, Api(org, "audit.moreau"), Api(org, "dgs.martin")):
        bundle = api.get(f"/dossiers/{dossier['id']}/evidence")
        assert bundle.status_code == 200 and bundle.mimetype == "application/zip"
        assert "events.json" in zipfile.ZipFile(io.BytesIO(bundle.data)).namelist()
        assert f"preuves-dossier-{dossier['id']}.zip" in bundle.headers["Content-Disposition"]
