"""The user's API tokens, in their profile: create (shown once), list, revoke."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import current_user, login_required

from ..extensions import db
from ..models import utcnow
from ..services import tokens
from ..services.errors import ServiceError
from .request_meta import meta

bp = Blueprint("profile_tokens", __name__, url_prefix="/profile/tokens")


@bp.get("/")
@login_required
def index():
    """List the current user's API tokens, with the form that creates one."""
    return _page()


@bp.post("/")
@login_required
def create():
    """Create an API token and show its secret once."""
    try:
        _token, secret = tokens.create(db.session, current_user, request.form.get("name", ""), meta(), utcnow())
    except ServiceError as error:
        db.session.rollback()
        flash(error.message(str(get_locale() or "fr")), "error")
        return _page(name=request.form.get("name", "")), 400
    db.session.commit()
    return _page(secret=secret)


@bp.post("/<int:token_id>/revoke")
@login_required
def revoke(token_id: int):
    """Revoke one of the current user's tokens."""
    try:
        tokens.revoke(db.session, current_user, token_id, meta(), utcnow())
    except ServiceError as error:
        db.session.rollback()
        flash(error.message(str(get_locale() or "fr")), "error")
        return redirect(url_for("profile_tokens.index"))
    db.session.commit()
    flash(_("Jeton révoqué : il ne permet plus d'appeler l'API."), "success")
    return redirect(url_for("profile_tokens.index"))


def _page(secret: str | None = None, name: str = ""):
    return render_template("profile/tokens.html", tokens=tokens.list_for(db.session, current_user),
                           secret=secret, name=name)
