"""Background jobs started by API calls (batch signing…): their progress, to their own user only."""

from __future__ import annotations

from ..extensions import db
from ..models import JobRecord
from ..services.errors import NotFound
from . import bp, serialise
from .spec import Param, Reply, operation


@operation(bp, "GET", "/jobs/{job_id}", summary="Suivre une tâche", tag="jobs",
           params=(Param("job_id", {"type": "string", "minLength": 1, "maxLength": 36}, "Identifiant de la tâche.",
                         location="path", required=True),),
           replies=(Reply(200, "La tâche et son avancement.", "Job"),), errors=(404,))
def get_job(call, job_id: str):
    """Show a job's progress; someone else's job is 404."""
    record = db.session.get(JobRecord, job_id)
    if record is None or record.user_id != call.user.id:
        raise NotFound("Tâche introuvable.", "Job not found.")
    return serialise.job(record)
