"""The API's single description: every endpoint is registered through ``operation``, which

* adds the Flask route (OpenAPI ``{name}`` path parameters become ``<converter:name>``),
* authenticates the bearer token, applies the rate limit and the role check,
* validates path, query, header, JSON and multipart inputs against the declared JSON Schemas,
* records the operation, so that ``openapi.document()`` is generated from exactly what is enforced.

A schema written here is therefore used twice, by the validator and by the OpenAPI document: they cannot
drift. Response schemas live in ``schemas.py`` and are checked against real responses by schemathesis.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from flask import request
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError
from werkzeug.datastructures import FileStorage

from .. import audit
from ..models import ApiToken, User
from ..services.errors import Forbidden, Invalid, NotFound

#: a file part of a multipart body
BINARY = {"type": "string", "format": "binary", "contentMediaType": "application/octet-stream"}
PDF = {"type": "string", "format": "binary", "contentMediaType": "application/pdf"}
#: largest id the database holds (PostgreSQL integer); bigger ones cannot name anything
MAX_ID = 2_147_483_647
ID = {"type": "integer", "minimum": 1, "maximum": MAX_ID}


@dataclass(frozen=True)
class Dynamic:
    """A schema that depends on the instance (the document types it offers): made at each request, for
    the validator and for the OpenAPI document alike."""

    factory: Callable[[], dict]


def materialise(schema):
    """A copy of ``schema`` with its Dynamic parts made."""
    if isinstance(schema, Dynamic):
        return schema.factory()
    if isinstance(schema, dict):
        return {key: materialise(value) for key, value in schema.items()}
    if isinstance(schema, list | tuple):
        return [materialise(value) for value in schema]
    return schema


def _is_dynamic(schema) -> bool:
    if isinstance(schema, Dynamic):
        return True
    if isinstance(schema, dict):
        return any(_is_dynamic(value) for value in schema.values())
    return isinstance(schema, list) and any(_is_dynamic(value) for value in schema)


@dataclass(frozen=True)
class Param:
    """A path, query or header parameter."""

    name: str
    schema: dict
    description: str = ""
    location: str = "query"
    required: bool = False
    example: object = None


def path_id(name: str, description: str) -> Param:
    return Param(name, ID, description, location="path", required=True, example=1)


@dataclass(frozen=True)
class JsonBody:
    """An ``application/json`` request body; ``schema`` is self-contained (no $ref)."""

    component: str
    schema: dict
    required: bool = True
    example: dict | None = None


@dataclass(frozen=True, eq=False)
class Multipart:
    """A ``multipart/form-data`` body. Fields whose schema is BINARY (or an array of it) are files; the
    others are text fields, coerced to their schema's type (booleans, integers) before validation."""

    component: str
    properties: dict
    required: tuple[str, ...] = ()

    @property
    def schema(self) -> dict:
        return {"type": "object", "properties": self.properties, "required": list(self.required)}

    def is_file(self, name: str) -> bool:
        schema = self.properties[name]
        if isinstance(schema, Dynamic):
            return False
        return schema.get("format") == "binary" or schema.get("items", {}).get("format") == "binary"


@dataclass(frozen=True)
class Reply:
    """A documented success response."""

    status: int
    description: str
    schema: str | dict | None = None  # a component name of schemas.py, or an inline schema
    media_types: tuple[str, ...] = ("application/json",)
    headers: dict = field(default_factory=dict)


@dataclass
class Operation:
    method: str
    path: str
    operation_id: str
    summary: str
    description: str
    tag: str
    auth: bool
    roles: tuple[str, ...]
    params: tuple[Param, ...]
    body: JsonBody | Multipart | None
    replies: tuple[Reply, ...]
    errors: tuple[int, ...]
    view: Callable | None = None


#: every operation, in registration order; the OpenAPI document is built from it
REGISTRY: list[Operation] = []


@dataclass
class Call:
    """One validated API request, handed to the view."""

    user: User | None
    token: ApiToken | None
    locale: str
    query: dict
    headers: dict
    body: dict
    files: dict[str, list[FileStorage]]

    def meta(self) -> audit.Meta:
        return audit.Meta(actor=self.user.username if self.user else None, ip=request.remote_addr,
                          user_agent=request.headers.get("User-Agent", "")[:300])


def flask_path(path: str, params: tuple[Param, ...]) -> str:
    kinds = {p.name: p.schema.get("type") for p in params if p.location == "path"}

    def convert(match: re.Match) -> str:
        name = match.group(1)
        return f"<int:{name}>" if kinds.get(name) == "integer" else f"<string:{name}>"

    return re.sub(r"\{(\w+)\}", convert, path)


