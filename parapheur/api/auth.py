"""Bearer-token authentication of API calls. Cookies never authenticate the API (so CSRF does not apply):
only ``Authorization: Bearer <token>`` does, with the rights of the token's user."""

from __future__ import annotations

from flask import current_app, g, request

from .. import audit
from ..extensions import db
from ..models import ApiToken, utcnow
from ..services import tokens
from . import ratelimit
from .problems import RateLimited, Unauthorized


def authenticate() -> ApiToken:
    """The request's live token, counted against its rate limit; its use recorded (at most once a
    minute) in a transaction of its own, before the view's."""
    header = request.headers.get("Authorization", "")
    scheme, _, secret = header.partition(" ")
    if not header:
        raise Unauthorized("Authentification requise : envoyez « Authorization: Bearer <jeton> ».",
                           "Authentication required: send 'Authorization: Bearer <token>'.", code="token_missing")
    token = tokens.authenticate(db.session, secret.strip()) if scheme.lower() == "bearer" else None
    if token is None:
        raise Unauthorized("Jeton invalide, révoqué ou expiré.", "Invalid, revoked or expired token.",
                           code="token_invalid", invalid=True)
    verdict = ratelimit.hit(current_app, token.id, token.token_hash)
    g.api_rate = verdict
    if not verdict.allowed:
        raise RateLimited(verdict.reset)
    meta = audit.Meta(actor=token.user.username, ip=request.remote_addr,
                      user_agent=request.headers.get("User-Agent", "")[:300])
    tokens.touch(db.session, token, meta, utcnow())
    db.session.commit()  # bookkeeping of its own: kept even if the call itself fails
    return token


def response_headers(response):
    """RateLimit-* headers on every authenticated answer (429s included); API answers are not cached."""
    response.headers.setdefault("Cache-Control", "no-store")
    verdict = g.get("api_rate")
    if verdict is not None:
        response.headers["RateLimit-Limit"] = str(verdict.limit)
        response.headers["RateLimit-Remaining"] = str(verdict.remaining)
        response.headers["RateLimit-Reset"] = str(verdict.reset)
    return response
