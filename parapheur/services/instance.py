"""Instance life cycle: initialise (database + keys), organisation set-up, users."""

from __future__ import annotations

from pathlib import Path

from flask import Flask, current_app
from sqlalchemy import select

from .. import audit
from ..extensions import db
from ..migrate import upgrade
from ..models import User, UserRole
from . import accounts, credentials, organisation
from .errors import Invalid


def initialise(app: Flask) -> str:
    """Create or upgrade the database and create the instance keys if missing. Safe to run again."""
    Path(app.config["INSTANCE_DIR"]).mkdir(parents=True, exist_ok=True)
    upgrade(app.config["DATABASE_URL"])
    created = credentials.ensure_instance_pki(app)
    keys = "clés de l'instance créées" if created else "clés de l'instance présentes"
    return f"Instance prête dans {app.config['INSTANCE_DIR']} (base à jour, {keys})."


def setup(text: str) -> organisation.SetupResult:
    """Apply an organisation file in one transaction; nothing is written if any part is wrong."""
    session = db.session
    try:
        result = organisation.apply(session, text, audit.Meta(actor="cli"))
        for username, pin in result.pins:
            user = session.scalar(select(User).where(User.username == username))
            if credentials.ensure_personal_credential(session, current_app, user, pin):
                result = organisation.SetupResult(
                    result.created, result.updated + (f"certificate:{username}",), result.pins
                )
        session.commit()
    except BaseException:
        session.rollback()
        raise
    return result


def add_user(username: str, name: str, email: str, roles, password: str) -> User:
    session = db.session
    username = username.strip().lower()
    if not organisation.USERNAME.match(username):
        raise Invalid("Identifiant invalide (minuscules, chiffres, . _ -).", "Invalid username.")
    if session.scalar(select(User).where(User.username == username)):
        raise Invalid(f"L'utilisateur {username} existe déjà.", f"User {username} already exists.")
    if len(password) < 8:
        raise Invalid("Mot de passe trop court (8 caractères au moins).", "Password too short (8+).")
    user = User(username=username, name=name, email=email, password_hash=accounts.hash_password(password))
    user.roles = [UserRole(role=r) for r in sorted(set(roles))]
    session.add(user)
    audit.record(session, "admin.user_created", audit.Meta(actor="cli"), username=username, roles=sorted(roles))
    session.commit()
    return user
