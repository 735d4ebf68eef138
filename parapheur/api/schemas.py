"""JSON Schemas (2020-12, as OpenAPI 3.1 uses them) of what the API answers; ``components/schemas`` of
the OpenAPI document. ``serialise.py`` produces these shapes and schemathesis checks every answer
against them."""

from __future__ import annotations


def nullable(schema: dict) -> dict:
    kind = schema.get("type")
    if kind is None:
        return {"anyOf": [schema, {"type": "null"}]}
    nulled = {**schema, "type": [kind, "null"]}
    if "enum" in schema:
        nulled["enum"] = [*schema["enum"], None]
    return nulled


DATETIME = {"type": "string", "format": "date-time"}
SHA256 = {"type": "string", "pattern": "^[0-9a-f]{64}$"}
DOSSIER_STATUSES = ["draft", "in_progress", "completed", "rejected", "recalled"]
STEP_STATUSES = ["pending", "active", "done", "rejected", "skipped"]
LEVELS = ["simple", "advanced", "qualified"]
ACTIONS = ["approve", "sign", "reject", "recall", "relaunch", "launch"]


def ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def obj(properties: dict, required: list[str] | None = None, **extra) -> dict:
    return {"type": "object", "properties": properties,
            "required": list(properties) if required is None else required, **extra}


