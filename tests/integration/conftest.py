"""Integration fixtures: an app per test on SQLite and on PostgreSQL, the instance keys made once."""

from __future__ import annotations

import os
import re
import shutil
import uuid
from pathlib import Path

import pytest

from parapheur import create_app
from parapheur.extensions import db
from tests import services

ORG = """
users:
  - {username: rh.dupont, name: Claire Dupont, email: claire@example.fr, roles: [initiator], password: "secret-rh-1"}
  - {username: rh.lefevre, name: Julien Lefèvre, email: julien@example.fr, roles: [initiator, signer], password: "secret-rh-2"}
  - {username: dgs.martin, name: Paul Martin, email: paul@example.fr, roles: [signer], password: "secret-dgs", signing_pin: "482913", totp_secret: JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP}
  - {username: drh.bernard, name: Sophie Bernard, email: sophie@example.fr, roles: [signer], password: "secret-drh", signing_pin: "111222"}
  - {username: outsider, name: Oscar Tiers, email: oscar@example.fr, roles: [signer, initiator], password: "secret-out"}
  - {username: audit.moreau, name: Luc Moreau, email: luc@example.fr, roles: [auditor], password: "secret-aud"}
  - {username: admin, name: Admin, email: admin@example.fr, roles: [admin], password: "secret-adm"}
  - {username: norole, name: Sans Rôle, email: none@example.fr, roles: [initiator], password: "secret-none"}
desks:
  - {code: drh, name: Direction des ressources humaines, members: [rh.lefevre, drh.bernard]}
document_types:
  - code: contrat
    name: Contrat de travail
    min_level: advanced
    steps:
      - {kind: visa, assignees: [desk:drh], deadline_days: 3}
      - {kind: signature, level: advanced, assignees: [user:dgs.martin]}
  - code: attestation
    name: Attestation
    min_level: simple
    allow_assignee_change: true
    steps:
      - {kind: signature, level: simple, assignees: [desk:drh]}
  - code: note-interne
    name: Note interne
    min_level: simple
    steps:
      - {kind: visa, assignees: [user:dgs.martin, desk:drh], quorum: 1}
"""

PASSWORDS = {"rh.dupont": "secret-rh-1", "rh.lefevre": "secret-rh-2", "dgs.martin": "secret-dgs",
             "drh.bernard": "secret-drh", "outsider": "secret-out", "audit.moreau": "secret-aud",
             "admin": "secret-adm", "norole": "secret-none"}


@pytest.fixture(scope="session")
def instance_keys(tmp_path_factory) -> Path:
    """The instance CA, seal and TSA, created once per test session and copied into each instance."""
    from signing.pki import create_instance_pki

    directory = tmp_path_factory.mktemp("keys")
    create_instance_pki("Ville de Test").save(directory)
    return directory


class Databases:
    """Per backend, a migrated empty database and one holding the test organisation, made once per test
    session; each test gets a fresh copy (a file copy on SQLite, CREATE DATABASE … TEMPLATE on PostgreSQL)."""

    def __init__(self, root: Path, keys: Path):
        self.root, self.keys, self.made, self.pg_names = root, keys, {}, []

    def _seed(self, url: str, with_org: bool) -> None:
        instance = self.root / f"seed-{uuid.uuid4().hex[:8]}"
        shutil.copytree(self.keys, instance / "keys")
        app = create_app({"INSTANCE_DIR": str(instance), "DATABASE_URL": url, "SECRET_KEY": "seed",
                          "PASSWORD_HASH_PROFILE": "cheapest", "ORG_NAME": "Ville de Test"})
        with app.app_context():
            from parapheur.services import instance as instance_service

            instance_service.initialise(app)
            if with_org:
                instance_service.setup(ORG)
        db.dispose(app)

    def template(self, backend: str, kind: str) -> str:
        key = (backend, kind)
        if key not in self.made:
            if backend == "sqlite":
                path = self.root / f"template-{kind}.sqlite3"
                self._seed(f"sqlite:///{path}", kind == "org")
                self.made[key] = str(path)
            else:
                name = f"parapheur_tpl_{kind}_{uuid.uuid4().hex[:8]}"
                with services.pg_connect() as admin:
                    admin.execute(f'CREATE DATABASE "{name}"')
                self.pg_names.append(name)
                self._seed(f"postgresql+psycopg://127.0.0.1:5432/{name}", kind == "org")
                self.made[key] = name
        return self.made[key]

    def fresh(self, backend: str, kind: str, tmp_path: Path) -> tuple[str, str | None]:
        source = self.template(backend, kind)
        if backend == "sqlite":
            target = tmp_path / "test.sqlite3"
            shutil.copyfile(source, target)
            return f"sqlite:///{target}", None
        name = f"parapheur_{uuid.uuid4().hex[:12]}"
        with services.pg_connect() as admin:
            admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{source}"')
        return f"postgresql+psycopg://127.0.0.1:5432/{name}", name

    def drop_all(self) -> None:
        if self.pg_names:
            with services.pg_connect() as admin:
                for name in self.pg_names:
                    admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def databases(tmp_path_factory, instance_keys):
    registry = Databases(tmp_path_factory.mktemp("databases"), instance_keys)
    yield registry
    registry.drop_all()


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request):
    if request.param == "postgresql":
        try:
            services.pg_connect().close()
        except Exception as error:  # noqa: BLE001
            services.unavailable("PostgreSQL", error)
    return request.param


