"""The audit chain detects events altered, deleted, inserted or reordered in the database, and names the
first broken link; on PostgreSQL a trigger refuses UPDATE, DELETE and TRUNCATE in the first place."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from sqlalchemy import select, text, update
from sqlalchemy.exc import DBAPIError

from parapheur import audit
from parapheur.extensions import db
from parapheur.models import AuditEvent, ChainTimestamp, Dossier

from . import tampering
from .factories import act, create_dossier


@pytest.fixture
def chain(org):
    """Two dossiers and a login between them: events of the instance chain and of two dossier chains."""
    with org.app_context():
        first = create_dossier("note-interne", title="Note de service A").id
        audit.record(db.session, "login.success", audit.Meta("dgs.martin", ip="192.0.2.7", user_agent="Firefox"))
        db.session.commit()
        act(db.session.get(Dossier, first), "dgs.martin", "approve")  # completes it: its chain is timestamped
        second = create_dossier("note-interne", title="Note de service B").id
        events = tampering.events()
        assert audit.verify(db.session).ok
        yield SimpleNamespace(app=org, first=first, second=second, events=events, last=events[-1].seq)


def _of(chain, kind: str, dossier_id: int | None = None) -> AuditEvent:
    return next(e for e in chain.events if e.kind == kind and (dossier_id is None or e.dossier_id == dossier_id))


def test_an_untouched_chain_verifies(chain):
    result = audit.verify(db.session)
    assert result.ok and result.first is None
    assert result.events == len(chain.events) >= 10
    for dossier_id in (chain.first, chain.second):
        assert audit.verify(db.session, dossier_id).ok
    first_events = [e for e in chain.events if e.dossier_id == chain.first]
    assert [e.dossier_seq for e in first_events] == list(range(1, len(first_events) + 1))


def test_every_event_records_time_actor_and_origin(chain):
    approved = _of(chain, "step.approved")
    assert approved.actor == "dgs.martin" and approved.at.tzinfo is not None
    assert approved.dossier_id == chain.first
    login = _of(chain, "login.success")
    assert (login.ip, login.user_agent, login.dossier_id) == ("192.0.2.7", "Firefox", None)
    uploaded = _of(chain, "document.uploaded", chain.first)
    assert len(uploaded.revision_sha256) == 64


def test_postgresql_refuses_to_change_audit_events(chain, backend):
    if backend == "sqlite":  # no trigger on SQLite (the embedded default): `audit verify` is the guard
        db.session.execute(update(AuditEvent).where(AuditEvent.seq == 1).values(actor="mallory"))
        db.session.commit()
        assert audit.verify(db.session).first.seq == 1
        return
    for statement in (update(AuditEvent).values(actor="mallory"), AuditEvent.__table__.delete(),
                      text("TRUNCATE audit_events")):
        with pytest.raises(DBAPIError, match="append-only"):
            db.session.execute(statement)
        db.session.rollback()
    assert audit.verify(db.session).ok


def test_an_altered_event_is_named(chain):
    target = _of(chain, "step.approved")
    tampering.alter(target.seq, actor="mallory")
    result = audit.verify(db.session)
    assert not result.ok
    assert (result.first.seq, result.first.event_id, result.first.code) == (target.seq, target.id, "altered")
    assert f"n° {target.seq}" in result.first.problem and "modifié" in result.first.problem
    dossier = audit.verify(db.session, chain.first)
    assert (dossier.first.seq, dossier.first.code) == (target.seq, "altered")
    assert audit.verify(db.session, chain.second).ok


def test_altered_data_is_detected_too(chain):
    target = _of(chain, "dossier.created", chain.second)
    tampering.alter(target.seq, data='{"title": "Autre titre", "type": "note-interne"}')
    assert audit.verify(db.session).first.event_id == target.id


def test_a_deleted_event_is_named(chain):
    target = _of(chain, "step.approved")
    tampering.delete(target.seq)
    result = audit.verify(db.session)
    assert (result.first.seq, result.first.event_id, result.first.code) == (target.seq, None, "deleted")
    assert f"n° {target.seq}" in result.first.problem and "supprim" in result.first.problem
    dossier = audit.verify(db.session, chain.first)
    assert dossier.first.code == "dossier_link" and dossier.first.dossier_seq == target.dossier_seq


def test_the_last_event_deleted_is_named(chain):
    tampering.delete(chain.last)
    result = audit.verify(db.session)
    assert (result.first.seq, result.first.code) == (chain.last, "deleted")
    assert audit.verify(db.session, chain.second).first.code == "deleted"


def test_an_event_inserted_in_the_middle_is_named(chain):
    login = _of(chain, "login.success")
    position = _of(chain, "step.approved").seq
    previous = tampering.by_seq(position - 1)
    tampering.shift_from(position)
    tampering.insert(tampering.forged(login, position, previous.hash, actor="mallory"))
    forged_id = tampering.by_seq(position).id
    result = audit.verify(db.session)
    assert (result.first.seq, result.first.event_id, result.first.code) == (position, forged_id, "inserted")
    assert "inséré" in result.first.problem


def test_an_event_appended_behind_the_applications_back_is_named(chain):
    last = tampering.by_seq(chain.last)
    tampering.insert(tampering.forged(_of(chain, "login.success"), chain.last + 1, last.hash, actor="mallory"))
    forged_id = tampering.by_seq(chain.last + 1).id
    result = audit.verify(db.session)
    assert (result.first.seq, result.first.event_id, result.first.code) == (chain.last + 1, forged_id,
                                                                              "inserted")


def test_an_event_with_a_broken_link_is_named(chain):
    last = tampering.by_seq(chain.last)
    tampering.insert(tampering.forged(last, chain.last + 1, "f" * 64))
    result = audit.verify(db.session)
    assert (result.first.seq, result.first.code) == (chain.last + 1, "link")


def test_reordered_events_are_named(chain):
    a, b = _of(chain, "dossier.launched", chain.first), _of(chain, "step.approved")
    tampering.swap(a.seq, b.seq)
    result = audit.verify(db.session)
    assert not result.ok
    assert (result.first.seq, result.first.event_id) == (a.seq, b.id)
    assert not audit.verify(db.session, chain.first).ok


def test_the_chain_timestamp_catches_a_rewritten_history(chain):
    stamp = db.session.scalar(select(ChainTimestamp).where(ChainTimestamp.dossier_id == chain.first))
    assert audit.token_imprint(stamp.token).hex() == stamp.head_hash
    stamped_seq = stamp.dossier_seq
    intact = audit.verify(db.session)
    assert intact.ok and intact.timestamps == 1
    # rewrite an event and every hash after it, heads included: the chains hold together again
    tampering.rewrite_from(_of(chain, "step.approved").seq, actor="mallory")
    assert tampering.by_seq(_of(chain, "step.approved").seq).actor == "mallory"
    result = audit.verify(db.session)
    assert [b.code for b in result.breaks] == ["timestamp"]
    assert "réécrite" in result.first.problem and result.first.dossier_seq == stamped_seq
    assert audit.verify(db.session, chain.first).first.code == "timestamp"
    assert audit.verify(db.session, chain.second).ok
