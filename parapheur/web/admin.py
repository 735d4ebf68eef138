"""Administrators' pages: users, desks, document types."""

from flask import Blueprint, render_template

from .security import role_required

bp = Blueprint("admin", __name__, url_prefix="/admin")


@bp.get("/")
@role_required("admin")
def index():
    """Show the administration home."""
    return render_template("admin/index.html")