COMPONENTS: dict[str, dict] = {
    "Problem": obj({
        "type": {"type": "string", "description": "Toujours about:blank."},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string", "description": "Explication en français, ou en anglais avec "
                                                    "Accept-Language: en."},
        "code": {"type": "string", "description": "Code stable de l'erreur (stale, not_assignee, bad_pin…)."},
        "field": {"type": "string", "description": "Le champ ou paramètre en cause (erreurs 400)."},
    }, ["type", "title", "status", "detail"], description="RFC 9457 problem details."),
    "Act": obj({
        "actor": {"type": "string", "description": "Identifiant de la personne qui a agi."},
        "on_behalf_of": nullable({"type": "string", "description": "Pour le compte de (délégation)."}),
        "action": {"type": "string", "enum": ["approve", "sign"]},
        "at": DATETIME,
        "slot": {"type": "string", "description": "Destinataire de l'étape satisfait (user:… ou desk:…)."},
    }),
    "Step": obj({
        "index": {"type": "integer", "minimum": 0},
        "name": nullable({"type": "string"}),
        "kind": {"type": "string", "enum": ["visa", "signature"]},
        "level": nullable({"type": "string", "enum": LEVELS}),
        "assignees": {"type": "array", "items": {"type": "string"}, "description": "user:NAME ou desk:CODE"},
        "quorum": {"anyOf": [{"type": "string", "const": "all"}, {"type": "integer", "minimum": 1}]},
        "status": {"type": "string", "enum": STEP_STATUSES},
        "acted_by": nullable({"type": "string", "description": "Dernière personne à avoir agi (ou rejeté)."}),
        "acted_on_behalf_of": nullable({"type": "string"}),
        "acted_at": nullable(DATETIME),
        "acts": {"type": "array", "items": ref("Act")},
        "activated_at": nullable(DATETIME),
        "deadline_days": nullable({"type": "integer"}),
    }),
    "Revision": obj({
        "number": {"type": "integer", "minimum": 1},
        "sha256": SHA256,
        "size": {"type": "integer", "minimum": 0},
        "reason": {"type": "string", "description": "upload, fields, signature, timestamp, relaunch…"},
        "created_at": DATETIME,
    }),
    "Document": obj({
        "id": {"type": "integer"},
        "filename": {"type": "string"},
        "content_type": {"type": "string"},
        "sha256": {**SHA256, "description": "Empreinte de la révision courante."},
        "revision": {"type": "integer", "minimum": 1, "description": "Numéro de la révision courante."},
        "size": {"type": "integer", "minimum": 0},
        "pages": nullable({"type": "integer"}),
        "revisions": {"type": "array", "items": ref("Revision")},
        "links": obj({"download": {"type": "string"}}),
    }),
    "Dossier": obj({
        "id": {"type": "integer"},
        "title": {"type": "string"},
        "type": {"type": "string", "description": "Code du type de document."},
        "type_name": {"type": "string"},
        "status": {"type": "string", "enum": DOSSIER_STATUSES},
        "version": {"type": "integer", "minimum": 1,
                    "description": "Change à chaque action : à renvoyer (If-Match ou version) pour agir."},
        "initiator": {"type": "string"},
        "current_step": nullable({"type": "integer", "minimum": 0}),
        "created_at": DATETIME,
        "updated_at": DATETIME,
        "completed_at": nullable(DATETIME),
        "due_at": nullable(DATETIME),
        "reject_reason": nullable({"type": "string"}),
        "steps": {"type": "array", "items": ref("Step")},
        "documents": {"type": "array", "items": ref("Document"), "description": "Les PDF à signer."},
        "annexes": {"type": "array", "items": ref("Document"), "description": "Pièces jointes, non signées."},
        "links": obj({"self": {"type": "string"}, "audit": {"type": "string"}, "evidence": {"type": "string"},
                      "actions": {"type": "string"}}),
    }),
    "DossierSummary": obj({
        "id": {"type": "integer"},
        "title": {"type": "string"},
        "type": {"type": "string"},
        "status": {"type": "string", "enum": DOSSIER_STATUSES},
        "version": {"type": "integer", "minimum": 1},
        "initiator": {"type": "string"},
        "current_step": nullable({"type": "integer", "minimum": 0}),
        "created_at": DATETIME,
        "updated_at": DATETIME,
        "completed_at": nullable(DATETIME),
        "links": obj({"self": {"type": "string"}}),
    }),
    "DossierPage": obj({
        "items": {"type": "array", "items": ref("DossierSummary")},
        "total": {"type": "integer", "minimum": 0},
        "page": {"type": "integer", "minimum": 1},
        "per_page": {"type": "integer", "minimum": 1},
        "pages": {"type": "integer", "minimum": 0},
        "links": obj({"self": {"type": "string"}, "first": {"type": "string"}, "last": {"type": "string"},
                      "next": nullable({"type": "string"}), "prev": nullable({"type": "string"})}),
    }),
    "JobAccepted": obj({"job": {"type": "string"}, "links": obj({"job": {"type": "string"}})}),
    "Job": obj({
        "id": {"type": "string"},
        "kind": {"type": "string"},
        "status": {"type": "string", "enum": ["queued", "running", "done", "failed", "partial"]},
        "total": {"type": "integer"},
        "done": {"type": "integer"},
        "failed": {"type": "integer"},
        "result": {"type": "object"},
        "created_at": DATETIME,
        "updated_at": DATETIME,
    }),
    "AuditEvent": obj({
        "seq": {"type": "integer", "description": "Rang dans la chaîne du dossier."},
        "at": DATETIME,
        "kind": {"type": "string"},
        "actor": nullable({"type": "string"}),
        "on_behalf_of": nullable({"type": "string"}),
        "revision_sha256": nullable(SHA256),
        "data": {"type": "object"},
        "hash": SHA256,
        "prev_hash": SHA256,
    }),
    "AuditTrail": obj({
        "events": {"type": "array", "items": ref("AuditEvent")},
        "chain_valid": {"type": "boolean", "description": "Vrai si la chaîne d'empreintes du dossier est intacte."},
    }),
    "SignatureReport": obj({
        "field": {"type": "string"},
        "signer": {"type": "string"},
        "level": {"type": "string", "enum": ["B-B", "B-T", "B-LT", "B-LTA"]},
        "signing_time": nullable(DATETIME),
        "timestamp_time": nullable(DATETIME),
        "intact": {"type": "boolean"},
        "trusted": {"type": "boolean"},
        "revocation": {"type": "string"},
        "coverage": {"type": "string"},
        "modifications": nullable({"type": "string"}),
        "valid": {"type": "boolean"},
        "reasons": {"type": "array", "items": {"type": "string"}},
        "kind": {"type": "string", "enum": ["signature", "document_timestamp"]},
    }, ["field", "signer", "level", "intact", "trusted", "coverage", "valid", "reasons"]),
    "ValidationReport": obj({
        "valid": {"type": "boolean", "description": "Vrai si le fichier a au moins une signature et que toutes "
                                                    "sont valides."},
        "signatures": {"type": "array", "items": ref("SignatureReport")},
        "error": nullable({"type": "string"}),
    }),
    "Health": obj({"status": {"type": "string", "const": "ok"}}),
}
