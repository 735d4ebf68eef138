"""Hash-chained, append-only audit events.

Every event stores the hash of the previous event of the instance (``prev_hash``) and of the previous
event of its dossier (``dossier_prev_hash``); its own hash covers both and its canonical content. Altering,
deleting, inserting or reordering any event therefore breaks a link that ``verify`` names. Appends lock the
instance head row, so two transactions cannot fork the chain; the lock is held until the action commits,
which is why callers append their audit event last.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from .models import AuditEvent, AuditHead, utcnow

GENESIS = "0" * 64
INSTANCE = "instance"


@dataclass(frozen=True)
class Meta:
    """Who and where an action came from; the web and API layers build it from the request."""

    actor: str | None = None
    on_behalf_of: str | None = None
    ip: str | None = None
    user_agent: str | None = None


def canonical(event: AuditEvent) -> bytes:
    """The bytes an event's hash covers: every recorded field but the hashes themselves."""
    body = {
        "seq": event.seq,
        "at": event.at.isoformat(timespec="microseconds"),
        "kind": event.kind,
        "actor": event.actor,
        "on_behalf_of": event.on_behalf_of,
        "ip": event.ip,
        "user_agent": event.user_agent,
        "dossier_id": event.dossier_id,
        "dossier_seq": event.dossier_seq,
        "revision_sha256": event.revision_sha256,
        "data": json.loads(event.data or "{}"),
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def event_hash(event: AuditEvent) -> str:
    digest = hashlib.sha256()
    digest.update(event.prev_hash.encode())
    digest.update((event.dossier_prev_hash or "").encode())
    digest.update(canonical(event))
    return digest.hexdigest()


def _head(session: Session, scope: str, lock: bool) -> AuditHead:
    query = select(AuditHead).where(AuditHead.scope == scope)
    if lock:
        query = query.with_for_update()
    head = session.execute(query).scalar_one_or_none()
    if head is None:
        head = AuditHead(scope=scope, seq=0, hash=GENESIS)
        session.add(head)
        session.flush()
    return head


def record(
    session: Session,
    kind: str,
    meta: Meta | None = None,
    *,
    dossier_id: int | None = None,
    revision_sha256: str | None = None,
    at: datetime | None = None,
    **data,
) -> AuditEvent:
    """Append one event to the chains (instance, and the dossier's when given). Never commits."""
    meta = meta or Meta()
    head = _head(session, INSTANCE, lock=True)
    event = AuditEvent(
        seq=head.seq + 1,
        at=at or utcnow(),
        kind=kind,
        actor=meta.actor,
        on_behalf_of=meta.on_behalf_of,
        ip=meta.ip,
        user_agent=(meta.user_agent or None) and meta.user_agent[:300],
        dossier_id=dossier_id,
        revision_sha256=revision_sha256,
        data=json.dumps(data, sort_keys=True, default=str, ensure_ascii=False),
        prev_hash=head.hash,
    )
    dossier_head = None
    if dossier_id is not None:
        dossier_head = _head(session, f"dossier:{dossier_id}", lock=False)
        event.dossier_seq = dossier_head.seq + 1
        event.dossier_prev_hash = dossier_head.hash
    event.hash = event_hash(event)
    session.add(event)
    head.seq, head.hash = event.seq, event.hash
    if dossier_head is not None:
        dossier_head.seq, dossier_head.hash = event.dossier_seq, event.hash
    session.flush()
    return event


@dataclass(frozen=True)
class Break:
    """The first broken link found."""

    seq: int | None
    event_id: int | None
    problem: str


@dataclass(frozen=True)
class Verification:
    ok: bool
    events: int
    breaks: tuple[Break, ...] = field(default_factory=tuple)

    @property
    def first(self) -> Break | None:
        return self.breaks[0] if self.breaks else None


def verify_events(events: Iterable[AuditEvent], heads: dict[str, tuple[int, str]] | None = None) -> Verification:
    """Check the instance chain and every dossier chain of ``events`` (ordered by ``id``).

    ``heads`` (scope → (seq, hash)) catches events deleted from the end of a chain.
    """
    breaks: list[Break] = []
    previous = GENESIS
    expected_seq = 1
    dossier_last: dict[int, tuple[int, str]] = {}
    count = 0
    for event in events:
        count += 1
        if event.seq != expected_seq:
            what = "missing or reordered" if event.seq > expected_seq else "inserted or reordered"
            breaks.append(Break(event.seq, event.id, f"event seq {event.seq}: expected {expected_seq} ({what})"))
        if event.prev_hash != previous:
            breaks.append(Break(event.seq, event.id, f"event seq {event.seq}: link to previous event broken"))
        if event_hash(event) != event.hash:
            breaks.append(Break(event.seq, event.id, f"event seq {event.seq}: content altered (hash mismatch)"))
        if event.dossier_id is not None:
            last_seq, last_hash = dossier_last.get(event.dossier_id, (0, GENESIS))
            if event.dossier_seq != last_seq + 1 or event.dossier_prev_hash != last_hash:
                breaks.append(
                    Break(event.seq, event.id, f"event seq {event.seq}: dossier {event.dossier_id} chain broken")
                )
            dossier_last[event.dossier_id] = (event.dossier_seq or 0, event.hash)
        previous = event.hash
        expected_seq = event.seq + 1
    if heads is not None:
        instance = heads.get(INSTANCE)
        if instance and (instance[0] != expected_seq - 1 or instance[1] != previous):
            breaks.append(Break(None, None, f"chain ends at seq {expected_seq - 1}, head says {instance[0]} "
                                            "(events deleted at the end)"))
    return Verification(ok=not breaks, events=count, breaks=tuple(breaks))


def verify(session: Session, dossier_id: int | None = None) -> Verification:
    """Verify the whole instance chain, or only the events of one dossier."""
    query = select(AuditEvent).order_by(AuditEvent.seq if dossier_id is None else AuditEvent.dossier_seq)
    if dossier_id is not None:
        query = query.where(AuditEvent.dossier_id == dossier_id)
        return _verify_dossier(session, dossier_id, session.execute(query).scalars())
    heads = {h.scope: (h.seq, h.hash) for h in session.execute(select(AuditHead)).scalars()}
    return verify_events(session.execute(query.order_by(None).order_by(AuditEvent.id)).scalars(), heads)


def _verify_dossier(session: Session, dossier_id: int, events: Iterable[AuditEvent]) -> Verification:
    breaks: list[Break] = []
    last_seq, last_hash, count = 0, GENESIS, 0
    for event in events:
        count += 1
        if event_hash(event) != event.hash:
            breaks.append(Break(event.seq, event.id, f"event seq {event.seq}: content altered (hash mismatch)"))
        if event.dossier_seq != last_seq + 1 or event.dossier_prev_hash != last_hash:
            breaks.append(Break(event.seq, event.id, f"event seq {event.seq}: dossier chain broken"))
        last_seq, last_hash = event.dossier_seq or 0, event.hash
    head = session.get(AuditHead, f"dossier:{dossier_id}")
    if head is not None and (head.seq != last_seq or head.hash != last_hash):
        breaks.append(Break(None, None, "dossier chain ends early (events deleted at the end)"))
    return Verification(ok=not breaks, events=count, breaks=tuple(breaks))
