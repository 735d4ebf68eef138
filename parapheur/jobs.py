"""Background jobs. Every job takes ids, re-reads state and is idempotent: running it twice does the work
once. With ``PARAPHEUR_REDIS_URL`` unset, jobs run inline right after the request's commit (embedded
default); with it set, they go to RQ and ``parapheur worker`` runs them with the app loaded once."""

from __future__ import annotations

import logging
import os

from flask import Flask, current_app

log = logging.getLogger(__name__)

#: every queue the application uses
QUEUES = ("default", "signing", "mail")
QUEUE_OF = {
    "notify_step_activated": "mail",
    "notify_rejected": "mail",
    "complete_dossier": "signing",
    "send_reminders": "mail",
    "sign_batch": "signing",
}

_worker_app: Flask | None = None


def enqueue_after_commit(jobs) -> list[str]:
    """Run or queue ``(name, args)`` pairs; call only after the transaction that made them committed."""
    ids = []
    for name, args in jobs:
        ids.append(enqueue(name, *args))
    return ids


def enqueue(name: str, *args) -> str:
    app = current_app._get_current_object()
    url = app.config.get("REDIS_URL")
    if not url:
        _run_inline(app, name, args)
        return f"inline-{name}"
    from redis import Redis
    from rq import Queue

    queue = Queue(QUEUE_OF.get(name, "default"), connection=Redis.from_url(url))
    job = queue.enqueue(f"parapheur.jobs.{name}", *args, retry=_retry())
    return job.id


def _retry():
    from rq import Retry

    return Retry(max=3, interval=[5, 30, 120])


def _run_inline(app: Flask, name: str, args) -> None:
    """Inline jobs must not break the request that already committed: failures are logged."""
    try:
        globals()[name](*args)
    except Exception:  # noqa: BLE001
        log.exception("inline job %s%r failed", name, args)
        from .extensions import db

        db.session.rollback()


def _app() -> Flask:
    """The app a job runs in: the worker's (loaded once) or the current one (inline)."""
    try:
        return current_app._get_current_object()
    except RuntimeError:
        global _worker_app
        if _worker_app is None:
            from . import create_app

            _worker_app = create_app()
        return _worker_app


def _in_app(func):
    import functools

    @functools.wraps(func)
    def wrapper(*args):
        from flask import has_app_context

        if has_app_context():  # inline: a nested app context would close the caller's session on exit
            return func(current_app._get_current_object(), *args)
        app = _app()
        with app.app_context():
            return func(app, *args)

    return wrapper


@_in_app
def notify_step_activated(app: Flask, dossier_id: int, step_index: int, version: int) -> int:
    from .services import notifications

    return notifications.step_activated(app, dossier_id, step_index, version)


@_in_app
def notify_rejected(app: Flask, dossier_id: int) -> int:
    from .services import notifications

    return notifications.rejected(app, dossier_id)


@_in_app
def complete_dossier(app: Flask, dossier_id: int) -> None:
    from .services import completion

    completion.complete(app, dossier_id)


@_in_app
def sign_batch(app: Flask, job_id: str, user_id: int, dossier_ids: list[int], box: str) -> None:
    from .extensions import db
    from .services import batches

    batches.run(db.session, app, job_id, user_id, dossier_ids, box)


@_in_app
def deliver_webhook(app: Flask, delivery_id: int) -> str:
    from .extensions import db
    from .services import webhooks

    return webhooks.deliver(app, db.session, delivery_id)


@_in_app
def retry_webhooks(app: Flask) -> dict:
    from .extensions import db
    from .services import webhooks

    return webhooks.pump(app, db.session)


def run_worker(app: Flask, burst: bool = False) -> int:
    """Run an RQ worker in this process with ``app`` preloaded (keys parsed once, in the parent)."""
    from redis import Redis
    from rq import Worker

    global _worker_app
    _worker_app = app
    url = app.config.get("REDIS_URL")
    if not url:
        print("PARAPHEUR_REDIS_URL n'est pas défini : les tâches s'exécutent dans les requêtes.")
        return 2
    with app.app_context():
        from .services.credentials import instance_pki

        instance_pki(app)  # parse keys once, before forking work horses
    worker = Worker(list(QUEUES), connection=Redis.from_url(url), name=f"parapheur-{os.getpid()}")
    worker.work(burst=burst, with_scheduler=True)
    return 0
