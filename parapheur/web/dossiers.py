"""Initiators' pages: create, follow, recall and relaunch dossiers."""

from flask import Blueprint, render_template

from .security import role_required

bp = Blueprint("dossiers", __name__)


@bp.get("/dossiers")
@role_required("initiator")
def mine():
    """List the dossiers the current user started."""
    return render_template("dossiers/mine.html", dossiers=[])


@bp.get("/dossiers/new")
@role_required("initiator")
def new():
    """Show the form that creates a dossier."""
    return render_template("dossiers/new.html")
