"""Dossier pages: create, follow, read, act (visa, sign, reject, recall, relaunch), download."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, send_file, url_for
from flask_babel import get_locale
from flask_login import current_user, login_required

from .. import jobs
from ..extensions import db
from ..models import utcnow
from ..services import access, batches, documents, dossier_pages, dossiers, previews, signing_jobs, trail
from ..services.errors import ServiceError, Unavailable
from ..storage import store
from .request_meta import meta
from .security import role_required

bp = Blueprint("dossiers", __name__)
NOT_QUEUED = ("Action enregistrée, mais ses suites (notifications…) n'ont pas pu être mises en file d'attente : "
              "le service de tâches est indisponible.",
              "Action saved, but its follow-up work (notifications…) could not be queued: the job service is "
              "unavailable.")


def _locale() -> str:
    return str(get_locale() or "fr")


@bp.get("/dossiers")
@role_required("initiator")
def mine():
    """List the dossiers the current user started, with filters and search."""
    listing = dossier_pages.mine(db.session, current_user, status=request.args.get("status"),
                                 type_code=request.args.get("type"), query=request.args.get("q", ""),
                                 number=request.args.get("page", 1, type=int))
    return render_template("dossiers/mine.html", listing=listing, types=dossier_pages.types(db.session),
                           args=request.args)


@bp.route("/dossiers/new", methods=["GET", "POST"])
@role_required("initiator")
def new():
    """Create a draft dossier from uploaded PDFs and annexes."""
    types = dossier_pages.types(db.session)
    if request.method == "GET":
        return render_template("dossiers/new.html", types=types, form={})
    try:
        docs = [_store_upload(f) for f in request.files.getlist("documents") if f and f.filename]
        annexes = [_store_upload(f) for f in request.files.getlist("annexes") if f and f.filename]
        dossier = dossiers.create(db.session, current_user, request.form.get("title", ""),
                                  request.form.get("type", ""), docs, annexes, meta(), utcnow())
        db.session.commit()
    except ServiceError as error:
        db.session.rollback()
        return _form_error("dossiers/new.html", error, types=types, form=request.form)
    flash("Brouillon créé : vérifiez le circuit puis lancez-le." if _locale() == "fr"
          else "Draft created: check the circuit, then launch it.", "success")
    return _redirect_or_json(url_for("dossiers.show", dossier_id=dossier.id))


def _store_upload(file_storage) -> dossiers.Upload:
    sha, size = store().put_stream(file_storage.stream)
    return dossiers.Upload(file_storage.filename, sha, size)


def _form_error(template: str, error: ServiceError, **context):
    if request.accept_mimetypes.best == "application/json":
        return {"error": error.message(_locale()), "code": error.code}, error.status
    flash(error.message(_locale()), "error")
    return render_template(template, **context), error.status


def _redirect_or_json(location: str):
    if request.accept_mimetypes.best == "application/json":
        return {"location": location}, 201
    return redirect(location)


@bp.get("/dossiers/<int:dossier_id>")
@login_required
def show(dossier_id: int):
    """Show a dossier: its documents, annexes, circuit and the actions open to the user."""
    return _render_show(dossier_id)


def _render_show(dossier_id: int, status: int = 200, form: dict | None = None):
    try:
        page = dossier_pages.page(db.session, current_app._get_current_object(), current_user, dossier_id,
                                  utcnow())
    except ServiceError as error:
        abort(error.status)
    return render_template("dossiers/show.html", page=page, form=form or {}, job=_signature_job()), status


def _signature_job() -> dict | None:
    """The queued signature named by ``?job=`` (the act route sends the signer here), if it is theirs."""
    job_id = request.args.get("job")
    if not job_id:
        return None
    try:
        return batches.status(db.session, current_user, job_id)
    except ServiceError:
        return None


def _refused(error: ServiceError, dossier_id: int, kept: dict | None = None):
    """Nothing was changed: roll back, say why in place, and give back what the user typed."""
    db.session.rollback()
    if error.status == 404:
        abort(404)
    flash(error.message(_locale()), "error")
    return _render_show(dossier_id, error.status, kept)


@bp.post("/dossiers/<int:dossier_id>/act")
@login_required
def act(dossier_id: int):
    """Do an action on the dossier (launch, visa, sign, reject, recall, relaunch)."""
    now, app = utcnow(), current_app._get_current_object()
    action = request.form.get("action", "")
    try:
        jobs.require_queue()  # every action queues work (emails, completion): refused whole if Redis is down
        dossier = access.get_for(db.session, current_user, dossier_id, now, lock=True)
        if action == "sign":  # in the request, or queued (Redis): the PIN and code are checked here either way
            outcome = signing_jobs.request_signature(
                db.session, app, dossier, current_user, request.form.get("pin"), request.form.get("otp"), meta(),
                now, expected_version=request.form.get("version", type=int))
        else:
            result = dossiers.perform(
                db.session, app, dossier, current_user, action, meta(), now,
                expected_version=request.form.get("version", type=int), reason=request.form.get("reason"))
            outcome = signing_jobs.SignatureRequest(None, result, result.jobs)
        db.session.commit()
    except ServiceError as error:
        return _refused(error, dossier_id, {"reason": request.form.get("reason", ""), "action": action})
    try:
        jobs.enqueue_after_commit(outcome.jobs)
    except Unavailable as error:  # Redis went away since the check: a queued signature is marked failed
        flash(error.message(_locale()) if outcome.job else NOT_QUEUED[_locale() != "fr"], "error")
    if outcome.job is not None:
        return redirect(url_for("dossiers.show", dossier_id=dossier_id, job=outcome.job.id))
    result = outcome.result
    flash(result.message_fr if _locale() == "fr" else result.message_en, "success")
    if action in {"approve", "sign", "reject"} and current_user.has_role("signer"):
        return redirect(url_for("inbox.inbox"))
    return redirect(url_for("dossiers.show", dossier_id=dossier_id))


@bp.post("/dossiers/<int:dossier_id>/assignees")
@role_required("initiator")
def change_assignees(dossier_id: int):
    """Change a step's assignees before launch, where the document type allows it."""
    now = utcnow()
    try:
        dossier = access.get_for(db.session, current_user, dossier_id, now, lock=True)
        assignees = [a.strip() for a in request.form.get("assignees", "").replace(",", "\n").splitlines()
                     if a.strip()]
        result = dossiers.change_assignees(db.session, dossier, current_user, request.form.get("step", -1, type=int),
                                           assignees, meta(), now, request.form.get("version", type=int))
        db.session.commit()
    except ServiceError as error:
        return _refused(error, dossier_id)
    flash(result.message_fr if _locale() == "fr" else result.message_en, "success")
    return redirect(url_for("dossiers.show", dossier_id=dossier_id))


