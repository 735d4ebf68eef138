"""What the dossier pages show: read-only queries shaped for the templates (no Flask here)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from flask import Flask
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

import circuits

from ..models import AuditEvent, Desk, Document, DocumentType, Dossier, User
from . import access
from .dossiers import directory, snapshot_of
from .paging import dossier_page
from .signatures import credential_for

PER_PAGE = 20
STATUSES = ("draft", "in_progress", "completed", "rejected", "recalled")


@dataclass(frozen=True)
class Listing:
    dossiers: tuple[Dossier, ...]
    page: int
    pages: int
    total: int


def types(session: Session) -> list[DocumentType]:
    return list(session.scalars(select(DocumentType).where(DocumentType.active).order_by(DocumentType.name)))


def mine(session: Session, user: User, *, status: str | None, type_code: str | None, query: str,
         number: int) -> Listing:
    conditions = [Dossier.initiator_id == user.id]
    if status in STATUSES:
        conditions.append(Dossier.status == status)
    if type_code:
        conditions.append(Dossier.type.has(DocumentType.code == type_code))
    if query.strip():
        conditions.append(func.lower(Dossier.title).contains(query.strip().lower(), autoescape=True))
    rows, number, pages, total = dossier_page(session, conditions, (Dossier.updated_at.desc(), Dossier.id.desc()),
                                              number, PER_PAGE)
    return Listing(tuple(rows), number, pages, total)


@dataclass(frozen=True)
class ActView:
    actor: str
    on_behalf_of: str | None
    action: str
    at: datetime


@dataclass(frozen=True)
class StepView:
    index: int
    kind: str
    level: str | None
    label: str
    status: str
    assignees: tuple[str, ...]
    assignee_refs: tuple[str, ...]
    quorum: str
    acts: tuple[ActView, ...]
    deadline: datetime | None


@dataclass(frozen=True)
class Page:
    dossier: Dossier
    steps: tuple[StepView, ...]
    documents: tuple[Document, ...]
    annexes: tuple[Document, ...]
    can: frozenset[str]
    on_behalf_of: str | None
    sign_level: str | None
    has_credential: bool
    totp_ready: bool
    reject_reason: str | None
    rejected_by: str | None
    events: tuple[AuditEvent, ...]
    is_initiator: bool


def _names(session: Session, snapshot) -> dict[str, str]:
    refs = {a.ref for s in snapshot.steps for a in s.assignees if a.kind == circuits.AssigneeKind.USER}
    refs |= {act.actor for s in snapshot.steps for act in s.acts}
    refs |= {act.on_behalf_of for s in snapshot.steps for act in s.acts if act.on_behalf_of}
    if snapshot.rejected_by:
        refs.add(snapshot.rejected_by)
    users = session.execute(select(User.username, User.name).where(User.username.in_(refs))).all()
    desks = {a.ref for s in snapshot.steps for a in s.assignees if a.kind == circuits.AssigneeKind.DESK}
    desk_names = session.execute(select(Desk.code, Desk.name).where(Desk.code.in_(desks))).all()
    return {**{u: n for u, n in users}, **{f"desk:{c}": n for c, n in desk_names}}


def page(session: Session, app: Flask, user: User, dossier_id: int, now: datetime) -> Page:
    dossier = access.get_for(session, user, dossier_id, now)
    snapshot = snapshot_of(dossier)
    names = _names(session, snapshot)
    directory_now = directory(session, now, snapshot)
    steps = []
    for step in snapshot.steps:
        label = step.name or ("Visa" if str(step.kind) == "visa" else f"Signature ({step.level})")
        assignees = tuple(names.get(a.ref if a.kind == circuits.AssigneeKind.USER else f"desk:{a.ref}", a.ref)
                          + (" (bureau)" if a.kind == circuits.AssigneeKind.DESK else "") for a in step.assignees)
        acts = tuple(ActView(names.get(a.actor, a.actor), names.get(a.on_behalf_of, a.on_behalf_of)
                             if a.on_behalf_of else None, str(a.action), a.at) for a in step.acts)
        steps.append(StepView(step.index, str(step.kind), str(step.level) if step.level else None, label,
                              str(step.status), assignees, tuple(str(a) for a in step.assignees),
                              str(step.quorum), acts, circuits.deadline_at(step)))
    is_initiator = dossier.initiator_id == user.id
    can: set[str] = set()
    status = snapshot.status
    active = snapshot.active_step
    if is_initiator and status == circuits.DossierStatus.DRAFT:
        can.add("launch")
        if snapshot.allow_assignee_change:
            can.add("change_assignees")
    if is_initiator and status in {circuits.DossierStatus.REJECTED, circuits.DossierStatus.RECALLED,
                                   circuits.DossierStatus.DRAFT}:
        can.add("replace")
    if is_initiator and status in {circuits.DossierStatus.REJECTED, circuits.DossierStatus.RECALLED}:
        can.add("relaunch")
    if is_initiator and status == circuits.DossierStatus.IN_PROGRESS and active and not active.acts:
        can.add("recall")
    if circuits.can_act(snapshot, user.username, now, directory_now):
        can.add("sign" if str(active.kind) == "signature" else "approve")
    if circuits.can_reject(snapshot, user.username, now, directory_now):
        can.add("reject")
    sign_level = str(active.level) if active is not None and active.level else None
    on_behalf = circuits.acting_for(snapshot, user.username, now, directory_now)
    events = session.scalars(select(AuditEvent).where(AuditEvent.dossier_id == dossier.id,
                                                      or_(AuditEvent.kind.notlike("document.viewed"),
                                                          AuditEvent.actor == user.username))
                             .order_by(AuditEvent.dossier_seq)).all()
    return Page(
        dossier=dossier,
        steps=tuple(steps),
        documents=tuple(d for d in dossier.documents if d.kind == "document"),
        annexes=tuple(d for d in dossier.documents if d.kind == "annex"),
        can=frozenset(can),
        on_behalf_of=names.get(on_behalf, on_behalf) if on_behalf else None,
        sign_level=sign_level,
        has_credential=sign_level == "simple" or credential_for(session, user, sign_level or "advanced") is not None,
        totp_ready=bool(user.totp_secret and user.totp_confirmed),
        reject_reason=snapshot.reject_reason,
        rejected_by=names.get(snapshot.rejected_by, snapshot.rejected_by) if snapshot.rejected_by else None,
        events=tuple(events),
        is_initiator=is_initiator,
    )
