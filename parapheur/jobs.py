"""Background jobs. Every job takes ids, re-reads state and is idempotent: running it twice does the work
once. With ``PARAPHEUR_REDIS_URL`` unset, jobs run inline right after the request's commit (embedded
default); with it set, they go to RQ and ``parapheur worker`` runs them with the app loaded once.

Work handed over by the services is a list of ``(name, args)`` or ``(name, args, options)`` items
(``options``: ``job_id``, RQ's id for the job; ``record``, the JobRecord it reports to), enqueued by the
caller only after its transaction committed.

Crashes: a job that raises is retried (``RETRY_INTERVALS``). A work horse that dies (killed, out of memory)
is noticed by its worker, which retries the job. A whole worker that dies (machine lost, ``kill -9``)
stops heartbeating: once its job's heartbeat expires, the next maintenance round of any worker (each
worker runs one as it starts, then every ``maintenance_interval`` seconds) finds the job abandoned in
RQ's StartedJobRegistry and retries it. Then ``reconcile`` makes every JobRecord tell the truth: a job
whose RQ jobs all ended without finishing it is marked failed with the reason, for the admin page.
"""

from __future__ import annotations

import functools
import logging
import os
import socket
import uuid
from datetime import timedelta

from flask import Flask, current_app, has_app_context
from rq import Queue, Worker
from rq.exceptions import AbandonedJobError
from rq.job import Job, JobStatus

from .services.errors import Unavailable

log = logging.getLogger(__name__)

#: every queue the application uses, in the order a worker serves them
QUEUES = ("signing", "default", "mail")
#: the queue of each job (others: "default")
QUEUE_OF = {
    "sign_batch": "signing",
    "complete_dossier": "signing",
    "notify_step_activated": "mail",
    "notify_rejected": "mail",
    "send_reminders": "mail",
    "deliver_webhook": "default",
    "retry_webhooks": "default",
}
#: seconds a job may run before its work horse is killed (and the job retried); others: RQ's 180 s
TIMEOUT_OF = {"sign_batch": 30 * 60, "complete_dossier": 10 * 60}
#: a failed, killed or abandoned attempt is tried again at once, then after 30 s, then after 2 min
RETRY_INTERVALS = (0, 30, 120)
#: defaults of ``parapheur worker``: seconds between heartbeats of a busy worker, between maintenance rounds
HEARTBEAT = 10
MAINTENANCE = 60
#: a queued or running JobRecord untouched for this long is checked against RQ by ``reconcile``
RECONCILE_AFTER = timedelta(seconds=60)
#: a completed dossier still without its chain timestamp this long after completion gets the job again
COMPLETION_AFTER = timedelta(minutes=5)

_ENDED = {JobStatus.FINISHED, JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED}

_worker_app: Flask | None = None
_fork_hook_installed = False


def unavailable() -> Unavailable:
    return Unavailable(
        "Le service de tâches est indisponible : réessayez dans quelques minutes. Rien n'a été modifié.",
        "The job service is unavailable: try again in a few minutes. Nothing was changed.",
        code="queue_unavailable")


def connection(app: Flask | None = None):
    """The app's Redis client (one per app and process; redis-py reconnects after a fork)."""
    from redis import Redis

    app = app or current_app._get_current_object()
    url = app.config["REDIS_URL"]
    cached = app.extensions.get("parapheur.redis")
    if cached is None or cached[0] != url:
        client = Redis.from_url(url, socket_connect_timeout=2, socket_timeout=10, health_check_interval=30)
        cached = app.extensions["parapheur.redis"] = (url, client)
    return cached[1]


def require_queue(app: Flask | None = None) -> None:
    """Raise Unavailable when jobs go to Redis and Redis does not answer: call it before changing anything,
    so an action that needs a job is refused whole rather than done by half."""
    from redis.exceptions import RedisError

    app = app or current_app._get_current_object()
    if not app.config.get("REDIS_URL"):
        return
    try:
        connection(app).ping()
    except RedisError as error:
        log.warning("Redis unreachable: %s", error)
        raise unavailable() from None


