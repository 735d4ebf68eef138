"""The `parapheur` command on a real instance: init, setup, demo, validate, user add."""

import json

import pytest
from click.testing import CliRunner

from parapheur.cli import main
from parapheur.samples import text_pdf

from .conftest import ORG


@pytest.fixture
def cli(tmp_path, monkeypatch, instance_keys):
    """Run the command on an instance in tmp_path (SQLite, the embedded default)."""
    import shutil

    instance = tmp_path / "instance"
    shutil.copytree(instance_keys, instance / "keys")
    monkeypatch.setenv("PARAPHEUR_INSTANCE_DIR", str(instance))
    for name in ("DATABASE_URL", "REDIS_URL", "STORAGE_URL", "TSA_URL", "SMTP_HOST"):
        monkeypatch.delenv(f"PARAPHEUR_{name}", raising=False)
    runner = CliRunner()

    def run(*args, input=None):
        return runner.invoke(main, list(args), input=input, catch_exceptions=False)

    assert run("init").exit_code == 0
    return run


def test_init_twice_is_harmless(cli):
    result = cli("init")
    assert result.exit_code == 0 and "clés de l'instance présentes" in result.output


def test_setup_then_again_changes_nothing(cli, tmp_path):
    org = tmp_path / "org.yaml"
    org.write_text(ORG, encoding="utf-8")
    first = cli("setup", str(org))
    assert first.exit_code == 0 and "créé(s)" in first.output
    second = cli("setup", str(org))
    assert second.exit_code == 0 and "Rien à changer" in second.output


def test_setup_with_a_broken_file_exits_1_naming_the_line(cli, tmp_path):
    org = tmp_path / "org.yaml"
    org.write_text(ORG.replace("roles: [auditor]", "roles: [auditeur]"), encoding="utf-8")
    result = cli("setup", str(org))
    assert result.exit_code == 1
    assert "ligne 8, users[5].roles" in result.output


def test_demo_prints_the_logins_and_loads_sample_dossiers(cli):
    result = cli("demo")
    assert result.exit_code == 0
    assert "dgs.martin" in result.output and "demo-parapheur" in result.output
    again = cli("demo")
    assert again.exit_code == 0


def test_validate_exit_codes_and_json(cli, tmp_path):
    from parapheur import create_app
    from parapheur.extensions import db

    cli("demo")
    app = create_app()
    with app.app_context():
        from tests.integration.factories import act, create_dossier

        dossier = create_dossier("attestation", title="Attestation CLI")
        act(dossier, "drh.bernard", "sign")
        from parapheur.storage import store

        signed = store().get(dossier.documents[0].current.sha256)
        db.dispose(app)
    good = tmp_path / "good.pdf"
    good.write_bytes(signed)
    result = cli("validate", str(good), "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["valid"] is True
    signature = report["signatures"][0]
    assert {"field", "signer", "level", "signing_time", "timestamp_time", "intact", "trusted", "coverage",
            "modifications", "valid", "reasons"} <= set(signature)
    assert signature["level"] == "B-B" and signature["intact"] and signature["trusted"]

    tampered = bytearray(signed)
    position = tampered.index(b"stream") + 20
    tampered[position] ^= 0x01
    bad = tmp_path / "bad.pdf"
    bad.write_bytes(bytes(tampered))
    result = cli("validate", str(bad))
    assert result.exit_code == 1 and "NON valide" in result.output

    unsigned = tmp_path / "unsigned.pdf"
    unsigned.write_bytes(text_pdf("Rien"))
    assert cli("validate", str(unsigned)).exit_code == 1
    assert cli("validate", str(tmp_path / "missing.pdf")).exit_code == 2


def test_user_add(cli):
    result = cli("user", "add", "agent.x", "--name", "Agent X", "--role", "initiator",
                 input="motdepasse-long\nmotdepasse-long\n")
    assert result.exit_code == 0, result.output
    again = cli("user", "add", "agent.x", "--name", "Agent X", "--role", "initiator",
                input="motdepasse-long\nmotdepasse-long\n")
    assert again.exit_code == 1 and "existe déjà" in again.output


def test_credential_commands_register_only_qualified_certificates(cli, tmp_path, test_pki):
    from asn1crypto import pem

    def cert_file(label):
        path = tmp_path / f"{label}.pem"
        path.write_bytes(pem.armor("CERTIFICATE", test_pki.cert(label).dump()))
        return str(path)

    cli("demo")
    refused = cli("credential", "add-pkcs11", "maire.durand", "--module", "/usr/lib/softhsm/libsofthsm2.so",
                  "--token", "t", "--key-label", "k", "--cert", cert_file("not-qualified"))
    assert refused.exit_code == 1 and refused.output.strip()
    added = cli("credential", "add-csc", "maire.durand", "--url", "http://127.0.0.1:9", "--credential-id", "c1",
                "--cert", cert_file("qualified"))
    assert added.exit_code == 0 and "niveau qualified" in added.output
    missing = cli("credential", "add-csc", "ghost", "--url", "http://x", "--credential-id", "c",
                  "--cert", cert_file("qualified"))
    assert missing.exit_code == 1 and "Utilisateur inconnu" in missing.output
