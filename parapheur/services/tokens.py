"""API bearer tokens: created by a user for themselves (profile page) or by the CLI, shown once, stored as
their sha256 only, revocable. A token acts with its user's rights and nothing more."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from .. import audit
from ..models import ApiToken, User
from .errors import Invalid, NotFound

#: tokens start with it, so secret scanners and people recognise them
SCHEME = "ppt_"
#: ``last_used_at`` (and the ``api.token_used`` audit event) is written at most this often per token
TOUCH_EVERY = timedelta(seconds=60)


def hash_token(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create(session: Session, user: User, name: str, meta: audit.Meta, now: datetime) -> tuple[ApiToken, str]:
    """Create a token for ``user``; return the row and the secret (shown once, never stored)."""
    name = (name or "").strip()
    if not name:
        raise Invalid("Donnez un nom au jeton (par exemple le logiciel qui l'utilisera).",
                      "Give the token a name (for instance the software that will use it).", code="name_required")
    if len(name) > 120:
        raise Invalid("Nom trop long (120 caractères au plus).", "Name too long (120 max).", code="name_too_long")
    if not user.active:
        raise Invalid("Ce compte est désactivé.", "This account is disabled.", code="inactive_user")
    secret = SCHEME + secrets.token_urlsafe(32)
    token = ApiToken(user=user, name=name, token_hash=hash_token(secret), prefix=secret[:12], created_at=now)
    session.add(token)
    session.flush()
    audit.record(session, "token.created", meta, token_id=token.id, prefix=token.prefix, name=name,
                 user=user.username)
    return token, secret


def create_for(username: str, name: str = "cli") -> str:
    """``parapheur token create USERNAME``: create a token in its own transaction; return the secret."""
    from ..extensions import db
    from ..models import utcnow

    session = db.session
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise NotFound(f"Utilisateur inconnu : {username}.", f"Unknown user: {username}.")
    try:
        _token, secret = create(session, user, name, audit.Meta(actor="cli"), utcnow())
        session.commit()
    except BaseException:
        session.rollback()
        raise
    return secret


def list_for(session: Session, user: User) -> list[ApiToken]:
    return list(session.scalars(select(ApiToken).where(ApiToken.user_id == user.id)
                                .order_by(ApiToken.revoked_at.isnot(None), ApiToken.created_at.desc())))


def revoke(session: Session, user: User, token_id: int, meta: audit.Meta, now: datetime) -> ApiToken:
    """Revoke one of ``user``'s own tokens (revoking twice is harmless)."""
    token = session.scalar(select(ApiToken).where(ApiToken.id == token_id, ApiToken.user_id == user.id))
    if token is None:
        raise NotFound("Jeton introuvable.", "Token not found.")
    if token.revoked_at is None:
        token.revoked_at = now
        audit.record(session, "token.revoked", meta, token_id=token.id, prefix=token.prefix, name=token.name,
                     user=user.username)
    return token


def authenticate(session: Session, secret: str) -> ApiToken | None:
    """The live token whose secret this is, with an active user; None otherwise."""
    if not secret or not secret.startswith(SCHEME) or len(secret) > 200:
        return None
    token = session.scalar(select(ApiToken).where(ApiToken.token_hash == hash_token(secret)))
    if token is None or token.revoked_at is not None or not token.user.active:
        return None
    return token


def touch(session: Session, token: ApiToken, meta: audit.Meta, now: datetime) -> bool:
    """Record the use of a token: ``last_used_at`` and an ``api.token_used`` audit event, at most once per
    ``TOUCH_EVERY`` per token (one conditional UPDATE decides, so concurrent requests write once)."""
    if token.last_used_at is not None and now - token.last_used_at < TOUCH_EVERY:
        return False  # most requests: no write at all
    result = session.execute(
        update(ApiToken)
        .where(ApiToken.id == token.id,
               or_(ApiToken.last_used_at.is_(None), ApiToken.last_used_at <= now - TOUCH_EVERY))
        .values(last_used_at=now)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        return False
    audit.record(session, "api.token_used", meta, token_id=token.id, prefix=token.prefix, name=token.name)
    return True
