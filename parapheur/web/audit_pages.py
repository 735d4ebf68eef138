"""Auditors' pages: search every dossier, read its trail, its chain and its validation reports, download the
signed PDFs, the bordereau and the evidence bundle. Read-only: there is no POST route here.

Auditors see every dossier. The bordereau and the evidence bundle are also open to anyone with a part in the
dossier (its initiator, assignees, their delegates). On a dossier's routes everyone else gets 404, whatever
the dossier, so its existence does not leak; the search page, which names no dossier, is 403 like /admin/.
Every download and every reading of a trail is itself recorded in the dossier's trail.
"""

from __future__ import annotations

import io

from flask import Blueprint, abort, current_app, render_template, request, send_file
from flask_babel import get_locale
from flask_login import current_user, login_required

from ..extensions import db
from ..models import Dossier, utcnow
from ..services import access, audit_search, bordereau, evidence, trail
from ..services.errors import NotFound, Unavailable
from ..storage import store
from .request_meta import meta
from .security import role_required

bp = Blueprint("audit_pages", __name__, url_prefix="/audit")


def _is_auditor() -> bool:
    return current_user.has_role("auditor")


def _dossier(dossier_id: int, *, auditors_only: bool) -> Dossier:
    """The dossier if the current user may reach it here, else 404 (existence is not disclosed)."""
    if auditors_only and not _is_auditor():
        abort(404)
    try:
        return access.get_for(db.session, current_user, dossier_id, utcnow())
    except NotFound:
        abort(404)


def _build(builder, found: Dossier) -> bytes:
    """Compose a bordereau or a bundle; an unreachable timestamping authority is a 503 with its reason."""
    try:
        return builder(db.session, current_app._get_current_object(), found)
    except Unavailable as error:
        abort(503, description=error.message(str(get_locale() or "fr")))


def _download(data: bytes, name: str, mimetype: str):
    return send_file(io.BytesIO(data), mimetype=mimetype, as_attachment=True, download_name=name,
                     max_age=0, etag=False)


@bp.get("/")
@role_required("auditor")
def search():
    """Search the dossiers of the instance by title, type, status, signer and creation dates."""
    criteria = audit_search.Criteria.from_args(request.args)
    results = audit_search.search(db.session, current_user, criteria, utcnow())
    return render_template("audit/search.html", criteria=criteria, results=results,
                           types=audit_search.document_types(db.session), statuses=trail.DOSSIER_STATUSES,
                           paris=trail.paris)


@bp.get("/dossiers/<int:dossier_id>")
@login_required
def dossier(dossier_id: int):
    """Show a dossier's timeline, chain status, validation reports and downloads to an auditor."""
    found = _dossier(dossier_id, auditors_only=True)
    overview = trail.overview(db.session, found)
    trail.record_access(db.session, meta(), found, "audit.viewed")
    db.session.commit()
    return render_template("audit/dossier.html", dossier=found, overview=overview, labels=trail,
                           paris=trail.paris)


@bp.get("/dossiers/<int:dossier_id>/documents/<int:document_id>.pdf")
@login_required
def document(dossier_id: int, document_id: int):
    """Download a document of the dossier (its latest revision, or ``?revision=N``) as an auditor."""
    found = _dossier(dossier_id, auditors_only=True)
    chosen = next((d for d in found.documents if d.id == document_id), None)
    number = request.args.get("revision", type=int)
    revision = chosen and (chosen.current if number is None else
                           next((r for r in chosen.revisions if r.number == number), None))
    if revision is None:
        abort(404)
    data = store().get(revision.sha256)
    trail.record_access(db.session, meta(), found, "document.downloaded", document=chosen, revision=revision)
    db.session.commit()
    return _download(data, chosen.filename, chosen.content_type)


@bp.get("/dossiers/<int:dossier_id>/bordereau.pdf")
@login_required
def bordereau_pdf(dossier_id: int):
    """Download the sealed bordereau of a dossier (auditors and the dossier's participants)."""
    found = _dossier(dossier_id, auditors_only=False)
    data = _build(bordereau.build, found)
    trail.record_access(db.session, meta(), found, "bordereau.downloaded")
    db.session.commit()
    return _download(data, bordereau.filename(found), "application/pdf")


@bp.get("/dossiers/<int:dossier_id>/evidence.zip")
@login_required
def evidence_zip(dossier_id: int):
    """Download the evidence bundle of a dossier (auditors and the dossier's participants)."""
    found = _dossier(dossier_id, auditors_only=False)
    data = _build(evidence.bundle, found)
    trail.record_access(db.session, meta(), found, "evidence.downloaded")
    db.session.commit()
    return _download(data, evidence.filename(found), "application/zip")

