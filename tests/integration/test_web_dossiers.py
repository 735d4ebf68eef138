"""The browser pages of initiators and signers, through the test client (the real browser tests are in
tests/browser)."""

import html
import io
import re

import pyotp
import pytest
from sqlalchemy import select

from parapheur.extensions import db
from parapheur.models import Delegation, Dossier, SigningCredential, User, utcnow
from parapheur.samples import text_pdf

from .factories import act, create_dossier


def text(response) -> str:
    """The page's text as a person reads it (entities decoded)."""
    return html.unescape(response.get_data(as_text=True))


def make_pdf(title="Contrat", pages=2):
    return io.BytesIO(text_pdf(title, ["Texte."], pages=pages))


def new_dossier(b, type_code="contrat", title="Contrat de M. Blanc", files=None):
    files = files if files is not None else [(make_pdf(), "contrat.pdf")]
    return b.post_form("/dossiers/new", data={"title": title, "type": type_code, "documents": files},
                       content_type="multipart/form-data")


def dossier_id(response) -> int:
    return int(re.search(r"/dossiers/(\d+)", response.headers["Location"]).group(1))


def test_initiator_creates_launches_and_follows_a_dossier(browser):
    b = browser("rh.dupont")
    response = new_dossier(b)
    assert response.status_code == 302
    number = dossier_id(response)
    page = text(b.get(f"/dossiers/{number}"))
    assert "Contrat de M. Blanc" in page and "Lancer le circuit" in page and "Brouillon" in page
    assert "Direction des ressources humaines (bureau)" in page and "Paul Martin" in page
    launched = b.post_form(f"/dossiers/{number}", f"/dossiers/{number}/act", {"action": "launch", "version": 1})
    assert launched.status_code == 302
    listing = text(b.get("/dossiers?status=in_progress"))
    assert "Contrat de M. Blanc" in listing and "En cours" in listing
    assert "Contrat de M. Blanc" not in text(b.get("/dossiers?status=draft"))
    assert "Contrat de M. Blanc" in text(b.get("/dossiers?q=blanc"))


def test_bad_uploads_get_a_clear_message_and_create_nothing(browser, org):
    b = browser("rh.dupont")
    encrypted = new_dossier(b, files=[(io.BytesIO(b"not a pdf at all"), "faux.pdf")])
    assert encrypted.status_code == 422
    assert "n'est pas un PDF" in text(encrypted)
    truncated = new_dossier(b, files=[(io.BytesIO(text_pdf("x")[:200]), "coupe.pdf")])
    assert truncated.status_code == 422
    missing_title = b.post_form("/dossiers/new", data={"title": " ", "type": "contrat",
                                                       "documents": [(make_pdf(), "a.pdf")]},
                                content_type="multipart/form-data")
    assert missing_title.status_code == 400 and "titre est obligatoire" in text(missing_title)
    with org.app_context():
        assert db.session.scalar(select(Dossier.id)) is None


def test_upload_in_json_for_the_progress_bar(browser):
    b = browser("rh.dupont")
    response = b.post_form("/dossiers/new", data={"title": "T", "type": "contrat",
                                                  "documents": [(make_pdf(), "a.pdf")]},
                           content_type="multipart/form-data", headers={"Accept": "application/json"})
    assert response.status_code == 201 and response.get_json()["location"].startswith("/dossiers/")


def test_signer_reads_visas_and_signs_with_pin_and_code(browser, org):
    with org.app_context():
        number = create_dossier("contrat").id
    visa = browser("drh.bernard")
    assert "Contrat de Mme Dupont" in text(visa.get("/inbox"))
    page = visa.get(f"/dossiers/{number}")
    assert page.status_code == 200 and "Viser" in text(page)
    image = visa.get(f"/dossiers/{number}/documents/1/pages/1.png")
    assert image.status_code == 200 and image.data.startswith(b"\x89PNG")
    image.close()
    assert visa.post_form(f"/dossiers/{number}", f"/dossiers/{number}/act",
                          {"action": "approve", "version": 2}).status_code == 302
    signer = browser("dgs.martin")
    page = text(signer.get(f"/dossiers/{number}"))
    assert 'id="sign-dialog"' in page and "Code de signature (PIN)" in page
    wrong = signer.post_form(f"/dossiers/{number}", f"/dossiers/{number}/act",
                             {"action": "sign", "version": 3, "pin": "000000",
                              "otp": pyotp.TOTP("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP").now()})
    assert wrong.status_code == 400 and "Code de signature incorrect" in text(wrong)
    right = signer.post_form(f"/dossiers/{number}", f"/dossiers/{number}/act",
                             {"action": "sign", "version": 3, "pin": "482913",
                              "otp": pyotp.TOTP("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP").now()})
    assert right.status_code == 302
    with org.app_context():
        assert db.session.get(Dossier, number).status == "completed"
    download = signer.get(f"/dossiers/{number}/documents/1/download")
    assert download.status_code == 200 and b"/ByteRange" in download.data
    download.close()
    with org.app_context():
        from parapheur.models import AuditEvent

        seen = db.session.execute(select(AuditEvent.kind, AuditEvent.actor, AuditEvent.revision_sha256)
                                  .where(AuditEvent.dossier_id == number,
                                         AuditEvent.kind.in_(["document.viewed", "document.downloaded"]))).all()
        assert ("document.viewed", "drh.bernard") in {(k, a) for k, a, _ in seen}
        assert ("document.downloaded", "dgs.martin") in {(k, a) for k, a, _ in seen}
        assert all(sha for _, _, sha in seen)