def operation(bp, method: str, path: str, *, summary: str, description: str = "", tag: str = "dossiers",
              auth: bool = True, roles: tuple[str, ...] = (), params: tuple[Param, ...] = (),
              body: JsonBody | Multipart | None = None, replies: tuple[Reply, ...] = (),
              errors: tuple[int, ...] = ()):
    """Register ``view(call, **path_params)`` as ``method path`` on ``bp`` and in the OpenAPI document."""

    def decorator(view: Callable) -> Callable:
        op = Operation(method.upper(), path, view.__name__, summary, description or (view.__doc__ or ""),
                       tag, auth, roles, params, body, replies, tuple(sorted(set(errors))), view)
        REGISTRY.append(op)

        @functools.wraps(view)
        def endpoint(**path_values):
            from . import auth as api_auth
            from .problems import request_locale

            locale = request_locale()
            user = token = None
            if op.auth:
                token = api_auth.authenticate()
                user = token.user
                if op.roles and not user.role_names & set(op.roles):
                    raise Forbidden(_roles_fr(op.roles), _roles_en(op.roles), code="role_required")
            values = _validate_path(op, path_values)
            call = Call(user=user, token=token, locale=locale, query=_validate_query(op),
                        headers=_read_headers(op), body={}, files={})
            if isinstance(op.body, JsonBody):
                call.body = _validate_json(op.body)
            elif isinstance(op.body, Multipart):
                call.body, call.files = _validate_multipart(op.body)
            return view(call, **values)

        bp.add_url_rule(flask_path(path, params), view.__name__, endpoint, methods=[op.method])
        return view

    return decorator


_ROLE_FR = {"initiator": "initiateur", "signer": "signataire", "auditor": "auditeur", "admin": "administrateur"}


def _roles_fr(roles) -> str:
    return "Action réservée au rôle " + " ou ".join(_ROLE_FR.get(r, r) for r in roles) + "."


def _roles_en(roles) -> str:
    return "Only the " + " or ".join(roles) + " role may do this."


# --- validation -------------------------------------------------------------------------------------


def _validator(schema: dict) -> Draft202012Validator:
    if _is_dynamic(schema):
        return Draft202012Validator(materialise(schema))
    cached = _VALIDATORS.get(id(schema))
    if cached is None or cached[0] is not schema:
        cached = _VALIDATORS[id(schema)] = (schema, Draft202012Validator(schema))
    return cached[1]


_VALIDATORS: dict[int, tuple[dict, Draft202012Validator]] = {}


def _check(schema: dict, instance, where: str) -> None:
    error = next(iter(sorted(_validator(schema).iter_errors(instance), key=lambda e: list(e.path))), None)
    if error is not None:
        raise _invalid(*describe(error, where))


def _invalid(fr: str, en: str, name: str) -> Invalid:
    error = Invalid(fr, en, code="invalid_request")
    error.field = name
    return error


def _validate_path(op: Operation, values: dict) -> dict:
    """A path value outside its schema names nothing: 404, not 400."""
    for param in op.params:
        if param.location == "path" and param.name in values:
            if not _validator(param.schema).is_valid(values[param.name]):
                raise NotFound("Ressource introuvable.", "Resource not found.")
    return values


def _coerce(raw: str, schema: dict, name: str):
    kind = schema.get("type")
    if kind == "integer":
        if not re.fullmatch(r"[+-]?\d{1,12}", raw.strip()):
            raise _invalid(f"« {name} » doit être un nombre entier.", f"'{name}' must be an integer.", name)
        return int(raw)
    if kind == "boolean":
        lowered = raw.strip().lower()
        if lowered in {"true", "1", "yes", "on", "oui"}:
            return True
        if lowered in {"false", "0", "no", "off", "non", ""}:
            return False
        raise _invalid(f"« {name} » doit valoir true ou false.", f"'{name}' must be true or false.", name)
    return raw


def _validate_query(op: Operation) -> dict:
    known = {p.name for p in op.params if p.location == "query"}
    unknown = sorted(set(request.args) - known)
    if unknown:  # a misspelt filter must not silently list everything
        shown = ", ".join(unknown)[:200]
        raise _invalid(f"Paramètre(s) inconnu(s) : {shown}.", f"Unknown parameter(s): {shown}.", unknown[0][:80])
    values = {}
    for param in op.params:
        if param.location != "query":
            continue
        raw = request.args.get(param.name)
        if raw is None:
            if param.required:
                raise _invalid(f"Paramètre « {param.name} » obligatoire.", f"Parameter '{param.name}' is required.",
                               param.name)
            continue
        value = _coerce(raw, param.schema, param.name)
        _check(param.schema, value, param.name)
        values[param.name] = value
    return values


