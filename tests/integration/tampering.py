"""Rewriting audit events behind the application's back, as an intruder with database access would."""

from __future__ import annotations

import json
from contextlib import contextmanager

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from parapheur import audit
from parapheur.extensions import db
from parapheur.models import AuditEvent, AuditHead

EVENTS = AuditEvent.__table__
HEADS = AuditHead.__table__


@contextmanager
def raw_connection():
    """A connection that may rewrite ``audit_events``: on PostgreSQL the append-only trigger is switched off
    for the duration (the tests connect as a superuser), then on again."""
    db.session.close()
    engine = db.engine
    with engine.begin() as connection:
        postgres = engine.dialect.name == "postgresql"
        if postgres:
            prove_append_only(connection)
            connection.execute(text("ALTER TABLE audit_events DISABLE TRIGGER USER"))
        yield connection
        if postgres:
            connection.execute(text("ALTER TABLE audit_events ENABLE TRIGGER USER"))


def prove_append_only(connection) -> None:
    """On PostgreSQL, UPDATE, DELETE and TRUNCATE of audit events are refused while the trigger is on."""
    for statement in (EVENTS.update().values(actor="mallory"), EVENTS.delete(), text("TRUNCATE audit_events")):
        with pytest.raises(DBAPIError, match="append-only"), connection.begin_nested():
            connection.execute(statement)


def events() -> list[AuditEvent]:
    db.session.expire_all()
    return list(db.session.scalars(select(AuditEvent).order_by(AuditEvent.seq)))


def by_seq(seq: int) -> AuditEvent:
    return next(e for e in events() if e.seq == seq)


def alter(seq: int, **values) -> None:
    with raw_connection() as connection:
        connection.execute(EVENTS.update().where(EVENTS.c.seq == seq).values(**values))


def delete(seq: int) -> None:
    with raw_connection() as connection:
        connection.execute(EVENTS.delete().where(EVENTS.c.seq == seq))


def _move(connection, old: int, new: int) -> None:
    connection.execute(EVENTS.update().where(EVENTS.c.seq == old).values(seq=new))


def swap(seq_a: int, seq_b: int) -> None:
    """Exchange the positions of two events (their ``seq``), leaving everything else as it is."""
    with raw_connection() as connection:
        _move(connection, seq_a, -1)
        _move(connection, seq_b, seq_a)
        _move(connection, -1, seq_b)


def forged(template: AuditEvent, seq: int, prev_hash: str, **changes) -> dict:
    """Column values of a well-formed event (its hash computed like the application does) at ``seq``."""
    copy = AuditEvent(seq=seq, at=template.at, kind=template.kind, actor=template.actor,
                      on_behalf_of=template.on_behalf_of, ip=template.ip, user_agent=template.user_agent,
                      dossier_id=template.dossier_id, dossier_seq=template.dossier_seq,
                      revision_sha256=template.revision_sha256, data=template.data, prev_hash=prev_hash,
                      dossier_prev_hash=template.dossier_prev_hash)
    for name, value in changes.items():
        setattr(copy, name, json.dumps(value) if name == "data" else value)
    copy.hash = audit.event_hash(copy)
    return {c: getattr(copy, c) for c in ("seq", "at", "kind", "actor", "on_behalf_of", "ip", "user_agent",
                                          "dossier_id", "dossier_seq", "revision_sha256", "data", "prev_hash",
                                          "dossier_prev_hash", "hash")}


def insert(values: dict) -> None:
    with raw_connection() as connection:
        connection.execute(EVENTS.insert().values(**values))


def shift_from(seq: int) -> None:
    """Move every event from ``seq`` on one place further (last first: ``seq`` is unique)."""
    with raw_connection() as connection:
        rows = connection.execute(select(EVENTS.c.seq).where(EVENTS.c.seq >= seq)
                                  .order_by(EVENTS.c.seq.desc())).scalars().all()
        for value in rows:
            _move(connection, value, value + 1)


def rewrite_from(seq: int, **changes) -> None:
    """A careful forgery: change event ``seq`` and recompute every later hash, link and head, so that the
    chains hold together again. Only an external anchor (the chain timestamp) can tell."""
    rows = events()
    previous = {r.seq: r for r in rows}
    new_hash: dict[int, str] = {}
    dossier_new: dict[tuple[int, int], str] = {}
    updates = []
    for row in rows:
        if row.seq < seq:
            new_hash[row.seq] = row.hash
            if row.dossier_id is not None:
                dossier_new[(row.dossier_id, row.dossier_seq)] = row.hash
            continue
        prev = new_hash.get(row.seq - 1, audit.GENESIS) if row.seq > 1 else audit.GENESIS
        dossier_prev = row.dossier_prev_hash
        if row.dossier_id is not None and row.dossier_seq > 1:
            dossier_prev = dossier_new[(row.dossier_id, row.dossier_seq - 1)]
        values = forged(previous[row.seq], row.seq, prev, **(changes if row.seq == seq else {}))
        values["dossier_prev_hash"] = dossier_prev
        template = AuditEvent(**{k: v for k, v in values.items() if k != "hash"})
        values["hash"] = audit.event_hash(template)
        new_hash[row.seq] = values["hash"]
        if row.dossier_id is not None:
            dossier_new[(row.dossier_id, row.dossier_seq)] = values["hash"]
        updates.append((row.id, values))
    with raw_connection() as connection:
        for event_id, values in updates:
            connection.execute(EVENTS.update().where(EVENTS.c.id == event_id).values(
                actor=values["actor"], data=values["data"], prev_hash=values["prev_hash"],
                dossier_prev_hash=values["dossier_prev_hash"], hash=values["hash"]))
        connection.execute(HEADS.update().where(HEADS.c.scope == "instance").values(hash=new_hash[rows[-1].seq]))
        for (dossier_id, dossier_seq), value in dossier_new.items():
            connection.execute(HEADS.update().where(HEADS.c.scope == f"dossier:{dossier_id}",
                                                    HEADS.c.seq == dossier_seq).values(hash=value))
