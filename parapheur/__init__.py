"""Parapheur: approval circuits and PAdES signatures for French local administrations."""

from __future__ import annotations

from flask import Flask

from . import config as config_module


def create_app(overrides: dict | None = None) -> Flask:
    """Build the app: configuration → extensions → blueprints → error handlers → CLI."""
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    app = Flask(__name__, template_folder=str(root / "templates"), static_folder=str(root / "static"))
    app.config.update(config_module.load(overrides))
    app.config["BABEL_TRANSLATION_DIRECTORIES"] = str(Path(__file__).resolve().parent / "translations")
    from .services.accounts import configure_hasher

    configure_hasher(app.config["PASSWORD_HASH_PROFILE"])
    register_extensions(app)
    register_blueprints(app)
    register_errorhandlers(app)
    register_security_headers(app)
    register_template_helpers(app)
    return app


def register_template_helpers(app: Flask) -> None:
    from flask_babel import get_locale

    from .web.labels import event_label, localtime

    app.jinja_env.globals["current_locale"] = lambda: str(get_locale() or "fr")
    app.jinja_env.filters["localtime"] = localtime
    app.jinja_env.filters["event_label"] = event_label


def register_extensions(app: Flask) -> None:
    from .extensions import babel, csrf, db, login_manager
    from .i18n import select_locale
    from .web.auth import load_user

    db.init_app(app)
    csrf.init_app(app)
    babel.init_app(app, locale_selector=select_locale)
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = None
    login_manager.user_loader(load_user)
    login_manager.session_protection = "strong"


def register_blueprints(app: Flask) -> None:
    from .web import blueprints

    for blueprint in blueprints():
        app.register_blueprint(blueprint)


def register_errorhandlers(app: Flask) -> None:
    from .web.errors import register

    register(app)


def register_security_headers(app: Flask) -> None:
    from .web.security import add_security_headers

    app.after_request(add_security_headers)
