"""Models → the JSON shapes of ``schemas.py``."""

from __future__ import annotations

import json
from datetime import datetime

from ..models import AuditEvent, Document, Dossier, JobRecord
from ..services.dossiers import snapshot_of

PREFIX = "/api/v1"


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def etag(dossier: Dossier) -> str:
    return f'"dossier-{dossier.id}-v{dossier.version}"'


def dossier_url(dossier_id: int) -> str:
    return f"{PREFIX}/dossiers/{dossier_id}"


def dossier(d: Dossier) -> dict:
    snapshot = snapshot_of(d)
    steps = []
    for step in snapshot.steps:
        last = step.acts[-1] if step.acts else None
        acted_by, behalf, acted_at = (last.actor, last.on_behalf_of, last.at) if last else (None, None, None)
        if str(step.status) == "rejected":
            acted_by, behalf, acted_at = snapshot.rejected_by, snapshot.rejected_on_behalf_of, snapshot.rejected_at
        steps.append({
            "index": step.index,
            "name": step.name,
            "kind": str(step.kind),
            "level": str(step.level) if step.level else None,
            "assignees": [str(a) for a in step.assignees],
            "quorum": step.quorum if step.quorum == "all" else int(step.quorum),
            "status": str(step.status),
            "acted_by": acted_by,
            "acted_on_behalf_of": behalf,
            "acted_at": iso(acted_at),
            "acts": [{"actor": a.actor, "on_behalf_of": a.on_behalf_of, "action": str(a.action), "at": iso(a.at),
                      "slot": str(a.satisfies)} for a in step.acts],
            "activated_at": iso(step.activated_at),
            "deadline_days": step.deadline_days,
        })
    url = dossier_url(d.id)
    return {
        "id": d.id,
        "title": d.title,
        "type": d.type.code,
        "type_name": d.type.name,
        "status": d.status,
        "version": d.version,
        "initiator": d.initiator.username,
        "current_step": d.current_step,
        "created_at": iso(d.created_at),
        "updated_at": iso(d.updated_at),
        "completed_at": iso(d.completed_at),
        "due_at": iso(d.due_at),
        "reject_reason": snapshot.reject_reason,
        "steps": steps,
        "documents": [document(d.id, doc) for doc in d.documents if doc.kind == "document"],
        "annexes": [document(d.id, doc) for doc in d.documents if doc.kind != "document"],
        "links": {"self": url, "audit": f"{url}/audit", "evidence": f"{url}/evidence", "actions": f"{url}/actions"},
    }


def document(dossier_id: int, doc: Document) -> dict:
    current = doc.current
    return {
        "id": doc.id,
        "filename": doc.filename,
        "content_type": doc.content_type,
        "sha256": current.sha256,
        "revision": current.number,
        "size": current.size,
        "pages": doc.pages,
        "revisions": [{"number": r.number, "sha256": r.sha256, "size": r.size, "reason": r.reason,
                       "created_at": iso(r.created_at)} for r in doc.revisions],
        "links": {"download": f"{dossier_url(dossier_id)}/documents/{doc.id}"},
    }


def summary(d: Dossier) -> dict:
    return {
        "id": d.id, "title": d.title, "type": d.type.code, "status": d.status, "version": d.version,
        "initiator": d.initiator.username, "current_step": d.current_step, "created_at": iso(d.created_at),
        "updated_at": iso(d.updated_at), "completed_at": iso(d.completed_at),
        "links": {"self": dossier_url(d.id)},
    }


def job(record: JobRecord) -> dict:
    try:
        result = json.loads(record.result or "{}")
    except ValueError:
        result = {}
    return {
        "id": record.id, "kind": record.kind, "status": record.status, "total": record.total, "done": record.done,
        "failed": record.failed, "result": result if isinstance(result, dict) else {"value": result},
        "created_at": iso(record.created_at), "updated_at": iso(record.updated_at),
    }


def audit_event(event: AuditEvent) -> dict:
    return {
        "seq": event.dossier_seq, "at": iso(event.at), "kind": event.kind, "actor": event.actor,
        "on_behalf_of": event.on_behalf_of, "revision_sha256": event.revision_sha256,
        "data": json.loads(event.data or "{}"), "hash": event.hash, "prev_hash": event.dossier_prev_hash,
    }
