"""Dossiers over the API: the same services and access rules as the browser. A user with no part in a
dossier gets 404 on every endpoint below, exactly as in the browser."""

from __future__ import annotations

import base64
import logging
import math
from urllib.parse import quote, urlencode

from flask import Response, current_app, jsonify, request
from sqlalchemy import func, select

from .. import audit
from ..extensions import db
from ..jobs import enqueue_after_commit, require_queue
from ..models import AuditEvent, DocumentType, Dossier, utcnow
from ..services import access, dossiers, signing_jobs, trail
from ..services import evidence as evidence_service
from ..services.errors import Conflict, NotFound
from ..storage import store
from . import bp, schemas, serialise
from .spec import BINARY, ID, PDF, Dynamic, JsonBody, Multipart, Param, Reply, operation, path_id

log = logging.getLogger(__name__)

DOSSIER_ID = path_id("dossier_id", "Identifiant du dossier.")
IF_MATCH = Param(
    "If-Match", {"type": "string", "maxLength": 500},
    "ETag lu par GET /dossiers/{dossier_id} : si le dossier a changé depuis, l'action est refusée avec 409 "
    "(code stale), comme le champ version. (409 plutôt que 412 : DESIGN.md §5 répond 409 à tout état périmé.)",
    location="header")
VERSION = {"type": "integer", "minimum": 1, "maximum": 2_147_483_647,
           "description": "Version du dossier lue avant d'agir ; 409 (code stale) si elle a changé."}

CREATE = Multipart("DossierCreation", {
    "title": {"type": "string", "minLength": 1, "maxLength": 300, "pattern": "\\S",
              "description": "Titre du dossier."},
    "type": Dynamic(lambda: _type_schema()),
    "documents": {"type": "array", "items": PDF, "minItems": 1,
                  "maxItems": 50, "description": "Les PDF à signer (1 à 50)."},
    "annexes": {"type": "array", "items": BINARY, "maxItems": 50,
                "description": "Pièces jointes, non signées (0 à 50)."},
    "launch": {"type": "boolean", "default": False, "description": "Lancer le dossier dans son circuit aussitôt."},
}, required=("title", "type", "documents"))

ACTION = JsonBody("DossierAction", {
    "type": "object",
    "properties": {
        "action": {"type": "string", "enum": schemas.ACTIONS},
        "reason": {"type": "string", "maxLength": 2000, "description": "Motif, obligatoire pour reject."},
        "pin": {"type": "string", "maxLength": 128, "description": "Code de signature (signature avancée ou "
                                                                     "qualifiée)."},
        "otp": {"type": "string", "maxLength": 16, "description": "Code TOTP (signature avancée)."},
        "version": VERSION,
    },
    "required": ["action"],
    "additionalProperties": False,
    "if": {"properties": {"action": {"const": "reject"}}, "required": ["action"]},
    "then": {"properties": {"reason": {"pattern": "\\S"}}, "required": ["reason"]},
}, example={"action": "sign", "pin": "482913", "otp": "123456", "version": 4})

def _type_schema() -> dict:
    """The codes of the instance's active document types (read when validating or documenting)."""
    codes = db.session.scalars(select(DocumentType.code).where(DocumentType.active).order_by(DocumentType.code)).all()
    schema = {"type": "string", "description": "Code du type de document."}
    return {**schema, "enum": codes} if codes else {**schema, "minLength": 1, "maxLength": 80}


LAUNCH = JsonBody("DossierLaunch", {
    "type": "object", "properties": {"version": VERSION}, "additionalProperties": False,
}, required=False)

LIST_PARAMS = (
    Param("status", {"type": "string", "enum": schemas.DOSSIER_STATUSES}, "Filtrer par état."),
    Param("type", {"type": "string", "minLength": 1, "maxLength": 80}, "Filtrer par code de type de document."),
    Param("page", {"type": "integer", "minimum": 1, "maximum": 100_000, "default": 1}, "Page (à partir de 1)."),
    Param("per_page", {"type": "integer", "minimum": 1, "maximum": 100, "default": 20}, "Dossiers par page."),
)
ETAG_HEADER = {"ETag": {"description": "Version du dossier, pour If-Match.", "schema": {"type": "string"}}}
DOSSIER_REPLY = Reply(200, "Le dossier.", "Dossier", headers=ETAG_HEADER)
ACT_ERRORS = (400, 403, 404, 409, 422, 503)