@bp.post("/dossiers/<int:dossier_id>/documents/<int:document_id>/replace")
@role_required("initiator")
def replace_document(dossier_id: int, document_id: int):
    """Replace a document of a draft, rejected or recalled dossier (to fix it before relaunch)."""
    now = utcnow()
    try:
        dossier = access.get_for(db.session, current_user, dossier_id, now, lock=True)
        upload = request.files.get("file")
        if not upload or not upload.filename:
            raise dossiers.Invalid("Choisissez un PDF.", "Choose a PDF.")
        documents.replace(db.session, dossier, document_id, current_user, _store_upload(upload), meta(), now,
                          request.form.get("version", type=int))
        db.session.commit()
    except ServiceError as error:
        return _refused(error, dossier_id)
    flash("Document remplacé." if _locale() == "fr" else "Document replaced.", "success")
    return redirect(url_for("dossiers.show", dossier_id=dossier_id))


@bp.get("/dossiers/<int:dossier_id>/documents/<int:document_id>/download")
@login_required
def download(dossier_id: int, document_id: int):
    """Download a document (its latest revision, or ?revision=N)."""
    document, revision = _revision(dossier_id, document_id, request.args.get("revision", type=int))
    trail.record_access(db.session, meta(), document.dossier, "document.downloaded", document=document,
                        revision=revision)
    db.session.commit()
    return send_file(store().path(revision.sha256), mimetype=document.content_type, as_attachment=True,
                     download_name=document.filename, etag=revision.sha256)


@bp.get("/dossiers/<int:dossier_id>/documents/<int:document_id>/pages/<int:page>.png")
@login_required
def page_image(dossier_id: int, document_id: int, page: int):
    """One page of a document as an image, for reading it in the browser."""
    document, revision = _revision(dossier_id, document_id, request.args.get("revision", type=int))
    if document.kind != "document":
        abort(404)
    try:
        path = previews.page_png(current_app.config["INSTANCE_DIR"] + "/cache/pages", revision.sha256, page,
                                 request.args.get("w", 800, type=int))
    except ServiceError as error:
        abort(error.status)
    if page == 1:
        trail.record_access(db.session, meta(), document.dossier, "document.viewed", document=document,
                            revision=revision)
        db.session.commit()
    response = send_file(path, mimetype="image/png", max_age=3600, etag=f"{revision.sha256}-{page}")
    response.headers["Cache-Control"] = "private, max-age=3600"
    return response


def _revision(dossier_id: int, document_id: int, number: int | None):
    try:
        dossier = access.get_for(db.session, current_user, dossier_id, utcnow())
        document = dossiers.get_document(dossier, document_id)
    except ServiceError:
        abort(404)
    revision = document.current if number is None else next(
        (r for r in document.revisions if r.number == number), None)
    if revision is None:
        abort(404)
    return document, revision
