"""Reaching PostgreSQL and Redis from tests.

With ``PARAPHEUR_REQUIRE_SERVICES=1`` (CI) a missing service fails the test instead of skipping it, so a
green run always means the PostgreSQL and Redis tests ran.
"""

from __future__ import annotations

import os

import pytest

PG_ADMIN_URL = os.environ.get("PARAPHEUR_TEST_PG", "postgresql://127.0.0.1:5432/test")
REDIS_URL = os.environ.get("PARAPHEUR_TEST_REDIS", "redis://127.0.0.1:6379/0")


def required() -> bool:
    return os.environ.get("PARAPHEUR_REQUIRE_SERVICES") == "1"


def unavailable(what: str, error: Exception):
    message = f"{what} unavailable: {error}"
    if required():
        pytest.fail(f"{message} (PARAPHEUR_REQUIRE_SERVICES=1)")
    pytest.skip(message)


def pg_connect(dbname: str | None = None):
    import psycopg

    url = PG_ADMIN_URL if dbname is None else PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{dbname}"
    return psycopg.connect(url, autocommit=True, connect_timeout=3)


def redis_client():
    from redis import Redis

    client = Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    client.ping()
    return client
