"""The demo organisation: Ville de Techniville, its people, document types and sample dossiers."""

from __future__ import annotations

from flask import Flask

from . import instance

DEMO_PASSWORD = "demo-parapheur"

ORGANISATION = f"""
users:
  - {{username: rh.dupont, name: Claire Dupont, email: claire.dupont@techniville.fr, roles: [initiator], password: "{DEMO_PASSWORD}"}}
  - {{username: rh.lefevre, name: Julien Lefèvre, email: julien.lefevre@techniville.fr, roles: [initiator, signer], password: "{DEMO_PASSWORD}"}}
  - {{username: dgs.martin, name: Paul Martin, email: paul.martin@techniville.fr, roles: [signer], password: "{DEMO_PASSWORD}", signing_pin: "482913", totp_secret: JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP}}
  - {{username: drh.bernard, name: Sophie Bernard, email: sophie.bernard@techniville.fr, roles: [signer], password: "{DEMO_PASSWORD}", signing_pin: "482913", totp_secret: KRSXG5CTMVRXEZLUKRSXG5CTMVRXEZLU}}
  - {{username: maire.durand, name: Anne Durand, email: anne.durand@techniville.fr, roles: [signer], password: "{DEMO_PASSWORD}", signing_pin: "482913", totp_secret: MFRGGZDFMZTWQ2LKMFRGGZDFMZTWQ2LK}}
  - {{username: audit.moreau, name: Luc Moreau, email: luc.moreau@techniville.fr, roles: [auditor], password: "{DEMO_PASSWORD}"}}
  - {{username: admin, name: Administrateur, email: admin@techniville.fr, roles: [admin], password: "{DEMO_PASSWORD}"}}
desks:
  - {{code: drh, name: Direction des ressources humaines, members: [rh.lefevre, drh.bernard]}}
document_types:
  - code: attestation
    name: Attestation employeur
    min_level: simple
    allow_assignee_change: true
    steps:
      - {{kind: signature, level: simple, assignees: [desk:drh]}}
  - code: contrat
    name: Contrat de travail
    min_level: advanced
    steps:
      - {{kind: visa, assignees: [desk:drh], deadline_days: 3}}
      - {{kind: signature, level: advanced, assignees: [user:dgs.martin], deadline_days: 5}}
  - code: arrete-rh
    name: Arrêté individuel (RH)
    min_level: qualified
    steps:
      - {{kind: visa, assignees: [user:drh.bernard]}}
      - {{kind: visa, assignees: [user:dgs.martin]}}
      - {{kind: signature, level: qualified, assignees: [user:maire.durand]}}
  - code: note-interne
    name: Note interne
    min_level: simple
    steps:
      - {{kind: visa, assignees: [user:dgs.martin, desk:drh], quorum: 1}}
"""


def load(app: Flask) -> list[tuple[str, str, str]]:
    """Set up the demo organisation (idempotent) and return (username, password, roles) to print."""
    instance.initialise(app)
    instance.setup(ORGANISATION)
    from . import demo_dossiers

    demo_dossiers.create_samples(app)
    return [
        ("rh.dupont", DEMO_PASSWORD, "initiatrice (RH)"),
        ("rh.lefevre", DEMO_PASSWORD, "initiateur, signataire (bureau DRH)"),
        ("drh.bernard", DEMO_PASSWORD, "signataire (DRH), PIN 482913"),
        ("dgs.martin", DEMO_PASSWORD, "signataire (DGS), PIN 482913, TOTP JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"),
        ("maire.durand", DEMO_PASSWORD, "signataire (maire), PIN 482913"),
        ("audit.moreau", DEMO_PASSWORD, "auditeur"),
        ("admin", DEMO_PASSWORD, "administrateur"),
    ]
