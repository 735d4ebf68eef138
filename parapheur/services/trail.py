"""A dossier's audit trail as people read it: the events in order with French labels and Paris times, the
state of its chain, the validation report of each document; and the access events (viewed, downloaded)
that the pages and the API record.

Used by the auditor's pages, the bordereau and the evidence bundle, so that all three say the same thing.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from signing.validation import Report

from .. import audit
from ..models import AuditEvent, ChainTimestamp, Desk, Document, Dossier, Revision, User
from ..storage import store

PARIS = ZoneInfo("Europe/Paris")


def N_(text: str) -> str:
    """Mark a French label for the catalog without translating it here: the bordereau stays French,
    the pages translate the label when they show it (``_(label)``)."""
    return text


KIND_LABELS = {
    "dossier.created": N_("Dossier créé"),
    "document.uploaded": N_("Document déposé"),
    "dossier.launched": N_("Circuit lancé"),
    "step.activated": N_("Étape ouverte"),
    "step.approved": N_("Visa donné"),
    "document.signed": N_("Document signé"),
    "step.completed": N_("Étape terminée"),
    "dossier.completed": N_("Dossier terminé"),
    "dossier.rejected": N_("Dossier rejeté"),
    "dossier.recalled": N_("Dossier retiré du circuit"),
    "dossier.relaunched": N_("Dossier relancé"),
    "dossier.assignees_changed": N_("Destinataires modifiés"),
    "delegation.used": N_("Acte sur délégation"),
    "delegation.set": N_("Délégation donnée"),
    "document.timestamped": N_("Document horodaté (B-LTA)"),
    "dossier.chain_timestamped": N_("Piste d'audit horodatée"),
    "document.viewed": N_("Document consulté"),
    "document.downloaded": N_("Document téléchargé"),
    "bordereau.downloaded": N_("Bordereau téléchargé"),
    "evidence.downloaded": N_("Dossier de preuve téléchargé"),
    "audit.viewed": N_("Piste d'audit consultée"),
    "login.success": N_("Connexion"),
    "login.failure": N_("Échec de connexion"),
    "login.throttled": N_("Connexion bloquée (trop d'essais)"),
    "totp.enrolled": N_("Double authentification activée"),
    "api.token_used": N_("Jeton d'API utilisé"),
}
LEVELS = {"simple": N_("simple"), "advanced": N_("avancée"), "qualified": N_("qualifiée")}
STEP_KINDS = {"visa": N_("Visa"), "signature": N_("Signature")}
DOSSIER_STATUSES = {"draft": N_("brouillon"), "in_progress": N_("en cours"), "completed": N_("terminé"),
                    "rejected": N_("rejeté"), "recalled": N_("retiré du circuit")}
STEP_STATUSES = {"pending": N_("à venir"), "active": N_("en cours"), "done": N_("terminée"), "rejected": N_("rejetée"),
                 "skipped": N_("sautée")}
MODIFICATIONS = {"NONE": N_("aucune"), "LTA_UPDATES": N_("mises à jour d'archivage (LTA)"),
                 "FORM_FILLING": N_("remplissage de formulaire (signatures suivantes)"), "ANNOTATIONS": N_("annotations"),
                 "OTHER": N_("autres modifications")}
REVOCATION = {"good": N_("non révoqué"), "revoked": N_("RÉVOQUÉ"), "unknown": N_("inconnu"), "not_checked": N_("non vérifié")}
COVERAGE = {"entire_file": N_("tout le fichier"), "entire_revision": N_("sa révision (ajouts ensuite)"),
            "partial": N_("partielle")}
#: events any participant causes just by reading; their kinds
ACCESS_KINDS = ("document.viewed", "document.downloaded", "bordereau.downloaded", "evidence.downloaded",
                "audit.viewed")


def paris(moment: datetime | None, seconds: bool = True) -> str:
    """``dd/mm/yyyy HH:MM:SS`` in Europe/Paris time ("—" for nothing)."""
    if moment is None:
        return "—"
    return moment.astimezone(PARIS).strftime("%d/%m/%Y %H:%M:%S" if seconds else "%d/%m/%Y %H:%M")


def label(kind: str) -> str:
    if kind in KIND_LABELS:
        return KIND_LABELS[kind]
    if kind.startswith("admin."):
        return f"Administration : {kind.split('.', 1)[1].replace('_', ' ')}"
    return kind


class People:
    """Display names of usernames and desk codes (« Paul Martin (dgs.martin) »), loaded once."""

    def __init__(self, session: Session, usernames: Iterable[str | None] = ()):
        self.session = session
        self.names: dict[str, str] = {}
        self.desks: dict[str, str] | None = None
        self.load(usernames)

    def load(self, usernames: Iterable[str | None]) -> None:
        wanted = {u for u in usernames if u and u not in self.names}
        if wanted:
            for user in self.session.scalars(select(User).where(User.username.in_(wanted))):
                self.names[user.username] = user.name

    def __call__(self, username: str | None) -> str:
        if not username:
            return "—"
        if username in {"system", "cli"}:
            return {"system": "Parapheur (automatique)", "cli": "Parapheur (ligne de commande)"}[username]
        if username not in self.names:
            self.load([username])
        name = self.names.get(username)
        return f"{name} ({username})" if name else username

    def assignee(self, text: str) -> str:
        kind, _, ref = str(text).partition(":")
        if kind == "desk":
            if self.desks is None:
                self.desks = {d.code: d.name for d in self.session.scalars(select(Desk))}
            return f"bureau {self.desks.get(ref, ref)} ({ref})"
        return self(ref)


@dataclass(frozen=True)
class Entry:
    """One event of a dossier's trail, ready to show."""

    seq: int
    dossier_seq: int | None
    at: datetime
    when: str
    kind: str
    label: str
    actor: str
    on_behalf_of: str
    ip: str
    user_agent: str
    details: str
    revision_sha256: str | None
    data: dict