@operation(bp, "POST", "/dossiers", summary="Créer un dossier (et le lancer)", roles=("initiator",), body=CREATE,
           replies=(Reply(201, "Dossier créé.", "Dossier", headers={
               **ETAG_HEADER, "Location": {"description": "Adresse du dossier.", "schema": {"type": "string"}}}),),
           errors=(400, 403, 409, 413, 422))
def create_dossier(call):
    """Create a dossier from uploaded PDFs and annexes, and launch it when ``launch`` is true."""
    now, session = utcnow(), db.session
    documents = [_store(upload) for upload in call.files["documents"]]
    annexes = [_store(upload) for upload in call.files.get("annexes", [])]
    dossier = dossiers.create(session, call.user, call.body["title"], call.body["type"], documents, annexes,
                              call.meta(), now)
    jobs: tuple = ()
    if call.body.get("launch"):
        session.flush()
        jobs = dossiers.perform(session, current_app._get_current_object(), dossier, call.user, "launch",
                                call.meta(), now).jobs
    session.commit()
    _after_commit(jobs)
    response = _dossier_response(call, dossier.id, 201)
    response.headers["Location"] = serialise.dossier_url(dossier.id)
    return response


@operation(bp, "GET", "/dossiers", summary="Lister les dossiers visibles", params=LIST_PARAMS,
           replies=(Reply(200, "Une page de dossiers, les plus récemment modifiés d'abord.", "DossierPage",
                          headers={"Link": {"description": "Liens first, prev, next, last (RFC 8288).",
                                            "schema": {"type": "string"}}}),),
           errors=(400,))
def list_dossiers(call):
    """List the dossiers the token's user has a part in (every dossier for auditors), filtered and paged."""
    session, args = db.session, call.query
    query = select(Dossier).where(access.visible_condition(session, call.user, utcnow()))
    if "status" in args:
        query = query.where(Dossier.status == args["status"])
    if "type" in args:
        query = query.where(Dossier.type_id.in_(select(DocumentType.id).where(DocumentType.code == args["type"])))
    total = session.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
    page, per_page = args.get("page", 1), args.get("per_page", 20)
    rows = session.scalars(query.order_by(Dossier.updated_at.desc(), Dossier.id.desc())
                           .offset((page - 1) * per_page).limit(per_page)).all()
    pages = math.ceil(total / per_page)
    links = _page_links(args, page, per_page, pages)
    response = jsonify({"items": [serialise.summary(d) for d in rows], "total": total, "page": page,
                        "per_page": per_page, "pages": pages, "links": links})
    response.headers["Link"] = ", ".join(f'<{url}>; rel="{rel}"' for rel, url in links.items()
                                         if url and rel != "self")
    return response


def _page_links(args: dict, page: int, per_page: int, pages: int) -> dict:
    def url(number: int) -> str:
        kept = {k: args[k] for k in ("status", "type") if k in args}
        return f"{serialise.PREFIX}/dossiers?" + urlencode({**kept, "page": number, "per_page": per_page})

    last = max(pages, 1)
    return {"self": url(page), "first": url(1), "last": url(last),
            "next": url(page + 1) if page < pages else None, "prev": url(min(page - 1, last)) if page > 1 else None}


@operation(bp, "GET", "/dossiers/{dossier_id}", summary="Lire un dossier", params=(
    DOSSIER_ID, Param("If-None-Match", {"type": "string", "maxLength": 500}, "ETag déjà connu : 304 s'il n'a "
                                                                               "pas changé.", location="header")),
           replies=(DOSSIER_REPLY, Reply(304, "Inchangé depuis l'ETag donné.", None, media_types=())),
           errors=(404,))
def get_dossier(call, dossier_id: int):
    """Show a dossier: state, version, steps and documents, with its ETag."""
    dossier = access.get_for(db.session, call.user, dossier_id, utcnow())
    tag = serialise.etag(dossier)
    if tag in _tags(call.headers.get("If-None-Match", "")):
        response = Response(status=304)
        response.headers["ETag"] = tag
        return response
    return _respond(dossier, 200)


