"""Blueprints of the browser interface (and the API's, registered from here too)."""


def blueprints():
    from ..api import bp as api
    from . import admin, admin_webhooks, audit_pages, auth, dossiers, inbox, profile_tokens

    return [auth.bp, inbox.bp, dossiers.bp, audit_pages.bp, admin.bp, admin_webhooks.bp, profile_tokens.bp, api]