def _read_headers(op: Operation) -> dict:
    values = {}
    for param in op.params:
        if param.location == "header" and param.name in request.headers:
            value = request.headers[param.name]
            _check(param.schema, value, param.name)
            values[param.name] = value
    return values


def _validate_json(body: JsonBody) -> dict:
    data = request.get_json(silent=True) if request.mimetype == "application/json" else None
    if data is None:
        if not body.required and not request.get_data(cache=True).strip():
            return {}
        raise _invalid("Le corps de la requête doit être un document JSON (Content-Type: application/json).",
                       "The request body must be a JSON document (Content-Type: application/json).", "body")
    _check(body.schema, data, "body")
    return data


def _validate_multipart(body: Multipart) -> tuple[dict, dict[str, list[FileStorage]]]:
    """Text fields against their schemas (coerced first); file fields for presence and count."""
    if request.mimetype != "multipart/form-data":
        raise _invalid("Envoyez un formulaire multipart/form-data.", "Send a multipart/form-data form.", "body")
    form, files = {}, {}
    properties = materialise(body.properties)
    for name, schema in properties.items():
        if body.is_file(name):
            files[name] = [f for f in request.files.getlist(name) if f.filename or f.content_length]
        elif name in request.form:
            form[name] = _coerce(request.form[name], schema, name)
    text = {n: schema for n, schema in properties.items() if not body.is_file(n)}
    _check({"type": "object", "properties": text, "required": [n for n in body.required if n in text]}, form, "body")
    for name, uploads in files.items():
        schema = body.properties[name]
        least = schema.get("minItems", 0) if schema.get("type") == "array" else int(name in body.required)
        most = schema.get("maxItems", 1000) if schema.get("type") == "array" else 1
        if len(uploads) < least:
            raise _invalid(f"Joignez au moins {least} fichier(s) dans « {name} ».",
                           f"Attach at least {least} file(s) as '{name}'.", name)
        if len(uploads) > most:
            raise _invalid(f"Au plus {most} fichier(s) dans « {name} ».", f"At most {most} file(s) as '{name}'.",
                           name)
    return form, files


_NAMES_FR = {"string": "du texte", "integer": "un nombre entier", "boolean": "true ou false", "object": "un objet",
             "array": "une liste", "number": "un nombre", "null": "null"}


def describe(error: ValidationError, where: str) -> tuple[str, str, str]:
    """A French and an English sentence for a JSON Schema violation, and the field it concerns."""
    path = [str(p) for p in error.absolute_path]
    name = ".".join(path) or where
    validator, value = error.validator, error.validator_value
    if validator == "required":
        missing = re.search(r"'([^']+)'", error.message)
        name = ".".join([*path, missing.group(1)]) if missing else name
        return f"« {name} » est obligatoire.", f"'{name}' is required.", name
    if validator == "type":
        kinds = value if isinstance(value, list) else [value]
        return (f"« {name} » doit être {' ou '.join(_NAMES_FR.get(k, k) for k in kinds)}.",
                f"'{name}' must be of type {' or '.join(kinds)}.", name)
    if validator == "enum":
        allowed = ", ".join(str(v) for v in value)
        return f"« {name} » doit valoir l'une de ces valeurs : {allowed}.", f"'{name}' must be one of: {allowed}.", name
    if validator in {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"}:
        return f"« {name} » est hors des limites permises.", f"'{name}' is out of range.", name
    if validator == "minLength":
        return (f"« {name} » doit compter au moins {value} caractère(s).",
                f"'{name}' must be at least {value} character(s) long.", name)
    if validator == "maxLength":
        return (f"« {name} » doit compter au plus {value} caractère(s).",
                f"'{name}' must be at most {value} character(s) long.", name)
    if validator == "minItems":
        return f"« {name} » : au moins {value} élément(s) attendu(s).", f"'{name}': at least {value} item(s).", name
    if validator == "maxItems":
        return f"« {name} » : au plus {value} élément(s).", f"'{name}': at most {value} item(s).", name
    if validator == "additionalProperties":
        extra = re.findall(r"'([^']+)'", error.message)
        shown = ", ".join(extra) or "?"
        return f"Champ(s) inconnu(s) : {shown}.", f"Unknown field(s): {shown}.", name
    if validator == "pattern" and value == "\\S":
        return f"« {name} » ne doit pas être vide.", f"'{name}' must not be blank.", name
    if validator == "pattern":
        return f"« {name} » n'a pas le format attendu.", f"'{name}' does not have the expected format.", name
    return f"« {name} » est invalide.", f"'{name}' is invalid: {error.message}", name
