"""The REST API: tokens, access, errors, pagination, optimistic locking, rate limiting, OpenAPI."""

from __future__ import annotations

import io
import json
from datetime import timedelta

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from parapheur.extensions import db
from parapheur.models import ApiToken, AuditEvent, JobRecord, utcnow
from parapheur.services import tokens

from .apiclient import Api, pdf_file, token_for
from .factories import create_dossier

# --- tokens ------------------------------------------------------------------------------------------


def test_cli_prints_the_token_as_the_last_word_and_stores_only_its_hash(org, monkeypatch):
    from parapheur import cli

    monkeypatch.setattr(cli, "_app", lambda: org)
    result = CliRunner().invoke(cli.main, ["token", "create", "rh.dupont", "--name", "SIRH"])
    assert result.exit_code == 0, result.output
    secret = result.output.split()[-1]
    assert secret.startswith("ppt_")
    with org.app_context():
        row = db.session.scalar(select(ApiToken).where(ApiToken.name == "SIRH"))
        assert row.token_hash == tokens.hash_token(secret) and secret not in (row.prefix, row.token_hash)
        assert row.user.username == "rh.dupont"
    assert Api(org, token=secret).get("/dossiers").status_code == 200


def test_cli_refuses_an_unknown_user(org, monkeypatch):
    from parapheur import cli

    monkeypatch.setattr(cli, "_app", lambda: org)
    result = CliRunner().invoke(cli.main, ["token", "create", "nobody"])
    assert result.exit_code == 1


def test_missing_bad_and_revoked_tokens_get_401_with_a_bearer_challenge(org):
    missing = Api(org).get("/dossiers")
    assert missing.status_code == 401 and missing.mimetype == "application/problem+json"
    assert missing.headers["WWW-Authenticate"].startswith("Bearer")
    bad = Api(org, token="ppt_not-a-real-token").get("/dossiers")
    assert bad.status_code == 401 and 'error="invalid_token"' in bad.headers["WWW-Authenticate"]
    basic = Api(org).get("/dossiers", headers={"Authorization": "Basic cmguZHVwb250OnNlY3JldA=="})
    assert basic.status_code == 401

    api = Api(org, "rh.dupont")
    assert api.get("/dossiers").status_code == 200
    with org.app_context():
        row = db.session.scalar(select(ApiToken).where(ApiToken.token_hash == tokens.hash_token(api.token)))
        tokens.revoke(db.session, row.user, row.id, __import__("parapheur").audit.Meta("rh.dupont"), utcnow())
        db.session.commit()
    revoked = api.get("/dossiers")
    assert revoked.status_code == 401 and revoked.json["code"] == "token_invalid"


def test_a_disabled_users_token_stops_working(org):
    api = Api(org, "rh.dupont")
    with org.app_context():
        from .factories import user

        user("rh.dupont").active = False
        db.session.commit()
    assert api.get("/dossiers").status_code == 401


def test_a_session_cookie_does_not_authenticate_the_api_and_csrf_does_not_apply(browser, org):
    logged_in = browser("rh.dupont")
    assert logged_in.get("/api/v1/dossiers").status_code == 401
    api = Api(org, "rh.dupont")  # no CSRF token anywhere: the bearer token is the credential
    assert api.create_dossier().status_code == 201


def test_token_use_is_recorded_at_most_once_a_minute(org):
    api = Api(org, "rh.dupont")
    for _ in range(3):
        assert api.get("/dossiers").status_code == 200
    with org.app_context():
        used = db.session.scalars(select(AuditEvent).where(AuditEvent.kind == "api.token_used")).all()
        assert len(used) == 1 and used[0].actor == "rh.dupont"
        row = db.session.scalar(select(ApiToken).where(ApiToken.token_hash == tokens.hash_token(api.token)))
        assert row.last_used_at is not None
        row.last_used_at = utcnow() - timedelta(minutes=2)
        db.session.commit()
    api.get("/dossiers")
    with org.app_context():
        assert db.session.scalar(select(AuditEvent.id).where(AuditEvent.kind == "api.token_used")
                                 .order_by(AuditEvent.id.desc())) != used[0].id


