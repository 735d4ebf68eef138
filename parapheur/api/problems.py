"""Errors as ``application/problem+json`` (RFC 9457): French ``detail`` by default, English when the
client sends ``Accept-Language: en``; a stable ``code`` says which error it is, whatever the language."""

from __future__ import annotations

import logging

from flask import Response, jsonify, request
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException

from ..extensions import db
from ..services.errors import ServiceError

log = logging.getLogger(__name__)

PROBLEM = "application/problem+json"

TITLES = {
    400: ("Requête invalide", "Bad request"),
    401: ("Authentification requise", "Authentication required"),
    403: ("Accès refusé", "Forbidden"),
    404: ("Ressource introuvable", "Not found"),
    405: ("Méthode non permise", "Method not allowed"),
    409: ("Conflit", "Conflict"),
    413: ("Contenu trop volumineux", "Content too large"),
    415: ("Type de contenu non pris en charge", "Unsupported media type"),
    422: ("Document impossible à traiter", "Unprocessable document"),
    429: ("Trop de requêtes", "Too many requests"),
    500: ("Erreur interne", "Internal error"),
    503: ("Service indisponible", "Service unavailable"),
}

#: details for errors raised by Flask/Werkzeug rather than by our code
HTTP_DETAILS = {
    400: ("Requête mal formée.", "Malformed request."),
    404: ("Ressource introuvable.", "Resource not found."),
    405: ("Cette méthode n'est pas permise sur cette ressource.", "This method is not allowed on this resource."),
    413: ("Envoi trop volumineux : la limite est de {mb} Mo.", "Upload too large: the limit is {mb} MB."),
    415: ("Type de contenu non pris en charge.", "Unsupported media type."),
    500: ("Erreur interne : l'incident est consigné.", "Internal error: the incident is logged."),
}


class Unauthorized(ServiceError):
    """No token, or a token that is unknown, revoked, or whose user is disabled."""

    status = 401
    code = "unauthorized"

    def __init__(self, message_fr: str, message_en: str, *, code: str | None = None, invalid: bool = False):
        super().__init__(message_fr, message_en, code=code)
        self.invalid = invalid


class RateLimited(ServiceError):
    status = 429
    code = "rate_limited"

    def __init__(self, retry_after: int):
        super().__init__(f"Trop de requêtes avec ce jeton : réessayez dans {retry_after} s.",
                         f"Too many requests with this token: retry in {retry_after} s.")
        self.retry_after = retry_after


def request_locale() -> str:
    return request.accept_languages.best_match(["fr", "en"], default="fr")


def problem(status: int, detail: str, locale: str = "fr", **extra) -> Response:
    """A problem+json response."""
    titles = TITLES.get(status, ("Erreur", "Error"))
    body = {"type": "about:blank", "title": titles[1] if locale == "en" else titles[0], "status": status,
            "detail": detail}
    body.update({k: v for k, v in extra.items() if v is not None})
    response = jsonify(body)
    response.status_code = status
    response.mimetype = PROBLEM
    response.headers["Content-Language"] = locale
    return response


def from_service_error(error: ServiceError) -> Response:
    db.session.rollback()
    locale = request_locale()
    response = problem(error.status, error.message(locale), locale, code=error.code,
                       field=getattr(error, "field", None))
    if isinstance(error, Unauthorized):
        challenge = 'Bearer realm="parapheur"'
        if error.invalid:
            challenge += ', error="invalid_token"'
        response.headers["WWW-Authenticate"] = challenge
    if isinstance(error, RateLimited):
        response.headers["Retry-After"] = str(error.retry_after)
    return response


def from_http_exception(error: HTTPException) -> Response:
    db.session.rollback()
    status = error.code or 500
    locale = request_locale()
    from flask import current_app

    fr, en = HTTP_DETAILS.get(status, TITLES.get(status, ("Erreur.", "Error.")))
    detail = (en if locale == "en" else fr).format(mb=current_app.config.get("MAX_UPLOAD_MB"))
    response = problem(status, detail, locale, code=f"http_{status}")
    if status == 405 and getattr(error, "valid_methods", None):
        response.headers["Allow"] = ", ".join(error.valid_methods)
    return response


def from_database_error(error: OperationalError) -> Response:
    log.exception("database unavailable")
    db.session.rollback()
    locale = request_locale()
    return problem(503, "Base de données indisponible : réessayez dans un instant." if locale == "fr"
                   else "Database unavailable: try again shortly.", locale, code="database_unavailable")


def register(bp) -> None:
    bp.register_error_handler(ServiceError, from_service_error)
    bp.register_error_handler(HTTPException, from_http_exception)
    bp.register_error_handler(OperationalError, from_database_error)

    @bp.after_app_request
    def routing_problems(response: Response) -> Response:
        """Unknown paths and methods under the API prefix never reach a view: answer them the same way."""
        error = request.routing_exception
        if isinstance(error, HTTPException) and request.path.startswith(f"{bp.url_prefix}/") \
                and error.code in (404, 405):
            replacement = from_http_exception(error)
            for name, value in response.headers.items():  # keep the security headers already set
                if name.lower() not in {"content-type", "content-length", "content-language"}:
                    replacement.headers.setdefault(name, value)
            return replacement
        return response
