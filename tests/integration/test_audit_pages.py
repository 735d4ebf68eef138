"""The auditor's pages: search, a dossier's trail, its chain and validation reports, downloads; read-only;
404 for anyone without a part in the dossier."""

from __future__ import annotations

import io
import zipfile
from datetime import timedelta
from types import SimpleNamespace

import pytest
from markupsafe import escape
from sqlalchemy import select

from parapheur import audit
from parapheur.extensions import db
from parapheur.models import AuditEvent, Dossier, utcnow
from parapheur.services import audit_search, dossiers, trail, validation
from parapheur.services.errors import Conflict
from parapheur.storage import store

from . import tampering
from .audit_data import TITLE, completed_dossier
from .conftest import Browser
from .factories import act, create_dossier, user


@pytest.fixture
def data(org):
    """A completed three-step dossier, a note in progress, a draft attestation and a rejected contract."""
    with org.app_context():
        done = completed_dossier(org, documents=1)
        note = create_dossier("note-interne", title="Note sur les congés d'été").id
        draft = create_dossier("attestation", title="Attestation de présence", initiator="rh.lefevre",
                               launch=False).id
        rejected = create_dossier("contrat", title="Contrat de M. Petit").id
        act(db.session.get(Dossier, rejected), "drh.bernard", "reject", reason="Pièce manquante")
        document = db.session.get(Dossier, done).documents[0]
        ids = SimpleNamespace(done=done, note=note, draft=draft, rejected=rejected, document=document.id,
                              sha256=document.current.sha256)
    return ids


def _events(app, dossier_id: int, kind: str) -> list[AuditEvent]:
    with app.app_context():
        return list(db.session.scalars(select(AuditEvent).where(AuditEvent.dossier_id == dossier_id,
                                                                AuditEvent.kind == kind)))


def _routes(ids) -> list[str]:
    base = f"/audit/dossiers/{ids.done}"
    return [base, f"{base}/documents/{ids.document}.pdf", f"{base}/bordereau.pdf", f"{base}/evidence.zip"]


# -- search ------------------------------------------------------------------------------------------------


def test_the_auditor_sees_every_dossier(browser, data):
    page = browser("audit.moreau").get("/audit/")
    body = page.get_data(as_text=True)
    assert page.status_code == 200
    for title in (TITLE, "Note sur les congés d'été", "Attestation de présence", "Contrat de M. Petit"):
        assert str(escape(title)) in body
    assert "4 dossiers trouvés" in body
    assert "style=" not in body and "<script>" not in body  # CSP: no inline style or script


@pytest.mark.parametrize(("query", "expected"), [
    ("title=cong", ["note"]),
    ("title=%25", []),  # a literal %, not a wildcard
    ("type=contrat", ["rejected"]),
    ("status=completed", ["done"]),
    ("status=draft", ["draft"]),
    ("signer=Martin", ["done"]),
    ("signer=drh.bernard", ["rejected"]),  # the visa of the three-step dossier was given by rh.lefevre
    ("signer=lef%C3%A8vre", ["done"]),
    ("type=attestation&status=completed", []),
])
def test_search_criteria(browser, data, query, expected):
    body = browser("audit.moreau").get(f"/audit/?{query}").get_data(as_text=True)
    for key in ("done", "note", "draft", "rejected"):
        link = f'href="/audit/dossiers/{getattr(data, key)}"'
        assert (link in body) == (key in expected), (query, key)


def test_search_by_creation_dates_in_paris_days(org, data):
    today = utcnow().astimezone(trail.PARIS).date()
    with org.app_context():
        auditor = user("audit.moreau")
        found = audit_search.search(db.session, auditor, audit_search.Criteria(created_from=today,
                                                                               created_to=today), utcnow())
        assert found.total == 4
        tomorrow = audit_search.Criteria(created_from=today + timedelta(days=1))
        assert audit_search.search(db.session, auditor, tomorrow, utcnow()).total == 0
        yesterday = audit_search.Criteria(created_to=today - timedelta(days=1))
        assert audit_search.search(db.session, auditor, yesterday, utcnow()).total == 0


