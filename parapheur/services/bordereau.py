"""The bordereau (certificate of completion): a PDF in French that lists the dossier, every step with its
actors and revision hashes, the validation summary of every signature, every event of the trail and the
state of the chain; sealed with the organisation's seal at PAdES B-T (seal + the instance's timestamper).

It is composed on request (it states the dossier as it is at that moment, and says so).
"""

from __future__ import annotations

from datetime import datetime

from flask import Flask
from sqlalchemy.orm import Session

from signing.fields import FieldSpec, prepare_fields
from signing.levels import SignatureLevel
from signing.signer import sign
from signing.stamp import StampText

from ..models import Dossier, utcnow
from ..pdfwriter import Column, Document
from . import trail
from .credentials import instance_pki, timestamper
from .dossiers import snapshot_of
from .errors import Unavailable

SEAL_FIELD = "Cachet-bordereau"
YES_NO = {True: "oui", False: "non"}


def filename(dossier: Dossier) -> str:
    return f"bordereau-dossier-{dossier.id}.pdf"


def build(session: Session, app: Flask, dossier: Dossier, *, now: datetime | None = None,
          checks: list[trail.DocumentCheck] | None = None) -> bytes:
    """The sealed bordereau of ``dossier``. ``checks``: validation reports already made (evidence bundle)."""
    now = now or utcnow()
    checks = checks if checks is not None else trail.check_documents(dossier)
    pdf, page, box = compose(session, app, dossier, now, checks)
    prepared = prepare_fields(pdf, [FieldSpec(SEAL_FIELD, page, box)])
    org = app.config["ORG_NAME"]
    from signing.errors import SigningError

    try:
        return sign(prepared, signer=instance_pki(app).seal_signer(), level=SignatureLevel.ADVANCED,
                    field_name=SEAL_FIELD, stamp=StampText(f"Cachet {org}", f"bordereau du dossier n° {dossier.id}",
                                                          now.astimezone(trail.PARIS)),
                    certify=True, timestamper=timestamper(app),
                    reason=f"Bordereau du dossier n° {dossier.id}", location=org)
    except SigningError as error:
        raise Unavailable(f"Bordereau impossible à sceller : {error.message_fr}",
                          f"The bordereau could not be sealed: {error.message_en}", code=error.code) from None


def compose(session: Session, app: Flask, dossier: Dossier, now: datetime,
            checks: list[trail.DocumentCheck]) -> tuple[bytes, int, tuple[float, float, float, float]]:
    """The unsealed PDF, and where its seal goes (page index, box)."""
    events = trail.events_of(session, dossier.id)
    entries = trail.timeline(session, dossier, events)
    people = trail.People(session, [dossier.initiator.username])
    org = app.config["ORG_NAME"]
    completed = dossier.status == "completed"
    doc = Document(f"Bordereau du dossier n° {dossier.id} — {dossier.title}", author=org,
                   subject="Certificat d'achèvement" if completed else "État du dossier")
    doc.footer = lambda page, total: (f"{org} — bordereau du dossier n° {dossier.id}, établi le "
                                      f"{trail.paris(now)} (heure de Paris) — page {page}/{total}")

    doc.paragraph(org, 10, bold=True, gray=0.3, after=0)
    doc.heading("Bordereau de signature")
    doc.paragraph("Certificat d'achèvement du dossier" if completed else
                  f"État du dossier à la date d'établissement : {trail.DOSSIER_STATUSES.get(dossier.status)}. "
                  "Ce bordereau n'atteste pas l'achèvement du circuit.", 10.5, bold=not completed)

    doc.heading("Dossier", 2)
    doc.fields([
        ("Titre", dossier.title),
        ("Numéro", str(dossier.id)),
        ("Type de document", f"{dossier.type.name} ({dossier.type.code}), niveau minimal "
                             f"{trail.LEVELS.get(dossier.type.min_level, dossier.type.min_level)}"),
        ("Initiateur", people(dossier.initiator.username)),
        ("Créé le", trail.paris(dossier.created_at)),
        ("Lancé le", trail.paris(_first(entries, "dossier.launched"))),
        ("Terminé le", trail.paris(dossier.completed_at) if dossier.completed_at else "—"),
        ("Statut", trail.DOSSIER_STATUSES.get(dossier.status, dossier.status)),
        ("Établi le", f"{trail.paris(now)} (heure de Paris) ; {now.strftime('%Y-%m-%d %H:%M:%S')} UTC"),
    ])
    doc.paragraph("Les heures sont celles de Paris (Europe/Paris), enregistrées en temps universel (UTC).", 8,
                  gray=0.35)

    doc.heading("Documents", 2)
    for document in dossier.documents:
        revision = document.current
        role = "à signer" if document.kind == "document" else "annexe"
        doc.fields([(f"{document.filename}", f"{role}, révision n° {revision.number}, {revision.size} octets"),
                    ("SHA-256", revision.sha256)])

    _steps(doc, session, dossier, entries)
    _signatures(doc, checks)

    doc.heading("Journal des événements", 2)
    doc.table([Column("N°", 22), Column("Date et heure", 82), Column("Événement", 110),
               Column("Acteur", 120), Column("Pour le compte de", 95), Column("Adresse IP", 66)],
              [[str(e.dossier_seq), e.when, f"{e.label}" + (f" ({e.details})" if e.details else ""), e.actor,
                e.on_behalf_of, e.ip] for e in entries])

    _chain(doc, session, dossier)

    doc.heading("Cachet de l'organisation", 2)
    doc.paragraph(f"Ce bordereau est scellé par le cachet électronique de {org} (PAdES B-T, horodaté). "
                  "Toute modification ultérieure du fichier invalide ce cachet.", 8.5)
    page, box = doc.reserve(200, 62)
    return doc.render(now), page, box


