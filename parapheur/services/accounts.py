"""Accounts: password hashing, login with throttling, TOTP enrolment."""

from __future__ import annotations

from datetime import timedelta

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from .. import audit
from ..models import LoginFailure, User, utcnow
from .errors import Invalid, Throttled

_hasher = PasswordHasher()
#: verified against when the username is unknown, so timing does not reveal which usernames exist
_DUMMY_HASH = _hasher.hash("not-a-password")


def configure_hasher(profile: str) -> None:
    """``default``: argon2-cffi's defaults (argon2id, RFC 9106 low-memory: 64 MiB, 3 passes); ``cheapest``:
    for the test suite only, where hundreds of hashes would otherwise dominate its run time. Existing
    hashes keep verifying whatever the profile (argon2 stores its parameters) and are re-hashed at the next
    login when the profile is stronger."""
    global _hasher, _DUMMY_HASH
    from argon2 import profiles

    wanted = PasswordHasher.from_parameters(profiles.CHEAPEST) if profile == "cheapest" else PasswordHasher()
    if (wanted.memory_cost, wanted.time_cost) != (_hasher.memory_cost, _hasher.time_cost):
        _hasher = wanted
        _DUMMY_HASH = _hasher.hash("not-a-password")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def check_password(user: User | None, password: str) -> bool:
    stored = user.password_hash if user is not None and user.password_hash else None
    try:
        matches = _hasher.verify(stored or _DUMMY_HASH, password or "")
    except (VerificationError, InvalidHashError):
        return False
    return matches and stored is not None


def authenticate(
    session: Session, username: str, password: str, meta: audit.Meta, *, max_failures: int, lock_minutes: int
) -> User:
    """Return the user if the credentials are right; refuse after ``max_failures`` recent failures.

    Failures are counted in the database per username, so every web process throttles alike.
    """
    username = (username or "").strip().lower()
    now = utcnow()
    since = now - timedelta(minutes=lock_minutes)
    recent = session.scalar(
        select(func.count()).select_from(LoginFailure).where(LoginFailure.username == username, LoginFailure.at > since)
    )
    if recent >= max_failures:
        audit.record(session, "login.throttled", audit.Meta(actor=username, ip=meta.ip, user_agent=meta.user_agent))
        raise Throttled(
            f"Trop de tentatives échouées : réessayez dans {lock_minutes} minutes.",
            f"Too many failed attempts: try again in {lock_minutes} minutes.",
        )
    user = session.scalar(select(User).where(User.username == username))
    if not check_password(user, password) or not user.active:
        session.add(LoginFailure(username=username, ip=meta.ip or "", at=now))
        audit.record(session, "login.failure", audit.Meta(actor=username, ip=meta.ip, user_agent=meta.user_agent))
        raise Invalid("Identifiant ou mot de passe incorrect.", "Wrong username or password.", code="bad_credentials")
    session.execute(delete(LoginFailure).where(LoginFailure.username == username))
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    audit.record(session, "login.success", audit.Meta(actor=username, ip=meta.ip, user_agent=meta.user_agent))
    return user


def start_totp_enrolment(user: User) -> str:
    """Give the user a fresh secret to scan; it only counts once a code from it is confirmed."""
    user.totp_secret = pyotp.random_base32()
    user.totp_confirmed = False
    return user.totp_secret


def totp_uri(user: User, issuer: str) -> str:
    return pyotp.TOTP(user.totp_secret).provisioning_uri(name=user.username, issuer_name=issuer)


def verify_totp(user: User, code: str) -> bool:
    if not user.totp_secret:
        return False
    code = (code or "").replace(" ", "")
    return code.isdigit() and pyotp.TOTP(user.totp_secret).verify(code, valid_window=1)


def confirm_totp(session: Session, user: User, code: str, meta: audit.Meta) -> None:
    if not verify_totp(user, code):
        raise Invalid("Code incorrect : vérifiez l'heure de votre téléphone et réessayez.",
                      "Wrong code: check your phone's clock and try again.", code="bad_otp")
    user.totp_confirmed = True
    audit.record(session, "totp.enrolled", meta)
