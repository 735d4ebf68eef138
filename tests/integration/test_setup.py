"""`parapheur setup`: idempotent, and a bad file changes nothing and says where it is wrong."""

import pytest
from sqlalchemy import func, select, text

from parapheur.extensions import db
from parapheur.models import AuditEvent, Desk, DocumentType, SigningCredential, User
from parapheur.services import instance
from parapheur.services.organisation import OrganisationError

from .conftest import ORG


def dump(app) -> dict:
    """Every row of the tables setup writes, as comparable data."""
    with app.app_context():
        tables = ["users", "user_roles", "desks", "desk_members", "document_types", "signing_credentials",
                  "audit_events"]
        return {t: db.session.execute(text(f"SELECT * FROM {t} ORDER BY 1")).all() for t in tables}


def test_setup_creates_the_organisation(org):
    with org.app_context():
        assert db.session.scalar(select(func.count()).select_from(User)) == 8
        desk = db.session.scalar(select(Desk).where(Desk.code == "drh"))
        assert {m.user.username for m in desk.members} == {"rh.lefevre", "drh.bernard"}
        contrat = db.session.scalar(select(DocumentType).where(DocumentType.code == "contrat"))
        assert contrat.min_level == "advanced"
        martin = db.session.scalar(select(User).where(User.username == "dgs.martin"))
        assert martin.password_hash.startswith("$argon2")
        assert martin.totp_confirmed
        credential = db.session.scalar(select(SigningCredential).where(SigningCredential.user_id == martin.id))
        assert credential.kind == "software" and "BEGIN CERTIFICATE" in credential.certificate_pem
        assert credential.sealed_key and b"PRIVATE KEY" not in credential.sealed_key


def test_setup_twice_changes_nothing(org):
    before = dump(org)
    with org.app_context():
        result = instance.setup(ORG)
    assert not result.changed
    assert dump(org) == before


def test_setup_updates_what_changed(org):
    changed = ORG.replace("name: Contrat de travail", "name: Contrat à durée déterminée")
    with org.app_context():
        result = instance.setup(changed)
        assert result.updated == ("type:contrat",)
        assert db.session.scalar(select(DocumentType.name).where(DocumentType.code == "contrat")) == \
            "Contrat à durée déterminée"


@pytest.mark.parametrize(
    ("broken", "expected"),
    [
        (ORG.replace("roles: [auditor]", "roles: [auditeur]"), "ligne 8, users[5].roles : rôle inconnu « auditeur »"),
        (ORG.replace("members: [rh.lefevre, drh.bernard]", "members: [rh.lefevre, ghost]"),
         "desks[0].members : utilisateur inconnu « ghost »"),
        (ORG.replace("{kind: signature, level: advanced, assignees: [user:dgs.martin]}",
                     "{kind: signature, level: simple, assignees: [user:dgs.martin]}"),
         "document_types[0].steps[1]"),
        (ORG.replace("assignees: [user:dgs.martin]}", "assignees: [user:nobody]}"), "utilisateur inconnu « nobody »"),
        ("users: [\n  {username: a", "YAML illisible"),
        (ORG.replace("password: \"secret-aud\"", "password: \"short\""), "mot de passe trop court"),
    ],
)
def test_a_broken_file_names_the_fault_and_writes_nothing(app, broken, expected):
    with app.app_context():
        with pytest.raises(OrganisationError) as caught:
            instance.setup(broken)
        assert expected in str(caught.value)
        assert db.session.scalar(select(func.count()).select_from(User)) == 0
        assert db.session.scalar(select(func.count()).select_from(AuditEvent)) == 0


def test_a_broken_file_leaves_an_existing_organisation_untouched(org):
    before = dump(org)
    broken = ORG.replace("name: Contrat de travail", "name: Nouveau nom").replace("roles: [admin]", "roles: [boss]")
    with org.app_context(), pytest.raises(OrganisationError):
        instance.setup(broken)
    assert dump(org) == before
