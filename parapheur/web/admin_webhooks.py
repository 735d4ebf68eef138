"""Administrators' webhook pages: register receivers per event type, follow every delivery, retry."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import current_user

from ..extensions import db
from ..jobs import enqueue_after_commit
from ..models import utcnow
from ..services import webhooks
from ..services.errors import NotFound, ServiceError
from .request_meta import meta
from .security import role_required

bp = Blueprint("admin_webhooks", __name__, url_prefix="/admin/webhooks")
STATUSES = ("pending", "delivered", "failed")


def _locale() -> str:
    return str(get_locale() or "fr")


@bp.get("/")
@role_required("admin")
def index():
    """List webhooks and the latest deliveries, with the form that registers a webhook."""
    return _index_page({})


@bp.post("/")
@role_required("admin")
def create():
    """Register a webhook."""
    form = request.form
    try:
        hook = webhooks.create(db.session, current_user, form.get("url", ""), form.getlist("events"),
                               form.get("description", ""), form.get("secret"), meta(), utcnow())
    except ServiceError as error:
        db.session.rollback()
        flash(error.message(_locale()), "error")
        return _index_page(form), 400
    db.session.commit()
    flash(_("Webhook enregistré. Configurez son secret chez le destinataire."), "success")
    return redirect(url_for("admin_webhooks.show", webhook_id=hook.id))


@bp.get("/<int:webhook_id>")
@role_required("admin")
def show(webhook_id: int):
    """Show a webhook, its secret and its deliveries."""
    return _show_page(_hook(webhook_id))


@bp.post("/<int:webhook_id>")
@role_required("admin")
def update(webhook_id: int):
    """Change a webhook's address, events, description or state."""
    hook, form = _hook(webhook_id), request.form
    try:
        webhooks.update_hook(db.session, hook, url=form.get("url", ""), events=form.getlist("events"),
                             description=form.get("description", ""), active=form.get("active") == "1", meta=meta())
    except ServiceError as error:
        db.session.rollback()
        flash(error.message(_locale()), "error")
        return _show_page(_hook(webhook_id)), 400
    db.session.commit()
    flash(_("Webhook modifié."), "success")
    return redirect(url_for("admin_webhooks.show", webhook_id=webhook_id))


@bp.post("/<int:webhook_id>/rotate")
@role_required("admin")
def rotate(webhook_id: int):
    """Replace a webhook's secret."""
    webhooks.rotate_secret(db.session, _hook(webhook_id), meta())
    db.session.commit()
    flash(_("Nouveau secret créé : mettez-le à jour chez le destinataire."), "success")
    return redirect(url_for("admin_webhooks.show", webhook_id=webhook_id))


@bp.post("/<int:webhook_id>/delete")
@role_required("admin")
def delete(webhook_id: int):
    """Delete a webhook and its delivery log."""
    webhooks.delete(db.session, _hook(webhook_id), meta())
    db.session.commit()
    flash(_("Webhook supprimé."), "success")
    return redirect(url_for("admin_webhooks.index"))


@bp.post("/<int:webhook_id>/ping")
@role_required("admin")
def ping(webhook_id: int):
    """Send a test event to a webhook."""
    work = webhooks.ping(db.session, _hook(webhook_id), utcnow())
    db.session.commit()
    enqueue_after_commit(work)
    flash(_("Événement de test envoyé : voir le journal des envois."), "success")
    return redirect(url_for("admin_webhooks.show", webhook_id=webhook_id))


@bp.post("/deliveries/<int:delivery_id>/retry")
@role_required("admin")
def retry(delivery_id: int):
    """Try a delivery again now."""
    try:
        work = webhooks.retry(db.session, delivery_id, utcnow())
    except NotFound:
        abort(404)
    db.session.commit()
    enqueue_after_commit(work)
    flash(_("Nouvel essai lancé."), "success")
    back = request.form.get("back", "")
    return redirect(back if back.startswith("/admin/webhooks") else url_for("admin_webhooks.index"))


@bp.post("/pump")
@role_required("admin")
def pump():
    """Send every delivery whose next attempt is due (when no worker does it)."""
    counts = webhooks.pump(current_app._get_current_object(), db.session)
    flash(_("Envois dus traités : %(n)s.", n=sum(counts.values())), "success")
    return redirect(url_for("admin_webhooks.index"))


def _hook(webhook_id: int):
    try:
        return webhooks.get(db.session, webhook_id)
    except NotFound:
        abort(404)


def _index_page(form):
    status = request.args.get("status") if request.args.get("status") in STATUSES else None
    return render_template("admin/webhooks.html", hooks=webhooks.list_hooks(db.session),
                           deliveries=webhooks.recent_deliveries(db.session, status=status), status=status,
                           events=webhooks.EVENTS, form=form, locale=_locale())


def _show_page(hook):
    return render_template("admin/webhook.html", hook=hook, events=webhooks.EVENTS, locale=_locale(),
                           deliveries=webhooks.recent_deliveries(db.session, webhook_id=hook.id, limit=100))
