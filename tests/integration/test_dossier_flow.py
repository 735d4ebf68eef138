"""A dossier through its circuit, on the services, on SQLite and PostgreSQL."""

import pytest
from sqlalchemy import select

from parapheur import audit
from parapheur.extensions import db
from parapheur.models import AuditEvent, Dossier
from parapheur.services import validation
from parapheur.services.errors import Conflict, Invalid, Unavailable
from parapheur.storage import store

from .factories import act, create_dossier


def test_contrat_visa_then_advanced_signature_completes_and_validates(org):
    with org.app_context():
        dossier = create_dossier("contrat")
        assert dossier.status == "in_progress" and dossier.current_step == 0
        act(dossier, "drh.bernard", "approve")
        assert dossier.current_step == 1
        act(dossier, "dgs.martin", "sign")
        assert dossier.status == "completed"
        document = dossier.documents[0]
        assert [r.reason for r in document.revisions] == ["upload", "fields", "signature"]
        report = validation.validate_bytes(store().get(document.current.sha256))
        assert report.valid, report.to_dict()
        assert [s.level for s in report.signatures] == ["B-T"]
        assert report.signatures[0].signer == "Paul Martin"
        kinds = db.session.scalars(select(AuditEvent.kind).where(AuditEvent.dossier_id == dossier.id)
                                   .order_by(AuditEvent.dossier_seq)).all()
        assert kinds[:4] == ["dossier.created", "document.uploaded", "dossier.launched", "step.activated"]
        assert "document.signed" in kinds and "dossier.completed" in kinds
        assert audit.verify(db.session).ok


def test_wrong_pin_changes_nothing_and_is_counted(org):
    with org.app_context():
        dossier = create_dossier("contrat")
        act(dossier, "drh.bernard", "approve")
        before = dossier.documents[0].current.sha256
        with pytest.raises(Invalid) as caught:
            act(dossier, "dgs.martin", "sign", pin="000000")
        assert caught.value.code == "bad_pin"
        db.session.rollback()
        dossier = db.session.get(Dossier, dossier.id)
        assert dossier.current_step == 1 and dossier.documents[0].current.sha256 == before


def test_stale_version_is_refused(org):
    with org.app_context():
        dossier = create_dossier("note-interne")
        with pytest.raises(Conflict) as caught:
            act(dossier, "dgs.martin", "approve", expected_version=dossier.version - 1)
        assert caught.value.code == "stale"


def test_outsider_cannot_act(org):
    with org.app_context():
        dossier = create_dossier("note-interne")
        with pytest.raises(Conflict) as caught:
            act(dossier, "outsider", "approve")
        assert caught.value.code == "not_assignee"


def test_an_unreachable_tsa_refuses_the_advanced_signature_and_changes_nothing(make_app):
    app = make_app("org", TSA_URL="http://127.0.0.1:9/tsa")  # nothing listens on port 9
    with app.app_context():
        dossier = create_dossier("contrat")
        act(dossier, "drh.bernard", "approve")
        before = dossier.documents[0].current.sha256
        with pytest.raises(Unavailable) as caught:
            act(dossier, "dgs.martin", "sign")
        assert caught.value.code == "timestamp_unavailable"
        assert "horodatage" in caught.value.message_fr.lower()
        db.session.rollback()
        dossier = db.session.get(Dossier, dossier.id)
        assert dossier.current_step == 1 and dossier.documents[0].current.sha256 == before


def test_initiator_changes_assignees_before_launch_where_the_type_allows(org):
    from parapheur.models import utcnow
    from parapheur.services import dossiers as service

    from .factories import user

    with org.app_context():
        attestation = create_dossier("attestation", launch=False)
        service.change_assignees(db.session, attestation, user("rh.dupont"), 0, ["user:dgs.martin"],
                                 audit.Meta("rh.dupont"), utcnow())
        db.session.commit()
        act(attestation, "rh.dupont", "launch")
        with pytest.raises(Conflict):
            act(attestation, "drh.bernard", "sign")  # no longer assigned
        contrat = create_dossier("contrat", launch=False)
        with pytest.raises(Conflict) as caught:
            service.change_assignees(db.session, contrat, user("rh.dupont"), 0, ["user:dgs.martin"],
                                     audit.Meta("rh.dupont"), utcnow())
        assert caught.value.code == "not_allowed"


def test_recall_only_before_anyone_acted_then_relaunch(org):
    with org.app_context():
        dossier = create_dossier("contrat")
        act(dossier, "rh.dupont", "recall")
        assert dossier.status == "recalled"
        act(dossier, "rh.dupont", "relaunch")
        act(dossier, "drh.bernard", "approve")
        act(dossier, "dgs.martin", "sign")
        assert dossier.status == "completed"
        with pytest.raises(Conflict):
            act(dossier, "rh.dupont", "recall")
