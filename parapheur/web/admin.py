"""Administrators' pages: the organisation (users, desks, document types and circuits), signing locks."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from sqlalchemy import select

from .. import audit
from ..extensions import db
from ..models import JobRecord, SigningCredential, User
from ..services import batches, organisation
from ..services.organisation import OrganisationError
from .request_meta import meta
from .security import role_required

bp = Blueprint("admin", __name__, url_prefix="/admin")


@bp.get("/")
@role_required("admin")
def index():
    """List users, their roles and signing credentials."""
    users = db.session.scalars(select(User).order_by(User.username)).all()
    credentials = db.session.scalars(select(SigningCredential).where(SigningCredential.revoked_at.is_(None))).all()
    by_user: dict[int, list] = {}
    for credential in credentials:
        by_user.setdefault(credential.user_id, []).append(credential)
    failed = db.session.scalars(select(JobRecord).where(JobRecord.status.in_(["failed", "partial"]))
                                .order_by(JobRecord.updated_at.desc()).limit(20)).all()
    return render_template("admin/index.html", users=users, credentials=by_user, failed_jobs=failed,
                           job_reasons={j.id: batches.failure_reason(j) for j in failed})


@bp.route("/organisation", methods=["GET", "POST"])
@role_required("admin")
def organisation_file():
    """Edit users, desks, document types and circuits as an organisation file, checked before saving."""
    if request.method == "GET":
        return render_template("admin/organisation.html", text=organisation.export(db.session), error=None)
    text = request.form.get("organisation", "")
    try:
        result = organisation.apply(db.session, text, meta())
        db.session.commit()
    except OrganisationError as error:
        db.session.rollback()
        return render_template("admin/organisation.html", text=text, error=error), 400
    flash(f"{len(result.created)} créé(s), {len(result.updated)} modifié(s)." if result.changed
          else "Aucun changement.", "success")
    return redirect(url_for("admin.organisation_file"))


@bp.post("/credentials/<int:credential_id>/unlock")
@role_required("admin")
def unlock(credential_id: int):
    """Unlock signing after too many wrong PINs or codes."""
    credential = db.session.get(SigningCredential, credential_id)
    if credential is None:
        abort(404)
    credential.locked, credential.failed_attempts = False, 0
    audit.record(db.session, "admin.credential_unlocked", meta(), user=credential.user.username)
    db.session.commit()
    flash("Signature débloquée.", "success")
    return redirect(url_for("admin.index"))
