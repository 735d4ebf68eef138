"""The OpenAPI 3.1 document, generated from the operations registered in ``spec.REGISTRY`` (the same
objects that validate requests) and the response schemas of ``schemas.py``."""

from __future__ import annotations

from flask import current_app, jsonify

from ..services.webhooks import EVENTS
from . import bp, schemas
from .spec import REGISTRY, JsonBody, Multipart, Operation, Reply, materialise, operation

INTRO = """API REST du parapheur : créer des dossiers, suivre et faire avancer leur circuit, télécharger les
documents signés, la piste d'audit et le dossier de preuve, valider des PDF signés.

**Authentification** : `Authorization: Bearer <jeton>`. Un jeton se crée dans le profil de l'utilisateur
(« Jetons d'API ») ou avec `parapheur token create IDENTIFIANT` ; il agit avec les droits de son
utilisateur, ni plus ni moins. Les cookies de session n'authentifient jamais l'API.

**Erreurs** : `application/problem+json` (RFC 9457) ; `detail` en français, en anglais avec
`Accept-Language: en` ; `code` est stable. 400 entrée invalide, 401 jeton absent ou invalide, 403 rôle
insuffisant, 404 ressource introuvable *ou dossier auquel l'utilisateur n'a pas part*, 409 transition
refusée ou état périmé (`code` = `stale`), 413 envoi trop gros, 422 PDF impossible à signer, 429 trop de
requêtes (`Retry-After`), 503 dépendance indisponible.

**Concurrence** : `GET /dossiers/{id}` renvoie un `ETag` ; envoyez-le en `If-Match` (ou le champ
`version`) avec une action : si le dossier a changé entre-temps, la réponse est 409 `stale`.

**Limite de débit** : par jeton, `API_RATE_LIMIT` requêtes par minute (120 par défaut) ; en-têtes
`RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset`.

**Webhooks** : voir la section `webhooks` ; chaque envoi porte `X-Parapheur-Timestamp` et
`X-Parapheur-Signature: sha256=<hex HMAC-SHA256(secret, timestamp + "." + corps)>`."""

ERROR_TEXT = {
    400: "Entrée invalide (paramètre, champ, corps JSON).",
    401: "Jeton absent, inconnu ou révoqué.",
    403: "Le rôle de l'utilisateur ne permet pas cette action.",
    404: "Introuvable, ou dossier auquel l'utilisateur du jeton n'a pas part.",
    409: "Transition refusée maintenant, ou dossier modifié depuis sa lecture (code stale).",
    413: "Envoi trop volumineux.",
    422: "PDF illisible, chiffré ou impossible à signer.",
    429: "Trop de requêtes pour ce jeton : attendre Retry-After secondes.",
    503: "Une dépendance (base, horodatage, file de tâches…) est indisponible : rien n'a été modifié.",
}
ERROR_HEADERS = {
    401: {"WWW-Authenticate": {"description": "Bearer realm=\"parapheur\"", "schema": {"type": "string"}}},
    429: {"Retry-After": {"description": "Secondes à attendre.", "schema": {"type": "integer"}}},
}

WEBHOOK_PAYLOAD = schemas.obj({
    "id": {"type": "string", "description": "Identifiant unique de l'envoi (aussi X-Parapheur-Delivery)."},
    "event": {"type": "string", "enum": list(EVENTS)},
    "occurred_at": schemas.DATETIME,
    "dossier": schemas.obj({
        "id": {"type": "integer"}, "title": {"type": "string"}, "type": {"type": "string"},
        "status": {"type": "string", "enum": schemas.DOSSIER_STATUSES}, "version": {"type": "integer"},
        "current_step": schemas.nullable({"type": "integer"}),
        "links": schemas.obj({"self": {"type": "string"}, "evidence": {"type": "string"}}),
    }),
    "relaunched": {"type": "boolean", "description": "dossier.launched : vrai pour une relance."},
    "step": {"type": "object", "description": "step.done, dossier.rejected : l'étape (index, kind, level, acts)."},
    "reason": {"type": "string", "description": "dossier.rejected : le motif."},
}, ["id", "event", "occurred_at", "dossier"])


def _errors_for(op: Operation) -> list[int]:
    codes = set(op.errors)
    if op.auth:
        codes |= {401, 429, 503}
    if op.roles:
        codes.add(403)
    if any(p.location == "path" for p in op.params):
        codes.add(404)
    if op.body is not None or any(p.location in {"query", "header"} for p in op.params):
        codes.add(400)
    if isinstance(op.body, Multipart):
        codes.add(413)
    return sorted(codes)