def enqueue_after_commit(jobs) -> list[str]:
    """Run or queue work items; call only after the transaction that made them committed.

    If the queue cannot be reached, every JobRecord an item reports to is marked failed with the reason
    (nothing waits in "queued" for ever), the other items are still tried, then Unavailable is raised."""
    ids: list[str] = []
    failure: Unavailable | None = None
    for name, args, *rest in jobs:
        options = dict(rest[0]) if rest else {}
        try:
            ids.append(enqueue(name, *args, **options))
        except Unavailable as error:
            failure = error
            if options.get("record"):
                _note_error(current_app._get_current_object(), options["record"], error.message_fr, final=True)
    if failure is not None:
        raise failure
    return ids


def enqueue_after_commit_logged(jobs) -> list[str]:
    """The same, for callers with no one to tell (jobs, the API after its answer is decided): a queue
    failure is logged; lost completion work is queued again by ``reconcile``."""
    try:
        return enqueue_after_commit(jobs)
    except Unavailable:
        log.exception("could not enqueue %r after commit", jobs)
        return []


def enqueue(name: str, *args, job_id: str | None = None, record: str | None = None) -> str:
    app = current_app._get_current_object()
    if not app.config.get("REDIS_URL"):
        _run_inline(app, name, args)
        return f"inline-{name}"
    from redis.exceptions import RedisError
    from rq import Retry

    queue = Queue(QUEUE_OF.get(name, "default"), connection=connection(app))
    try:
        job = queue.enqueue(f"parapheur.jobs.{name}", *args, job_id=job_id,
                            retry=Retry(max=len(RETRY_INTERVALS), interval=list(RETRY_INTERVALS)),
                            job_timeout=TIMEOUT_OF.get(name), meta={"record": record} if record else None)
    except RedisError as error:
        log.warning("could not enqueue %s: %s", name, error)
        raise unavailable() from None
    return job.id


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
    @functools.wraps(func)
    def wrapper(*args):
        if has_app_context():  # inline: a nested app context would close the caller's session on exit
            return func(current_app._get_current_object(), *args)
        app = _app()
        with app.app_context():
            return func(app, *args)

    return wrapper


def describe(error: BaseException) -> str:
    """A line saying why a job failed, for administrators."""
    message = getattr(error, "message_fr", None) or str(error)
    return f"{type(error).__name__}: {message}"[:500]


def _last_attempt() -> bool:
    """Whether no retry follows if the running job fails (inline jobs are never retried)."""
    from rq import get_current_job

    job = get_current_job()
    return job is None or not job.retries_left


def _note_error(app: Flask, record: str, reason: str, *, final: bool) -> None:
    """Write why an attempt failed on the JobRecord, in its own transaction; never raises."""
    from .extensions import db
    from .services import batches

    def note():
        try:
            db.session.rollback()
            batches.note_error(db.session, record, reason, final=final)
            db.session.commit()
        except Exception:  # noqa: BLE001 - the database may be what failed: the log keeps the reason
            db.session.rollback()
            log.exception("could not record the failure of job %s (%s)", record, reason)

    if has_app_context():
        note()
    else:
        with app.app_context():
            note()


# -- the jobs ------------------------------------------------------------------------------------------


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
def sign_batch(app: Flask, job_id: str, user_id: int, dossier_ids: list[int], box: str,
               acted: dict | None = None) -> dict:
    """Sign one part of a batch (or a single queued signature); see ``services.batches.run``."""
    from .extensions import db
    from .services import batches

    try:
        job = batches.run(db.session, app, job_id, user_id, dossier_ids, box, acted)
    except Exception as error:
        _note_error(app, job_id, describe(error), final=_last_attempt())
        raise
    return {"status": job.status, "done": job.done, "failed": job.failed}


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


