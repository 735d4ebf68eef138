"""A completed three-step dossier (visa on delegation → simple signature → advanced signature), for the
bordereau, evidence and auditor's page tests."""

from __future__ import annotations

from datetime import timedelta

from parapheur.extensions import db
from parapheur.models import Delegation, Dossier, utcnow
from parapheur.services import completion, instance

from .conftest import ORG
from .factories import act, create_dossier, user

# appended to the test organisation's document types (a setup file is checked as a whole)
THREE_STEPS = ORG.rstrip() + """
  - code: deliberation
    name: Délibération du conseil
    min_level: simple
    steps:
      - {kind: visa, assignees: [user:drh.bernard]}
      - {kind: signature, level: simple, assignees: [user:rh.lefevre]}
      - {kind: signature, level: advanced, assignees: [user:dgs.martin]}
"""

TITLE = "Délibération n° 2025-042 : création d'un poste « chargé(e) de mission » — été"


def completed_dossier(app, documents: int = 2) -> int:
    """Run a dossier through the three steps (the visa given by rh.lefevre for drh.bernard); its id."""
    instance.setup(THREE_STEPS)
    now = utcnow()
    db.session.add(Delegation(delegator_id=user("drh.bernard").id, delegate_id=user("rh.lefevre").id,
                              start=now - timedelta(hours=1), end=now + timedelta(days=1)))
    db.session.commit()
    dossier_id = create_dossier("deliberation", title=TITLE, documents=documents).id
    for username, action in (("rh.lefevre", "approve"), ("rh.lefevre", "sign"), ("dgs.martin", "sign")):
        act(db.session.get(Dossier, dossier_id), username, action)
    dossier = db.session.get(Dossier, dossier_id)
    assert dossier.status == "completed", dossier.status
    completion.complete(app, dossier_id)  # already done if the job ran inline: idempotent
    return dossier_id
