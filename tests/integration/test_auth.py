"""Accounts: login, throttling, roles, CSRF, cookies, TOTP enrolment, language."""

import pyotp
from sqlalchemy import func, select

from parapheur.extensions import db
from parapheur.models import AuditEvent, User

from .conftest import Browser, csrf_token


def test_login_page_is_french_by_default_and_english_on_request(browser):
    b = browser()
    page = b.get("/login").get_data(as_text=True)
    assert '<html lang="fr">' in page and "Connexion" in page and "Mot de passe" in page
    english = b.get("/login?lang=en").get_data(as_text=True)
    assert '<html lang="en">' in english and "Password" in english


def test_right_password_logs_in_and_logout_ends_the_session(browser):
    b = browser()
    response = b.login("dgs.martin")
    assert response.status_code == 302
    assert b.get("/inbox").status_code == 200
    b.post_form("/inbox", "/logout")
    assert b.get("/inbox").status_code == 302  # back to login


def test_wrong_password_is_refused_and_throttled(browser, org):
    b = browser()
    for _ in range(5):
        response = b.login("dgs.martin", "wrong-password")
        assert response.status_code == 400
        assert "Identifiant ou mot de passe incorrect" in response.get_data(as_text=True)
    response = b.login("dgs.martin")  # right password, but locked for now
    assert response.status_code == 429
    assert "Trop de tentatives" in response.get_data(as_text=True)
    assert b.get("/inbox").status_code == 302
    with org.app_context():
        kinds = db.session.scalars(select(AuditEvent.kind).order_by(AuditEvent.seq)).all()
    assert kinds.count("login.failure") == 5 and "login.throttled" in kinds


def test_unknown_user_gets_the_same_message(browser):
    response = browser().login("nobody", "whatever-pass")
    assert response.status_code == 400
    assert "Identifiant ou mot de passe incorrect" in response.get_data(as_text=True)


def test_a_user_without_the_role_gets_403(browser):
    initiator = browser("rh.dupont")
    assert initiator.get("/inbox").status_code == 403
    assert initiator.get("/admin/").status_code == 403
    assert initiator.get("/audit/").status_code == 403
    signer = browser("dgs.martin")
    assert signer.get("/dossiers/new").status_code == 403
    assert browser("admin").get("/admin/").status_code == 200
    assert browser("audit.moreau").get("/audit/").status_code == 200


def test_anonymous_users_are_sent_to_login(browser):
    response = browser().get("/inbox")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_a_form_without_csrf_token_is_refused(browser, org):
    b = browser()
    response = b.client.post("/login", data={"username": "dgs.martin", "password": "secret-dgs"})
    assert response.status_code == 400
    assert b.get("/inbox").status_code == 302  # not logged in


def test_session_cookie_flags(org):
    b = Browser(org)
    response = b.login("dgs.martin")
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_secure_cookie_when_served_over_https(make_app):
    app = make_app(BASE_URL="https://parapheur.example.fr")
    assert app.config["SESSION_COOKIE_SECURE"] is True


def test_security_headers(browser):
    response = browser().get("/login")
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_totp_enrolment_with_qr_code(browser, org):
    b = browser("rh.dupont")
    page = b.get("/profile/totp").get_data(as_text=True)
    assert 'src="data:image/svg+xml' in page
    with org.app_context():
        secret = db.session.scalar(select(User.totp_secret).where(User.username == "rh.dupont"))
    wrong = b.client.post("/profile/totp", data={"code": "000000", "csrf_token": csrf_token(page)})
    assert wrong.status_code == 400
    right = b.post_form("/profile/totp", data={"code": pyotp.TOTP(secret).now()})
    assert right.status_code == 302
    with org.app_context():
        user = db.session.scalar(select(User).where(User.username == "rh.dupont"))
        assert user.totp_confirmed
        assert db.session.scalar(select(func.count()).where(AuditEvent.kind == "totp.enrolled")) == 1


def test_password_change_invalidates_old_sessions(browser, org):
    b = browser("dgs.martin")
    assert b.get("/inbox").status_code == 200
    with org.app_context():
        user = db.session.scalar(select(User).where(User.username == "dgs.martin"))
        user.session_version += 1
        db.session.commit()
    assert b.get("/inbox").status_code == 302