@operation(bp, "POST", "/dossiers/{dossier_id}/launch", summary="Lancer un dossier dans son circuit",
           params=(DOSSIER_ID, IF_MATCH), body=LAUNCH, replies=(DOSSIER_REPLY,), errors=ACT_ERRORS)
def launch(call, dossier_id: int):
    """Launch a draft dossier (its initiator only)."""
    return _perform(call, dossier_id, "launch", call.body.get("version"))


@operation(bp, "POST", "/dossiers/{dossier_id}/actions", summary="Agir sur un dossier",
           description="Viser (approve), signer (sign : pin, et otp en signature avancée), rejeter (reject, "
                       "reason obligatoire), retirer (recall), relancer (relaunch). 409 si l'action n'est pas "
                       "permise maintenant (code not_assignee, …) ou si le dossier a changé (code stale). "
                       "Quand des workers sont configurés (Redis), une signature est vérifiée (PIN, code) "
                       "puis confiée à un worker : réponse 202 {job}, à suivre par GET /jobs/{id} ; sinon "
                       "elle est faite dans la requête (200). 503 si le service de tâches est indisponible.",
           params=(DOSSIER_ID, IF_MATCH), body=ACTION,
           replies=(DOSSIER_REPLY, Reply(202, "Action mise en file d'attente : suivre GET /jobs/{id}.",
                                         "JobAccepted")),
           errors=ACT_ERRORS)
def act(call, dossier_id: int):
    """Approve, sign, reject, recall or relaunch a dossier as the token's user."""
    body = call.body
    return _perform(call, dossier_id, body["action"], body.get("version"), reason=body.get("reason"),
                    pin=body.get("pin"), otp=body.get("otp"))


@operation(bp, "GET", "/dossiers/{dossier_id}/documents/{document_id}", summary="Télécharger un document",
           description="La révision courante (signée, une fois le circuit avancé), ou la révision N. Les annexes "
                       "se téléchargent de la même façon, avec leur propre type de contenu.",
           params=(DOSSIER_ID, path_id("document_id", "Identifiant du document (documents[].id)."),
                   Param("revision", ID, "Numéro de révision (documents[].revisions[].number).")),
           replies=(Reply(200, "Le fichier.", {}, media_types=("application/pdf", "application/octet-stream"),
                          headers={"ETag": {"description": "sha256 du contenu.", "schema": {"type": "string"}}}),),
           errors=(404,))
def download(call, dossier_id: int, document_id: int):
    """Send one revision of a document or annex."""
    dossier = access.get_for(db.session, call.user, dossier_id, utcnow())
    document = dossiers.get_document(dossier, document_id)
    number = call.query.get("revision")
    revision = document.current if number is None else next(
        (r for r in document.revisions if r.number == number), None)
    if revision is None:
        raise NotFound("Révision introuvable.", "Revision not found.")
    trail.record_access(db.session, _meta(call), dossier, "document.downloaded", document=document, revision=revision)
    db.session.commit()
    mimetype = document.content_type if document.content_type == "application/pdf" else "application/octet-stream"
    response = Response(_read(revision.sha256), mimetype=mimetype, headers={
        "Content-Length": str(revision.size), "Content-Disposition": _attachment(document.filename)})
    response.headers["ETag"] = f'"{revision.sha256}"'
    response.headers["Repr-Digest"] = "sha-256=:" + base64.b64encode(bytes.fromhex(revision.sha256)).decode() + ":"
    return response


@operation(bp, "GET", "/dossiers/{dossier_id}/audit", summary="Piste d'audit du dossier",
           params=(DOSSIER_ID,), replies=(Reply(200, "Événements et verdict sur la chaîne.", "AuditTrail"),),
           errors=(404,))
def audit_trail(call, dossier_id: int):
    """List the dossier's audit events and say whether their hash chain is intact."""
    session = db.session
    dossier = access.get_for(session, call.user, dossier_id, utcnow())
    events = session.scalars(select(AuditEvent).where(AuditEvent.dossier_id == dossier.id)
                             .order_by(AuditEvent.dossier_seq)).all()
    return jsonify({"events": [serialise.audit_event(e) for e in events],
                    "chain_valid": audit.verify(session, dossier.id).ok})


