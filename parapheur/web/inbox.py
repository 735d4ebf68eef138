"""Home, the signer's inbox, batch signing and delegations."""

from __future__ import annotations

from datetime import datetime, time
from zoneinfo import ZoneInfo

from flask import Blueprint, abort, current_app, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import get_locale
from flask_login import current_user, login_required

from .. import jobs
from ..extensions import db
from ..models import utcnow
from ..services import batches, delegations
from ..services import inbox as inbox_service
from ..services.errors import Invalid, ServiceError, Unavailable
from .request_meta import meta
from .security import role_required

bp = Blueprint("inbox", __name__)
PARIS = ZoneInfo("Europe/Paris")


def _locale() -> str:
    return str(get_locale() or "fr")


@bp.get("/")
@login_required
def home():
    """Send each user to the page of their main role."""
    for role, endpoint in (("signer", "inbox.inbox"), ("initiator", "dossiers.mine"),
                           ("auditor", "audit_pages.search"), ("admin", "admin.index")):
        if current_user.has_role(role):
            return redirect(url_for(endpoint))
    return render_template("inbox/no_role.html")


@bp.get("/inbox")
@role_required("signer")
def inbox():
    """List the dossiers waiting for the current user, with counts, filters, sorting and pages."""
    now = utcnow()
    kind = request.args.get("kind")
    listing = inbox_service.page(db.session, current_user, now, kind=kind, sort=request.args.get("sort", "recent"),
                                 number=request.args.get("page", 1, type=int),
                                 late_only=request.args.get("late") == "1")
    counts = inbox_service.counts(db.session, current_user, now)
    return render_template("inbox/inbox.html", listing=listing, counts=counts, args=request.args)


@bp.post("/inbox/batch")
@role_required("signer")
def batch():
    """Sign (or approve) the selected dossiers in one go, authenticating once."""
    ids = request.form.getlist("dossier", type=int)
    try:
        jobs.require_queue()  # Redis down: refuse before recording anything
        job, work = batches.start(db.session, current_app._get_current_object(), current_user, ids,
                                  request.form.get("pin"), request.form.get("otp"), meta())
        db.session.commit()
    except ServiceError as error:
        db.session.rollback()
        flash(error.message(_locale()), "error")
        return redirect(url_for("inbox.inbox"))
    try:
        jobs.enqueue_after_commit(work)  # a failure marks the JobRecord failed with the reason
    except Unavailable as error:
        flash(error.message(_locale()), "error")
    return redirect(url_for("inbox.batch_status", job_id=job.id))


@bp.get("/batches/<job_id>")
@role_required("signer")
def batch_status(job_id: str):
    """Show the progress and results of a batch."""
    try:
        status = batches.status(db.session, current_user, job_id)
    except ServiceError:
        abort(404)
    return render_template("inbox/batch.html", job=status)


@bp.get("/batches/<job_id>.json")
@role_required("signer")
def batch_status_json(job_id: str):
    """Progress of a batch, polled by the progress bar."""
    try:
        return jsonify(batches.status(db.session, current_user, job_id))
    except ServiceError:
        abort(404)


@bp.route("/delegations", methods=["GET", "POST"])
@role_required("signer")
def delegation_list():
    """Set a delegate for an absence; list the delegations given and received."""
    now = utcnow()
    status = 200
    if request.method == "POST":
        try:
            start = _parse_day(request.form.get("start"), time.min)
            end = _parse_day(request.form.get("end"), time.max)
            delegations.create(db.session, current_user, request.form.get("delegate", ""), start, end, meta())
            db.session.commit()
            flash("Délégation enregistrée." if _locale() == "fr" else "Delegation saved.", "success")
            return redirect(url_for("inbox.delegation_list"))
        except ServiceError as error:
            db.session.rollback()
            flash(error.message(_locale()), "error")
            status = error.status
    given, received = delegations.mine(db.session, current_user, now)
    return render_template("inbox/delegations.html", given=given, received=received, form=request.form), status


@bp.post("/delegations/<int:delegation_id>/end")
@role_required("signer")
def end_delegation(delegation_id: int):
    """End a delegation now."""
    try:
        delegations.end(db.session, current_user, delegation_id, utcnow(), meta())
        db.session.commit()
    except ServiceError:
        db.session.rollback()
        abort(404)
    return redirect(url_for("inbox.delegation_list"))


def _parse_day(value: str | None, at: time) -> datetime:
    try:
        day = datetime.strptime(value or "", "%Y-%m-%d").date()
    except ValueError:
        raise Invalid("Date invalide (AAAA-MM-JJ).", "Invalid date (YYYY-MM-DD).", code="bad_date") from None
    return datetime.combine(day, at, tzinfo=PARIS).astimezone(ZoneInfo("UTC"))
