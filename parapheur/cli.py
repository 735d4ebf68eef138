"""The ``parapheur`` command. Every command acts on the instance named by ``PARAPHEUR_INSTANCE_DIR``."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from . import create_app


def _app():
    app = create_app()
    return app


@click.group()
def main() -> None:
    """Parapheur: approval circuits and electronic signatures."""


@main.command()
def init() -> None:
    """Create or upgrade the database and the instance keys (CA, seal, TSA)."""
    from .services import instance

    app = _app()
    with app.app_context():
        summary = instance.initialise(app)
    click.echo(summary)


@main.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def setup(file: Path) -> None:
    """Create or update users, desks and document types from an organisation file (idempotent)."""
    from .services import instance
    from .services.organisation import OrganisationError

    app = _app()
    with app.app_context():
        try:
            result = instance.setup(file.read_text(encoding="utf-8"))
        except OrganisationError as error:
            click.echo(f"Erreur dans {file} : {error}", err=True)
            sys.exit(1)
    if result.changed:
        click.echo(f"{len(result.created)} créé(s), {len(result.updated)} mis à jour.")
    else:
        click.echo("Rien à changer : l'organisation est déjà à jour.")


@main.command()
def demo() -> None:
    """Load the demo organisation (Ville de Techniville) and sample dossiers; print the logins."""
    from .services import demo as demo_service

    app = _app()
    with app.app_context():
        logins = demo_service.load(app)
    click.echo("Comptes de démonstration (identifiant / mot de passe) :")
    for username, password, roles in logins:
        click.echo(f"  {username:<16} {password:<16} {roles}")


@main.group()
def user() -> None:
    """Manage users."""


@user.command("add")
@click.argument("username")
@click.option("--name", required=True)
@click.option("--email", default="")
@click.option("--role", "roles", multiple=True, required=True,
              type=click.Choice(["initiator", "signer", "auditor", "admin"]))
@click.password_option()
def user_add(username: str, name: str, email: str, roles: tuple[str, ...], password: str) -> None:
    """Create a user."""
    from .services import instance
    from .services.errors import ServiceError

    app = _app()
    with app.app_context():
        try:
            instance.add_user(username, name, email, roles, password)
        except ServiceError as error:
            click.echo(error.message_fr, err=True)
            sys.exit(1)
    click.echo(f"Utilisateur {username} créé.")


@main.group()
def token() -> None:
    """Manage API tokens."""


@token.command("create")
@click.argument("username")
@click.option("--name", default="cli")
def token_create(username: str, name: str) -> None:
    """Create an API token for USERNAME; the token is the last word printed."""
    from .services import tokens
    from .services.errors import ServiceError

    app = _app()
    with app.app_context():
        try:
            secret = tokens.create_for(username, name)
        except ServiceError as error:
            click.echo(error.message_fr, err=True)
            sys.exit(1)
    click.echo(f"Jeton créé pour {username} (gardez-le, il ne sera plus affiché) : {secret}")


@main.group()
def credential() -> None:
    """Signing certificates of users (PKCS#12 import, PKCS#11 token, remote CSC service)."""


def _credential_user(username: str):
    from sqlalchemy import select

    from .extensions import db
    from .models import User

    user = db.session.scalar(select(User).where(User.username == username))
    if user is None:
        click.echo(f"Utilisateur inconnu : {username}", err=True)
        sys.exit(1)
    return user


def _save_credential(make) -> None:
    from . import audit
    from .extensions import db
    from .services.errors import ServiceError

    try:
        credential = make()
        audit.record(db.session, "admin.credential_added", audit.Meta(actor="cli"), user=credential.user_id,
                     credential_kind=credential.kind, level=credential.level)
        db.session.commit()
    except ServiceError as error:
        db.session.rollback()
        click.echo(error.message_fr, err=True)
        sys.exit(1)
    click.echo(f"Certificat enregistré ({credential.kind}, niveau {credential.level}).")


@credential.command("import-p12")
@click.argument("username")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--passphrase", prompt=True, hide_input=True, help="Passphrase of the PKCS#12 file.")
@click.option("--pin", prompt="Code de signature", hide_input=True, confirmation_prompt=True)
def credential_import_p12(username: str, file: Path, passphrase: str, pin: str) -> None:
    """Import a certificate from a real CA (PKCS#12); its key is sealed by the signing PIN."""
    from .extensions import db
    from .services import credentials

    with _app().app_context():
        user = _credential_user(username)
        _save_credential(lambda: credentials.import_pkcs12(db.session, user, file.read_bytes(), passphrase, pin))


@credential.command("add-pkcs11")
@click.argument("username")
@click.option("--module", required=True, help="PKCS#11 library, e.g. /usr/lib/softhsm/libsofthsm2.so")
@click.option("--token", "token_label", required=True)
@click.option("--key-label", required=True)
@click.option("--cert", "cert_file", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--chain", "chain_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def credential_add_pkcs11(username, module, token_label, key_label, cert_file, chain_file) -> None:
    """Register a qualified key held on a PKCS#11 token (its certificate must be qualified)."""
    _register_token(username, "pkcs11", {"module": module, "token_label": token_label, "key_label": key_label},
                    cert_file, chain_file)


@credential.command("add-csc")
@click.argument("username")
@click.option("--url", required=True, help="Base URL of the CSC API v1 service.")
@click.option("--credential-id", required=True)
@click.option("--oauth-token", default=None)
@click.option("--cert", "cert_file", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--chain", "chain_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def credential_add_csc(username, url, credential_id, oauth_token, cert_file, chain_file) -> None:
    """Register a qualified key held by a remote signing service (CSC API v1)."""
    _register_token(username, "csc", {"url": url, "credential_id": credential_id, "oauth_token": oauth_token},
                    cert_file, chain_file)


def _register_token(username: str, kind: str, settings: dict, cert_file: Path, chain_file: Path | None) -> None:
    from .extensions import db
    from .services import credentials

    with _app().app_context():
        user = _credential_user(username)
        _save_credential(lambda: credentials.register_token(
            db.session, user, kind, settings, cert_file.read_text(), chain_file.read_text() if chain_file else ""))


@main.command()
@click.option("--host", default="127.0.0.1")
@click.option("--port", default=5000, type=int)
def serve(host: str, port: int) -> None:
    """Serve the web interface (development server; use gunicorn in production)."""
    app = _app()
    app.run(host=host, port=port, debug=False, use_reloader=False, threaded=True)


@main.command()
@click.option("--burst", is_flag=True, help="Stop when the queues are empty.")
@click.option("--heartbeat", default=10, show_default=True, type=click.IntRange(1, 300),
              help="Seconds between heartbeats of a busy worker; its job is deemed abandoned (and retried by "
                   "another worker) after two missed beats.")
@click.option("--maintenance-interval", default=60, show_default=True, type=click.IntRange(1, 3600),
              help="Seconds between maintenance rounds (abandoned jobs, job records, lost completion work).")
def worker(burst: bool, heartbeat: int, maintenance_interval: int) -> None:
    """Run an RQ worker with the app loaded once (serves the signing, default and mail queues)."""
    from .jobs import run_worker

    sys.exit(run_worker(_app(), burst=burst, heartbeat=heartbeat, maintenance=maintenance_interval))


@main.command()
def remind() -> None:
    """Send reminders for overdue steps and due webhook retries (run it periodically, e.g. from cron)."""
    from .extensions import db
    from .services import reminders, webhooks

    app = _app()
    with app.app_context():
        count = reminders.send_due()
        retried = webhooks.pump(app, db.session)  # webhook retries when no RQ scheduler runs
    click.echo(f"{count} relance(s) envoyée(s), {sum(retried.values())} webhook(s) retenté(s).")


@main.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True)
def validate(file: Path, as_json: bool) -> None:
    """Validate the signatures of a PDF: exit 0 if valid, 1 if not, 2 if it could not run."""
    from .services import validation

    try:
        data = file.read_bytes()
        app = _app()
        with app.app_context():
            report = validation.validate_bytes(data)
    except Exception as error:  # noqa: BLE001 - exit status 2 means "could not run"
        click.echo(f"Validation impossible : {error}", err=True)
        sys.exit(2)
    if as_json:
        click.echo(json.dumps(report.to_dict(), ensure_ascii=False, indent=2))
    else:
        click.echo(validation.describe(report))
    sys.exit(0 if report.valid else 1)


@main.group("audit")
def audit_group() -> None:
    """Audit trail."""


@audit_group.command("verify")
@click.option("--dossier", "dossier_id", type=int, default=None, help="Only the chain of this dossier.")
def audit_verify(dossier_id: int | None) -> None:
    """Verify the hash chain: exit 0 if intact, 1 naming the first broken event."""
    from . import audit
    from .extensions import db

    app = _app()
    with app.app_context():
        result = audit.verify(db.session, dossier_id)
    scope = f"du dossier {dossier_id}" if dossier_id is not None else "de l'instance"
    if result.ok:
        click.echo(f"Chaîne {scope} intacte : {result.events} événement(s), "
                   f"{result.timestamps} horodatage(s) de chaîne vérifié(s).")
        sys.exit(0)
    first = result.first
    click.echo(f"Chaîne {scope} rompue ({len(result.breaks)} anomalie(s)).", err=True)
    click.echo(f"Premier lien rompu : {first.problem} [seq={first.seq} id={first.event_id}]", err=True)
    for extra in result.breaks[1:5]:
        click.echo(f"  aussi : {extra.problem}", err=True)
    sys.exit(1)
