"""Several people acting on the same step at the same moment: exactly one wins (PostgreSQL row locks)."""

import threading

import pytest
from sqlalchemy import func, select

from parapheur import audit
from parapheur.extensions import db
from parapheur.models import AuditEvent, Dossier, utcnow
from parapheur.services import access, dossiers
from parapheur.services.errors import Conflict

from .factories import create_dossier, user


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_n_threads_approving_the_same_step_give_one_approval(org):
    with org.app_context():
        dossier_id = create_dossier("note-interne").id  # quorum 1 among dgs.martin and desk drh
    actors = ["dgs.martin", "drh.bernard", "rh.lefevre", "dgs.martin", "drh.bernard", "rh.lefevre", "dgs.martin",
              "drh.bernard"]
    barrier = threading.Barrier(len(actors))
    outcomes: list[str] = []

    def approve(username: str) -> None:
        with org.app_context():
            session = db.session
            barrier.wait()
            try:
                actor = user(username)
                dossier = access.get_for(session, actor, dossier_id, utcnow(), lock=True)
                dossiers.perform(session, org, dossier, actor, "approve", audit.Meta(username), utcnow())
                session.commit()
                outcomes.append("ok")
            except Conflict as conflict:
                session.rollback()
                outcomes.append(conflict.code)

    threads = [threading.Thread(target=approve, args=(name,)) for name in actors]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert outcomes.count("ok") == 1, outcomes
    assert len(outcomes) == len(actors)
    assert all(code in {"wrong_state", "already_acted", "stale"} for code in outcomes if code != "ok"), outcomes
    with org.app_context():
        assert db.session.get(Dossier, dossier_id).status == "completed"
        approvals = db.session.scalar(select(func.count()).where(AuditEvent.kind == "step.approved",
                                                                 AuditEvent.dossier_id == dossier_id))
        assert approvals == 1
        assert audit.verify(db.session).ok


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_a_recall_racing_a_visa_leaves_one_of_them(org):
    """On a step that needs two visas, a recall and the first visa exclude each other whatever the order:
    a recall after the visa is refused (step_started), a visa after the recall too (wrong_state)."""
    import yaml

    from parapheur.services import instance

    from .conftest import ORG

    data = yaml.safe_load(ORG)
    data["document_types"].append({"code": "double-visa", "name": "Double visa", "min_level": "simple",
                                   "steps": [{"kind": "visa", "assignees": ["user:drh.bernard", "user:dgs.martin"]}]})
    with org.app_context():
        instance.setup(yaml.safe_dump(data, allow_unicode=True))
        dossier_id = create_dossier("double-visa").id
    barrier = threading.Barrier(2)
    outcomes: dict[str, str] = {}

    def run(username: str, action: str) -> None:
        with org.app_context():
            session = db.session
            barrier.wait()
            try:
                actor = user(username)
                dossier = access.get_for(session, actor, dossier_id, utcnow(), lock=True)
                dossiers.perform(session, org, dossier, actor, action, audit.Meta(username), utcnow())
                session.commit()
                outcomes[action] = "ok"
            except Conflict as conflict:
                session.rollback()
                outcomes[action] = conflict.code

    threads = [threading.Thread(target=run, args=("drh.bernard", "approve")),
               threading.Thread(target=run, args=("rh.dupont", "recall"))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(outcomes.values()).count("ok") == 1, outcomes
    assert outcomes.get("recall") in {"ok", "step_started"} and outcomes.get("approve") in {"ok", "wrong_state"}
    with org.app_context():
        status = db.session.get(Dossier, dossier_id).status
    assert status == ("recalled" if outcomes["recall"] == "ok" else "in_progress")