def test_search_pages(org, data):
    with org.app_context():
        auditor = user("audit.moreau")
        first = audit_search.search(db.session, auditor, audit_search.Criteria(), utcnow(), per_page=3)
        second = audit_search.search(db.session, auditor, audit_search.Criteria(page=2), utcnow(), per_page=3)
        beyond = audit_search.search(db.session, auditor, audit_search.Criteria(page=9), utcnow(), per_page=3)
        assert (first.total, first.pages, len(first.dossiers), len(second.dossiers)) == (4, 2, 3, 1)
        assert {d.id for d in first.dossiers} | {d.id for d in second.dossiers} == {data.done, data.note,
                                                                                      data.draft, data.rejected}
        assert first.dossiers[0].id == data.rejected  # newest first
        assert beyond.page == 2
    assert audit_search.Criteria.from_args({"from": "pas une date", "page": "x", "status": "bogus"}) == \
        audit_search.Criteria()


def test_the_pager_keeps_the_criteria(org, browser, data, monkeypatch):
    monkeypatch.setattr(audit_search, "PER_PAGE", 1)
    body = browser("audit.moreau").get("/audit/?title=o").get_data(as_text=True)
    assert "page 1 sur" in body and 'href="/audit/?title=o&amp;page=2"' in body


# -- a dossier's trail ------------------------------------------------------------------------------------------


def test_the_trail_page_shows_timeline_chain_and_validation(org, browser, data):
    page = browser("audit.moreau").get(f"/audit/dossiers/{data.done}")
    body = page.get_data(as_text=True)
    assert page.status_code == 200
    with org.app_context():
        dossier = db.session.get(Dossier, data.done)
        entries = trail.timeline(db.session, dossier)
    for entry in entries:
        if entry.kind != "audit.viewed":
            assert entry.when in body
    for name in ("Claire Dupont (rh.dupont)", "Julien Lefèvre (rh.lefevre)", "Paul Martin (dgs.martin)",
                 "pour le compte de Sophie Bernard (drh.bernard)"):
        assert name in body
    assert "Chaîne intacte" in body and "Horodatage RFC 3161" in body
    for text in ("Cachet Ville de Test", "Paul Martin", "B-B", "B-T", "tout le fichier",
                 "remplissage de formulaire (signatures suivantes)", "audit-verdict valid"):
        assert text in body
    assert "NON valide" not in body
    for href in _routes(data)[1:]:
        assert f'href="{href}"' in body
    [viewed] = _events(org, data.done, "audit.viewed")
    assert (viewed.actor, viewed.ip) == ("audit.moreau", "127.0.0.1")
    assert viewed.user_agent.startswith("Werkzeug/")  # the test client's


def test_a_broken_chain_is_shown_naming_the_event(org, browser, data):
    with org.app_context():
        target = next(e for e in tampering.events() if e.dossier_id == data.done and e.kind == "step.approved")
        tampering.alter(target.seq, actor="mallory")
    body = browser("audit.moreau").get(f"/audit/dossiers/{data.done}").get_data(as_text=True)
    assert "Chaîne ROMPUE" in body
    assert f"l&#39;événement n° {target.seq} (id {target.id}) a été modifié" in body


# -- downloads -----------------------------------------------------------------------------------------------