def test_profile_page_creates_shows_once_and_revokes_tokens(browser, org):
    page = browser("rh.dupont")
    listing = page.get("/profile/tokens/")
    assert listing.status_code == 200
    created = page.post_form("/profile/tokens/", data={"name": "Logiciel RH"})
    html = created.get_data(as_text=True)
    assert created.status_code == 200 and "Logiciel RH" in html
    secret = html.split('id="new-token" class="secret">')[1].split("<")[0]
    assert Api(org, token=secret).get("/dossiers").status_code == 200
    again = page.get("/profile/tokens/").get_data(as_text=True)
    assert secret not in again and secret[:12] in again
    with org.app_context():
        token_id = db.session.scalar(select(ApiToken.id).where(ApiToken.token_hash == tokens.hash_token(secret)))
    revoked = page.post_form("/profile/tokens/", f"/profile/tokens/{token_id}/revoke")
    assert revoked.status_code == 302
    assert Api(org, token=secret).get("/dossiers").status_code == 401
    # someone else's token cannot be revoked from another profile
    other = browser("dgs.martin")
    assert other.post_form("/profile/tokens/", f"/profile/tokens/{token_id}/revoke").status_code == 302
    assert other.post_form("/profile/tokens/", data={"name": ""}).status_code == 400


# --- access -----------------------------------------------------------------------------------------


def test_a_user_with_no_part_gets_404_on_every_dossier_endpoint(org):
    owner = Api(org, "rh.dupont")
    dossier = owner.create_dossier(documents=1, annexes=1).json
    document_id = dossier["documents"][0]["id"]
    outsider = Api(org, "outsider", locale="en")
    for response in (
        outsider.get(f"/dossiers/{dossier['id']}"),
        outsider.post(f"/dossiers/{dossier['id']}/launch"),
        outsider.act(dossier["id"], "approve"),
        outsider.act(dossier["id"], "reject", reason="Non"),
        outsider.get(f"/dossiers/{dossier['id']}/documents/{document_id}"),
        outsider.get(f"/dossiers/{dossier['id']}/documents/{document_id}?revision=1"),
        outsider.get(f"/dossiers/{dossier['id']}/audit"),
        outsider.get(f"/dossiers/{dossier['id']}/evidence"),
    ):
        assert response.status_code == 404, (response.request.path, response.get_data(as_text=True))
        assert response.mimetype == "application/problem+json"
        assert response.json["detail"] == "Dossier not found."
    listing = outsider.get("/dossiers").json
    assert listing["total"] == 0 and listing["items"] == []
    # the same answers as for a dossier that does not exist
    assert outsider.get("/dossiers/999999").json == outsider.get(f"/dossiers/{dossier['id']}").json


def test_a_signers_token_cannot_create_dossiers(org):
    response = Api(org, "dgs.martin").create_dossier()
    assert response.status_code == 403 and response.json["code"] == "role_required"
    assert response.json["detail"].startswith("Action réservée")


def test_an_auditor_sees_every_dossier_but_cannot_act(org):
    dossier = Api(org, "rh.dupont").create_dossier("note-interne").json
    auditor = Api(org, "audit.moreau")
    assert auditor.get(f"/dossiers/{dossier['id']}").status_code == 200
    assert auditor.get("/dossiers").json["total"] == 1
    refused = auditor.act(dossier["id"], "approve")
    assert refused.status_code == 409 and refused.json["code"] == "not_assignee"


def test_jobs_are_visible_to_their_own_user_only(org):
    with org.app_context():
        from .factories import user

        db.session.add(JobRecord(id="job-1", kind="sign_batch", user_id=user("dgs.martin").id, status="done",
                                 total=2, done=2, result=json.dumps({"1": {"ok": True, "message": "Signé."}})))
        db.session.commit()
    mine = Api(org, "dgs.martin").get("/jobs/job-1")
    assert mine.status_code == 200 and mine.json["status"] == "done" and mine.json["result"]["1"]["ok"]
    assert Api(org, "rh.dupont").get("/jobs/job-1").status_code == 404
    assert Api(org, "dgs.martin").get("/jobs/nope").status_code == 404


# --- dossiers ---------------------------------------------------------------------------------------


