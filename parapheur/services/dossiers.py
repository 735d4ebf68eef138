"""Dossier use cases: create, launch, approve, sign, reject, recall, relaunch, change assignees.

Each function loads what it needs, asks the circuit engine, performs the signature when there is one,
persists the new snapshot, mirrors the assignees, writes the audit events, and returns the jobs to enqueue
once the caller has committed. Nothing here commits.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime

from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

import circuits
from circuits import (
    Approve,
    AssigneeKind,
    ChangeAssignees,
    Launch,
    Recall,
    Reject,
    Relaunch,
    Sign,
    Snapshot,
    TransitionRefused,
)

from .. import audit
from ..models import Delegation, Desk, Document, DocumentType, Dossier, DossierAssignee, Revision, User
from . import documents as document_service
from . import webhooks
from .errors import Conflict, Forbidden, Invalid, NotFound

ACTIONS = {"approve", "sign", "reject", "recall", "relaunch", "launch"}


@dataclass(frozen=True)
class Upload:
    """A file received from the browser or the API, already streamed to the blob store."""

    filename: str
    sha256: str
    size: int


@dataclass(frozen=True)
class ActionResult:
    dossier: Dossier
    #: (job name, args) to enqueue after commit: notifications, completion work
    jobs: tuple[tuple[str, tuple], ...] = field(default_factory=tuple)
    #: one line for the user ("Dossier signé.")
    message_fr: str = ""
    message_en: str = ""


def snapshot_of(dossier: Dossier) -> Snapshot:
    return circuits.snapshot_from_dict(json.loads(dossier.circuit))


def directory(session: Session, now: datetime, snapshot: Snapshot | None = None) -> circuits.Directory:
    """Desks and delegations as the engine sees them at ``now``; with ``snapshot``, only the desks its
    circuit names (the rest cannot matter, and loading every desk grew with the organisation)."""
    query = select(Desk)
    if snapshot is not None:
        query = query.where(Desk.code.in_({a.ref for s in snapshot.steps for a in s.assignees
                                           if a.kind == AssigneeKind.DESK}))
    desks = {d.code: frozenset(m.user.username for m in d.members) for d in session.scalars(query)}
    delegations = tuple(
        circuits.Delegation(d.delegator.username, d.delegate.username, d.start, d.end)
        for d in session.scalars(select(Delegation).where(Delegation.end > now))
    )
    return circuits.Directory(desks=desks, delegations=delegations)


def create(
    session: Session,
    initiator: User,
    title: str,
    type_code: str,
    documents: list[Upload],
    annexes: list[Upload],
    meta: audit.Meta,
    now: datetime,
) -> Dossier:
    """Create a draft dossier from uploaded PDFs (checked: readable, not encrypted) and annexes."""
    if not initiator.has_role("initiator"):
        raise Forbidden("Seuls les initiateurs créent des dossiers.", "Only initiators create dossiers.")
    title = (title or "").strip()
    if not title:
        raise Invalid("Le titre est obligatoire.", "A title is required.", code="title_required")
    if len(title) > 300:
        raise Invalid("Le titre est trop long (300 caractères au plus).", "Title too long (300 max).")
    doc_type = session.scalar(select(DocumentType).where(DocumentType.code == type_code, DocumentType.active))
    if doc_type is None:
        raise Invalid("Type de document inconnu.", "Unknown document type.", code="unknown_type")
    if not documents:
        raise Invalid("Ajoutez au moins un PDF à signer.", "Add at least one PDF to sign.", code="no_document")
    template = circuits.template_from_dict(json.loads(doc_type.template))
    snapshot = Snapshot.from_template(template, initiator.username,
                                      allow_assignee_change=doc_type.allow_assignee_change)
    dossier = Dossier(title=title, type=doc_type, initiator=initiator, status="draft",
                      circuit=json.dumps(circuits.snapshot_to_dict(snapshot)), created_at=now, updated_at=now)
    session.add(dossier)
    for position, upload in enumerate(documents):
        pages = document_service.check_pdf(upload)
        _add_document(dossier, upload, "document", position, pages, initiator, now)
    for position, upload in enumerate(annexes):
        _add_document(dossier, upload, "annex", position, None, initiator, now)
    session.flush()
    _sync_assignees(session, dossier, snapshot)
    record = audit.record
    record(session, "dossier.created", meta, dossier_id=dossier.id, title=title, type=type_code)
    for doc in dossier.documents:
        record(session, "document.uploaded", meta, dossier_id=dossier.id, revision_sha256=doc.current.sha256,
               filename=doc.filename, role=doc.kind, size=doc.current.size)
    return dossier


def _add_document(dossier, upload: Upload, kind, position, pages, user, now) -> None:
    document = Document(kind=kind, filename=_clean_filename(upload.filename), position=position, pages=pages,
                        content_type="application/pdf" if kind == "document" else _guess_type(upload.filename))
    document.revisions.append(Revision(number=1, sha256=upload.sha256, size=upload.size, reason="upload",
                                       created_by_id=user.id, created_at=now))
    dossier.documents.append(document)


def _clean_filename(name: str) -> str:
    name = (name or "document.pdf").replace("\\", "/").rsplit("/", 1)[-1].strip() or "document.pdf"
    return "".join(c for c in name if c.isprintable())[:200]


def _guess_type(name: str) -> str:
    import mimetypes

    return mimetypes.guess_type(name)[0] or "application/octet-stream"


def perform(
    session: Session,
    app: Flask,
    dossier: Dossier,
    user: User,
    action: str,
    meta: audit.Meta,
    now: datetime,
    *,
    expected_version: int | None = None,
    reason: str | None = None,
    pin: str | None = None,
    otp: str | None = None,
    otp_verified: bool = False,
    opened: dict | None = None,
) -> ActionResult:
    """Do ``action`` on a (locked) dossier as ``user``. Raises Conflict on a refused or stale action."""
    if action not in ACTIONS:
        raise Invalid(f"Action inconnue : {action}.", f"Unknown action: {action}.", code="unknown_action")
    if expected_version is not None and expected_version != dossier.version:
        raise Conflict(
            "Le dossier a changé depuis l'affichage de la page : rechargez-la avant d'agir.",
            "The dossier changed since you loaded it: reload before acting.", code="stale",
        )
    snapshot = snapshot_of(dossier)
    engine_action = {
        "launch": Launch(), "approve": Approve(), "sign": Sign(), "recall": Recall(), "relaunch": Relaunch(),
    }.get(action) or Reject(reason or "")
    try:
        outcome = circuits.apply(snapshot, engine_action, user.username, now, directory(session, now, snapshot))
    except TransitionRefused as refused:
        raise Conflict(refused.message_fr, refused.message_en, code=refused.code) from None

    acted_meta = audit.Meta(meta.actor, outcome.acted_for, meta.ip, meta.user_agent)
    signed: list[tuple[Document, Revision, Revision]] = []
    if action == "launch":
        document_service.prepare_signature_fields(session, app, dossier, snapshot, user, now)
    if action == "relaunch":
        document_service.restart_documents(dossier, user, now)
        document_service.prepare_signature_fields(session, app, dossier, snapshot, user, now)
    if action == "sign":
        step = snapshot.steps[snapshot.active_step.index] if snapshot.active_step else None
        from . import signatures

        signed = signatures.sign_dossier(session, app, dossier, step, user, outcome.acted_for, pin, otp, now,
                                         otp_verified=otp_verified, opened=opened)
    return _persist(session, dossier, snapshot, outcome, action, acted_meta, now, signed, reason)


def change_assignees(session: Session, dossier: Dossier, user: User, step_index: int, assignees: list[str],
                     meta: audit.Meta, now: datetime, expected_version: int | None = None) -> ActionResult:
    """Replace a step's assignees before launch, where the document type allows it."""
    if expected_version is not None and expected_version != dossier.version:
        raise Conflict("Le dossier a changé : rechargez la page.", "The dossier changed: reload.", code="stale")
    try:
        parsed = tuple(circuits.Assignee.parse(a) for a in assignees)
    except ValueError as error:
        raise Invalid(str(error), str(error), code="invalid_assignees") from None
    _check_assignees_exist(session, parsed)
    snapshot = snapshot_of(dossier)
    try:
        outcome = circuits.apply(snapshot, ChangeAssignees(step_index, parsed), user.username, now,
                                 directory(session, now, snapshot))
    except TransitionRefused as refused:
        raise Conflict(refused.message_fr, refused.message_en, code=refused.code) from None
    return _persist(session, dossier, snapshot, outcome, "change_assignees", meta, now, [], None)


