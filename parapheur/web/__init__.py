"""Blueprints of the browser interface (and the API's, registered from here too)."""


def blueprints():
    from ..api import bp as api
    from . import admin, audit_pages, auth, dossiers, inbox

    return [auth.bp, inbox.bp, dossiers.bp, audit_pages.bp, admin.bp, api]