def _schema(schema: str | dict | None) -> dict | None:
    if schema is None:
        return None
    return schemas.ref(schema) if isinstance(schema, str) else materialise(schema)


def _reply(reply: Reply) -> dict:
    out: dict = {"description": reply.description}
    if reply.media_types:
        out["content"] = {media: {"schema": _schema(reply.schema) or {}} for media in reply.media_types}
    if reply.headers:
        out["headers"] = materialise(reply.headers)
    return out


def _body(body: JsonBody | Multipart) -> dict:
    if isinstance(body, JsonBody):
        media: dict = {"schema": materialise(body.schema)}
        if body.example is not None:
            media["example"] = body.example
        return {"required": body.required, "content": {"application/json": media}}
    encoding = {name: {"contentType": schema.get("contentMediaType")
                       or schema.get("items", {}).get("contentMediaType") or "application/octet-stream"}
                for name, schema in body.properties.items() if body.is_file(name)}
    return {"required": True, "content": {"multipart/form-data": {"schema": materialise(body.schema),
                                                                   "encoding": encoding}}}


def _operation(op: Operation) -> dict:
    description = op.description.strip()
    if op.roles:
        description += f"\n\nRôle requis : {' ou '.join(op.roles)}."
    out: dict = {"operationId": op.operation_id, "summary": op.summary, "description": description,
                 "tags": [op.tag], "security": [{"bearer": []}] if op.auth else []}
    if op.roles:
        out["x-roles"] = list(op.roles)
    parameters = []
    for param in op.params:
        item = {"name": param.name, "in": param.location, "required": param.required or param.location == "path",
                "schema": materialise(param.schema)}
        if param.description:
            item["description"] = param.description
        if param.example is not None:
            item["example"] = param.example
        parameters.append(item)
    if parameters:
        out["parameters"] = parameters
    if op.body is not None:
        out["requestBody"] = _body(op.body)
    responses = {str(r.status): _reply(r) for r in op.replies}
    for code in _errors_for(op):
        responses[str(code)] = {"description": ERROR_TEXT.get(code, "Erreur."),
                                "content": {"application/problem+json": {"schema": schemas.ref("Problem")}}}
        if code in ERROR_HEADERS:
            responses[str(code)]["headers"] = materialise(ERROR_HEADERS[code])
    out["responses"] = responses
    return out


def document() -> dict:
    """The whole OpenAPI document."""
    paths: dict = {}
    for op in REGISTRY:
        paths.setdefault(op.path, {})[op.method.lower()] = _operation(op)
    return {
        "openapi": "3.1.0",
        "info": {"title": f"Parapheur — {current_app.config.get('ORG_NAME', 'Parapheur')}", "version": "1",
                 "description": INTRO},
        "servers": [{"url": "/api/v1"}],
        "tags": [{"name": "dossiers"}, {"name": "jobs"}, {"name": "validation"}, {"name": "service"}],
        "paths": paths,
        "webhooks": {
            event: {"post": {
                "summary": label_fr, "description": label_en,
                "parameters": [
                    {"name": "X-Parapheur-Event", "in": "header", "required": True, "schema": {"type": "string"}},
                    {"name": "X-Parapheur-Delivery", "in": "header", "required": True, "schema": {"type": "string"}},
                    {"name": "X-Parapheur-Timestamp", "in": "header", "required": True,
                     "schema": {"type": "string"}, "description": "Secondes depuis l'epoch Unix."},
                    {"name": "X-Parapheur-Signature", "in": "header", "required": True,
                     "schema": {"type": "string"},
                     "description": "sha256=<hex HMAC-SHA256(secret, timestamp + \".\" + corps)>"},
                ],
                "requestBody": {"required": True, "content": {"application/json": {
                    "schema": schemas.ref("WebhookPayload")}}},
                "responses": {"2XX": {"description": "Reçu. Toute autre réponse est retentée plus tard "
                                                     "(attente doublée à chaque échec)."}},
            }}
            for event, (label_fr, label_en) in EVENTS.items()
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                           "description": "Jeton d'API (ppt_…)."}},
            "schemas": {**materialise(schemas.COMPONENTS), "WebhookPayload": WEBHOOK_PAYLOAD},
        },
    }


@operation(bp, "GET", "/openapi.json", summary="Ce document OpenAPI", tag="service", auth=False,
           replies=(Reply(200, "Le document OpenAPI 3.1 de l'API.", {"type": "object"}),))
def openapi(call):
    """Serve the OpenAPI document (also at /openapi.json)."""
    return jsonify(document())


@bp.record_once
def _serve_at_root(state) -> None:
    state.app.add_url_rule("/openapi.json", "api_openapi_root", lambda: jsonify(document()))