def test_create_returns_the_dossier_with_steps_documents_and_an_etag(org):
    api = Api(org, "rh.dupont")
    response = api.create_dossier(documents=2, annexes=1)
    assert response.status_code == 201, response.json
    dossier = response.json
    assert response.headers["Location"] == f"/api/v1/dossiers/{dossier['id']}"
    assert response.headers["ETag"] == f'"dossier-{dossier["id"]}-v{dossier["version"]}"'
    assert dossier["status"] == "in_progress" and dossier["current_step"] == 0
    assert [(s["index"], s["kind"], s["level"], s["assignees"], s["status"]) for s in dossier["steps"]] == [
        (0, "visa", None, ["desk:drh"], "active"), (1, "signature", "advanced", ["user:dgs.martin"], "pending")]
    assert [d["filename"] for d in dossier["documents"]] == ["document-1.pdf", "document-2.pdf"]
    assert all(d["revision"] == 2 and len(d["sha256"]) == 64 for d in dossier["documents"])  # fields added
    assert [a["filename"] for a in dossier["annexes"]] == ["annexe-0.txt"]
    annex = api.get(dossier["annexes"][0]["links"]["download"].removeprefix("/api/v1"))
    assert annex.data == b"annexe 0" and annex.mimetype == "application/octet-stream"


def test_a_draft_is_launched_by_its_own_endpoint(org):
    api = Api(org, "rh.dupont")
    draft = api.create_dossier("note-interne", launch=False).json
    assert draft["status"] == "draft"
    launched = api.post(f"/dossiers/{draft['id']}/launch")
    assert launched.status_code == 200 and launched.json["status"] == "in_progress"
    again = api.post(f"/dossiers/{draft['id']}/launch")
    assert again.status_code == 409


def test_bad_input_is_400_with_a_field_and_a_french_or_english_detail(org):
    api = Api(org, "rh.dupont")
    no_docs = api.post("/dossiers", data={"title": "X", "type": "contrat"}, content_type="multipart/form-data")
    assert no_docs.status_code == 400 and no_docs.json["field"] == "documents"
    unknown = api.create_dossier("inconnu")
    assert unknown.status_code == 400 and unknown.json["field"] == "type"
    assert unknown.json["detail"] == "« type » doit valoir l'une de ces valeurs : attestation, contrat, note-interne."
    english = Api(org, token=api.token, locale="en").create_dossier("inconnu")
    assert english.json["detail"] == "'type' must be one of: attestation, contrat, note-interne."
    assert english.headers["Content-Language"] == "en" and english.json["title"] == "Bad request"
    blank = api.create_dossier(title="   ")
    assert blank.status_code == 400 and blank.json["detail"] == "« title » ne doit pas être vide."
    assert api.get("/dossiers?page=0").status_code == 400
    assert api.get("/dossiers?status=lost").json["field"] == "status"
    assert api.post("/dossiers/1/actions", data="not json", content_type="text/plain").status_code == 400
    extra = api.act(1, "approve", sneaky=True)
    assert extra.status_code == 400 and "sneaky" in extra.json["detail"]


def test_a_file_that_is_not_a_pdf_is_422_and_nothing_is_created(org):
    api = Api(org, "rh.dupont")
    response = api.post("/dossiers", data={"title": "X", "type": "contrat",
                                           "documents": [(io.BytesIO(b"GIF89a..."), "photo.gif")]},
                        content_type="multipart/form-data")
    assert response.status_code == 422 and response.json["code"] == "not_pdf"
    assert api.get("/dossiers").json["total"] == 0


def test_too_large_uploads_are_413(make_app):
    app = make_app("org", MAX_UPLOAD_MB=1)
    api = Api(app, "rh.dupont")
    boundary = "limite"
    body = (f'--{boundary}\r\nContent-Disposition: form-data; name="title"\r\n\r\nX\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="type"\r\n\r\ncontrat\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="documents"; filename="big.pdf"\r\n'
            "Content-Type: application/pdf\r\n\r\n").encode() + b"%PDF-1.7\n" + b"0" * (3 * 1024 * 1024) \
        + f"\r\n--{boundary}--\r\n".encode()
    response = api.post("/dossiers", data=body, content_type=f"multipart/form-data; boundary={boundary}")
    assert response.status_code == 413 and response.mimetype == "application/problem+json"
    assert "1 Mo" in response.json["detail"]