def describe(event: AuditEvent, data: dict, people: People) -> str:
    """What an event says beyond its kind, in a line."""
    parts = []
    if "step" in data:
        parts.append(f"étape {data['step']}")
    if data.get("document") or data.get("filename"):
        parts.append(str(data.get("document") or data.get("filename")))
    if data.get("level"):
        parts.append(f"niveau {LEVELS.get(data['level'], data['level'])}")
    if data.get("reason"):
        parts.append(f"motif : {data['reason']}")
    if data.get("delegator"):
        parts.append(f"pour {people(data['delegator'])}")
    if data.get("assignees"):
        parts.append("destinataires : " + ", ".join(people.assignee(a) for a in data["assignees"]))
    if "after" in data and isinstance(data["after"], list):
        parts.append("désormais : " + ", ".join(people.assignee(a) for a in data["after"]))
    if data.get("title"):
        parts.append(f"« {data['title']} »")
    if data.get("head_seq"):
        parts.append(f"jusqu'à l'événement n° {data['head_seq']}")
    return " ; ".join(parts)


def events_of(session: Session, dossier_id: int) -> list[AuditEvent]:
    return list(session.scalars(select(AuditEvent).where(AuditEvent.dossier_id == dossier_id)
                                .order_by(AuditEvent.dossier_seq)))


def timeline(session: Session, dossier: Dossier, events: list[AuditEvent] | None = None) -> list[Entry]:
    """The dossier's events, oldest first."""
    events = events if events is not None else events_of(session, dossier.id)
    people = People(session, [u for e in events for u in (e.actor, e.on_behalf_of)])
    entries = []
    for event in events:
        data = json.loads(event.data or "{}")
        entries.append(Entry(event.seq, event.dossier_seq, event.at, paris(event.at), event.kind,
                             label(event.kind), people(event.actor) if event.actor else "Parapheur (automatique)",
                             people(event.on_behalf_of) if event.on_behalf_of else "", event.ip or "",
                             event.user_agent or "", describe(event, data, people), event.revision_sha256, data))
    return entries


@dataclass(frozen=True)
class ChainState:
    """What the auditor's page and the bordereau say about a dossier's chain."""

    verification: audit.Verification
    head_seq: int
    head_hash: str
    timestamps: tuple[ChainTimestamp, ...]

    @property
    def ok(self) -> bool:
        return self.verification.ok


def chain_state(session: Session, dossier: Dossier) -> ChainState:
    from ..models import AuditHead

    head = session.get(AuditHead, f"dossier:{dossier.id}")
    stamps = tuple(session.scalars(select(ChainTimestamp).where(ChainTimestamp.dossier_id == dossier.id)
                                   .order_by(ChainTimestamp.id)))
    return ChainState(audit.verify(session, dossier.id), head.seq if head else 0,
                      head.hash if head else audit.GENESIS, stamps)


@dataclass(frozen=True)
class DocumentCheck:
    """A document's current revision and our validator's verdict on it."""

    document: Document
    revision: Revision
    report: Report


def check_documents(dossier: Dossier) -> list[DocumentCheck]:
    """Validate the current revision of every document (annexes are not signed)."""
    from . import validation

    checks = []
    for document in dossier.documents:
        if document.kind != "document":
            continue
        revision = document.current
        checks.append(DocumentCheck(document, revision, validation.validate_bytes(store().get(revision.sha256))))
    return checks


def record_access(session: Session, meta: audit.Meta, dossier: Dossier, kind: str, *,
                  document: Document | None = None, revision: Revision | None = None, **data) -> AuditEvent:
    """Record that someone viewed or downloaded part of a dossier (``kind`` is one of ACCESS_KINDS).

    Call it once the response is ready, then commit: the append locks the chain head until the commit.
    """
    if kind not in ACCESS_KINDS:
        raise ValueError(f"not an access event: {kind}")
    if document is not None:
        data.setdefault("document", document.filename)
        revision = revision or document.current
    if revision is not None:
        data.setdefault("revision", revision.number)
    return audit.record(session, kind, meta, dossier_id=dossier.id,
                        revision_sha256=revision.sha256 if revision is not None else None, **data)


@dataclass(frozen=True)
class Overview:
    """Everything the auditor's page of a dossier shows."""

    entries: list[Entry]
    chain: ChainState
    checks: list[DocumentCheck]
    steps: list[dict]


def overview(session: Session, dossier: Dossier) -> Overview:
    from .dossiers import snapshot_of

    people = People(session)
    steps = [{"number": s.index + 1, "kind": STEP_KINDS.get(str(s.kind), str(s.kind)),
              "level": LEVELS.get(str(s.level), "") if s.level else "",
              "status": str(s.status), "status_label": STEP_STATUSES.get(str(s.status), str(s.status)),
              "assignees": ", ".join(people.assignee(a) for a in s.assignees)}
             for s in snapshot_of(dossier).steps]
    return Overview(timeline(session, dossier), chain_state(session, dossier), check_documents(dossier), steps)
