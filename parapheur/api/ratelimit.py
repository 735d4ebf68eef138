"""Per-token rate limiting: a fixed-window counter (``API_RATE_LIMIT`` requests per ``API_RATE_WINDOW``
seconds), kept in Redis when ``PARAPHEUR_REDIS_URL`` is set, else in the database, so that every web
process counts the same requests."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from flask import Flask
from sqlalchemy import delete

from ..extensions import db
from ..models import ApiRateWindow

log = logging.getLogger(__name__)

DEFAULT_LIMIT = 120
DEFAULT_WINDOW = 60


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    limit: int
    remaining: int
    reset: int
    """Seconds until the window ends."""


def hit(app: Flask, token_id: int, token_hash: str, now: float | None = None) -> Verdict:
    """Count one request of a token; say whether it is within the limit. Redis keys are named by the
    token's hash, so instances sharing a Redis server never share counters."""
    limit = int(app.config.get("API_RATE_LIMIT") or DEFAULT_LIMIT)
    window = int(app.config.get("API_RATE_WINDOW") or DEFAULT_WINDOW)
    now = time.time() if now is None else now
    start = int(now // window * window)
    reset = max(1, int(start + window - now + 0.999))
    try:
        count = _redis_hit(app, token_hash, start, window) if app.config.get("REDIS_URL") else \
            _database_hit(token_id, start, window)
    except Exception:  # noqa: BLE001 - a counter we cannot reach must not take the API down
        log.exception("rate limit counter unavailable; request let through")
        return Verdict(True, limit, limit, reset)
    return Verdict(count <= limit, limit, max(limit - count, 0), reset)


def _redis_hit(app: Flask, token_hash: str, start: int, window: int) -> int:
    from redis import Redis

    client = app.extensions.get("parapheur.ratelimit.redis")
    if client is None:
        client = app.extensions["parapheur.ratelimit.redis"] = Redis.from_url(
            app.config["REDIS_URL"], socket_timeout=2, socket_connect_timeout=2)
    key = f"parapheur:api-rate:{token_hash[:32]}:{start}"
    pipe = client.pipeline()
    pipe.incr(key)
    pipe.expire(key, window * 2)
    count, _ = pipe.execute()
    return int(count)


def _database_hit(token_id: int, start: int, window: int) -> int:
    """An atomic upsert in its own short transaction (INSERT … ON CONFLICT DO UPDATE … RETURNING)."""
    engine = db.engine
    if engine.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    table = ApiRateWindow.__table__
    statement = insert(table).values(token_id=token_id, window=start, count=1)
    statement = statement.on_conflict_do_update(
        index_elements=[table.c.token_id, table.c.window], set_={"count": table.c.count + 1}
    ).returning(table.c.count)
    with engine.begin() as connection:
        count = connection.execute(statement).scalar_one()
        if count == 1:  # first request of a new window: forget the old ones
            connection.execute(delete(table).where(table.c.token_id == token_id, table.c.window < start))
    return int(count)
