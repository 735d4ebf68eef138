"""Documents of a dossier: checking uploads, preparing signature fields, new revisions."""

from __future__ import annotations

import re
from datetime import datetime

from flask import Flask
from sqlalchemy.orm import Session

from circuits import Snapshot, StepKind
from signing.errors import SigningError
from signing.fields import FieldSpec, open_pdf, prepare_fields

from ..models import Document, Dossier, Revision, User
from ..storage import store
from .errors import Unprocessable


def check_pdf(upload) -> int:
    """Refuse a broken, encrypted or non-PDF upload with a clear message; return its page count."""
    data = store().get(upload.sha256)
    return page_count(data, upload.filename)


def page_count(data: bytes, filename: str = "") -> int:
    if not data.lstrip()[:5].startswith(b"%PDF"):
        raise Unprocessable(f"« {filename} » n'est pas un PDF.", f"'{filename}' is not a PDF.", code="not_pdf")
    try:
        writer = open_pdf(data)
        return int(writer.root["/Pages"]["/Count"])
    except SigningError as error:
        raise Unprocessable(f"« {filename} » : {error.message_fr}", f"'{filename}': {error.message_en}",
                            code=error.code) from None
    except Exception:  # noqa: BLE001 - any parser failure means we cannot sign it
        raise Unprocessable(f"« {filename} » est illisible.", f"'{filename}' cannot be read.",
                            code="unreadable_pdf") from None


def field_name(step) -> str:
    """The signature field a step fills: its name when the template gives one, else Signature-N."""
    if step.name:
        return re.sub(r"[^A-Za-z0-9_-]+", "-", step.name).strip("-") or f"Signature-{step.index + 1}"
    return f"Signature-{step.index + 1}"


def field_specs(snapshot: Snapshot) -> list[FieldSpec]:
    specs = []
    for step in snapshot.steps:
        if step.kind != StepKind.SIGNATURE:
            continue
        box = page = None
        if step.stamp is not None:
            box = (step.stamp.x1, step.stamp.y1, step.stamp.x2, step.stamp.y2)
            page = step.stamp.page - 1 if step.stamp.page > 0 else step.stamp.page
        specs.append(FieldSpec(field_name(step), page if page is not None else -1, box))
    return specs


def add_revision(document: Document, data: bytes, reason: str, user: User | None, now: datetime,
                 step_index: int | None = None) -> Revision:
    """Store ``data`` (atomically) and add the next revision; the caller commits the row afterwards."""
    digest = store().put(data)
    revision = Revision(number=document.current.number + 1, sha256=digest, size=len(data), reason=reason,
                        step_index=step_index, created_by_id=user.id if user else None, created_at=now)
    document.revisions.append(revision)
    return revision


def prepare_signature_fields(session: Session, app: Flask, dossier: Dossier, snapshot: Snapshot, user: User,
                             now: datetime) -> None:
    """Create every signature field of the circuit before the first signature (DocMDP would break if a
    field were added after certification). Skipped when the document already holds them (relaunch)."""
    specs = field_specs(snapshot)
    if not specs:
        return
    for document in dossier.documents:
        if document.kind != "document":
            continue
        data = store().get(document.current.sha256)
        try:
            prepared = prepare_fields(data, specs)
        except SigningError as error:
            raise Unprocessable(error.message_fr, error.message_en, code=error.code) from None
        if prepared != data:
            add_revision(document, prepared, "fields", user, now)


def restart_documents(dossier: Dossier, user: User, now: datetime) -> None:
    """A relaunched circuit starts from the unsigned documents: signatures of the abandoned round would
    fill the fields the new round needs. The signed revisions stay in the history."""
    for document in dossier.documents:
        if document.kind != "document" or document.current.reason != "signature":
            continue
        base = next(r for r in reversed(document.revisions) if r.reason in {"upload", "fields", "replaced"})
        document.revisions.append(Revision(number=document.current.number + 1, sha256=base.sha256,
                                           size=base.size, reason="relaunch", created_by_id=user.id,
                                           created_at=now))


def replace(session: Session, dossier: Dossier, document_id: int, user: User, upload, meta, now: datetime,
            expected_version: int | None = None) -> Revision:
    """Replace a document's content while the dossier is out of its circuit (draft, rejected, recalled)."""
    from .. import audit
    from .dossiers import get_document
    from .errors import Conflict, Forbidden

    if dossier.initiator_id != user.id:
        raise Forbidden("Seul l'initiateur modifie les documents.", "Only the initiator edits documents.")
    if dossier.status not in {"draft", "rejected", "recalled"}:
        raise Conflict("Un dossier en circuit ne se modifie pas : retirez-le d'abord.",
                       "A dossier in its circuit cannot be edited: recall it first.", code="wrong_state")
    if expected_version is not None and expected_version != dossier.version:
        raise Conflict("Le dossier a changé : rechargez la page.", "The dossier changed: reload.", code="stale")
    document = get_document(dossier, document_id)
    pages = page_count(store().get(upload.sha256), upload.filename) if document.kind == "document" else None
    before = document.current
    revision = Revision(number=before.number + 1, sha256=upload.sha256, size=upload.size, reason="replaced",
                        created_by_id=user.id, created_at=now)
    document.revisions.append(revision)
    document.pages = pages or document.pages
    dossier.updated_at = now
    session.flush()
    audit.record(session, "document.replaced", meta, dossier_id=dossier.id, revision_sha256=upload.sha256,
                 document=document.filename, sha256_before=before.sha256, sha256_after=upload.sha256)
    return revision