def _check_assignees_exist(session: Session, assignees) -> None:
    for assignee in assignees:
        model, column = (User, User.username) if assignee.kind == AssigneeKind.USER else (Desk, Desk.code)
        if session.scalar(select(model).where(column == assignee.ref)) is None:
            raise Invalid(f"« {assignee} » n'existe pas.", f"'{assignee}' does not exist.", code="unknown_assignee")


def _persist(session, dossier, before, outcome, action, meta, now, signed, reason) -> ActionResult:
    after = outcome.snapshot
    dossier.circuit = json.dumps(circuits.snapshot_to_dict(after))
    dossier.status = str(after.status)
    active = after.active_step
    dossier.current_step = active.index if active else None
    dossier.due_at = circuits.deadline_at(active) if active else None
    dossier.reminded_at = None
    dossier.updated_at = now
    if after.status == circuits.DossierStatus.COMPLETED:
        dossier.completed_at = now
    _sync_assignees(session, dossier, after)
    try:
        session.flush()
    except StaleDataError:
        raise Conflict("Le dossier vient d'être modifié par quelqu'un d'autre : rechargez la page.",
                       "Someone else just changed the dossier: reload the page.", code="stale") from None
    jobs: list[tuple[str, tuple]] = []
    for event in outcome.events:
        jobs.extend(_record_event(session, dossier, event, meta, signed))
    jobs.extend(webhooks.jobs_for(session, dossier, outcome.events, now))  # same transaction: none lost
    return ActionResult(dossier, tuple(jobs), *_MESSAGES.get(action, ("", "")))


