"""Hash-chained, append-only audit events.

Every event stores the hash of the previous event of the instance (``prev_hash``) and of the previous
event of its dossier (``dossier_prev_hash``); its own hash covers both and its canonical content:

    hash = sha256( prev_hash (64 hex characters, ASCII)
                   || dossier_prev_hash (64 hex characters, or nothing for an event outside any dossier)
                   || canonical(event) )

where ``canonical`` is the UTF-8 JSON of the recorded fields, keys sorted, no spaces, non-ASCII characters
as they are (see :func:`canonical`). Altering, deleting, inserting or reordering any event therefore breaks
a link that ``verify`` names. The heads (``audit_heads``) catch events cut from the end of a chain, and the
RFC 3161 tokens over completed dossiers' heads (``chain_timestamps``) anchor them in time.

Appends lock the instance head row, so two transactions cannot fork the chain; the lock is held until the
action commits, which is why callers append their audit event last.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from .models import AuditEvent, AuditHead, ChainTimestamp, utcnow

GENESIS = "0" * 64
INSTANCE = "instance"
#: at most this many breaks are kept in a Verification (a wholly broken chain would yield millions)
MAX_BREAKS = 100
CANONICAL_FIELDS = ("seq", "at", "kind", "actor", "on_behalf_of", "ip", "user_agent", "dossier_id",
                    "dossier_seq", "revision_sha256", "data")


@dataclass(frozen=True)
class Meta:
    """Who and where an action came from; the web and API layers build it from the request."""

    actor: str | None = None
    on_behalf_of: str | None = None
    ip: str | None = None
    user_agent: str | None = None


def canonical_body(event: AuditEvent) -> dict:
    """The recorded fields an event's hash covers, as plain JSON values."""
    return {
        "seq": event.seq,
        "at": event.at.astimezone(UTC).isoformat(timespec="microseconds"),
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


def canonical_bytes(body: dict) -> bytes:
    """Canonical JSON: keys sorted, separators ``,`` and ``:``, UTF-8 with non-ASCII characters unescaped."""
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def canonical(event: AuditEvent) -> bytes:
    """The bytes an event's hash covers: every recorded field but the hashes themselves."""
    return canonical_bytes(canonical_body(event))


def link_hash(prev_hash: str, dossier_prev_hash: str | None, canonical_form: bytes) -> str:
    """sha256(prev_hash || dossier_prev_hash || canonical), hex: what any verifier recomputes."""
    digest = hashlib.sha256()
    digest.update(prev_hash.encode())
    digest.update((dossier_prev_hash or "").encode())
    digest.update(canonical_form)
    return digest.hexdigest()


def event_hash(event: AuditEvent) -> str:
    return link_hash(event.prev_hash, event.dossier_prev_hash, canonical(event))


def as_dict(event: AuditEvent) -> dict:
    """An event for export (API, evidence bundle): its canonical fields plus its id and chain links."""
    body = canonical_body(event)
    body.update(id=event.id, prev_hash=event.prev_hash, dossier_prev_hash=event.dossier_prev_hash,
                hash=event.hash)
    return body


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


def _clip(value: str | None, size: int) -> str | None:
    return value[:size] if value else None


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
        # stored and hashed in UTC: the canonical form must read back the same from every backend
        at=(at or utcnow()).astimezone(UTC),
        kind=kind,
        actor=_clip(meta.actor, 80),
        on_behalf_of=_clip(meta.on_behalf_of, 80),
        ip=_clip(meta.ip, 64),
        user_agent=_clip(meta.user_agent, 300),
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


# -- verification ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Break:
    """A broken link of a chain, in French; ``seq``/``event_id`` name the event concerned (``event_id`` is
    None when that event is gone)."""

    seq: int | None
    event_id: int | None
    problem: str
    #: altered | deleted | inserted | link | dossier_link | head | timestamp
    code: str = "broken"
    #: position of the event in its dossier's chain, when the break is about a dossier chain
    dossier_seq: int | None = None


@dataclass(frozen=True)
class Verification:
    ok: bool
    events: int
    breaks: tuple[Break, ...] = field(default_factory=tuple)
    #: chain timestamps whose token was checked against the chain
    timestamps: int = 0

    @property
    def first(self) -> Break | None:
        return self.breaks[0] if self.breaks else None


def _name(seq: int | None, event_id: int | None) -> str:
    if event_id is None:
        return f"l'événement n° {seq}"
    return f"l'événement n° {seq} (id {event_id})"


def token_imprint(token: bytes) -> bytes:
    """The digest an RFC 3161 token (TimeStampToken, DER) covers; ValueError if it cannot be read."""
    from asn1crypto import cms

    try:
        info = cms.ContentInfo.load(token)
        tst_info = info["content"]["encap_content_info"]["content"].parsed
        return bytes(tst_info["message_imprint"]["hashed_message"].native)
    except Exception as error:  # noqa: BLE001 - any parsing failure means an unusable token
        raise ValueError(f"unreadable timestamp token: {error}") from None


class _Checker:
    """Walks events in chain order and collects breaks (instance chain, dossier chains, or both)."""

    def __init__(self, instance: bool):
        self.instance = instance
        self.breaks: list[Break] = []
        self.count = 0
        self.previous: AuditEvent | None = None
        self.expected_seq = 1
        self.dossier_last: dict[int, tuple[int, str]] = {}
        #: (dossier_id, dossier_seq) → hash, only for the positions chain timestamps point at
        self.wanted: dict[tuple[int, int], str | None] = {}
        self.after_head: tuple[int, int] | None = None
        self.head_seq: int | None = None

    def add(self, brk: Break) -> None:
        if len(self.breaks) < MAX_BREAKS:
            self.breaks.append(brk)

    def walk(self, events: Iterable[AuditEvent]) -> None:
        for event in events:
            self.count += 1
            if self.instance:
                self._instance_links(event)
            elif event_hash(event) != event.hash:
                self._altered(event)
            if event.dossier_id is not None:
                self._dossier_link(event)
            key = (event.dossier_id, event.dossier_seq)
            if key in self.wanted:
                self.wanted[key] = event.hash
            if self.head_seq is not None and event.seq == self.head_seq + 1:
                self.after_head = (event.seq, event.id)
            self.previous = event

    def _altered(self, event: AuditEvent) -> None:
        self.add(Break(event.seq, event.id, f"{_name(event.seq, event.id)} a été modifié : son empreinte ne "
                                            "correspond plus à son contenu", "altered", event.dossier_seq))

    def _instance_links(self, event: AuditEvent) -> None:
        previous = self.previous
        if previous is not None and event.id is not None and previous.id is not None and event.id < previous.id:
            # ids grow with seq (appends are serialised); a row out of order was written later or moved
            self.add(Break(previous.seq, previous.id,
                           f"{_name(previous.seq, previous.id)} est hors de sa place : inséré après coup ou "
                           "déplacé (son identifiant suit celui de l'événement suivant)", "inserted"))
        if event.seq > self.expected_seq:
            first, last = self.expected_seq, event.seq - 1
            gone = f"l'événement n° {first}" if first == last else f"les événements n° {first} à {last}"
            self.add(Break(first, None, f"{gone} manque(nt) : supprimé(s) ; la chaîne passe de l'événement "
                                        f"n° {first - 1} à {_name(event.seq, event.id)}", "deleted"))
        expected_prev = previous.hash if previous is not None else GENESIS
        if event.prev_hash != expected_prev:
            before = (f"l'événement n° {previous.seq} (id {previous.id})" if previous is not None
                      else "le début de la chaîne")
            self.add(Break(event.seq, event.id, f"{_name(event.seq, event.id)} ne suit pas {before} : un "
                                                "événement a été inséré, supprimé, déplacé ou modifié entre "
                                                "eux", "link"))
        if event_hash(event) != event.hash:
            self._altered(event)
        self.expected_seq = event.seq + 1

    def _dossier_link(self, event: AuditEvent) -> None:
        last_seq, last_hash = self.dossier_last.get(event.dossier_id, (0, GENESIS))
        if event.dossier_seq is None or event.dossier_seq > last_seq + 1:
            self.add(Break(event.seq, event.id, f"dossier {event.dossier_id} : l'événement n° {last_seq + 1} "
                                                f"de sa chaîne manque (supprimé) avant "
                                                f"{_name(event.seq, event.id)}", "dossier_link",
                           last_seq + 1))
        elif event.dossier_seq != last_seq + 1 or event.dossier_prev_hash != last_hash:
            self.add(Break(event.seq, event.id, f"dossier {event.dossier_id} : {_name(event.seq, event.id)} ne "
                                                "suit pas l'événement précédent de sa chaîne (inséré, déplacé "
                                                "ou modifié)", "dossier_link", event.dossier_seq))
        self.dossier_last[event.dossier_id] = (event.dossier_seq or 0, event.hash)

    def check_head(self, scope: str, head: tuple[int, str] | None) -> None:
        if head is None:
            return
        head_seq, head_hash = head
        if scope == INSTANCE:
            last_seq = self.previous.seq if self.previous is not None else 0
            last_hash = self.previous.hash if self.previous is not None else GENESIS
            where = "la chaîne"
        else:
            dossier_id = int(scope.split(":", 1)[1])
            last_seq, last_hash = self.dossier_last.get(dossier_id, (0, GENESIS))
            where = f"la chaîne du dossier {dossier_id}"
        if head_seq > last_seq:
            self.add(Break(last_seq + 1 if scope == INSTANCE else None, None,
                           f"{where} s'arrête à l'événement n° {last_seq} alors que sa tête indique le n° "
                           f"{head_seq} : événement(s) supprimé(s) en fin de chaîne", "deleted",
                           None if scope == INSTANCE else last_seq + 1))
        elif head_seq < last_seq:
            seq, event_id = self.after_head if scope == INSTANCE and self.after_head else (None, None)
            name = _name(seq, event_id) if seq else f"l'événement n° {head_seq + 1} de {where}"
            self.add(Break(seq, event_id, f"{name} a été ajouté hors de l'application : la tête de {where} "
                                          f"s'arrête au n° {head_seq}", "inserted",
                           None if scope == INSTANCE else head_seq + 1))
        elif head_hash != last_hash:
            self.add(Break(self.previous.seq if self.previous else None, self.previous.id if self.previous
                           else None, f"le dernier événement de {where} ne correspond pas à sa tête "
                                      "(remplacé ou modifié)", "head"))

    def check_timestamps(self, stamps: Iterable[ChainTimestamp]) -> int:
        count = 0
        for stamp in stamps:
            count += 1
            label = f"dossier {stamp.dossier_id} : l'horodatage de la chaîne (événement n° {stamp.dossier_seq})"
            try:
                imprint = token_imprint(stamp.token)
            except ValueError:
                self.add(Break(None, None, f"{label} est illisible", "timestamp", stamp.dossier_seq))
                continue
            if imprint.hex() != stamp.head_hash:
                self.add(Break(None, None, f"{label} ne couvre pas l'empreinte enregistrée", "timestamp",
                               stamp.dossier_seq))
            elif self.wanted.get((stamp.dossier_id, stamp.dossier_seq)) != stamp.head_hash:
                self.add(Break(None, None, f"{label} ne correspond plus à cet événement : la chaîne a été "
                                           "réécrite depuis l'horodatage", "timestamp", stamp.dossier_seq))
        return count


def verify_events(events: Iterable[AuditEvent], heads: dict[str, tuple[int, str]] | None = None,
                  timestamps: Iterable[ChainTimestamp] = ()) -> Verification:
    """Check the instance chain and every dossier chain of ``events`` (ordered by ``seq``).

    ``heads`` (scope → (seq, hash)) catches events deleted from, or appended behind the application's back
    to, the end of a chain; ``timestamps`` are checked against the events they point at.
    """
    stamps = list(timestamps)
    checker = _Checker(instance=True)
    checker.wanted = {(s.dossier_id, s.dossier_seq): None for s in stamps}
    heads = heads or {}
    if INSTANCE in heads:
        checker.head_seq = heads[INSTANCE][0]
    checker.walk(events)
    checker.check_head(INSTANCE, heads.get(INSTANCE))
    for scope, head in sorted(heads.items()):
        if scope != INSTANCE:
            checker.check_head(scope, head)
    count = checker.check_timestamps(stamps)
    return Verification(ok=not checker.breaks, events=checker.count, breaks=tuple(checker.breaks),
                        timestamps=count)


def verify(session: Session, dossier_id: int | None = None) -> Verification:
    """Verify the whole instance chain, or only the chain of one dossier (and its chain timestamps)."""
    if dossier_id is not None:
        return _verify_dossier(session, dossier_id)
    heads = {h.scope: (h.seq, h.hash) for h in session.execute(select(AuditHead)).scalars()}
    stamps = session.execute(select(ChainTimestamp).order_by(ChainTimestamp.id)).scalars().all()
    events = session.execute(select(AuditEvent).order_by(AuditEvent.seq).execution_options(yield_per=2000))
    return verify_events(events.scalars(), heads, stamps)


def _verify_dossier(session: Session, dossier_id: int) -> Verification:
    checker = _Checker(instance=False)
    stamps = session.execute(select(ChainTimestamp).where(ChainTimestamp.dossier_id == dossier_id)
                             .order_by(ChainTimestamp.id)).scalars().all()
    checker.wanted = {(s.dossier_id, s.dossier_seq): None for s in stamps}
    query = select(AuditEvent).where(AuditEvent.dossier_id == dossier_id).order_by(AuditEvent.dossier_seq)
    checker.walk(session.execute(query).scalars())
    head = session.get(AuditHead, f"dossier:{dossier_id}")
    if head is not None:
        checker.check_head(f"dossier:{dossier_id}", (head.seq, head.hash))
    count = checker.check_timestamps(stamps)
    return Verification(ok=not checker.breaks, events=checker.count, breaks=tuple(checker.breaks),
                        timestamps=count)
