"""Error pages: HTML for people, problem+json (RFC 9457) under /api/."""

from __future__ import annotations

from flask import Flask, jsonify, render_template, request
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

TITLES = {
    400: _l("Requête invalide"),
    401: _l("Authentification requise"),
    403: _l("Accès refusé"),
    404: _l("Page introuvable"),
    409: _l("Conflit"),
    413: _l("Fichier trop volumineux"),
    422: _l("Document impossible à traiter"),
    429: _l("Trop de requêtes"),
    500: _l("Erreur interne"),
    503: _l("Service indisponible"),
}


def problem(status: int, detail: str, **extra):
    """A problem+json response (RFC 9457)."""
    body = {"type": "about:blank", "title": str(TITLES.get(status, _l("Erreur"))), "status": status,
            "detail": detail}
    body.update(extra)
    response = jsonify(body)
    response.status_code = status
    response.mimetype = "application/problem+json"
    return response


def register(app: Flask) -> None:
    @app.errorhandler(CSRFError)
    def csrf_error(error):
        return _render(400, _("Le formulaire a expiré ou n'est pas valide : rechargez la page et recommencez."))

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        detail = error.description if error.code not in (403, 404, 500) else None
        return _render(error.code or 500, detail)


def _render(status: int, detail: str | None):
    if request.path.startswith("/api/"):
        return problem(status, detail or str(TITLES.get(status, _l("Erreur"))))
    return render_template("errors/error.html", status=status, title=TITLES.get(status, _l("Erreur")),
                           detail=detail), status
