"""``parapheur setup FILE.yaml``: create or update users, desks and document types from one file.

The whole file is checked before anything is written; an error names the line and field at fault. Applying
the same file twice changes nothing (no row updated, no audit event), because each field is compared before
it is set.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session

from circuits import TemplateError, template_from_dict, template_to_dict, validate_template
from circuits.model import Level

from .. import audit
from ..models import Desk, DeskMember, DocumentType, Role, User, UserRole
from . import accounts

USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,79}$")
CODE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,79}$")
ROLES = {r.value for r in Role}
USER_KEYS = {"username", "name", "email", "roles", "password", "signing_pin", "totp_secret", "locale", "active"}
DESK_KEYS = {"code", "name", "members"}
TYPE_KEYS = {"code", "name", "min_level", "steps", "allow_assignee_change"}


class OrganisationError(ValueError):
    """A fault in the organisation file, with where it is."""

    def __init__(self, path: str, line: int | None, message: str):
        where = f"ligne {line}, " if line else ""
        super().__init__(f"{where}{path} : {message}")
        self.path, self.line, self.message = path, line, message


@dataclass(frozen=True)
class SetupResult:
    created: tuple[str, ...]
    updated: tuple[str, ...]
    #: users given a signing PIN: the caller issues their certificates (needs the instance PKI)
    pins: tuple[tuple[str, str], ...]

    @property
    def changed(self) -> bool:
        return bool(self.created or self.updated)


class _Lines:
    """Maps a path such as ``users[2].roles`` to the line it stands on in the YAML source."""

    def __init__(self, text: str):
        self.lines: dict[str, int] = {}
        try:
            root = yaml.compose(text)
        except yaml.YAMLError:
            root = None
        if root is not None:
            self._walk(root, "")

    def _walk(self, node, path: str) -> None:
        self.lines[path] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                child = f"{path}.{key.value}" if path else str(key.value)
                self.lines[child] = key.start_mark.line + 1
                self._walk(value, child)
                self.lines[child] = key.start_mark.line + 1
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                self._walk(item, f"{path}[{index}]")

    def of(self, path: str) -> int | None:
        while path:
            if path in self.lines:
                return self.lines[path]
            path = re.sub(r"(\.[^.\[]*|\[\d+\])$", "", path)
        return None


def parse(text: str) -> dict:
    """Parse and check the whole file; raise OrganisationError naming the line and field at fault."""
    lines = _Lines(text)

    def fail(path: str, message: str):
        raise OrganisationError(path, lines.of(path), message)

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        raise OrganisationError("fichier", mark.line + 1 if mark else None, f"YAML illisible ({error})") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        fail("", "le fichier doit contenir les sections users, desks, document_types")
    unknown = set(data) - {"users", "desks", "document_types", "organisation"}
    if unknown:
        fail(sorted(unknown)[0], "section inconnue")
    users = _list(data, "users", fail)
    desks = _list(data, "desks", fail)
    types = _list(data, "document_types", fail)

    usernames: set[str] = set()
    for i, user in enumerate(users):
        p = f"users[{i}]"
        _mapping(user, p, USER_KEYS, fail)
        name = user.get("username")
        if not isinstance(name, str) or not USERNAME.match(name):
            fail(f"{p}.username", "identifiant manquant ou invalide (minuscules, chiffres, . _ -)")
        if name in usernames:
            fail(f"{p}.username", f"l'identifiant {name} apparaît deux fois")
        usernames.add(name)
        if not isinstance(user.get("name"), str) or not user["name"].strip():
            fail(f"{p}.name", "nom manquant")
        roles = user.get("roles", [])
        if not isinstance(roles, list) or not roles:
            fail(f"{p}.roles", "au moins un rôle est requis (initiator, signer, auditor, admin)")
        for role in roles:
            if role not in ROLES:
                fail(f"{p}.roles", f"rôle inconnu « {role} » (initiator, signer, auditor, admin)")
        for key in ("email", "password", "locale"):
            if key in user and not isinstance(user[key], str):
                fail(f"{p}.{key}", "doit être un texte")
        if "password" in user and len(user["password"]) < 8:
            fail(f"{p}.password", "mot de passe trop court (8 caractères au moins)")
        if "signing_pin" in user:
            pin = str(user["signing_pin"])
            if not pin.isdigit() or not 6 <= len(pin) <= 12:
                fail(f"{p}.signing_pin", "le code de signature doit compter 6 à 12 chiffres")
        if "totp_secret" in user and not re.fullmatch(r"[A-Z2-7]{24,128}=*", str(user["totp_secret"])):
            fail(f"{p}.totp_secret", "secret TOTP invalide : base32, 24 caractères au moins (112 bits)")

    desk_codes: set[str] = set()
    for i, desk in enumerate(desks):
        p = f"desks[{i}]"
        _mapping(desk, p, DESK_KEYS, fail)
        code = desk.get("code")
        if not isinstance(code, str) or not CODE.match(code):
            fail(f"{p}.code", "code manquant ou invalide")
        if code in desk_codes:
            fail(f"{p}.code", f"le bureau {code} apparaît deux fois")
        desk_codes.add(code)
        if not isinstance(desk.get("name"), str):
            fail(f"{p}.name", "nom manquant")
        members = desk.get("members", [])
        if not isinstance(members, list):
            fail(f"{p}.members", "doit être une liste d'identifiants")
        return_unknown = [m for m in members if m not in usernames]
        if return_unknown:
            fail(f"{p}.members", f"utilisateur inconnu « {return_unknown[0]} »")

    type_codes: set[str] = set()
    for i, doc_type in enumerate(types):
        p = f"document_types[{i}]"
        _mapping(doc_type, p, TYPE_KEYS, fail)
        code = doc_type.get("code")
        if not isinstance(code, str) or not CODE.match(code):
            fail(f"{p}.code", "code manquant ou invalide")
        if code in type_codes:
            fail(f"{p}.code", f"le type {code} apparaît deux fois")
        type_codes.add(code)
        if not isinstance(doc_type.get("name"), str):
            fail(f"{p}.name", "nom manquant")
        level = doc_type.get("min_level", "simple")
        if level not in {lv.value for lv in Level}:
            fail(f"{p}.min_level", f"niveau inconnu « {level} » (simple, advanced, qualified)")
        steps = doc_type.get("steps")
        if not isinstance(steps, list) or not steps:
            fail(f"{p}.steps", "au moins une étape est requise")
        try:
            template = template_from_dict({"steps": steps})
        except (TemplateError, ValueError, TypeError, KeyError) as error:
            fail(f"{p}.steps", str(error))
        try:
            validate_template(template, Level(level))
        except TemplateError as error:
            index = getattr(error, "index", None)
            fail(f"{p}.steps[{index}]" if index is not None else f"{p}.steps", str(error))
        for s, step in enumerate(template.steps):
            for assignee in step.assignees:
                known = usernames if assignee.kind == "user" else desk_codes
                if assignee.ref not in known:
                    what = "utilisateur" if assignee.kind == "user" else "bureau"
                    fail(f"{p}.steps[{s}].assignees", f"{what} inconnu « {assignee.ref} »")
        doc_type["_template"] = template
    return {"users": users, "desks": desks, "document_types": types}


def _list(data: dict, key: str, fail) -> list:
    value = data.get(key) or []
    if not isinstance(value, list):
        fail(key, "doit être une liste")
    return value


def _mapping(item: Any, path: str, allowed: set[str], fail) -> None:
    if not isinstance(item, dict):
        fail(path, "doit être un objet (clé: valeur)")
    unknown = sorted(set(item) - allowed)
    if unknown:
        fail(f"{path}.{unknown[0]}", "champ inconnu")


def apply(session: Session, text: str, meta: audit.Meta) -> SetupResult:
    """Create or update what the file describes; never commits. Raises OrganisationError first."""
    data = parse(text)
    created: list[str] = []
    updated: list[str] = []
    pins: list[tuple[str, str]] = []

    users_by_name = {u.username: u for u in session.scalars(select(User))}
    for spec in data["users"]:
        user = users_by_name.get(spec["username"])
        if user is None:
            user = User(username=spec["username"], name=spec["name"], email=spec.get("email", ""))
            session.add(user)
            users_by_name[user.username] = user
            created.append(f"user:{user.username}")
        changes = _set(user, name=spec["name"], email=spec.get("email", user.email),
                       locale=spec.get("locale", user.locale), active=spec.get("active", True))
        if "password" in spec and not accounts.check_password(user, spec["password"]):
            user.password_hash = accounts.hash_password(spec["password"])
            changes.append("password")
        if "totp_secret" in spec and user.totp_secret != spec["totp_secret"]:
            user.totp_secret, user.totp_confirmed = spec["totp_secret"], True
            changes.append("totp_secret")
        wanted = set(spec["roles"])
        if user.role_names != wanted:
            user.roles = [UserRole(role=r) for r in sorted(wanted)]
            changes.append("roles")
        if "signing_pin" in spec:
            pins.append((user.username, str(spec["signing_pin"])))
        if changes and f"user:{user.username}" not in created:
            updated.append(f"user:{user.username}")
    session.flush()

    desks_by_code = {d.code: d for d in session.scalars(select(Desk))}
    for spec in data["desks"]:
        desk = desks_by_code.get(spec["code"])
        if desk is None:
            desk = Desk(code=spec["code"], name=spec["name"])
            session.add(desk)
            desks_by_code[desk.code] = desk
            created.append(f"desk:{desk.code}")
        changes = _set(desk, name=spec["name"])
        wanted = {users_by_name[m].id for m in spec.get("members", [])}
        if {m.user_id for m in desk.members} != wanted:
            desk.members = [DeskMember(user_id=uid) for uid in sorted(wanted)]
            changes.append("members")
        if changes and f"desk:{desk.code}" not in created:
            updated.append(f"desk:{desk.code}")

    types_by_code = {t.code: t for t in session.scalars(select(DocumentType))}
    for spec in data["document_types"]:
        doc_type = types_by_code.get(spec["code"])
        template_json = json.dumps(template_to_dict(spec["_template"]), sort_keys=True)
        if doc_type is None:
            doc_type = DocumentType(code=spec["code"], name=spec["name"], template=template_json)
            session.add(doc_type)
            created.append(f"type:{doc_type.code}")
        changes = _set(doc_type, name=spec["name"], min_level=spec.get("min_level", "simple"),
                       allow_assignee_change=bool(spec.get("allow_assignee_change", False)),
                       template=template_json, active=True)
        if changes and f"type:{doc_type.code}" not in created:
            updated.append(f"type:{doc_type.code}")
    session.flush()
    if created or updated:
        audit.record(session, "admin.setup", meta, created=created, updated=updated)
    return SetupResult(tuple(created), tuple(updated), tuple(pins))


def _set(obj, **values) -> list[str]:
    """Set only the attributes that differ, so an unchanged file leaves rows untouched."""
    changed = []
    for key, value in values.items():
        if getattr(obj, key) != value:
            setattr(obj, key, value)
            changed.append(key)
    return changed


def export(session: Session) -> str:
    """The current organisation as an organisation file (no passwords, PINs or TOTP secrets), for the
    administrator to edit and apply again."""
    users = []
    for user in session.scalars(select(User).order_by(User.username)):
        entry: dict[str, Any] = {"username": user.username, "name": user.name, "email": user.email,
                                 "roles": sorted(user.role_names)}
        if not user.active:
            entry["active"] = False
        if user.locale:
            entry["locale"] = user.locale
        users.append(entry)
    desks = [{"code": d.code, "name": d.name, "members": sorted(m.user.username for m in d.members)}
             for d in session.scalars(select(Desk).order_by(Desk.code))]
    types = []
    for doc_type in session.scalars(select(DocumentType).where(DocumentType.active).order_by(DocumentType.code)):
        entry = {"code": doc_type.code, "name": doc_type.name, "min_level": doc_type.min_level}
        if doc_type.allow_assignee_change:
            entry["allow_assignee_change"] = True
        entry["steps"] = json.loads(doc_type.template)["steps"]
        types.append(entry)
    return yaml.safe_dump({"users": users, "desks": desks, "document_types": types}, allow_unicode=True,
                          sort_keys=False, width=110)
