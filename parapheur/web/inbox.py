"""Home and the signer's inbox."""

from flask import Blueprint, redirect, render_template, url_for
from flask_login import current_user, login_required

from .security import role_required

bp = Blueprint("inbox", __name__)


@bp.get("/")
@login_required
def home():
    """Send each user to the page of their main role."""
    if current_user.has_role("signer"):
        return redirect(url_for("inbox.inbox"))
    if current_user.has_role("initiator"):
        return redirect(url_for("dossiers.mine"))
    if current_user.has_role("auditor"):
        return redirect(url_for("audit_pages.search"))
    if current_user.has_role("admin"):
        return redirect(url_for("admin.index"))
    return render_template("inbox/no_role.html")


@bp.get("/inbox")
@role_required("signer")
def inbox():
    """List the dossiers waiting for the current user."""
    return render_template("inbox/inbox.html", items=[])
