"""Configuration: defaults, then ``PARAPHEUR_*`` environment variables, then explicit overrides.

Nothing is read at import time: workers, tests and the CLI each build their own configuration, so that
one process can hold several apps (tests) and the environment is read when the app is created.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

#: Environment variables understood, with their meaning. ``load`` reads each as ``PARAPHEUR_<NAME>``.
ENV_SETTINGS = {
    "INSTANCE_DIR": "folder holding the SQLite database, blobs, keys and the secret key (default ./instance)",
    "DATABASE_URL": "SQLAlchemy URL; postgresql+psycopg://… for production (default: SQLite in the instance)",
    "REDIS_URL": "redis://… to run jobs on RQ workers (default: jobs run inline in the request)",
    "STORAGE_URL": "blob store: a folder path (default <instance>/blobs) or s3://bucket/prefix",
    "S3_ENDPOINT_URL": "S3-compatible endpoint for s3:// storage (default: AWS; credentials from AWS_* variables)",
    "TSA_URL": "RFC 3161 timestamp authority (default: the instance's in-process TSA)",
    "SECRET_KEY": "session signing key (default: generated once and kept in the instance folder)",
    "BASE_URL": "public address used in emails and webhooks (default http://127.0.0.1:5000)",
    "SMTP_HOST": "SMTP server for notifications (default: none, emails are logged only)",
    "SMTP_PORT": "SMTP port (default 25)",
    "SMTP_USER": "SMTP login",
    "SMTP_PASSWORD": "SMTP password",
    "SMTP_STARTTLS": "1 to use STARTTLS",
    "MAIL_FROM": "sender address of notifications",
    "TRUST_ROOTS": "PEM bundle of extra trusted roots (real CAs whose certificates signers import)",
    "ORG_NAME": "organisation name used for the instance keys (default: Parapheur)",
    "MAX_UPLOAD_MB": "largest accepted upload in megabytes (default 100)",
    "API_RATE_LIMIT": "API requests allowed per minute and per token (default 120)",
}

DEFAULTS = {
    "ORG_NAME": "Parapheur",
    "BASE_URL": "http://127.0.0.1:5000",
    "SMTP_PORT": 25,
    "SMTP_STARTTLS": False,
    "MAIL_FROM": "parapheur@localhost",
    "MAX_UPLOAD_MB": 100,
    "API_RATE_LIMIT": 120,
    "LOGIN_MAX_FAILURES": 5,
    "PASSWORD_HASH_PROFILE": "default",
    "LOGIN_LOCK_MINUTES": 15,
    "SIGNING_MAX_FAILURES": 5,
    "BABEL_DEFAULT_LOCALE": "fr",
    "BABEL_DEFAULT_TIMEZONE": "Europe/Paris",
    "LANGUAGES": ("fr", "en"),
    "WTF_CSRF_TIME_LIMIT": None,
    "SESSION_COOKIE_HTTPONLY": True,
    "SESSION_COOKIE_SAMESITE": "Lax",
    "REMEMBER_COOKIE_HTTPONLY": True,
    "REMEMBER_COOKIE_SAMESITE": "Lax",
    "SESSION_COOKIE_NAME": "parapheur_session",
}

_INT_SETTINGS = {"SMTP_PORT", "MAX_UPLOAD_MB", "API_RATE_LIMIT"}
_BOOL_SETTINGS = {"SMTP_STARTTLS"}


def _coerce(name: str, raw: str):
    if name in _INT_SETTINGS:
        return int(raw)
    if name in _BOOL_SETTINGS:
        return raw.strip().lower() in {"1", "true", "yes", "on"}
    return raw


def load(overrides: dict | None = None, environ: os._Environ | dict | None = None) -> dict:
    """Return the whole configuration of one app: defaults < environment < overrides."""
    env = os.environ if environ is None else environ
    config = dict(DEFAULTS)
    for name in ENV_SETTINGS:
        raw = env.get(f"PARAPHEUR_{name}")
        if raw not in (None, ""):
            config[name] = _coerce(name, raw)
    config.update(overrides or {})

    instance = Path(config.get("INSTANCE_DIR") or "instance").resolve()
    config["INSTANCE_DIR"] = str(instance)
    config.setdefault("DATABASE_URL", f"sqlite:///{instance / 'parapheur.sqlite3'}")
    config.setdefault("STORAGE_URL", str(instance / "blobs"))
    config.setdefault("KEYS_DIR", str(instance / "keys"))
    config["MAX_CONTENT_LENGTH"] = int(config["MAX_UPLOAD_MB"]) * 1024 * 1024 + 1024 * 1024
    https = str(config["BASE_URL"]).startswith("https://")
    config.setdefault("SESSION_COOKIE_SECURE", https)
    config.setdefault("REMEMBER_COOKIE_SECURE", https)
    if not config.get("SECRET_KEY"):
        config["SECRET_KEY"] = _instance_secret(instance)
    return config


def _instance_secret(instance: Path) -> str:
    """Read the instance's secret key, creating it on first run so sessions survive restarts."""
    path = instance / "secret_key"
    if not path.exists():
        instance.mkdir(parents=True, exist_ok=True)
        tmp = instance / f".secret_key.{os.getpid()}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_hex(32))
        try:  # several processes may start at once: the first link wins, the others read it
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    return path.read_text().strip()
