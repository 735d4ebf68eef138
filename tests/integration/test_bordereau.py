"""The bordereau: a sealed (PAdES B-T) PDF in French naming every actor and time of the dossier."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from parapheur.extensions import db
from parapheur.models import Dossier, utcnow
from parapheur.pdfwriter import Document, text_width, wrap
from parapheur.services import bordereau, trail, validation

from .audit_data import TITLE, completed_dossier
from .factories import create_dossier


def pdftotext(data: bytes, tmp_path) -> str:
    source = tmp_path / "bordereau.pdf"
    source.write_bytes(data)
    return subprocess.run(["pdftotext", "-enc", "UTF-8", str(source), "-"], check=True, capture_output=True,
                          text=True).stdout


@pytest.fixture
def sealed(org, tmp_path):
    with org.app_context():
        dossier = db.session.get(Dossier, completed_dossier(org))
        data = bordereau.build(db.session, org, dossier)
        yield dossier, data


def test_the_bordereau_is_sealed_at_b_t_and_validates(sealed):
    dossier, data = sealed
    report = validation.validate_bytes(data)
    assert report.valid, report.to_dict()
    [seal] = report.signatures
    assert seal.signer == "Cachet Ville de Test"
    assert seal.level == "B-T" and seal.timestamp_time is not None
    assert seal.intact and seal.trusted and seal.coverage == "entire_file"


@pytest.mark.skipif(not shutil.which("pdfsig"), reason="poppler-utils not installed")
def test_pdfsig_finds_the_seal_intact(sealed, tmp_path):
    _, data = sealed
    path = tmp_path / "bordereau.pdf"
    path.write_bytes(data)
    output = subprocess.run(["pdfsig", str(path)], capture_output=True, text=True).stdout
    assert output.count("Signature #") == 1
    assert "Signature Validation: Signature is Valid." in output  # integrity only (DESIGN.md §4)


def test_the_text_names_every_actor_and_time(sealed, tmp_path):
    dossier, data = sealed
    text = pdftotext(data, tmp_path)
    entries = trail.timeline(db.session, dossier)
    assert entries and len({e.kind for e in entries}) >= 8
    for entry in entries:
        assert entry.when in text, (entry.kind, entry.when)
        assert entry.actor in text, entry.actor
        if entry.on_behalf_of:
            assert entry.on_behalf_of in text
    for name in ("Claire Dupont (rh.dupont)", "Julien Lefèvre (rh.lefevre)", "Sophie Bernard (drh.bernard)",
                 "Paul Martin (dgs.martin)"):
        assert name in text
    assert "pour le compte de Sophie Bernard (drh.bernard)" in text.replace("\n", " ")
    assert TITLE in text.replace("\n", " ")
    assert "Délibération du conseil (deliberation)" in text


def test_it_lists_steps_hashes_and_signature_verdicts(sealed, tmp_path):
    dossier, data = sealed
    text = pdftotext(data, tmp_path)
    for heading in ("Bordereau de signature", "Certificat d'achèvement du dossier", "Étapes du circuit",
                    "Étape 1 — Visa — terminée", "Étape 2 — Signature, signature simple — terminée",
                    "Étape 3 — Signature, signature avancée — terminée", "Vérification des signatures",
                    "Journal des événements", "Piste d'audit", "Cachet de l'organisation"):
        assert heading in text, heading
    for document in dossier.documents:
        assert document.current.sha256 in text
        for revision in document.revisions:
            if revision.reason in {"fields", "signature"}:
                assert revision.sha256 in text  # before/after hashes of each signature
    assert "toutes les signatures sont valides" in text
    assert text.count("B-T") >= 2 and "B-B" in text
    assert "Cachet Ville de Test" in text
    assert "intacte" in text and "Horodatage RFC 3161" in text


def test_a_dossier_in_progress_gets_a_bordereau_saying_so(org, tmp_path):
    with org.app_context():
        dossier = create_dossier("note-interne", title="Note en cours")
        data = bordereau.build(db.session, org, db.session.get(Dossier, dossier.id), now=utcnow())
        assert validation.validate_bytes(data).valid
        text = pdftotext(data, tmp_path)
        assert "n'atteste pas l'achèvement" in text and "en cours" in text


def test_the_writer_keeps_french_text_and_wraps_long_words(tmp_path):
    doc = Document("Éprouvette « œuvre » — 100 €")
    doc.heading("Été à Noël : l'œuvre coûte 100 € « très » chère…")
    doc.paragraph("a" * 64 + " " + "b" * 300)
    data = doc.render()
    text = pdftotext(data, tmp_path)
    assert "Été à Noël : l'œuvre coûte 100 € « très » chère…" in text
    assert all(text_width(line, 9.5) <= doc.text_width for line in wrap("b" * 300, doc.text_width, 9.5))
    assert text.replace("\n", "").count("b" * 300) == 1
