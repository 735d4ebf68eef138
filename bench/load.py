"""Pages under load: 100,000 dossiers in PostgreSQL, the inbox, a dossier page and the API list.

1. Seed. A scratch PostgreSQL database gets an organisation of ``--teams`` teams (3 initiators, a desk of
   two agents, a head of department each) plus a DGS, a mayor and an auditor. Prototype dossiers are made
   *through the services* (create, launch, visa, simple and advanced signatures, reject, recall: 14
   circuits in every state, for each initiator of team 00), then cloned with bulk ``COPY`` into
   ``--dossiers`` dossiers: each clone is moved to a random team (user and desk names rewritten in the
   circuit snapshot, the assignee rows, the revisions and the audit events), dated at random over three
   years (in-progress ones over the last two months), with its audit events re-chained (instance chain
   and dossier chain hashes recomputed with :mod:`parapheur.audit`), so the database reads as if the
   application had written it. Blobs are shared with the prototypes (content-addressed).
2. EXPLAIN. Each page is rendered once in-process as a typical user; every SELECT it runs is EXPLAINed
   (ANALYZE, BUFFERS); sequential scans of the big tables and rows read-and-thrown-away are reported.
3. Load. gunicorn (``--gunicorn-workers`` sync workers, Redis for rate limits, like production) serves
   the app. Two runs, each with 50 concurrent clients:
   - *saturation*: no pause between requests (wrk when installed, else Python threads), one endpoint at
     a time for ``--duration`` seconds;
   - *users*: each client waits 0.5–1.5 s between requests (a person clicking), the three endpoints mixed.
   Latency percentiles and errors (any status but 200, or a connection error) for each.

    .venv/bin/python -m bench.load [--quick] [--json] [--dossiers 100000] [--duration 15]
"""

from __future__ import annotations

import contextlib
import datetime as dt
import http.client
import json
import random
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import pdfs
from bench.common import (
    ROOT,
    Report,
    env_for,
    instance_config,
    log,
    ms,
    parser,
    percentile,
    pg_connect,
    pg_url,
    scratch_database,
    scratch_redis,
    venv_bin,
    workdir,
)

PASSWORD = "bench-pass"
PIN = "482913"
DGS_TOTP = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
CONCURRENCY = 50
BIG_TABLES = {"dossiers", "dossier_assignees", "documents", "revisions", "audit_events", "audit_heads"}


# -- the organisation -------------------------------------------------------------------------------------------


def team(k: int) -> str:
    return f"t{k:02d}"


def organisation(teams: int) -> str:
    users = [
        f'  - {{username: dgs.martin, name: Paul Martin, email: dgs@example.fr, roles: [signer], '
        f'password: "{PASSWORD}", signing_pin: "{PIN}", totp_secret: {DGS_TOTP}}}',
        f'  - {{username: maire.durand, name: Anne Durand, email: maire@example.fr, roles: [signer], '
        f'password: "{PASSWORD}"}}',
        f'  - {{username: audit.moreau, name: Luc Moreau, email: audit@example.fr, roles: [auditor], '
        f'password: "{PASSWORD}"}}',
    ]
    desks = []
    for k in range(teams):
        t = team(k)
        for i in (1, 2, 3):
            users.append(f'  - {{username: {t}.init{i}, name: Initiateur {i} {t.upper()}, email: {t}.init{i}@example.fr, '
                         f'roles: [initiator], password: "{PASSWORD}"}}')
        for i in (1, 2):
            users.append(f'  - {{username: {t}.agent{i}, name: Agent {i} {t.upper()}, email: {t}.agent{i}@example.fr, '
                         f'roles: [signer], password: "{PASSWORD}"}}')
        users.append(f'  - {{username: {t}.chef, name: Chef {t.upper()}, email: {t}.chef@example.fr, roles: [signer], '
                     f'password: "{PASSWORD}"}}')
        desks.append(f"  - {{code: {t}-bureau, name: Bureau {t.upper()}, members: [{t}.agent1, {t}.agent2]}}")
    types = """
document_types:
  - code: attestation
    name: Attestation employeur
    min_level: simple
    allow_assignee_change: true
    steps:
      - {kind: signature, level: simple, assignees: [desk:t00-bureau], deadline_days: 5}
  - code: contrat
    name: Contrat de travail
    min_level: advanced
    steps:
      - {kind: visa, assignees: [desk:t00-bureau], deadline_days: 3}
      - {kind: signature, level: advanced, assignees: [user:dgs.martin], deadline_days: 5}
  - code: arrete
    name: Arrêté individuel
    min_level: simple
    steps:
      - {kind: visa, assignees: [user:t00.chef]}
      - {kind: signature, level: simple, assignees: [user:maire.durand], deadline_days: 7}
  - code: note-interne
    name: Note interne
    min_level: simple
    steps:
      - {kind: visa, assignees: [user:t00.chef, desk:t00-bureau], quorum: 1}
"""
    return "users:\n" + "\n".join(users) + "\ndesks:\n" + "\n".join(desks) + "\n" + types