@operation(bp, "GET", "/dossiers/{dossier_id}/evidence", summary="Dossier de preuve (ZIP)",
           params=(DOSSIER_ID,), replies=(Reply(200, "Archive ZIP : documents, piste d'audit, rapports.",
                                                {"contentMediaType": "application/zip"},
                                                media_types=("application/zip",)),),
           errors=(404, 503))
def evidence(call, dossier_id: int):
    """Send the dossier's evidence bundle."""
    session = db.session
    dossier = access.get_for(session, call.user, dossier_id, utcnow())
    data = evidence_service.bundle(session, current_app._get_current_object(), dossier)
    trail.record_access(session, _meta(call), dossier, "evidence.downloaded")
    session.commit()
    return Response(data, mimetype="application/zip",
                    headers={"Content-Disposition": _attachment(evidence_service.filename(dossier))})


# --- helpers --------------------------------------------------------------------------------------


def _meta(call) -> audit.Meta:
    return audit.Meta(actor=call.user.username, ip=request.remote_addr,
                      user_agent=request.headers.get("User-Agent", "")[:300])


def _store(upload) -> dossiers.Upload:
    digest, size = store().put_stream(upload.stream)
    return dossiers.Upload(upload.filename or "document.pdf", digest, size)


def _read(digest: str):
    """The blob, streamed in chunks from the file store (closed once read, or when the response is)."""
    blobs = store()
    if not hasattr(blobs, "path"):
        return [blobs.get(digest)]
    path = blobs.path(digest)

    def chunks():
        with open(path, "rb") as handle:
            while chunk := handle.read(256 * 1024):
                yield chunk

    return chunks()


def _attachment(filename: str) -> str:
    ascii_name = filename.encode("ascii", "replace").decode().replace("?", "_").replace('"', "")
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename)}"


def _tags(header: str) -> list[str]:
    """Entity tags of an If-Match / If-None-Match header (weak ones compared as strong: ours are exact)."""
    return [t.strip().removeprefix("W/") for t in header.split(",") if t.strip()]


def _expected_version(call, dossier: Dossier, version: int | None) -> int | None:
    header = call.headers.get("If-Match")
    if header is not None and header.strip() != "*" and serialise.etag(dossier) not in _tags(header):
        raise Conflict("Le dossier a changé depuis votre lecture (If-Match) : relisez-le avant d'agir.",
                       "The dossier changed since you read it (If-Match): read it again before acting.",
                       code="stale")
    return version


def _perform(call, dossier_id: int, action: str, version: int | None, **kwargs):
    now, session, app = utcnow(), db.session, current_app._get_current_object()
    require_queue(app)  # an action whose jobs cannot be queued is refused whole (503), never half done
    dossier = access.get_for(session, call.user, dossier_id, now, lock=True)
    expected = _expected_version(call, dossier, version)
    if action == "sign":
        request_ = signing_jobs.request_signature(session, app, dossier, call.user, kwargs.get("pin"),
                                                  kwargs.get("otp"), call.meta(), now, expected_version=expected)
        session.commit()
        _after_commit(request_.jobs)
        if request_.job is not None:
            response = jsonify({"job": request_.job.id})
            response.status_code = 202
            response.headers["Location"] = f"/api/v1/jobs/{request_.job.id}"
            return response
        return _dossier_response(call, dossier_id, 200)
    result = dossiers.perform(session, app, dossier, call.user, action, call.meta(), now,
                              expected_version=expected, **kwargs)
    session.commit()
    _after_commit(result.jobs)
    return _dossier_response(call, dossier_id, 200)


def _after_commit(jobs) -> None:
    """Run or queue the jobs; the action is committed, so a queue failure is logged, not reported as one."""
    try:
        enqueue_after_commit(jobs)
    except Exception:  # noqa: BLE001
        log.exception("could not enqueue %r after commit", jobs)


def _dossier_response(call, dossier_id: int, status: int) -> Response:
    """Read the dossier again (inline jobs may have moved it on) and answer with it."""
    db.session.expire_all()
    return _respond(access.get_for(db.session, call.user, dossier_id, utcnow()), status)


def _respond(dossier: Dossier, status: int) -> Response:
    response = jsonify(serialise.dossier(dossier))
    response.status_code = status
    response.headers["ETag"] = serialise.etag(dossier)
    return response
