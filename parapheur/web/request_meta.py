"""Who and where a request comes from, for the audit trail."""

from flask import request
from flask_login import current_user

from ..audit import Meta


def meta(on_behalf_of: str | None = None, actor: str | None = None) -> Meta:
    if actor is None and getattr(current_user, "is_authenticated", False):
        actor = current_user.username
    return Meta(
        actor=actor,
        on_behalf_of=on_behalf_of,
        ip=request.remote_addr,
        user_agent=request.headers.get("User-Agent", "")[:300],
    )