def test_list_filters_and_paginates_with_links(org):
    api = Api(org, "rh.dupont")
    for i in range(5):
        api.create_dossier("note-interne", title=f"Note {i}", launch=i % 2 == 0)
    page = api.get("/dossiers?per_page=2").json
    assert page["total"] == 5 and page["pages"] == 3 and len(page["items"]) == 2
    assert page["items"][0]["title"] == "Note 4"  # most recently changed first
    assert page["links"]["next"] == "/api/v1/dossiers?page=2&per_page=2" and page["links"]["prev"] is None
    last = api.get(page["links"]["last"].removeprefix("/api/v1"))
    assert last.json["page"] == 3 and len(last.json["items"]) == 1 and last.json["links"]["next"] is None
    assert 'rel="next"' in api.get("/dossiers?per_page=2").headers["Link"]
    drafts = api.get("/dossiers?status=draft&type=note-interne").json
    assert drafts["total"] == 2 and {d["status"] for d in drafts["items"]} == {"draft"}
    assert api.get("/dossiers?type=contrat").json["total"] == 0
    assert api.get("/dossiers?page=9").json["items"] == []


def test_etag_if_none_match_and_if_match(org):
    initiator, drh = Api(org, "rh.dupont"), Api(org, "drh.bernard")
    dossier = initiator.create_dossier("contrat").json
    read = drh.get(f"/dossiers/{dossier['id']}")
    etag = read.headers["ETag"]
    assert drh.get(f"/dossiers/{dossier['id']}", headers={"If-None-Match": etag}).status_code == 304
    stale = drh.act(dossier["id"], "approve", headers={"If-Match": '"dossier-1-v1"'})
    assert stale.status_code == 409 and stale.json["code"] == "stale"
    ok = drh.act(dossier["id"], "approve", headers={"If-Match": etag})
    assert ok.status_code == 200 and ok.json["current_step"] == 1 and ok.headers["ETag"] != etag
    assert ok.json["steps"][0]["acted_by"] == "drh.bernard" and ok.json["steps"][0]["status"] == "done"


def test_a_stale_version_field_is_409_and_changes_nothing(org):
    initiator = Api(org, "rh.dupont")
    dossier = initiator.create_dossier("contrat").json
    stale = Api(org, "drh.bernard").act(dossier["id"], "approve", version=dossier["version"] - 1)
    assert stale.status_code == 409 and stale.json["code"] == "stale"
    assert initiator.get(f"/dossiers/{dossier['id']}").json["version"] == dossier["version"]
    ok = Api(org, "drh.bernard").act(dossier["id"], "approve", version=dossier["version"])
    assert ok.status_code == 200


def test_reject_needs_a_reason_and_recall_relaunch_work(org):
    initiator, drh = Api(org, "rh.dupont"), Api(org, "drh.bernard")
    dossier = initiator.create_dossier("contrat").json
    assert drh.act(dossier["id"], "reject").json["field"] == "reason"
    assert drh.act(dossier["id"], "reject", reason="  ").json["detail"] == "« reason » ne doit pas être vide."
    rejected = drh.act(dossier["id"], "reject", reason="Il manque l'annexe financière.")
    assert rejected.status_code == 200 and rejected.json["status"] == "rejected"
    assert rejected.json["reject_reason"] == "Il manque l'annexe financière."
    assert rejected.json["steps"][0]["acted_by"] == "drh.bernard"
    relaunched = initiator.act(dossier["id"], "relaunch")
    assert relaunched.json["status"] == "in_progress"
    recalled = initiator.act(dossier["id"], "recall")
    assert recalled.json["status"] == "recalled"
    refused = drh.act(dossier["id"], "approve")
    assert refused.status_code == 409


