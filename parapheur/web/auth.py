"""Log in and out, enrol TOTP, choose the language."""

from __future__ import annotations

import segno
from flask import Blueprint, current_app, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required, login_user, logout_user

from ..extensions import db
from ..models import User
from ..services import accounts
from ..services.errors import ServiceError
from .request_meta import meta

bp = Blueprint("auth", __name__)


def load_user(user_id: str) -> User | None:
    """Load the logged-in user; a session from before a password change or deactivation is refused."""
    try:
        ident, version = (int(part) for part in user_id.split(":"))
    except ValueError:
        return None
    user = db.session.get(User, ident)
    if user is None or user.session_version != version or not user.active:
        return None
    return user


@bp.route("/login", methods=["GET", "POST"])
def login():
    """Log in a user by checking the password and starting a session."""
    if request.method == "POST":
        try:
            user = accounts.authenticate(
                db.session, request.form.get("username", ""), request.form.get("password", ""),
                meta(actor=request.form.get("username", "")),
                max_failures=current_app.config["LOGIN_MAX_FAILURES"],
                lock_minutes=current_app.config["LOGIN_LOCK_MINUTES"],
            )
        except ServiceError as error:
            db.session.commit()  # the failure is counted and audited
            flash(error.message(_locale()), "error")
            return render_template("auth/login.html", username=request.form.get("username", "")), error.status
        db.session.commit()
        session.clear()
        login_user(user)
        return redirect(_safe_next(request.args.get("next")) or url_for("inbox.home"))
    return render_template("auth/login.html", username="")


@bp.post("/logout")
def logout():
    """Log out by ending the session."""
    logout_user()
    session.clear()
    return redirect(url_for("auth.login"))


@bp.route("/profile/totp", methods=["GET", "POST"])
@login_required
def totp():
    """Enrol an authenticator app: show a QR code, confirm with a first code."""
    user = current_user
    if request.method == "POST":
        try:
            accounts.confirm_totp(db.session, user, request.form.get("code", ""), meta())
        except ServiceError as error:
            flash(error.message(_locale()), "error")
            return _render_totp(user), 400
        db.session.commit()
        flash(_("Application d'authentification enregistrée."), "success")
        return redirect(url_for("inbox.home"))
    if not user.totp_secret or user.totp_confirmed and request.args.get("renew"):
        accounts.start_totp_enrolment(user)
        db.session.commit()
    return _render_totp(user)


def _render_totp(user):
    uri = accounts.totp_uri(user, current_app.config["ORG_NAME"])
    svg = segno.make(uri, error="m").svg_data_uri(scale=5, dark="#000", light="#fff")
    return render_template("auth/totp.html", qr=svg, secret=user.totp_secret, confirmed=user.totp_confirmed)


@bp.get("/lang/<code>")
def language(code: str):
    """Switch the interface language."""
    if code in current_app.config["LANGUAGES"]:
        session["lang"] = code
    return redirect(_safe_next(request.args.get("next")) or url_for("inbox.home"))


def _locale() -> str:
    from flask_babel import get_locale

    return str(get_locale())


def _safe_next(target: str | None) -> str | None:
    """Only follow local paths, so ?next= cannot send a user to another site."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return None