# -- keeping JobRecords truthful -----------------------------------------------------------------------


def reconcile(app: Flask) -> dict[str, int]:
    """Mark failed the JobRecords whose RQ jobs all ended without finishing them (retries exhausted by
    crashes, a queue emptied by hand…), with RQ's reason; queue again the completion work of dossiers
    completed long ago but still without their chain timestamp (a job lost while Redis was down).
    Runs in every worker's maintenance round, one worker at a time."""
    from sqlalchemy import select

    from .extensions import db
    from .models import ChainTimestamp, Dossier, JobRecord, utcnow
    from .services import batches

    redis = connection(app)
    lock = redis.set("parapheur:reconcile", os.getpid(), nx=True, ex=300)
    if not lock:
        return {"failed": 0, "completions": 0}
    counts = {"failed": 0, "completions": 0}
    try:
        with app.app_context():
            session = db.session
            now = utcnow()
            stale = session.scalars(select(JobRecord).where(JobRecord.status.in_(batches.ACTIVE),
                                                            JobRecord.updated_at < now - RECONCILE_AFTER)).all()
            for record in stale:
                rq_ids = batches._load(record.result).get("rq_jobs") or []
                if not rq_ids:
                    continue
                reason = _ended_reason(redis, rq_ids)
                if reason is None:
                    continue
                batches.note_error(session, record.id, reason, final=True)
                session.commit()
                counts["failed"] += 1
            done = select(ChainTimestamp.id).where(ChainTimestamp.dossier_id == Dossier.id).exists()
            orphans = session.scalars(select(Dossier.id).where(Dossier.status == "completed", ~done,
                                                               Dossier.completed_at < now - COMPLETION_AFTER)
                                      .limit(100)).all()
            for dossier_id in orphans:
                if redis.set(f"parapheur:completion-requeued:{dossier_id}", 1, nx=True, ex=3600):
                    enqueue("complete_dossier", dossier_id)
                    counts["completions"] += 1
    finally:
        redis.delete("parapheur:reconcile")
    if any(counts.values()):
        log.warning("reconcile: %s", counts)
    return counts


def _ended_reason(redis, rq_ids: list[str]) -> str | None:
    """Why the RQ jobs of a record ended without finishing it, or None while one of them may still run."""
    reasons = []
    for rq_id, job in zip(rq_ids, Job.fetch_many(rq_ids, connection=redis), strict=True):
        if job is None:
            reasons.append("La tâche a disparu de la file d'attente (Redis vidé ou redémarré sans persistance).")
            continue
        state = job.get_status(refresh=False)
        if state not in _ENDED:
            return None
        result = job.latest_result()
        text = (getattr(result, "exc_string", None) or "").strip()
        last = text.splitlines()[-1] if text else f"état RQ : {state}"
        reasons.append(f"Tâche {rq_id} : {last}")
    return " ; ".join(dict.fromkeys(reasons))[:500] or None



# -- the worker ----------------------------------------------------------------------------------------


class ParapheurWorker(Worker):
    """RQ's forking worker: the parent holds the app (modules imported, instance keys parsed) and forks
    one work horse per job, which starts with all of it in memory (copy-on-write) and cannot leak into
    the next job. Two changes to RQ's defaults: a busy worker's heartbeat lapses after two missed beats
    (RQ waits a fixed 60 s more), so a dead worker's job is found abandoned and retried sooner; and
    each maintenance round also runs ``reconcile``."""

    app: Flask | None = None

    def get_heartbeat_ttl(self, job, working_time: float = 0.0) -> int:
        return 2 * int(self.job_monitoring_interval) + 2

    def run_maintenance_tasks(self):
        super().run_maintenance_tasks()
        if self.app is not None:
            try:
                reconcile(self.app)
            except Exception:  # noqa: BLE001 - maintenance must not stop the worker
                log.exception("reconcile failed")