def test_reject_needs_a_reason_and_keeps_what_was_typed(browser, org):
    with org.app_context():
        number = create_dossier("contrat").id
    b = browser("drh.bernard")
    empty = b.post_form(f"/dossiers/{number}", f"/dossiers/{number}/act", {"action": "reject", "version": 2,
                                                                           "reason": "   "})
    assert empty.status_code == 409 and "motif" in text(empty).lower()
    stale = b.post_form(f"/dossiers/{number}", f"/dossiers/{number}/act",
                        {"action": "reject", "version": 1, "reason": "Salaire erroné en page 2"})
    assert stale.status_code == 409
    body = text(stale)
    assert "rechargez" in body and "Salaire erroné en page 2" in body
    done = b.post_form(f"/dossiers/{number}", f"/dossiers/{number}/act",
                       {"action": "reject", "version": 2, "reason": "Salaire erroné en page 2"})
    assert done.status_code == 302
    initiator = browser("rh.dupont")
    page = text(initiator.get(f"/dossiers/{number}"))
    assert "Salaire erroné en page 2" in page and "Relancer" in page
    replaced = initiator.post_form(f"/dossiers/{number}", f"/dossiers/{number}/documents/1/replace",
                                   {"file": (make_pdf("Contrat corrigé"), "contrat-v2.pdf"), "version": 3},
                                   content_type="multipart/form-data")
    assert replaced.status_code == 302
    relaunched = initiator.post_form(f"/dossiers/{number}", f"/dossiers/{number}/act",
                                     {"action": "relaunch"})
    assert relaunched.status_code == 302
    with org.app_context():
        dossier = db.session.get(Dossier, number)
        assert dossier.status == "in_progress" and dossier.current_step == 0


def test_inbox_counts_sort_and_batch_signing(browser, org):
    with org.app_context():
        numbers = [create_dossier("attestation", title=f"Attestation {i}").id for i in range(3)]
        other = create_dossier("contrat", title="Contrat à viser").id
    b = browser("drh.bernard")
    page = text(b.get("/inbox"))
    assert re.search(r'data-count="to_sign">3<', page) and re.search(r'data-count="to_approve">1<', page)
    assert "Contrat à viser" not in text(b.get("/inbox?kind=signature"))
    response = b.post_form("/inbox", "/inbox/batch", {"dossier": [*numbers, 99999]})
    assert response.status_code == 302 and response.headers["Location"].endswith("/inbox")  # refused whole
    response = b.post_form("/inbox", "/inbox/batch", {"dossier": numbers})
    assert response.status_code == 302
    job = b.get(response.headers["Location"] + ".json").get_json()
    assert job["total"] == 3 and job["done"] == 3 and job["failed"] == 0 and job["status"] == "done"
    with org.app_context():
        assert {db.session.get(Dossier, n).status for n in numbers} == {"completed"}
        assert db.session.get(Dossier, other).status == "in_progress"


def test_batch_lists_the_dossiers_that_fail_and_leaves_them_untouched(browser, org):
    with org.app_context():
        good = create_dossier("attestation", title="Attestation bonne").id
        taken = create_dossier("attestation", title="Attestation déjà signée").id
    b = browser("drh.bernard")
    page = b.get("/inbox")  # the selection is made, then a colleague signs one of them
    with org.app_context():
        act(db.session.get(Dossier, taken), "rh.lefevre", "sign")
    from .conftest import csrf_token

    response = b.client.post("/inbox/batch", data={"dossier": [good, taken],
                                                   "csrf_token": csrf_token(text(page))})
    job = b.get(response.headers["Location"] + ".json").get_json()
    assert job["done"] == 1 and job["failed"] == 1 and job["status"] == "partial"
    assert job["items"][str(taken)]["ok"] is False and job["items"][str(taken)]["message"]


