"""Error pages: HTML for people, problem+json (RFC 9457) under /api/."""

from __future__ import annotations

from flask import Flask, jsonify, render_template, request
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

TITLES = {
    400: "Requête invalide",
    401: "Authentification requise",
    403: "Accès refusé",
    404: "Page introuvable",
    409: "Conflit",
    413: "Fichier trop volumineux",
    422: "Document impossible à traiter",
    429: "Trop de requêtes",
    500: "Erreur interne",
    503: "Service indisponible",
}


def problem(status: int, detail: str, **extra):
    """A problem+json response (RFC 9457)."""
    body = {"type": "about:blank", "title": TITLES.get(status, "Erreur"), "status": status, "detail": detail}
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
        return problem(status, detail or TITLES.get(status, "Erreur"))
    return render_template("errors/error.html", status=status, title=TITLES.get(status), detail=detail), status