def test_signing_errors_are_400_and_leave_the_documents_unchanged(org):
    initiator = Api(org, "rh.dupont")
    dossier = initiator.create_dossier("contrat").json
    assert Api(org, "drh.bernard").act(dossier["id"], "approve").status_code == 200
    signer = Api(org, "dgs.martin")
    wrong = signer.act(dossier["id"], "sign", pin="000000", otp="123456")
    assert wrong.status_code == 400 and wrong.json["code"] in {"bad_pin", "bad_otp"}
    after = initiator.get(f"/dossiers/{dossier['id']}").json
    assert after["current_step"] == 1 and after["documents"] == dossier["documents"]


def test_audit_trail_with_chain_verdict(org):
    api = Api(org, "rh.dupont")
    dossier = api.create_dossier("note-interne").json
    trail = api.get(f"/dossiers/{dossier['id']}/audit").json
    assert trail["chain_valid"] is True
    kinds = [e["kind"] for e in trail["events"]]
    assert kinds[:3] == ["dossier.created", "document.uploaded", "dossier.launched"]
    assert [e["seq"] for e in trail["events"]] == list(range(1, len(kinds) + 1))
    assert trail["events"][0]["actor"] == "rh.dupont" and "ip" not in trail["events"][0]


def test_documents_download_by_revision(org):
    api = Api(org, "rh.dupont")
    dossier = api.create_dossier("contrat").json
    document = dossier["documents"][0]
    current = api.get(f"/dossiers/{dossier['id']}/documents/{document['id']}")
    assert current.status_code == 200 and current.mimetype == "application/pdf"
    assert current.headers["ETag"] == f'"{document["sha256"]}"'
    import hashlib

    assert hashlib.sha256(current.data).hexdigest() == document["sha256"]
    first = api.get(f"/dossiers/{dossier['id']}/documents/{document['id']}?revision=1")
    assert hashlib.sha256(first.data).hexdigest() == document["revisions"][0]["sha256"]
    assert api.get(f"/dossiers/{dossier['id']}/documents/{document['id']}?revision=9").status_code == 404
    assert api.get(f"/dossiers/{dossier['id']}/documents/999999").status_code == 404


def test_validate_reports_an_unsigned_pdf_as_invalid(org):
    api = Api(org, "outsider")
    report = api.post("/validate", data={"file": pdf_file("a.pdf")}, content_type="multipart/form-data")
    assert report.status_code == 200 and report.json["valid"] is False and report.json["signatures"] == []
    junk = api.post("/validate", data={"file": (io.BytesIO(b"junk"), "x.pdf")}, content_type="multipart/form-data")
    assert junk.status_code == 200 and junk.json["valid"] is False
    assert api.post("/validate", data={}, content_type="multipart/form-data").status_code == 400


def test_unknown_paths_and_methods_are_problems_too(org):
    api = Api(org, "rh.dupont", locale="en")
    missing = api.get("/nothing-here")
    assert missing.status_code == 404 and missing.mimetype == "application/problem+json"
    assert missing.json["detail"] == "Resource not found."
    wrong = api.client.delete("/api/v1/dossiers", headers=api.headers())
    assert wrong.status_code == 405 and "GET" in wrong.headers["Allow"]
    assert wrong.mimetype == "application/problem+json"


# --- rate limiting ----------------------------------------------------------------------------------


def _exhaust(app, limit: int):
    api = Api(app, "rh.dupont")
    statuses = [api.get("/dossiers").status_code for _ in range(limit + 1)]
    return api, statuses


def test_rate_limit_per_token_in_the_database(make_app):
    app = make_app("org", API_RATE_LIMIT=3)
    api, statuses = _exhaust(app, 3)
    assert statuses == [200, 200, 200, 429]
    limited = api.get("/dossiers")
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1
    assert limited.headers["RateLimit-Remaining"] == "0" and limited.json["code"] == "rate_limited"
    assert Api(app, "rh.dupont").get("/dossiers").status_code == 200  # another token has its own count


@pytest.mark.redis
def test_rate_limit_per_token_in_redis(make_app):
    from tests import services

    try:
        client = services.redis_client()
    except Exception as error:  # noqa: BLE001
        services.unavailable("Redis", error)
    app = make_app("org", API_RATE_LIMIT=2, REDIS_URL=services.REDIS_URL)
    api, statuses = _exhaust(app, 2)
    assert statuses == [200, 200, 429]
    assert any(key.startswith(b"parapheur:api-rate:") for key in client.keys("parapheur:api-rate:*"))


