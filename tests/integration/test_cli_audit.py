"""`parapheur audit verify`: exit 0 on an intact chain, 1 naming the first broken event."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from parapheur import cli as cli_module
from parapheur import create_app
from parapheur.extensions import db

from . import tampering
from .factories import create_dossier


@pytest.fixture
def cli(org, monkeypatch):
    """Run the ``parapheur`` command on the test instance, as an operator would (environment variables)."""
    monkeypatch.setenv("PARAPHEUR_INSTANCE_DIR", org.config["INSTANCE_DIR"])
    monkeypatch.setenv("PARAPHEUR_DATABASE_URL", org.config["DATABASE_URL"])
    monkeypatch.setenv("PARAPHEUR_ORG_NAME", "Ville de Test")
    apps = []

    def create_and_keep(overrides=None):
        apps.append(create_app(overrides))
        return apps[-1]

    monkeypatch.setattr(cli_module, "create_app", create_and_keep)

    def run(*args: str):
        return CliRunner().invoke(cli_module.main, list(args), catch_exceptions=False)

    with org.app_context():
        dossier_id = create_dossier("note-interne", title="Note de service").id
        yield run, dossier_id
    for app in apps:  # the command's own app: close its connections
        db.dispose(app)


def test_an_intact_chain_exits_0(cli):
    run, dossier_id = cli
    result = run("audit", "verify")
    assert result.exit_code == 0, result.output
    assert "intacte" in result.output
    assert run("audit", "verify", "--dossier", str(dossier_id)).exit_code == 0


def test_a_broken_chain_exits_1_naming_the_event(cli):
    run, dossier_id = cli
    target = next(e for e in tampering.events() if e.kind == "dossier.launched")
    tampering.alter(target.seq, actor="mallory")
    db.session.close()
    result = run("audit", "verify")
    assert result.exit_code == 1
    assert f"l'événement n° {target.seq} (id {target.id}) a été modifié" in result.stderr
    assert f"seq={target.seq} id={target.id}" in result.stderr
    dossier = run("audit", "verify", "--dossier", str(dossier_id))
    assert dossier.exit_code == 1 and f"n° {target.seq}" in dossier.stderr


def test_a_deleted_event_exits_1_naming_it(cli):
    run, _ = cli
    target = next(e for e in tampering.events() if e.kind == "document.uploaded")
    tampering.delete(target.seq)
    db.session.close()
    result = run("audit", "verify")
    assert result.exit_code == 1
    assert f"l'événement n° {target.seq} manque(nt)" in result.stderr
