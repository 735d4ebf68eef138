"""Signing in the background: a batch of dossiers, or one signature taken out of the request.

The signer authenticates once (``start`` checks the PIN and the one-time code and records a JobRecord);
jobs then sign each dossier. Every dossier either gets signed or stays untouched, with the reason listed.

Crash safety and idempotence: the result of a dossier is written to the JobRecord *in the transaction that
signs it*, after its row lock is taken, so a job run twice (a retry after a crash, two workers handed the
same job) signs each dossier once, and a job killed half-way leaves no dossier signed without its result
(or the reverse). A large batch is split into parts that several workers sign side by side; they share
the JobRecord, whose row lock serialises only the short bookkeeping at the end of each dossier.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime

from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from .. import audit
from ..models import Dossier, JobRecord, User, utcnow
from . import access, secrets_box, signatures
from .dossiers import snapshot_of
from .errors import Invalid, NotFound, ServiceError

MAX_BATCH = 200
#: dossiers per queued part of a batch (parts run on several workers at once)
DEFAULT_PART_SIZE = 10
#: a JobRecord in one of these states still has work ahead of it
ACTIVE = ("queued", "running")
KINDS = ("batch_sign", "sign")


def start(session: Session, app: Flask, user: User, dossier_ids: list[int], pin: str | None, otp: str | None,
          meta: audit.Meta, *, kind: str = "batch_sign") -> tuple[JobRecord, list[tuple]]:
    """Check the selection and the second factor, record the job; return it and the work to enqueue
    after commit: ``("sign_batch", args, {"job_id": rq_id, "record": job_id})`` items, one per part."""
    ids = sorted({int(i) for i in dossier_ids})
    if not ids:
        raise Invalid("Sélectionnez au moins un dossier.", "Select at least one dossier.", code="empty_batch")
    if len(ids) > MAX_BATCH:
        raise Invalid(f"{MAX_BATCH} dossiers au plus par lot.", f"At most {MAX_BATCH} dossiers per batch.")
    now = utcnow()
    levels = set()
    for dossier_id in ids:
        dossier = access.get_for(session, user, dossier_id, now)
        step = snapshot_of(dossier).active_step
        if step is not None and str(step.kind) == "signature":
            levels.add(str(step.level))
    for level in sorted(levels, key=["simple", "advanced", "qualified"].index, reverse=True)[:1]:
        signatures.check_second_factor(session, app, user, level, pin, otp)
    size = max(1, int(app.config.get("BATCH_PART_SIZE") or DEFAULT_PART_SIZE))
    parts = [ids[i:i + size] for i in range(0, len(ids), size)]
    job = JobRecord(id=str(uuid.uuid4()), kind=kind, user_id=user.id, status="queued", total=len(ids),
                    created_at=now, updated_at=now)
    rq_ids = [f"{job.id}-p{n}" for n in range(len(parts))]
    job.result = json.dumps({"items": {}, "dossiers": ids, "rq_jobs": rq_ids})
    session.add(job)
    if kind == "batch_sign":
        audit.record(session, "batch.started", meta, job=job.id, dossiers=ids)
    box = secrets_box.seal(app.config["SECRET_KEY"], pin or "")
    acted = {"ip": meta.ip, "user_agent": meta.user_agent if kind == "sign" else "batch"}
    work = [("sign_batch", (job.id, user.id, part, box, acted), {"job_id": rq_id, "record": job.id})
            for part, rq_id in zip(parts, rq_ids, strict=True)]
    return job, work


def run(session: Session, app: Flask, job_id: str, user_id: int, dossier_ids: list[int], box: str,
        acted: dict | None = None) -> JobRecord:
    """Sign the dossiers of one part of a job; safe to run again (dossiers already handled are skipped)."""
    from ..jobs import enqueue_after_commit_logged
    from . import dossiers as dossier_service

    job = session.get(JobRecord, job_id)
    user = session.get(User, user_id)
    if job is None or user is None:
        raise NotFound("Lot introuvable.", "Batch not found.")
    acted = acted or {"ip": None, "user_agent": "batch"}
    pin = secrets_box.open_(app.config["SECRET_KEY"], box)
    _update(session, job_id, {}, running=True)
    session.commit()
    opened: dict = {}  # keys unlocked by this run's PIN, opened once rather than once per dossier
    for dossier_id in dossier_ids:
        if _handled(session, job_id, dossier_id):
            continue
        try:
            if pin is None:
                raise Invalid("Le lot a expiré : relancez-le.", "The batch expired: start it again.",
                              code="batch_expired")
            now = utcnow()
            dossier = access.get_for(session, user, dossier_id, now, lock=True)
            if _handled(session, job_id, dossier_id):  # another run of this job got there first
                session.rollback()
                continue
            step = snapshot_of(dossier).active_step
            action = "sign" if step is not None and str(step.kind) == "signature" else "approve"
            result = dossier_service.perform(session, app, dossier, user, action,
                                             audit.Meta(user.username, None, acted.get("ip"),
                                                        acted.get("user_agent")),
                                             now, pin=pin, otp_verified=True, opened=opened)
            _update(session, job_id, {str(dossier_id): {"ok": True, "title": dossier.title,
                                                        "message": result.message_fr}})
            session.commit()  # the signature, its audit events and its result: all or nothing
            enqueue_after_commit_logged(result.jobs)
        except ServiceError as error:
            session.rollback()
            title = session.scalar(select(Dossier.title).where(Dossier.id == dossier_id)) \
                if not isinstance(error, NotFound) else None
            _update(session, job_id, {str(dossier_id): {"ok": False, "title": title, "message": error.message_fr,
                                                        "code": error.code}})
            session.commit()
    return session.get(JobRecord, job_id)


def _handled(session: Session, job_id: str, dossier_id: int) -> bool:
    """Whether the job already holds a result for the dossier (read from the database, not the session)."""
    raw = session.execute(select(JobRecord.result).where(JobRecord.id == job_id)).scalar_one_or_none()
    return raw is not None and str(dossier_id) in _load(raw).get("items", {})


def _locked(session: Session, job_id: str) -> JobRecord:
    return session.execute(select(JobRecord).where(JobRecord.id == job_id).with_for_update()
                           .execution_options(populate_existing=True)).scalar_one()


def _update(session: Session, job_id: str, items: dict, *, running: bool = False) -> JobRecord:
    """Add results to the job (a result already there is kept: the first one is the truth), recount, and
    settle the status once every dossier has a result."""
    job = _locked(session, job_id)
    data = _load(job.result)
    known = data.setdefault("items", {})
    for key, item in items.items():
        known.setdefault(key, item)
    job.done = sum(1 for item in known.values() if item["ok"])
    job.failed = sum(1 for item in known.values() if not item["ok"])
    if len(known) >= job.total:
        job.status = "done" if not job.failed else ("failed" if not job.done else "partial")
    elif running and job.status in ("queued", "failed"):
        job.status = "running"
    job.result = json.dumps(data)
    job.updated_at = utcnow()
    return job


def note_error(session: Session, job_id: str, reason: str, *, final: bool, at: datetime | None = None) -> None:
    """Record why an attempt at the job failed (crash, killed worker, lost queue…). ``final``: no attempt
    follows, so the job is failed (or partial, if some dossiers were handled) with that reason."""
    job = session.execute(select(JobRecord).where(JobRecord.id == job_id).with_for_update()
                          .execution_options(populate_existing=True)).scalar_one_or_none()
    if job is None:
        return
    data = _load(job.result)
    attempts = data.setdefault("attempts", [])
    attempts.append({"at": (at or utcnow()).isoformat(), "reason": reason[:500], "final": final})
    del attempts[:-10]
    if final and job.status in ACTIVE:
        data["error"] = reason[:500]
        job.status = "partial" if job.done else "failed"
    job.result = json.dumps(data)
    job.updated_at = at or utcnow()


def status(session: Session, user: User, job_id: str) -> dict:
    """A job's progress for its own user (the web page polls it; the API reads the same JobRecord)."""
    job = session.get(JobRecord, job_id)
    if job is None or job.user_id != user.id:
        raise NotFound("Tâche introuvable.", "Job not found.")
    session.refresh(job)
    data = _load(job.result)
    return {"id": job.id, "kind": job.kind, "status": job.status, "total": job.total, "done": job.done,
            "failed": job.failed, "items": data.get("items", {}), "dossiers": data.get("dossiers", []),
            "error": data.get("error")}


def pending_signature(session: Session, user: User, dossier_id: int) -> JobRecord | None:
    """The user's queued or running job that will sign ``dossier_id``, if any."""
    for job in session.scalars(select(JobRecord).where(JobRecord.user_id == user.id, JobRecord.kind.in_(KINDS),
                                                       JobRecord.status.in_(ACTIVE))):
        data = _load(job.result)
        if dossier_id in data.get("dossiers", []) and str(dossier_id) not in data.get("items", {}):
            return job
    return None


def failure_reason(job: JobRecord) -> str:
    """Why a job failed, in a line for administrators: the job's own error, else its dossiers' reasons."""
    data = _load(job.result)
    if data.get("error"):
        return data["error"]
    reasons = sorted({item.get("message") or "" for item in data.get("items", {}).values() if not item.get("ok")})
    return " ; ".join(r for r in reasons if r)[:500]


def _load(raw: str | None) -> dict:
    try:
        data = json.loads(raw or "{}")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}