# (type, annex?, [(actor, action)]) — actor "init" is the prototype's initiator; None = stays a draft
RECIPES = [
    ("attestation", False, None),
    ("attestation", False, [("init", "launch")]),
    ("attestation", False, [("init", "launch"), ("t00.agent1", "sign")]),
    ("attestation", False, [("init", "launch"), ("t00.agent2", "reject")]),
    ("attestation", False, [("init", "launch"), ("init", "recall")]),
    ("contrat", True, [("init", "launch")]),
    ("contrat", True, [("init", "launch"), ("t00.agent1", "approve")]),
    ("contrat", True, [("init", "launch"), ("t00.agent2", "approve"), ("dgs.martin", "sign")]),
    ("contrat", True, [("init", "launch"), ("t00.agent1", "approve"), ("dgs.martin", "reject")]),
    ("arrete", False, [("init", "launch")]),
    ("arrete", False, [("init", "launch"), ("t00.chef", "approve")]),
    ("arrete", False, [("init", "launch"), ("t00.chef", "approve"), ("maire.durand", "sign")]),
    ("note-interne", False, [("init", "launch")]),
    ("note-interne", False, [("init", "launch"), ("t00.chef", "approve")]),
]
STATUS_WEIGHTS = {"completed": 0.78, "in_progress": 0.14, "rejected": 0.04, "recalled": 0.02, "draft": 0.02}
TITLES = {"attestation": "Attestation employeur", "contrat": "Contrat de travail", "arrete": "Arrêté individuel",
          "note-interne": "Note interne"}
NAMES = ["Dupont", "Martin", "Bernard", "Thomas", "Petit", "Robert", "Richard", "Durand", "Dubois", "Moreau",
         "Laurent", "Simon", "Michel", "Lefèvre", "Leroy", "Roux", "David", "Bertrand", "Morel", "Fournier"]


def _user(session, username):
    from sqlalchemy import select

    from parapheur.models import User

    return session.scalar(select(User).where(User.username == username))


def make_prototypes(app) -> list[int]:
    """The 14 recipes for each of team 00's initiators, through the services (jobs run inline)."""
    import pyotp

    from parapheur import audit, jobs
    from parapheur.extensions import db
    from parapheur.models import utcnow
    from parapheur.samples import text_pdf
    from parapheur.services import dossiers
    from parapheur.storage import store

    session = db.session
    document = pdfs.text_pages(4, 5000, "Acte administratif")
    annex = text_pdf("Pièce jointe", ["Justificatif."], pages=1)
    doc_digest, annex_digest = store().put(document), store().put(annex)
    ids = []
    for i in (1, 2, 3):
        initiator = f"t00.init{i}"
        for n, (type_code, with_annex, steps) in enumerate(RECIPES):
            annexes = [dossiers.Upload("justificatif.pdf", annex_digest, len(annex))] if with_annex else []
            dossier = dossiers.create(session, _user(session, initiator), f"@@PROTO-{i}-{n}@@", type_code,
                                      [dossiers.Upload("acte.pdf", doc_digest, len(document))], annexes,
                                      audit.Meta(initiator, None, "10.0.0.1", "Mozilla/5.0"), utcnow())
            session.commit()
            for actor, action in steps or []:
                actor = initiator if actor == "init" else actor
                kwargs = {}
                if action == "reject":
                    kwargs["reason"] = "Pièce manquante : merci de compléter le dossier."
                if action == "sign" and actor == "dgs.martin":
                    kwargs.update(pin=PIN, otp=pyotp.TOTP(DGS_TOTP).now())
                result = dossiers.perform(session, app, dossier, _user(session, actor), action,
                                          audit.Meta(actor, None, "10.0.0.2", "Mozilla/5.0"), utcnow(), **kwargs)
                session.commit()
                jobs.enqueue_after_commit(result.jobs)
            ids.append(dossier.id)
    return ids


# -- cloning -------------------------------------------------------------------------------------------------------

_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")


def _shift_json(value, delta: dt.timedelta):
    """Shift every ISO date-time string of a JSON value by ``delta`` (same format back)."""
    if isinstance(value, dict):
        return {k: _shift_json(v, delta) for k, v in value.items()}
    if isinstance(value, list):
        return [_shift_json(v, delta) for v in value]
    if isinstance(value, str) and _ISO.match(value):
        try:
            moment = dt.datetime.fromisoformat(value)
        except ValueError:
            return value
        sep = "T" if "T" in value else " "
        spec = "microseconds" if "." in value else "seconds"
        return (moment + delta).isoformat(sep=sep, timespec=spec)
    return value


@dataclass
class Prototype:
    id: int
    status: str
    type_code: str
    created_at: dt.datetime
    dossier: dict
    documents: list[dict]
    revisions: list[dict]
    assignees: list[dict]
    events: list[dict]