def test_the_database_counter_is_atomic_and_forgets_old_windows(org):
    from parapheur.api import ratelimit
    from parapheur.models import ApiRateWindow

    token = token_for(org, "rh.dupont")
    with org.app_context():
        digest = tokens.hash_token(token)
        token_id = db.session.scalar(select(ApiToken.id).where(ApiToken.token_hash == digest))
        assert ratelimit.hit(org, token_id, digest, now=1000.0).remaining == 119
        assert ratelimit.hit(org, token_id, digest, now=1010.0).remaining == 118
        assert ratelimit.hit(org, token_id, digest, now=1090.0).remaining == 119  # a new window
        assert db.session.scalars(select(ApiRateWindow.window).where(ApiRateWindow.token_id == token_id)).all() \
            == [1080]


# --- OpenAPI ----------------------------------------------------------------------------------------


def test_openapi_documents_every_api_route(org):
    client = org.test_client()
    doc = client.get("/api/v1/openapi.json").json
    assert client.get("/openapi.json").json == doc
    assert doc["openapi"].startswith("3.1")
    documented = {(path, method.upper()) for path, item in doc["paths"].items() for method in item}
    import re

    routed = set()
    for rule in org.url_map.iter_rules():
        if rule.rule.startswith("/api/v1/"):
            path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule.removeprefix("/api/v1"))
            routed |= {(path, m) for m in rule.methods - {"HEAD", "OPTIONS"}}
    assert routed == documented
    actions = doc["paths"]["/dossiers/{dossier_id}/actions"]["post"]
    assert {"200", "400", "401", "404", "409", "429"} <= set(actions["responses"])
    assert actions["requestBody"]["content"]["application/json"]["schema"]["properties"]["action"]["enum"]
    assert set(doc["webhooks"]) == {"dossier.launched", "step.done", "dossier.rejected", "dossier.completed"}
    create = doc["paths"]["/dossiers"]["post"]
    assert create["x-roles"] == ["initiator"] and "403" in create["responses"]


def test_openapi_is_a_valid_3_1_document(org):
    from jsonschema import Draft202012Validator

    doc = org.test_client().get("/api/v1/openapi.json").json
    for schema in doc["components"]["schemas"].values():
        Draft202012Validator.check_schema(schema)
    import schemathesis

    schema = schemathesis.openapi.from_dict(doc)
    loaded = [result.ok().label for result in schema.get_all_operations()]
    assert len(loaded) == sum(len(v) for v in doc["paths"].values())


def test_responses_match_their_documented_schemas(org):
    """The same check schemathesis makes, on a full circuit rather than on random input."""
    from jsonschema import Draft202012Validator
    from referencing import Registry, Resource

    doc = org.test_client().get("/api/v1/openapi.json").json
    registry = Registry().with_resource("urn:doc", Resource.opaque(doc))

    def check(response, name):
        schema = {"$ref": f"urn:doc#/components/schemas/{name}"}
        Draft202012Validator(schema, registry=registry).validate(response.json)

    api, drh = Api(org, "rh.dupont"), Api(org, "drh.bernard")
    created = api.create_dossier(documents=2, annexes=1)
    check(created, "Dossier")
    check(api.get("/dossiers"), "DossierPage")
    check(drh.act(created.json["id"], "approve"), "Dossier")
    check(api.get(f"/dossiers/{created.json['id']}/audit"), "AuditTrail")
    check(api.get("/nothing"), "Problem")
    check(api.post("/validate", data={"file": pdf_file("x.pdf")}, content_type="multipart/form-data"),
          "ValidationReport")


def test_a_dossier_made_in_the_browser_services_reads_the_same_over_the_api(org):
    with org.app_context():
        dossier = create_dossier("note-interne")
        dossier_id = dossier.id
    read = Api(org, "dgs.martin").get(f"/dossiers/{dossier_id}")
    assert read.status_code == 200 and read.json["steps"][0]["assignees"] == ["user:dgs.martin", "desk:drh"]
    assert read.json["steps"][0]["quorum"] == 1
