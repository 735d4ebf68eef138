"""Auditors' pages: search every dossier, read its trail, download evidence."""

from flask import Blueprint, render_template

from .security import role_required

bp = Blueprint("audit_pages", __name__, url_prefix="/audit")


@bp.get("/")
@role_required("auditor")
def search():
    """Search the dossiers of the instance."""
    return render_template("audit/search.html", dossiers=[])