def test_downloads_for_the_auditor_are_recorded(org, browser, data):
    auditor = browser("audit.moreau")
    base = f"/audit/dossiers/{data.done}"
    pdf = auditor.get(f"{base}/documents/{data.document}.pdf")
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf"
    assert "attachment" in pdf.headers["Content-Disposition"]
    with org.app_context():
        assert pdf.data == store().get(data.sha256)
        first = db.session.get(Dossier, data.done).documents[0].revisions[0]
        original = auditor.get(f"{base}/documents/{data.document}.pdf?revision=1")
        assert original.data == store().get(first.sha256)
        assert auditor.get(f"{base}/documents/{data.document}.pdf?revision=99").status_code == 404
        assert auditor.get(f"{base}/documents/999999.pdf").status_code == 404
        sealed = auditor.get(f"{base}/bordereau.pdf")
        assert sealed.status_code == 200 and validation.validate_bytes(sealed.data).valid
    bundle = auditor.get(f"{base}/evidence.zip")
    assert bundle.status_code == 200 and bundle.mimetype == "application/zip"
    with zipfile.ZipFile(io.BytesIO(bundle.data)) as archive:
        assert "events.json" in archive.namelist() and "bordereau.pdf" in archive.namelist()
    downloaded = _events(org, data.done, "document.downloaded")
    assert [e.revision_sha256 for e in downloaded] == [data.sha256, first.sha256]
    assert all(e.actor == "audit.moreau" and e.ip == "127.0.0.1" for e in downloaded)
    assert len(_events(org, data.done, "bordereau.downloaded")) == 1
    assert len(_events(org, data.done, "evidence.downloaded")) == 1


def test_participants_download_the_bordereau_and_the_evidence_only(org, browser, data):
    base = f"/audit/dossiers/{data.done}"
    for username in ("rh.dupont", "dgs.martin", "drh.bernard"):
        participant = browser(username)
        assert participant.get(f"{base}/evidence.zip").status_code == 200, username
        assert participant.get(f"{base}/bordereau.pdf").status_code == 200, username
        for url in (base, f"{base}/documents/{data.document}.pdf"):
            assert participant.get(url).status_code == 404, (username, url)
        assert participant.get("/audit/").status_code == 403  # a role page, like /admin/
    [event] = [e for e in _events(org, data.done, "evidence.downloaded") if e.actor == "rh.dupont"]
    assert event.ip == "127.0.0.1"


@pytest.mark.parametrize("username", ["outsider", "norole", "admin"])
def test_anyone_without_a_part_gets_404_without_dossier_data(browser, data, username):
    visitor = browser(username)
    for url in [*_routes(data), "/audit/dossiers/999999/evidence.zip", "/audit/", "/audit/?title=Délibération"]:
        response = visitor.get(url)
        assert response.status_code == (403 if url.startswith("/audit/?") or url == "/audit/" else 404), url
        body = response.get_data(as_text=True)
        assert "Délibération" not in body and "2025-042" not in body and "PK" not in body[:2]


def test_anonymous_visitors_are_sent_to_login(browser, data):
    for url in [*_routes(data), "/audit/"]:
        response = browser().get(url)
        assert response.status_code == 302 and "/login" in response.headers["Location"]


# -- auditors change nothing -------------------------------------------------------------------------------------


def test_auditors_can_change_nothing(org, browser, data):
    auditor = browser("audit.moreau")
    for url in [*_routes(data), "/audit/"]:
        assert auditor.client.post(url).status_code in {400, 405}  # no POST route (CSRF answers 400 first)
    assert auditor.get("/admin/").status_code == 403
    with org.app_context():
        dossier = db.session.get(Dossier, data.note)
        with pytest.raises(Conflict) as refused:
            dossiers.perform(db.session, org, dossier, user("audit.moreau"), "approve",
                             audit.Meta("audit.moreau"), utcnow())
        assert refused.value.code == "not_assignee"
        db.session.rollback()
        assert db.session.get(Dossier, data.note).status == "in_progress"


def test_an_unreachable_timestamping_authority_is_a_503_and_nothing_is_recorded(make_app):
    app = make_app("org", TSA_URL="http://127.0.0.1:9/tsa")
    with app.app_context():
        dossier_id = create_dossier("note-interne", title="Note de service").id
    initiator = Browser(app)
    assert initiator.login("rh.dupont").status_code == 302
    response = initiator.get(f"/audit/dossiers/{dossier_id}/bordereau.pdf")
    assert response.status_code == 503
    assert "horodatage est injoignable" in response.get_data(as_text=True)
    assert initiator.get(f"/audit/dossiers/{dossier_id}/evidence.zip").status_code == 503
    assert _events(app, dossier_id, "bordereau.downloaded") == []
    assert _events(app, dossier_id, "evidence.downloaded") == []