def test_batch_with_a_wrong_pin_signs_nothing(browser, org):
    with org.app_context():
        numbers = [create_dossier("contrat", title=f"Contrat {i}").id for i in range(2)]
        for n in numbers:
            act(db.session.get(Dossier, n), "drh.bernard", "approve")
    b = browser("dgs.martin")
    response = b.post_form("/inbox", "/inbox/batch", {"dossier": numbers, "pin": "999999",
                                                      "otp": pyotp.TOTP("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP").now()})
    assert response.status_code == 302 and response.headers["Location"].endswith("/inbox")
    with org.app_context():
        assert {db.session.get(Dossier, n).status for n in numbers} == {"in_progress"}
        credential = db.session.scalar(select(SigningCredential).join(User).where(User.username == "dgs.martin"))
        assert credential.failed_attempts == 1


def test_repeated_wrong_pins_lock_signing(browser, org):
    with org.app_context():
        number = create_dossier("contrat").id
        act(db.session.get(Dossier, number), "drh.bernard", "approve")
    b = browser("dgs.martin")
    code = pyotp.TOTP("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP").now()
    for _ in range(5):
        b.post_form(f"/dossiers/{number}", f"/dossiers/{number}/act",
                    {"action": "sign", "pin": "000000", "otp": code})
    locked = b.post_form(f"/dossiers/{number}", f"/dossiers/{number}/act",
                         {"action": "sign", "pin": "482913", "otp": code})
    assert locked.status_code == 403 and "bloquée" in text(locked)


def test_delegate_sees_the_dossier_marked_on_behalf_of(browser, org):
    with org.app_context():
        number = create_dossier("contrat").id
        act(db.session.get(Dossier, number), "drh.bernard", "approve")
    martin = browser("dgs.martin")
    today = utcnow().date().isoformat()
    saved = martin.post_form("/delegations", data={"delegate": "drh.bernard", "start": today, "end": today})
    assert saved.status_code == 302
    bad = martin.post_form("/delegations", data={"delegate": "ghost", "start": today, "end": today})
    assert bad.status_code == 400 and "Délégataire inconnu" in text(bad)
    delegate = browser("drh.bernard")
    inbox = text(delegate.get("/inbox"))
    assert "pour le compte de Paul Martin" in inbox
    with org.app_context():
        assert db.session.scalar(select(Delegation.id)) is not None


def test_admin_edits_the_organisation_with_line_numbered_errors(browser, org):
    b = browser("admin")
    page = text(b.get("/admin/organisation"))
    assert "dgs.martin" in page and "contrat" in page
    source = html.unescape(re.search(r'<textarea[^>]*>(.*?)</textarea>', page, re.S).group(1))
    broken = source.replace("min_level: advanced", "min_level: ultra", 1)
    response = b.post_form("/admin/organisation", data={"organisation": broken})
    assert response.status_code == 400 and "niveau inconnu « ultra »" in text(response)
    assert re.search(r"ligne \d+, document_types\[\d\]\.min_level", text(response))
    renamed = source.replace("name: Contrat de travail", "name: Contrat de travail (CDD)")
    assert b.post_form("/admin/organisation", data={"organisation": renamed}).status_code == 302
    assert "Contrat de travail (CDD)" in text(b.get("/admin/organisation"))


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_every_dossier_route_refuses_a_user_with_no_part(browser, org):
    with org.app_context():
        number = create_dossier("contrat", title="Contrat confidentiel").id
    outsider = browser("outsider")
    for url in [f"/dossiers/{number}", f"/dossiers/{number}/documents/1/download",
                f"/dossiers/{number}/documents/1/pages/1.png", f"/dossiers/{number}/documents/1/download?revision=1"]:
        response = outsider.get(url)
        response.close()
        assert response.status_code in (403, 404), url
        assert "confidentiel" not in text(response)
    for action in ["approve", "sign", "reject", "recall", "relaunch", "launch"]:
        response = outsider.post_form("/inbox", f"/dossiers/{number}/act", {"action": action, "reason": "x"})
        assert response.status_code in (403, 404), action
        assert "confidentiel" not in text(response)
    for url in [f"/dossiers/{number}/assignees", f"/dossiers/{number}/documents/1/replace"]:
        response = outsider.post_form("/inbox", url, {"step": 0, "assignees": "user:outsider"})
        assert response.status_code in (403, 404), url
    with org.app_context():
        assert db.session.get(Dossier, number).status == "in_progress"
