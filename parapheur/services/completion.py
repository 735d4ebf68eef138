"""Work done when a dossier completes (a job): a document timestamp on qualified documents (B-LTA) and
an RFC 3161 timestamp over the dossier's audit chain head. Idempotent: a dossier already sealed is left
as it is."""

from __future__ import annotations

from flask import Flask
from sqlalchemy import select

from signing.signer import timestamp_document

from .. import audit
from ..extensions import db
from ..models import AuditHead, ChainTimestamp, Dossier, utcnow
from ..storage import store
from .credentials import timestamper, validation_context
from .documents import add_revision
from .dossiers import snapshot_of


def complete(app: Flask, dossier_id: int) -> bool:
    """Seal a completed dossier once; True if this call did the work."""
    session = db.session
    dossier = session.scalar(select(Dossier).where(Dossier.id == dossier_id).with_for_update(of=Dossier))
    if dossier is None or dossier.status != "completed":
        session.rollback()
        return False
    if session.scalar(select(ChainTimestamp).where(ChainTimestamp.dossier_id == dossier_id)):
        session.rollback()
        return False
    now = utcnow()
    snapshot = snapshot_of(dossier)
    if any(str(step.level) == "qualified" for step in snapshot.steps):
        for document in dossier.documents:
            if document.kind != "document":
                continue
            before = document.current
            stamped = timestamp_document(store().get(before.sha256), timestamper(app), validation_context(app))
            after = add_revision(document, stamped, "timestamp", None, now)
            audit.record(session, "document.timestamped", audit.Meta(actor="system"), dossier_id=dossier.id,
                         revision_sha256=after.sha256, document=document.filename, level="B-LTA",
                         sha256_before=before.sha256, sha256_after=after.sha256)
    session.flush()
    head = session.get(AuditHead, f"dossier:{dossier.id}")
    token = timestamp_hash(app, bytes.fromhex(head.hash))
    session.add(ChainTimestamp(dossier_id=dossier.id, head_hash=head.hash, dossier_seq=head.seq, token=token,
                               at=now))
    audit.record(session, "dossier.chain_timestamped", audit.Meta(actor="system"), dossier_id=dossier.id,
                 head_hash=head.hash, head_seq=head.seq)
    session.commit()
    return True


def timestamp_hash(app: Flask, digest: bytes) -> bytes:
    """An RFC 3161 token (TimeStampToken, DER) over a sha256 digest."""
    import asyncio

    token = asyncio.run(timestamper(app).async_timestamp(digest, "sha256"))
    return token.dump()
