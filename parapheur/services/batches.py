"""Batch signing: the signer authenticates once, a job signs each dossier; every dossier either gets
signed or stays untouched, with the reason listed."""

from __future__ import annotations

import json
import uuid

from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from .. import audit
from ..models import Dossier, JobRecord, User, utcnow
from . import access, secrets_box, signatures
from .dossiers import snapshot_of
from .errors import Invalid, NotFound, ServiceError

MAX_BATCH = 200


def start(session: Session, app: Flask, user: User, dossier_ids: list[int], pin: str | None, otp: str | None,
          meta: audit.Meta) -> tuple[JobRecord, tuple[str, tuple]]:
    """Check the selection and the second factor, record the job; return it and the job to enqueue."""
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
    job = JobRecord(id=str(uuid.uuid4()), kind="batch_sign", user_id=user.id, status="queued", total=len(ids),
                    result=json.dumps({"items": {}}))
    session.add(job)
    audit.record(session, "batch.started", meta, job=job.id, dossiers=ids)
    box = secrets_box.seal(app.config["SECRET_KEY"], pin or "")
    return job, ("sign_batch", (job.id, user.id, ids, box))


def run(session: Session, app: Flask, job_id: str, user_id: int, dossier_ids: list[int], box: str) -> JobRecord:
    """Sign the dossiers of a batch; safe to run again (dossiers already handled are skipped)."""
    from . import dossiers as dossier_service

    job = session.get(JobRecord, job_id)
    user = session.get(User, user_id)
    if job is None or user is None:
        raise NotFound("Lot introuvable.", "Batch not found.")
    pin = secrets_box.open_(app.config["SECRET_KEY"], box)
    items = json.loads(job.result).get("items", {})
    job.status = "running"
    session.commit()
    for dossier_id in dossier_ids:
        if str(dossier_id) in items:
            continue
        try:
            if pin is None:
                raise Invalid("Le lot a expiré : relancez-le.", "The batch expired: start it again.")
            now = utcnow()
            dossier = access.get_for(session, user, dossier_id, now, lock=True)
            step = snapshot_of(dossier).active_step
            action = "sign" if step is not None and str(step.kind) == "signature" else "approve"
            result = dossier_service.perform(session, app, dossier, user, action,
                                             audit.Meta(user.username, None, None, "batch"), now, pin=pin,
                                             otp_verified=True)
            session.commit()
            from ..jobs import enqueue_after_commit

            enqueue_after_commit(result.jobs)
            items[str(dossier_id)] = {"ok": True, "title": dossier.title, "message": result.message_fr}
        except ServiceError as error:
            session.rollback()
            title = session.scalar(select(Dossier.title).where(Dossier.id == dossier_id)) \
                if not isinstance(error, NotFound) else None
            items[str(dossier_id)] = {"ok": False, "title": title, "message": error.message_fr, "code": error.code}
        job = session.get(JobRecord, job_id)
        job.done = sum(1 for item in items.values() if item["ok"])
        job.failed = sum(1 for item in items.values() if not item["ok"])
        job.result = json.dumps({"items": items})
        job.updated_at = utcnow()
        session.commit()
    job.status = "done" if not job.failed else ("failed" if not job.done else "partial")
    session.commit()
    return job


def status(session: Session, user: User, job_id: str) -> dict:
    job = session.get(JobRecord, job_id)
    if job is None or job.user_id != user.id:
        raise NotFound("Tâche introuvable.", "Job not found.")
    return {"id": job.id, "kind": job.kind, "status": job.status, "total": job.total, "done": job.done,
            "failed": job.failed, "items": json.loads(job.result).get("items", {})}