@pytest.fixture(scope="session")
def test_storage():
    """``PARAPHEUR_TEST_STORAGE=s3``: every app keeps its blobs in its own bucket of an S3 service (moto's
    server on loopback) instead of a folder, so the whole suite runs on the S3 store."""
    if os.environ.get("PARAPHEUR_TEST_STORAGE", "file") != "s3":
        yield None
        return
    from tests.integration.s3server import S3Server

    with S3Server() as server:
        yield server


@pytest.fixture
def make_app(request, tmp_path, backend, databases, instance_keys):
    """Build an app on a fresh database (``seed='empty'`` or ``'org'``); settings as keyword arguments."""
    apps, pg_databases = [], []
    s3 = request.getfixturevalue("test_storage") if os.environ.get("PARAPHEUR_TEST_STORAGE") == "s3" else None

    def build(seed: str = "empty", **overrides):
        keys = tmp_path / "instance" / "keys"
        if not keys.exists():
            shutil.copytree(instance_keys, keys)
        workdir = tmp_path / f"db{len(apps)}"
        workdir.mkdir()
        url, pg_name = databases.fresh(backend, seed, workdir)
        if pg_name:
            pg_databases.append(pg_name)
        config = {
            "INSTANCE_DIR": str(tmp_path / "instance"),
            "DATABASE_URL": url,
            "SECRET_KEY": "test-secret",
            "TESTING": True,
            "ORG_NAME": "Ville de Test",
            "REDIS_URL": None,
            "TSA_URL": None,
            "SMTP_HOST": None,
            "PASSWORD_HASH_PROFILE": "cheapest",
        }
        if s3 is not None:
            config.update(STORAGE_URL=s3.new_bucket(), S3_ENDPOINT_URL=s3.endpoint)
        config.update(overrides)
        app = create_app(config)
        apps.append(app)
        return app

    yield build
    for app in apps:
        db.dispose(app)
    if pg_databases:
        with services.pg_connect() as admin:
            for name in pg_databases:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def app(make_app):
    """An initialised instance with an empty organisation."""
    return make_app()


@pytest.fixture
def org(make_app):
    """An instance holding the test organisation (ORG)."""
    return make_app("org")


def csrf_token(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no CSRF token in the page"
    return match.group(1)


class Browser:
    """A test client that logs in and posts forms with their CSRF token, as a browser would."""

    def __init__(self, app):
        self.app = app
        self.client = app.test_client()

    def login(self, username: str, password: str | None = None):
        page = self.client.get("/login")
        return self.client.post("/login", data={"username": username, "password": password or PASSWORDS[username],
                                                "csrf_token": csrf_token(page.get_data(as_text=True))})

    def get(self, url, **kwargs):
        return self.client.get(url, **kwargs)

    def post_form(self, page_url: str, url: str | None = None, data: dict | None = None, **kwargs):
        """Load ``page_url`` to get its CSRF token, then post ``data`` to ``url`` (default: the same page)."""
        page = self.client.get(page_url)
        payload = dict(data or {})
        payload["csrf_token"] = csrf_token(page.get_data(as_text=True))
        return self.client.post(url or page_url, data=payload, **kwargs)


@pytest.fixture
def browser(org):
    def make(username: str | None = None) -> Browser:
        b = Browser(org)
        if username:
            response = b.login(username)
            assert response.status_code == 302, response.get_data(as_text=True)
        return b

    return make


def pytest_collection_modifyitems(items):
    for item in items:
        if "backend" in getattr(item, "fixturenames", ()) and "[postgresql" in item.nodeid:
            item.add_marker(pytest.mark.postgres)