def load_prototypes(conn, ids: list[int]) -> list[Prototype]:
    def rows(sql, *params):
        cur = conn.execute(sql, params)
        names = [c.name for c in cur.description]
        return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]

    out = []
    for pid in ids:
        dossier = rows("SELECT * FROM dossiers WHERE id = %s", pid)[0]
        type_code = conn.execute("SELECT code FROM document_types WHERE id = %s", (dossier["type_id"],)).fetchone()[0]
        documents = rows("SELECT * FROM documents WHERE dossier_id = %s ORDER BY id", pid)
        revisions = rows("SELECT r.* FROM revisions r JOIN documents d ON d.id = r.document_id "
                         "WHERE d.dossier_id = %s ORDER BY r.id", pid)
        assignees = rows("SELECT * FROM dossier_assignees WHERE dossier_id = %s ORDER BY id", pid)
        events = rows("SELECT * FROM audit_events WHERE dossier_id = %s ORDER BY seq", pid)
        out.append(Prototype(pid, dossier["status"], type_code, dossier["created_at"], dossier, documents,
                             revisions, assignees, events))
    return out


class Cloner:
    """Writes clones of the prototypes with COPY, a chunk of dossiers at a time."""

    def __init__(self, conn, teams: int, rng: random.Random):
        self.conn, self.teams, self.rng = conn, teams, rng
        users = dict(conn.execute("SELECT username, id FROM users").fetchall())
        desks = dict(conn.execute("SELECT code, id FROM desks").fetchall())
        self.user_map, self.desk_map = {}, {}
        for k in range(teams):
            t = team(k)
            self.user_map[k] = {users[n]: users[n.replace("t00.", f"{t}.", 1)] for n in users if n.startswith("t00.")}
            self.desk_map[k] = {desks[c]: desks[c.replace("t00-", f"{t}-", 1)] for c in desks if c.startswith("t00-")}
        self.next = {table: conn.execute(f"SELECT coalesce(max(id), 0) + 1 FROM {table}").fetchone()[0]
                     for table in ("dossiers", "documents", "revisions", "dossier_assignees", "audit_events")}
        seq, head = conn.execute("SELECT seq, hash FROM audit_heads WHERE scope = 'instance'").fetchone()
        self.seq, self.head = seq, head
        self.counts = dict.fromkeys(("dossiers", "documents", "revisions", "dossier_assignees", "audit_events"), 0)

    def _rename(self, text: str | None, k: int) -> str | None:
        if text is None or k == 0:
            return text
        t = team(k)
        return text.replace("t00.", f"{t}.").replace("t00-", f"{t}-")

    def _title(self, proto: Prototype, number: int) -> str:
        name = self.rng.choice(NAMES)
        return f"{TITLES[proto.type_code]} — {self.rng.choice(['M.', 'Mme'])} {name} (n° {number:06d})"

    def write(self, plans: list[tuple[Prototype, int, dt.datetime]]) -> None:
        """``plans``: (prototype, team, created_at) for each clone, in chain order."""
        from parapheur.audit import canonical_bytes, link_hash

        d_rows, doc_rows, rev_rows, asg_rows, ev_rows, head_rows = [], [], [], [], [], []
        for proto, k, created in plans:
            delta = created - proto.created_at
            did = self.next["dossiers"]
            self.next["dossiers"] += 1
            users = self.user_map[k]
            desks = self.desk_map[k]
            title = self._title(proto, did)
            src = proto.dossier
            circuit = json.dumps(_shift_json(json.loads(self._rename(src["circuit"], k)), delta))

            def shift(value, delta=delta):
                return value + delta if value is not None else None

            d_rows.append((did, title, src["type_id"], users.get(src["initiator_id"], src["initiator_id"]),
                           src["status"], circuit, src["current_step"], shift(src["due_at"]),
                           shift(src["reminded_at"]), src["version"], shift(src["created_at"]),
                           shift(src["updated_at"]), shift(src["completed_at"])))
            doc_ids = {}
            for doc in proto.documents:
                doc_ids[doc["id"]] = new = self.next["documents"]
                self.next["documents"] += 1
                doc_rows.append((new, did, doc["kind"], doc["filename"], doc["content_type"], doc["position"],
                                 doc["pages"]))
            for rev in proto.revisions:
                rev_rows.append((self.next["revisions"], doc_ids[rev["document_id"]], rev["number"], rev["sha256"],
                                 rev["size"], rev["reason"], rev["step_index"],
                                 users.get(rev["created_by_id"], rev["created_by_id"]), shift(rev["created_at"])))
                self.next["revisions"] += 1
            for a in proto.assignees:
                asg_rows.append((self.next["dossier_assignees"], did, a["step_index"], a["kind"],
                                 users.get(a["user_id"], a["user_id"]), desks.get(a["desk_id"], a["desk_id"]),
                                 a["active"]))
                self.next["dossier_assignees"] += 1
            dossier_hash, dossier_seq = None, 0
            proto_title = json.dumps(src["title"], ensure_ascii=False)[1:-1]
            new_title = json.dumps(title, ensure_ascii=False)[1:-1]
            for ev in proto.events:
                self.seq += 1
                data = _shift_json(json.loads(self._rename(ev["data"], k).replace(proto_title, new_title)), delta)
                at = (ev["at"] + delta).astimezone(dt.UTC)
                body = {"seq": self.seq, "at": at.isoformat(timespec="microseconds"), "kind": ev["kind"],
                        "actor": self._rename(ev["actor"], k), "on_behalf_of": self._rename(ev["on_behalf_of"], k),
                        "ip": ev["ip"], "user_agent": ev["user_agent"], "dossier_id": did,
                        "dossier_seq": ev["dossier_seq"], "revision_sha256": ev["revision_sha256"], "data": data}
                prev_dossier = dossier_hash if dossier_hash is not None else "0" * 64
                digest = link_hash(self.head, prev_dossier, canonical_bytes(body))
                ev_rows.append((self.next["audit_events"], self.seq, at, ev["kind"], body["actor"],
                                body["on_behalf_of"], ev["ip"], ev["user_agent"], did, ev["dossier_seq"],
                                ev["revision_sha256"], json.dumps(data, sort_keys=True, ensure_ascii=False),
                                self.head, prev_dossier, digest))
                self.next["audit_events"] += 1
                self.head, dossier_hash, dossier_seq = digest, digest, ev["dossier_seq"]
            if dossier_hash is not None:
                head_rows.append((f"dossier:{did}", dossier_seq, dossier_hash))
        self._copy("dossiers", "id, title, type_id, initiator_id, status, circuit, current_step, due_at, "
                               "reminded_at, version, created_at, updated_at, completed_at", d_rows)
        self._copy("documents", "id, dossier_id, kind, filename, content_type, position, pages", doc_rows)
        self._copy("revisions", "id, document_id, number, sha256, size, reason, step_index, created_by_id, "
                                "created_at", rev_rows)
        self._copy("dossier_assignees", "id, dossier_id, step_index, kind, user_id, desk_id, active", asg_rows)
        self._copy("audit_events", "id, seq, at, kind, actor, on_behalf_of, ip, user_agent, dossier_id, "
                                   "dossier_seq, revision_sha256, data, prev_hash, dossier_prev_hash, hash", ev_rows)
        self._copy("audit_heads", "scope, seq, hash", head_rows, count=False)

    def _copy(self, table: str, columns: str, rows: list[tuple], count: bool = True) -> None:
        with self.conn.cursor().copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        if count:
            self.counts[table] += len(rows)

    def finish(self) -> None:
        self.conn.execute("UPDATE audit_heads SET seq = %s, hash = %s WHERE scope = 'instance'", (self.seq, self.head))
        for table in self.next:
            self.conn.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")