def _first(entries: list[trail.Entry], kind: str) -> datetime | None:
    return next((e.at for e in entries if e.kind == kind), None)


def _steps(doc: Document, session: Session, dossier: Dossier, entries: list[trail.Entry]) -> None:
    snapshot = snapshot_of(dossier)
    people = trail.People(session)
    doc.heading("Étapes du circuit", 2)
    for step in snapshot.steps:
        number = step.index + 1
        kind = trail.STEP_KINDS.get(str(step.kind), str(step.kind))
        level = f", signature {trail.LEVELS.get(str(step.level), step.level)}" if step.level else ""
        doc.heading(f"Étape {number} — {kind}{level} — {trail.STEP_STATUSES.get(str(step.status), step.status)}",
                    3)
        quorum = "tous" if str(step.quorum) == "all" else str(step.quorum)
        pairs = [("Destinataires", ", ".join(people.assignee(a) for a in step.assignees)
                  + f" (quorum : {quorum})")]
        for entry in (e for e in entries if e.data.get("step") == number):
            if entry.kind == "step.activated":
                pairs.append(("Ouverte le", entry.when))
            elif entry.kind == "step.approved":
                pairs.append(("Visa", _act(entry)))
            elif entry.kind == "document.signed":
                level_name = trail.LEVELS.get(entry.data.get("level"), entry.data.get("level") or "")
                pairs.append(("Signature", f"{_act(entry)} ; niveau {level_name} ; {entry.data.get('document')}"))
                pairs.append(("  empreinte avant", entry.data.get("sha256_before", "—")))
                pairs.append(("  empreinte après", entry.data.get("sha256_after", "—")))
            elif entry.kind == "dossier.rejected":
                pairs.append(("Rejet", f"{_act(entry)} ; motif : {entry.data.get('reason') or '—'}"))
            elif entry.kind == "dossier.recalled":
                pairs.append(("Retrait", _act(entry)))
            elif entry.kind == "step.completed":
                pairs.append(("Terminée le", entry.when))
        doc.fields(pairs, label_width=110, size=8.5, indent=8)


def _act(entry: trail.Entry) -> str:
    who = entry.actor + (f", pour le compte de {entry.on_behalf_of}" if entry.on_behalf_of else "")
    where = f", adresse IP {entry.ip}" if entry.ip else ""
    return f"{who}, le {entry.when}{where}"


def _signatures(doc: Document, checks: list[trail.DocumentCheck]) -> None:
    doc.heading("Vérification des signatures", 2)
    doc.paragraph("Résultat du validateur de Parapheur (pyHanko, racines de confiance de l'instance) au moment "
                  "de l'établissement du bordereau.", 8, gray=0.35)
    for check in checks:
        report = check.report
        verdict = "toutes les signatures sont valides" if report.valid else "NON VALIDE"
        doc.heading(f"{check.document.filename} — {verdict}", 3)
        doc.paragraph(f"Révision n° {check.revision.number}, SHA-256 {check.revision.sha256}", 8)
        if report.error:
            doc.paragraph(f"Erreur : {report.error}", 8.5, bold=True)
        if not report.signatures:
            doc.paragraph("Aucune signature.", 8.5)
            continue
        doc.table([Column("Champ", 70), Column("Signataire", 92), Column("Niveau", 38), Column("Valide", 34),
                   Column("Intègre", 36), Column("Confiance", 44), Column("Signé le", 90), Column("Horodaté le", 91)],
                  [[s.field, s.signer + (" (horodatage)" if s.kind != "signature" else ""), s.level,
                    YES_NO[s.valid], YES_NO[s.intact], YES_NO[s.trusted], trail.paris(s.signing_time),
                    trail.paris(s.timestamp_time)] for s in report.signatures])
        for sig in report.signatures:
            details = [f"couverture : {trail.COVERAGE.get(sig.coverage, sig.coverage)}",
                       "modifications ultérieures : "
                       + trail.MODIFICATIONS.get(sig.modifications or "", sig.modifications or "inconnues"),
                       f"révocation : {trail.REVOCATION.get(sig.revocation, sig.revocation)}"]
            doc.paragraph(f"{sig.field} — " + " ; ".join(details), 7.5, gray=0.3, indent=8, after=0)
            for reason in sig.reasons:
                doc.paragraph(f"• {reason}", 7.5, indent=16, after=0)
        doc.space(4)


def _chain(doc: Document, session: Session, dossier: Dossier) -> None:
    state = trail.chain_state(session, dossier)
    doc.heading("Piste d'audit", 2)
    status = "intacte" if state.ok else f"ROMPUE — {state.verification.first.problem}"
    pairs = [("Événements", str(state.verification.events)), ("Chaîne du dossier", status),
             ("Dernier événement", f"n° {state.head_seq}"), ("Empreinte de tête", state.head_hash)]
    for stamp in state.timestamps:
        pairs.append(("Horodatage RFC 3161", f"le {trail.paris(stamp.at)}, sur l'événement n° {stamp.dossier_seq}"))
        pairs.append(("  empreinte horodatée", stamp.head_hash))
    if not state.timestamps:
        pairs.append(("Horodatage RFC 3161", "aucun (la chaîne est horodatée quand le dossier est terminé)"))
    doc.fields(pairs)
    doc.paragraph("Chaque événement contient l'empreinte SHA-256 du précédent : la piste complète, avec la méthode "
                  "de recalcul, figure dans le dossier de preuve (events.json).", 8, gray=0.35)