_MESSAGES = {
    "launch": ("Dossier lancé dans son circuit.", "Dossier launched."),
    "approve": ("Visa enregistré.", "Approval recorded."),
    "sign": ("Document signé.", "Document signed."),
    "reject": ("Dossier rejeté : l'initiateur est prévenu.", "Dossier rejected: the initiator is notified."),
    "recall": ("Dossier retiré du circuit.", "Dossier recalled."),
    "relaunch": ("Dossier relancé.", "Dossier relaunched."),
    "change_assignees": ("Destinataires modifiés.", "Assignees changed."),
}


def _record_event(session, dossier, event, meta, signed) -> list[tuple[str, tuple]]:
    """Write one engine event to the audit trail; return the jobs it calls for."""
    rec = audit.record
    match event:
        case circuits.DossierLaunched():
            rec(session, "dossier.launched", meta, dossier_id=dossier.id)
        case circuits.StepActivated(index=index):
            rec(session, "step.activated", audit.Meta(), dossier_id=dossier.id, step=index + 1,
                assignees=[str(a) for a in event.assignees])
            return [("notify_step_activated", (dossier.id, index, dossier.version))]
        case circuits.StepActed(index=index, action=act):
            if str(act) == "sign":
                for document, old, new in signed:
                    rec(session, "document.signed", meta, dossier_id=dossier.id, revision_sha256=new.sha256,
                        step=index + 1, document=document.filename, level=_level(dossier, index),
                        sha256_before=old.sha256, sha256_after=new.sha256, revision=new.number)
            else:
                rec(session, "step.approved", meta, dossier_id=dossier.id, step=index + 1,
                    slot=str(event.satisfies))
            if event.on_behalf_of:
                rec(session, "delegation.used", meta, dossier_id=dossier.id, step=index + 1,
                    delegator=event.on_behalf_of)
        case circuits.StepCompleted(index=index):
            rec(session, "step.completed", audit.Meta(), dossier_id=dossier.id, step=index + 1)
        case circuits.DossierCompleted():
            rec(session, "dossier.completed", audit.Meta(), dossier_id=dossier.id)
            return [("complete_dossier", (dossier.id,))]
        case circuits.DossierRejected(index=index, reason=reason):
            rec(session, "dossier.rejected", meta, dossier_id=dossier.id, step=index + 1, reason=reason)
            return [("notify_rejected", (dossier.id,))]
        case circuits.DossierRecalled(index=index):
            rec(session, "dossier.recalled", meta, dossier_id=dossier.id, step=index + 1)
        case circuits.DossierRelaunched(previous=previous):
            rec(session, "dossier.relaunched", meta, dossier_id=dossier.id, previous=str(previous))
        case circuits.AssigneesChanged(index=index, before=before_, after=after_):
            rec(session, "dossier.assignees_changed", meta, dossier_id=dossier.id, step=index + 1,
                before=[str(a) for a in before_], after=[str(a) for a in after_])
    return []


def _level(dossier: Dossier, index: int) -> str | None:
    step = snapshot_of(dossier).steps[index]
    return str(step.level) if step.level else None


def _sync_assignees(session: Session, dossier: Dossier, snapshot: Snapshot) -> None:
    """Mirror the snapshot's assignees into rows that inbox and access queries can index."""
    users = {u.username: u.id for u in session.scalars(select(User).where(User.username.in_(
        [a.ref for s in snapshot.steps for a in s.assignees if a.kind == AssigneeKind.USER])))}
    desks = {d.code: d.id for d in session.scalars(select(Desk).where(Desk.code.in_(
        [a.ref for s in snapshot.steps for a in s.assignees if a.kind == AssigneeKind.DESK])))}
    active_index = snapshot.active_step.index if snapshot.active_step else None
    wanted = set()
    for step in snapshot.steps:
        for assignee in step.assignees:
            is_user = assignee.kind == AssigneeKind.USER
            wanted.add((step.index, str(step.kind), users.get(assignee.ref) if is_user else None,
                        None if is_user else desks.get(assignee.ref), step.index == active_index))
    existing = {(a.step_index, a.kind, a.user_id, a.desk_id, a.active): a for a in dossier.assignees}
    for key, row in existing.items():
        if key not in wanted:
            dossier.assignees.remove(row)
    for key in wanted - set(existing):
        index, kind, user_id, desk_id, active = key
        dossier.assignees.append(DossierAssignee(step_index=index, kind=kind, user_id=user_id, desk_id=desk_id,
                                                 active=active))


def get_document(dossier: Dossier, document_id: int) -> Document:
    for document in dossier.documents:
        if document.id == document_id:
            return document
    raise NotFound("Document introuvable.", "Document not found.")
