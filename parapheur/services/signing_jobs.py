"""One signature, from the web page or the API: done in the request (embedded default, no Redis) or taken
out of it (``PARAPHEUR_REDIS_URL`` set), as a one-dossier job on the ``signing`` queue.

Either way the signer's second factor is checked in the request, so a wrong PIN or code is answered at
once; a queued signature is then followed through its JobRecord (``batches.status``: the web page polls
``/batches/<id>.json``, the API answers ``GET /api/v1/jobs/{id}``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from flask import Flask
from sqlalchemy.orm import Session

import circuits
from circuits import Sign, TransitionRefused

from .. import audit
from ..models import Dossier, JobRecord, User
from . import batches
from .dossiers import ActionResult, directory, perform, snapshot_of
from .errors import Conflict


@dataclass(frozen=True)
class SignatureRequest:
    """What became of a signature request."""

    #: the queued signature (Redis configured): follow it with ``batches.status(session, user, job.id)``
    job: JobRecord | None
    #: the signature done in this transaction (no Redis): the dossier moved on
    result: ActionResult | None
    #: work to hand to ``jobs.enqueue_after_commit`` once the caller has committed
    jobs: tuple[tuple, ...] = field(default_factory=tuple)


def request_signature(session: Session, app: Flask, dossier: Dossier, user: User, pin: str | None,
                      otp: str | None, meta: audit.Meta, now: datetime, *,
                      expected_version: int | None = None) -> SignatureRequest:
    """Sign ``dossier`` (locked by the caller) as ``user``, now or through the queue. Never commits.

    Raises what ``dossiers.perform`` raises — Conflict (stale version, not the user's turn), Invalid /
    Forbidden (PIN, code, certificate), Unavailable (the queue is down: nothing was recorded)."""
    if not app.config.get("REDIS_URL"):
        result = perform(session, app, dossier, user, "sign", meta, now, expected_version=expected_version,
                         pin=pin, otp=otp)
        return SignatureRequest(None, result, result.jobs)
    from ..jobs import require_queue

    require_queue(app)
    if expected_version is not None and expected_version != dossier.version:
        raise Conflict("Le dossier a changé depuis l'affichage de la page : rechargez-la avant d'agir.",
                       "The dossier changed since you loaded it: reload before acting.", code="stale")
    try:  # the engine's verdict now, so a refused signature is answered in the request
        snapshot = snapshot_of(dossier)
        circuits.apply(snapshot, Sign(), user.username, now, directory(session, now, snapshot))
    except TransitionRefused as refused:
        raise Conflict(refused.message_fr, refused.message_en, code=refused.code) from None
    if batches.pending_signature(session, user, dossier.id) is not None:
        raise Conflict("La signature de ce dossier est déjà en cours.", "This dossier is already being signed.",
                       code="signature_pending")
    job, work = batches.start(session, app, user, [dossier.id], pin, otp, meta, kind="sign")
    return SignatureRequest(job, None, tuple(work))