def seed(app, database: str, teams: int, total: int, seed_value: int = 9) -> dict:
    from parapheur.services import instance

    started = time.perf_counter()
    with app.app_context():
        instance.setup(organisation(teams))
        log(f"organisation: {teams} teams, {6 * teams + 3} users; making {3 * len(RECIPES)} prototype dossiers "
            "through the services")
        ids = make_prototypes(app)
    prototypes_done = time.perf_counter()
    rng = random.Random(seed_value)
    now = dt.datetime.now(dt.UTC)
    with pg_connect(database) as conn:
        protos = load_prototypes(conn, ids)
        by_status: dict[str, list[Prototype]] = {}
        for p in protos:
            by_status.setdefault(p.status, []).append(p)
        statuses = list(STATUS_WEIGHTS)
        weights = [STATUS_WEIGHTS[s] for s in statuses]
        plans = []
        for _ in range(total - len(protos)):
            status = rng.choices(statuses, weights)[0]
            proto = rng.choice(by_status[status])
            horizon = {"in_progress": 60, "draft": 30}.get(status, 3 * 365)
            created = now - dt.timedelta(days=rng.uniform(0.2, horizon), seconds=rng.uniform(0, 600))
            plans.append((proto, rng.randrange(teams), created))
        plans.sort(key=lambda p: p[2])
        cloner = Cloner(conn, teams, rng)
        chunk = 5000
        log(f"cloning {len(plans)} dossiers with COPY")
        with conn.transaction():
            for start in range(0, len(plans), chunk):
                cloner.write(plans[start:start + chunk])
                if (start // chunk) % 4 == 3:
                    log(f"  {start + chunk} dossiers")
            cloner.finish()
        copied = time.perf_counter()
        log("VACUUM ANALYZE")
        conn.execute("VACUUM ANALYZE")
        sizes = dict(conn.execute(
            "SELECT relname, n_live_tup FROM pg_stat_user_tables WHERE relname = ANY(%s)",
            (sorted(BIG_TABLES),)).fetchall())
        status_counts = dict(conn.execute("SELECT status, count(*) FROM dossiers GROUP BY status").fetchall())
    done = time.perf_counter()
    return {"seconds": done - started, "prototypes_seconds": prototypes_done - started,
            "copy_seconds": copied - prototypes_done, "analyze_seconds": done - copied,
            "rows": sizes, "statuses": status_counts, "teams": teams}


# -- who asks for what ------------------------------------------------------------------------------------------


@dataclass
class Actor:
    username: str
    cookie: str | None = None
    token: str | None = None
    dossiers: list[int] = field(default_factory=list)


def pick_actors(app, database: str, teams: int, rng: random.Random) -> dict[str, list[Actor]]:
    """Signers for the inbox, users with a dossier they can see for the dossier page, tokens for the API."""
    from parapheur.services import tokens

    k1, k2, k3 = (rng.randrange(teams) for _ in range(3))
    signers = ["dgs.martin", "maire.durand", f"{team(k1)}.agent1", f"{team(k2)}.agent2", f"{team(k3)}.chef",
               f"{team(k2)}.chef"]
    viewers = ["dgs.martin", f"{team(k1)}.agent1", f"{team(k2)}.init1", f"{team(k3)}.init2", f"{team(k1)}.chef",
               "audit.moreau"]
    api = ["dgs.martin", f"{team(k1)}.init1", f"{team(k2)}.init3", f"{team(k3)}.agent1", f"{team(k2)}.chef",
           "audit.moreau"]
    with pg_connect(database) as conn:
        def visible(username: str) -> list[int]:
            if username == "audit.moreau":
                rows = conn.execute("SELECT id FROM dossiers ORDER BY random() LIMIT 30").fetchall()
            else:
                rows = conn.execute(
                    "SELECT d.id FROM dossiers d JOIN users u ON u.username = %s "
                    "WHERE d.initiator_id = u.id OR EXISTS (SELECT 1 FROM dossier_assignees a WHERE "
                    "a.dossier_id = d.id AND (a.user_id = u.id OR a.desk_id IN "
                    "(SELECT desk_id FROM desk_members WHERE user_id = u.id))) ORDER BY random() LIMIT 30",
                    (username,)).fetchall()
            return [r[0] for r in rows]

        groups = {"inbox": [Actor(u) for u in signers],
                  "dossier": [Actor(u, dossiers=visible(u)) for u in viewers],
                  "api": [Actor(u) for u in api]}
    with app.app_context():
        for actor in groups["api"]:
            actor.token = tokens.create_for(actor.username, "bench")
    return groups


# -- in-process EXPLAIN of each page ----------------------------------------------------------------------------------


def _login(client, username: str) -> None:
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    response = client.post("/login", data={"username": username, "password": PASSWORD, "csrf_token": token})
    assert response.status_code == 302, (username, response.status_code)


def _plan_facts(plan: dict, facts: dict) -> None:
    node = plan.get("Node Type", "")
    relation = plan.get("Relation Name")
    if node == "Seq Scan" and relation in BIG_TABLES:
        facts["seq_scans"].append({"table": relation, "rows": plan.get("Actual Rows", 0) * plan.get("Actual Loops", 1),
                                   "removed": plan.get("Rows Removed by Filter", 0) * plan.get("Actual Loops", 1)})
    if relation in BIG_TABLES:
        read = (plan.get("Actual Rows", 0) + plan.get("Rows Removed by Filter", 0)
                + plan.get("Rows Removed by Index Recheck", 0)) * plan.get("Actual Loops", 1)
        facts["rows_read"] = facts.get("rows_read", 0) + read
    for child in plan.get("Plans", []):
        _plan_facts(child, facts)


def explain_pages(app, groups: dict[str, list[Actor]], directory: Path) -> list[dict]:
    """Render each page once per kind of user, in-process; EXPLAIN (ANALYZE) every SELECT it ran."""
    from sqlalchemy import event

    from parapheur.extensions import db

    captured: list[tuple[str, object]] = []

    def capture(_conn, _cursor, statement, parameters, _context, _many):
        if statement.lstrip().upper().startswith("SELECT"):
            captured.append((statement, parameters))

    cases = []
    by_name = {a.username: a for group in groups.values() for a in group}
    for actor in groups["inbox"][:3]:
        cases.append(("inbox", actor.username, "/inbox", {}))
    for actor in groups["dossier"][:2]:
        if actor.dossiers:
            cases.append(("dossier", actor.username, f"/dossiers/{actor.dossiers[0]}", {}))
    for actor in groups["api"]:
        cases.append(("api", actor.username, "/api/v1/dossiers", {"Authorization": f"Bearer {by_name[actor.username].token}"}))
    results = []
    lines = []
    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", capture)
    try:
        for page, username, url, headers in cases:
            client = app.test_client()
            if page != "api":
                _login(client, username)
            client.get(url, headers=headers)  # warm: first-request work (templates, caches) not measured
            captured.clear()
            started = time.perf_counter()
            response = client.get(url, headers=headers)
            elapsed = time.perf_counter() - started
            statements = list(captured)
            facts = {"page": page, "user": username, "url": url, "status": response.status_code,
                     "in_process_ms": ms(elapsed), "queries": len(statements), "sql_ms": 0.0, "seq_scans": [],
                     "rows_read": 0, "slowest": None}
            slowest = (0.0, "")
            with engine.connect() as conn:
                for statement, params in statements:
                    raw = conn.exec_driver_sql("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + statement, params).scalar()
                    plan = (raw if isinstance(raw, list) else json.loads(raw))[0]
                    facts["sql_ms"] += plan["Execution Time"] + plan.get("Planning Time", 0)
                    _plan_facts(plan["Plan"], facts)
                    if plan["Execution Time"] > slowest[0]:
                        text = "\n".join(r[0] for r in conn.exec_driver_sql(
                            "EXPLAIN (ANALYZE, BUFFERS) " + statement, params).fetchall())
                        slowest = (plan["Execution Time"], f"{statement}\n-- params: {params}\n{text}")
                conn.rollback()
            facts["slowest"] = {"ms": slowest[0], "plan": slowest[1]}
            lines.append(f"===== {page} as {username} ({url}): {len(statements)} queries\n{slowest[1]}\n")
            results.append(facts)
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    (directory / "explain.txt").write_text("\n".join(lines))
    return results


# -- the server -------------------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def gunicorn(config: dict, workers: int, threads: int, directory: Path):
    port = _free_port()
    env = env_for(config)
    command = [venv_bin("gunicorn"), "-w", str(workers), "-b", f"127.0.0.1:{port}", "--backlog", "2048",
               "--error-logfile", str(directory / "gunicorn.log"),
               "--chdir", str(ROOT)]
    if threads > 1:
        command += ["--threads", str(threads), "-k", "gthread"]
    command.append("parapheur:create_app()")
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while True:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                conn.request("GET", "/login")
                if conn.getresponse().status == 200:
                    break
            except OSError:
                pass
            if proc.poll() is not None or time.time() > deadline:
                raise RuntimeError("gunicorn did not start:\n" + (directory / "gunicorn.log").read_text()[-3000:])
            time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def http_login(base: str, username: str) -> str:
    """Log in like a browser; return the session cookie (``name=value``)."""
    url = urllib.parse.urlsplit(base)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    conn.request("GET", "/login")
    response = conn.getresponse()
    page = response.read().decode()
    cookies = [h.split(";", 1)[0] for k, h in response.getheaders() if k.lower() == "set-cookie"]
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    body = urllib.parse.urlencode({"username": username, "password": PASSWORD, "csrf_token": token})
    conn.request("POST", "/login", body=body, headers={"Content-Type": "application/x-www-form-urlencoded",
                                                       "Cookie": "; ".join(cookies)})
    response = conn.getresponse()
    response.read()
    if response.status != 302:
        raise RuntimeError(f"login of {username} failed: {response.status}")
    cookies = [h.split(";", 1)[0] for k, h in response.getheaders() if k.lower() == "set-cookie"] or cookies
    conn.close()
    return "; ".join(cookies)


def wait_idle(base: str, limit: float = 60.0) -> float:
    """Wait until the server answers a light page quickly again (the previous run's queue is served)."""
    url = urllib.parse.urlsplit(base)
    started = time.perf_counter()
    while time.perf_counter() - started < limit:
        t0 = time.perf_counter()
        try:
            conn = http.client.HTTPConnection(url.hostname, url.port, timeout=5)
            conn.request("GET", "/login")
            conn.getresponse().read()
            conn.close()
            if time.perf_counter() - t0 < 0.2:
                break
        except OSError:
            pass
        time.sleep(0.5)
    return time.perf_counter() - started


def requests_for(groups: dict[str, list[Actor]], endpoint: str) -> list[tuple[str, dict]]:
    out = []
    if endpoint == "inbox":
        out = [("/inbox", {"Cookie": a.cookie}) for a in groups["inbox"]]
    elif endpoint == "dossier":
        out = [(f"/dossiers/{d}", {"Cookie": a.cookie}) for a in groups["dossier"] for d in a.dossiers]
    elif endpoint == "api":
        out = [("/api/v1/dossiers", {"Authorization": f"Bearer {a.token}"}) for a in groups["api"]]
    return out


# -- load generators ----------------------------------------------------------------------------------------------

_WRK_SCRIPT = r"""
local REQS = {%s}
local threads = {}
local counter = 0
function setup(thread)
  counter = counter + 1
  thread:set("tid", counter)
  table.insert(threads, thread)
end
function init(args)
  bad = 0
  last_bad = 0
  math.randomseed(tid * 7919 + os.time())
  reqs = {}
  for i, r in ipairs(REQS) do reqs[i] = wrk.format("GET", r[1], r[2]) end
end
function request()
  return reqs[math.random(#reqs)]
end
function response(status, headers, body)
  if status ~= 200 then bad = bad + 1; last_bad = status end
end
function done(summary, latency, requests)
  local b, lb = 0, 0
  for _, t in ipairs(threads) do b = b + t:get("bad"); if t:get("last_bad") ~= 0 then lb = t:get("last_bad") end end
  local e = summary.errors
  io.write(string.format('WRKJSON {"requests": %%d, "duration_us": %%d, "connect": %%d, "read": %%d, "write": %%d, ' ..
    '"status": %%d, "timeout": %%d, "bad_status": %%d, "last_bad": %%d, "p50": %%d, "p95": %%d, "p99": %%d, ' ..
    '"max": %%d, "mean": %%f}\n', summary.requests, summary.duration, e.connect, e.read, e.write, e.status,
    e.timeout, b, lb, latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.max,
    latency.mean))
end
"""


def _lua_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def run_wrk(base: str, requests: list[tuple[str, dict]], duration: float, directory: Path, name: str) -> dict:
    entries = []
    for path, headers in requests:
        h = ", ".join(f"[{_lua_string(k)}] = {_lua_string(v)}" for k, v in headers.items())
        entries.append(f"{{{_lua_string(path)}, {{{h}}}}}")
    script = directory / f"wrk-{name}.lua"
    script.write_text(_WRK_SCRIPT % ", ".join(entries))
    out = subprocess.run([shutil.which("wrk"), "-t2", f"-c{CONCURRENCY}", f"-d{int(duration)}s", "--timeout", "10s",
                          "-s", str(script), base], capture_output=True, text=True, timeout=duration + 60)
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("WRKJSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk failed: {out.stdout}\n{out.stderr}")
    raw = json.loads(line[len("WRKJSON "):])
    errors = raw["connect"] + raw["read"] + raw["write"] + raw["timeout"] + raw["bad_status"]
    return {"requests": raw["requests"], "rps": raw["requests"] / (raw["duration_us"] / 1e6),
            "p50": raw["p50"] / 1000, "p95": raw["p95"] / 1000, "p99": raw["p99"] / 1000, "max": raw["max"] / 1000,
            "errors": errors, "error_detail": {k: raw[k] for k in ("connect", "read", "write", "timeout", "bad_status",
                                                                     "last_bad")}, "tool": "wrk"}


class _Client:
    """One keep-alive HTTP/1.1 connection (reopened when the server closes it)."""

    def __init__(self, base: str):
        url = urllib.parse.urlsplit(base)
        self.host, self.port = url.hostname, url.port
        self.conn = None

    def get(self, path: str, headers: dict) -> int:
        for attempt in (0, 1):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=10)
            try:
                self.conn.request("GET", path, headers=headers)
                response = self.conn.getresponse()
                response.read()
                if response.will_close:
                    self.conn.close()
                    self.conn = None
                return response.status
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.conn.close()
                self.conn = None
                if attempt:
                    raise
        raise AssertionError


def run_threads(base: str, mixes: dict[str, list[tuple[str, dict]]], duration: float, think: tuple[float, float],
                seed_value: int = 5, clients: int = CONCURRENCY) -> dict[str, dict]:
    """``clients`` threads for ``duration`` s; each request picks an endpoint in turn, then waits ``think``."""
    stop = time.perf_counter() + duration
    results: dict[str, list[float]] = {name: [] for name in mixes}
    errors: dict[str, int] = dict.fromkeys(mixes, 0)
    detail: dict[str, str] = {}
    lock = threading.Lock()
    names = list(mixes)

    def worker(n: int):
        rng = random.Random(seed_value * 1000 + n)
        client = _Client(base)
        turn = n
        if think[1]:
            time.sleep(rng.uniform(0, think[1]))
        while time.perf_counter() < stop:
            name = names[turn % len(names)]
            turn += 1
            path, headers = rng.choice(mixes[name])
            started = time.perf_counter()
            try:
                status = client.get(path, headers)
            except OSError as error:
                status, detail[name] = 0, repr(error)
            elapsed = time.perf_counter() - started
            with lock:
                if status == 200:
                    results[name].append(elapsed)
                else:
                    errors[name] += 1
                    detail.setdefault(name, f"HTTP {status}")
            if think[1]:
                time.sleep(rng.uniform(*think))

    threads = [threading.Thread(target=worker, args=(n,), daemon=True) for n in range(clients)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    out = {}
    for name in names:
        values = results[name]
        out[name] = {"requests": len(values) + errors[name], "rps": (len(values) + errors[name]) / wall,
                     "p50": ms(percentile(values, 50)), "p95": ms(percentile(values, 95)),
                     "p99": ms(percentile(values, 99)), "max": ms(max(values)) if values else float("nan"),
                     "errors": errors[name], "error_detail": detail.get(name), "tool": "python threads"}
    return out


# -- main ----------------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__)
    p.add_argument("--dossiers", type=int, default=None, help="dossiers to seed (default 100000; 10000 with --quick)")
    p.add_argument("--teams", type=int, default=None, help="teams in the organisation (default 40; 10 with --quick)")
    p.add_argument("--duration", type=float, default=None, help="seconds per saturation run (default 15; 5 quick)")
    p.add_argument("--users-duration", type=float, default=None, help="seconds of the 'users' run (default 30)")
    p.add_argument("--gunicorn-workers", type=int, default=4)
    p.add_argument("--threads", type=int, default=1, help="gunicorn threads per worker (gthread when > 1)")
    p.add_argument("--python-client", action="store_true", help="use the Python load generator even if wrk is there")
    args = p.parse_args(argv)
    total = args.dossiers or (10_000 if args.quick else 100_000)
    teams = args.teams or (10 if args.quick else 40)
    duration = args.duration or (5 if args.quick else 15)
    users_duration = args.users_duration or (10 if args.quick else 30)
    single = 3 if args.quick else 5
    use_wrk = shutil.which("wrk") is not None and not args.python_client
    rng = random.Random(3)

    dossiers_label = f"{total:,}".replace(",", " ")
    report = Report("load", f"Pages under load: {dossiers_label} dossiers in PostgreSQL, {CONCURRENCY} concurrent "
                            f"clients, gunicorn {args.gunicorn_workers} sync workers",
                    ["run", "endpoint", "requests", "req/s", "p50 ms", "p95 ms", "p99 ms", "errors"])
    with workdir("load", args.keep) as directory, scratch_database("load", args.keep) as database, \
            scratch_redis(args.keep) as redis_url:
        from parapheur import create_app
        from parapheur.extensions import db
        from parapheur.services import instance

        config = instance_config(directory, pg_url(database), REDIS_URL=redis_url, API_RATE_LIMIT=10**9)
        app = create_app(config)
        with app.app_context():
            instance.initialise(app)
        seeded = seed(app, database, teams, total)
        report.data["seed"] = seeded
        log(f"seeded in {seeded['seconds']:.0f} s: {seeded['rows']}")
        groups = pick_actors(app, database, teams, rng)

        log("EXPLAIN of each page (in-process)")
        explained = explain_pages(app, groups, directory)
        report.data["explain"] = explained
        db.dispose(app)

        with gunicorn(config, args.gunicorn_workers, args.threads, directory) as base:
            for group in ("inbox", "dossier"):
                for actor in groups[group]:
                    actor.cookie = http_login(base, actor.username)
            endpoints = {name: requests_for(groups, name) for name in ("inbox", "dossier", "api")}
            labels = {"inbox": "/inbox", "dossier": "/dossiers/<id>", "api": "GET /api/v1/dossiers"}
            # warm every worker (templates, first connections) before measuring
            run_threads(base, endpoints, 3, (0, 0), clients=8)
            wait_idle(base)
            for name, reqs in endpoints.items():
                log(f"1 client: {labels[name]} for {single:.0f} s")
                result = run_threads(base, {name: reqs}, single, (0, 0), clients=1)[name]
                report.rows.append(["1 client", labels[name], result["requests"], result["rps"], result["p50"],
                                    result["p95"], result["p99"], result["errors"]])
                report.data[f"single_{name}"] = result
            log(f"50 users (think time 0.5–1.5 s): mixed endpoints for {users_duration:.0f} s")
            mixed = run_threads(base, endpoints, users_duration, (0.5, 1.5))
            for name, result in mixed.items():
                report.rows.append(["50 users", labels[name], result["requests"], result["rps"], result["p50"],
                                    result["p95"], result["p99"], result["errors"]])
                report.data[f"users_{name}"] = result
            for name, reqs in endpoints.items():
                waited = wait_idle(base)
                if waited > 1:
                    log(f"  (server busy for {waited:.0f} s after the previous run)")
                log(f"50 clients, no pause: {labels[name]} for {duration:.0f} s ({'wrk' if use_wrk else 'Python threads'})")
                if use_wrk:
                    result = run_wrk(base, reqs, duration, directory, name)
                else:
                    result = run_threads(base, {name: reqs}, duration, (0, 0))[name]
                report.rows.append(["50 clients", labels[name], result["requests"], result["rps"], result["p50"],
                                    result["p95"], result["p99"], result["errors"]])
                report.data[f"saturation_{name}"] = result
        log_text = (directory / "gunicorn.log").read_text(errors="replace")
        tracebacks = log_text.count("Traceback")
        if tracebacks:
            report.notes.append(f"gunicorn log: {tracebacks} tracebacks, e.g. {log_text[-600:]}")

    sat = [report.data[f"saturation_{n}"] for n in ("inbox", "dossier", "api")]
    usr = [report.data[f"users_{n}"] for n in ("inbox", "dossier", "api")]
    report.target("p95, 50 clients without pause, worst endpoint", max(r["p95"] for r in sat), 50, " ms")
    report.target("p95, 50 users pausing 0.5–1.5 s, worst endpoint", max(r["p95"] for r in usr), 50, " ms")
    report.target("errors", sum(r["errors"] for r in sat + usr), 0)
    flagged = [e for e in report.data["explain"] if e["seq_scans"]]
    for e in report.data["explain"]:
        grouped: dict[str, list[int]] = {}
        for scan in e["seq_scans"]:
            grouped.setdefault(scan["table"], []).append(scan["rows"] + scan["removed"])
        scans = ", ".join(f"Seq Scan on {table} ×{len(rows)} ({max(rows):,} rows)" for table, rows in grouped.items())
        report.notes.append(f"EXPLAIN {e['page']} as {e['user']}: {e['queries']} queries, {e['sql_ms']:.1f} ms SQL, "
                            f"{e['rows_read']:,} rows of big tables read"
                            + (f"; {scans}" if scans else "; index scans only"))
    report.data["explain_flagged"] = len(flagged)
    report.notes.append(f"seeding: {seeded['seconds']:.0f} s ({seeded['prototypes_seconds']:.0f} s prototypes "
                        f"through the services, {seeded['copy_seconds']:.0f} s COPY, {seeded['analyze_seconds']:.0f} s "
                        f"VACUUM ANALYZE); rows: " + ", ".join(f"{k} {v:,}" for k, v in sorted(seeded["rows"].items())))
    report.notes.append(f"load generator for '50 clients': {report.data['saturation_inbox']['tool']}; "
                        "for the other runs: Python threads")
    report.notes.append("1 client = one connection, requests back to back (service time); 50 users = 50 clients pausing "
                        "0.5–1.5 s between requests, endpoints mixed; 50 clients = 50 connections without pause "
                        "(closed loop: latency ≈ 50 / throughput). Errors: any status but 200, timeouts (10 s). "
                        "API rate limit raised for the run.")
    report.emit(args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
