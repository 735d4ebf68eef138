"""SQLAlchemy 2 engine and session per app.

Each app gets its own engine and scoped session (tests build many apps in one process); ``db.session``
always means the current app's. Sessions never commit by themselves: the view or job that owns the user
action commits once (STYLE.md: one transaction per user action).
"""

from __future__ import annotations

from flask import Flask, current_app
from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, scoped_session, sessionmaker

_KEY = "parapheur.db"


def make_engine(url: str) -> Engine:
    """Create an engine; SQLite gets foreign keys and a busy timeout so concurrent writers wait."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record):
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.close()

        return engine
    # JIT compilation (on in Debian's PostgreSQL) added 100-200 ms to our short indexed queries
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10,
                         connect_args={"options": "-c jit=off"})


class Database:
    """Holds nothing itself: everything lives on the app, so several apps can coexist."""

    def init_app(self, app: Flask) -> None:
        engine = make_engine(app.config["DATABASE_URL"])
        factory = sessionmaker(bind=engine, expire_on_commit=False)
        app.extensions[_KEY] = (engine, scoped_session(factory))

        @app.teardown_appcontext
        def _remove_session(_exc):
            app.extensions[_KEY][1].remove()

    @property
    def engine(self) -> Engine:
        return current_app.extensions[_KEY][0]

    @property
    def session(self) -> Session:
        return current_app.extensions[_KEY][1]()

    def dispose(self, app: Flask) -> None:
        """Close every pooled connection of ``app`` (tests, forks)."""
        engine, sessions = app.extensions[_KEY]
        sessions.remove()
        engine.dispose()