def _horse_killed(job, retpid, ret_val, rusage) -> None:
    """The work horse died without a word (killed, out of memory): say so on the JobRecord."""
    record = (job.meta or {}).get("record")
    if record and _worker_app is not None:
        then = " : la tâche est reprise." if job.retries_left else "."
        _note_error(_worker_app, record, f"Processus de travail interrompu ({_wait_status(ret_val)}){then}",
                    final=not job.retries_left)


def _abandoned(job, exc_type, exc_value, traceback) -> bool:
    """RQ found the job abandoned by a worker that disappeared: say so on the JobRecord."""
    record = (job.meta or {}).get("record")
    if exc_type is AbandonedJobError and record and _worker_app is not None:
        _note_error(_worker_app, record, "Le processus de travail a disparu pendant la tâche"
                                         + (" : elle est reprise." if job.retries_left else "."),
                    final=not job.retries_left)
    return True


def _wait_status(ret_val) -> str:
    import signal

    if ret_val is not None and os.WIFSIGNALED(ret_val):
        number = os.WTERMSIG(ret_val)
        try:
            return f"signal {signal.Signals(number).name}"
        except ValueError:
            return f"signal {number}"
    return f"code {ret_val}"


def _preload(app: Flask) -> None:
    """Import what jobs use and parse the instance keys, in the parent, before any fork."""
    with app.app_context():
        from .services import (  # noqa: F401
            batches,
            completion,
            credentials,
            dossiers,
            notifications,
            signatures,
            webhooks,
        )
        from .storage import store

        pki = credentials.instance_pki(app)
        pki.seal_signer()
        credentials.timestamper(app)
        store()


def _after_fork_in_child() -> None:
    """A work horse must not share the parent's database connections: give it fresh pools."""
    app = _worker_app
    if app is None:
        return
    from .extensions import db

    with app.app_context():
        db.engine.dispose(close=False)


def run_worker(app: Flask, burst: bool = False, heartbeat: int = HEARTBEAT, maintenance: int = MAINTENANCE) -> int:
    """Run an RQ worker in this process with ``app`` preloaded (keys parsed once, in the parent)."""
    from redis import Redis
    from redis.exceptions import RedisError

    global _worker_app, _fork_hook_installed
    url = app.config.get("REDIS_URL")
    if not url:
        print("PARAPHEUR_REDIS_URL n'est pas défini : les tâches s'exécutent dans les requêtes.")
        return 2
    redis = Redis.from_url(url)
    try:
        redis.ping()
    except RedisError as error:
        print(f"Redis injoignable ({error}) : le worker ne peut pas démarrer.")
        return 1
    _worker_app = app
    _preload(app)
    if not _fork_hook_installed:
        os.register_at_fork(after_in_child=_after_fork_in_child)
        _fork_hook_installed = True
    worker = ParapheurWorker([Queue(name, connection=redis) for name in QUEUES], connection=redis,
                             name=f"parapheur-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}",
                             job_monitoring_interval=heartbeat, maintenance_interval=maintenance,
                             # an idle worker wakes from its blocking dequeue (worker_ttl - 15 s) for maintenance
                             worker_ttl=maintenance + 15,
                             work_horse_killed_handler=_horse_killed, exception_handlers=[_abandoned])
    worker.app = app
    worker.work(burst=burst, with_scheduler=True, logging_level="INFO")
    return 0


def rq_states(app: Flask, rq_ids: list[str]) -> dict[str, str | None]:
    """RQ's view of a JobRecord's jobs (``queued``, ``started``, ``scheduled`` (waiting to retry),
    ``finished``, ``failed``…; None when gone), for ``GET /jobs/{id}``. Empty without Redis."""
    if not app.config.get("REDIS_URL") or not rq_ids:
        return {}
    jobs = Job.fetch_many(rq_ids, connection=connection(app))
    return {rq_id: (str(job.get_status(refresh=False).value) if job else None)
            for rq_id, job in zip(rq_ids, jobs, strict=True)}

