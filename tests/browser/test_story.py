"""The full story in a real browser: upload and launch a contrat, visa, advanced signature with PIN and
TOTP, the auditor's trail and evidence bundle; batch signing; a phone-sized screen."""

import re
import zipfile

import pyotp

from parapheur.samples import text_pdf

from .conftest import login, screenshot, wait_until

TOTP = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"


def test_full_story(new_page, live, tmp_path):
    pdf = tmp_path / "contrat-lambert.pdf"
    pdf.write_bytes(text_pdf("Contrat de travail de M. Lambert", ["Article 1 : objet."], pages=3))

    initiator = new_page("rh.dupont")
    initiator.goto(f"{live.url}/dossiers/new")
    initiator.get_by_label("Titre").fill("Contrat de M. Lambert")
    initiator.get_by_label("Type de document").select_option("contrat")
    initiator.set_input_files("#documents", str(pdf))
    initiator.get_by_role("button", name="Créer le brouillon").click()
    initiator.wait_for_url(re.compile(r"/dossiers/\d+$"))
    dossier_url = initiator.url
    initiator.get_by_role("button", name="Lancer le circuit").click()
    initiator.wait_for_selector("text=Dossier lancé dans son circuit.")
    assert "En cours" in initiator.inner_text("header.dossier-head")

    visa = new_page("drh.bernard")
    visa.goto(f"{live.url}/inbox")
    screenshot(visa, "inbox")
    visa.get_by_role("link", name="Contrat de M. Lambert").click()
    visa.wait_for_selector(".pages img")
    visa.get_by_role("button", name="Viser").click()
    visa.wait_for_selector("text=Visa enregistré.")

    signer = new_page("dgs.martin")
    signer.goto(dossier_url)
    screenshot(signer, "dossier")
    signer.get_by_role("button", name=re.compile("^Signer")).click()
    dialog = signer.locator("#sign-dialog")
    dialog.get_by_label("Code de signature (PIN)").fill("482913")
    dialog.get_by_label("Code à usage unique (application)").fill(pyotp.TOTP(TOTP).now())
    screenshot(signer, "signing-dialog")
    dialog.get_by_role("button", name="Signer").click()
    signer.wait_for_selector("text=Document signé.")
    signer.goto(dossier_url)
    assert "Terminé" in signer.inner_text("header.dossier-head")
    assert "Signé par Paul Martin" in signer.inner_text("#circuit-title + ol")

    auditor = new_page("audit.moreau")
    number = dossier_url.rsplit("/", 1)[1]
    auditor.goto(f"{live.url}/audit/dossiers/{number}")
    body = auditor.inner_text("main")
    assert "Paul Martin" in body or "dgs.martin" in body
    screenshot(auditor, "auditor-trail")
    with auditor.expect_download() as download_info:
        auditor.get_by_role("link", name=re.compile("preuve", re.I)).first.click()
    bundle = tmp_path / "evidence.zip"
    download_info.value.save_as(bundle)
    with zipfile.ZipFile(bundle) as archive:
        names = archive.namelist()
    assert any(name.endswith(".pdf") for name in names) and any("events" in name for name in names)


def test_batch_signing_shows_progress_and_results(new_page, live):
    from tests.integration.factories import create_dossier

    with live.app.app_context():
        for i in range(3):
            create_dossier("attestation", title=f"Attestation n°{i + 1}")
    page = new_page("drh.bernard")
    page.goto(f"{live.url}/inbox")
    assert page.inner_text('[data-count="to_sign"]') == "3"
    page.get_by_label("Tout sélectionner").check()
    page.get_by_role("button", name="Signer la sélection").click()
    page.wait_for_url(re.compile(r"/batches/"))
    wait_until(page, "document.querySelector('[data-batch]').dataset.status === 'done'")
    assert page.eval_on_selector("#batch-progress", "el => el.value") == 3
    rows = page.locator("[data-batch-items] tr.ok")
    assert rows.count() == 3
    screenshot(page, "batch-results")


def test_phone_sized_screen(new_page, live):
    from tests.integration.factories import create_dossier

    with live.app.app_context():
        create_dossier("attestation", title="Attestation sur mobile")
    page = new_page(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    login(page, live.url, "drh.bernard")
    page.goto(f"{live.url}/inbox")
    page.wait_for_load_state("load")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the inbox scrolls sideways on a phone ({width}px)"
    page.get_by_role("link", name="Attestation sur mobile").click()
    page.wait_for_url(re.compile(r"/dossiers/\d+$"))
    page.wait_for_load_state("load")  # stylesheet applied before measuring
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    assert page.get_by_role("button", name="Signer").is_visible()
    screenshot(page, "phone-dossier")
