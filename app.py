"""WSGI entry point: ``gunicorn app:app`` (the configuration comes from PARAPHEUR_* variables)."""

from parapheur import create_app

app = create_app()
