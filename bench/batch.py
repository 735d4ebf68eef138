"""Batch throughput: advanced-level (PAdES B-T) signatures through the queue, with 1 and 2 workers.

A scratch PostgreSQL database and an empty Redis database; an RFC 3161 TSA served over HTTP on loopback
(the instance's TSA key behind ``http.server``, like a real TSA on the LAN); ``parapheur worker``
processes started and idle before anything is queued. Then 100 launched dossiers (one advanced signature
step each, 10-page PDFs) are batch-signed the way the inbox does it (``batches.start`` checks the PIN and
TOTP code once, commits, enqueues the ``sign_batch`` work: the app splits a batch into parts that several
workers can run at once); ``--signers N`` shares the dossiers between N signers, one batch each. The clock runs from the first enqueue until every batch job has
recorded its last dossier; the time until the queues are drained (completion jobs: chain timestamps,
notifications) is shown too. Sampled outputs are validated (B-T, valid).

    .venv/bin/python -m bench.batch [--quick] [--json] [--signatures 100] [--workers 1,2]
"""

from __future__ import annotations

import contextlib
import http.server
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import pdfs
from bench.common import (
    Report,
    env_for,
    instance_config,
    log,
    median,
    ms,
    parser,
    pg_connect,
    pg_url,
    scratch_database,
    scratch_redis,
    venv_bin,
    workdir,
)

SIGNERS = 4
"""Signers in the organisation (each with a personal advanced certificate); ``--signers`` of them batch-sign."""
PIN = "482913"
TOTP = ["JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", "KRSXG5CTMVRXEZLUKRSXG5CTMVRXEZLU",
        "MFRGGZDFMZTWQ2LKMFRGGZDFMZTWQ2LK", "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"]


def organisation() -> str:
    users = ['  - {username: rh.dupont, name: Claire Dupont, email: claire@example.fr, roles: [initiator], '
             'password: "bench-pass-0"}']
    for k in range(SIGNERS):
        users.append(f'  - {{username: signataire{k + 1}, name: Signataire {k + 1}, email: s{k + 1}@example.fr, '
                     f'roles: [signer], password: "bench-pass-{k + 1}", signing_pin: "{PIN}", '
                     f'totp_secret: {TOTP[k]}}}')
    types = []
    for k in range(SIGNERS):
        types.append(f"""  - code: contrat-{k + 1}
    name: Contrat (signataire {k + 1})
    min_level: advanced
    steps:
      - {{kind: signature, level: advanced, assignees: [user:signataire{k + 1}]}}""")
    return "users:\n" + "\n".join(users) + "\ndocument_types:\n" + "\n".join(types) + "\n"


# -- a TSA on loopback -----------------------------------------------------------------------------------------


class LoopbackTSA:
    """RFC 3161 over HTTP on 127.0.0.1, signing with the instance's TSA key (pyHanko's DummyTimeStamper
    machinery, as :class:`signing.pki.InProcessTimeStamper`). Serves each request in its own thread."""

    def __init__(self, keys_dir: Path):
        from asn1crypto import tsp

        from signing.pki import load_instance_pki

        stamper = load_instance_pki(keys_dir).timestamper()
        lock = threading.Lock()
        self.requests = 0
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms delayed-ACK wait

            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with lock:
                    outer.requests += 1
                    reply = stamper.request_tsa_response(tsp.TimeStampReq.load(body)).dump()
                self.send_response(200)
                self.send_header("Content-Type", "application/timestamp-reply")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# -- the run ------------------------------------------------------------------------------------------------------


class Bench:
    def __init__(self, directory: Path, database: str, redis_url: str, signers: int = 1):
        from parapheur import create_app
        from parapheur.services import instance

        self.directory = directory
        self.signers = signers
        self.config = instance_config(directory, pg_url(database), REDIS_URL=redis_url)
        self.database = database
        self.app = create_app(self.config)
        with self.app.app_context():
            instance.initialise(self.app)
        self.tsa = LoopbackTSA(Path(self.app.config["KEYS_DIR"]))
        self.config["TSA_URL"] = self.app.config["TSA_URL"] = self.tsa.url
        with self.app.app_context():
            instance.setup(organisation())
        self.pdf = pdfs.text_pages(10, 5000)

    def close(self) -> None:
        from parapheur.extensions import db

        self.tsa.close()
        db.dispose(self.app)

    def _user(self, username: str):
        from sqlalchemy import select

        from parapheur.extensions import db
        from parapheur.models import User

        return db.session.scalar(select(User).where(User.username == username))

    def make_dossiers(self, count: int, round_: int) -> dict[int, list[int]]:
        """``count`` launched dossiers, spread over the signers; {signer index: [dossier ids]}."""
        from parapheur import audit
        from parapheur.extensions import db
        from parapheur.models import utcnow
        from parapheur.services import dossiers
        from parapheur.storage import store

        by_signer: dict[int, list[int]] = {k: [] for k in range(self.signers)}
        with self.app.app_context():
            initiator = self._user("rh.dupont")
            digest = store().put(self.pdf)
            for i in range(count):
                k = i % self.signers
                dossier = dossiers.create(db.session, initiator, f"Contrat {round_}-{i + 1}", f"contrat-{k + 1}",
                                          [dossiers.Upload("contrat.pdf", digest, len(self.pdf))], [],
                                          audit.Meta("rh.dupont"), utcnow())
                db.session.flush()
                dossiers.perform(db.session, self.app, dossier, initiator, "launch", audit.Meta("rh.dupont"),
                                 utcnow())
                db.session.commit()
                by_signer[k].append(dossier.id)
            db.session.close()
        return by_signer

    def start_batches(self, by_signer: dict[int, list[int]]) -> tuple[list[str], float]:
        """Start one batch per signer as the inbox does (PIN + TOTP checked, commit, enqueue)."""
        import pyotp

        from parapheur import audit, jobs
        from parapheur.extensions import db
        from parapheur.services import batches

        ids, works = [], []
        with self.app.app_context():
            for k, dossier_ids in by_signer.items():
                if not dossier_ids:
                    continue
                user = self._user(f"signataire{k + 1}")
                job, work = batches.start(db.session, self.app, user, dossier_ids, PIN,
                                          pyotp.TOTP(TOTP[k]).now(), audit.Meta(user.username, None, None, "bench"))
                db.session.commit()
                ids.append(job.id)
                # one ("sign_batch", args) item, or a list of items (the batch split into parts)
                works.extend([work] if isinstance(work[0], str) else work)
            start = time.perf_counter()  # PIN checks (argon2) above are the signer's wait, not the queue's
            jobs.enqueue_after_commit(works)
            db.session.close()
        return ids, start

    def wait_jobs(self, job_ids: list[str], timeout: float) -> tuple[float, dict]:
        deadline = time.perf_counter() + timeout
        with pg_connect(self.database) as conn:
            while True:
                rows = conn.execute("SELECT status, done, failed FROM jobs WHERE id = ANY(%s)", (job_ids,)).fetchall()
                finished = [r for r in rows if r[0] in ("done", "failed", "partial")]
                if len(finished) == len(job_ids):
                    return time.perf_counter(), {"done": sum(r[1] for r in rows), "failed": sum(r[2] for r in rows)}
                if time.perf_counter() > deadline:
                    raise TimeoutError(f"batches not finished after {timeout:.0f} s: {rows}")
                time.sleep(0.02)

    def wait_drained(self, timeout: float) -> float:
        from redis import Redis
        from rq import Queue, Worker

        from parapheur.jobs import QUEUES

        redis = Redis.from_url(self.config["REDIS_URL"])
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            queued = sum(Queue(name, connection=redis).count for name in QUEUES)
            busy = [w for w in Worker.all(connection=redis) if w.get_state() == "busy"]
            if not queued and not busy:
                return time.perf_counter()
            time.sleep(0.05)
        raise TimeoutError("queues not drained")

    @contextlib.contextmanager
    def workers(self, count: int):
        """``count`` ``parapheur worker`` processes, waited for until idle; stopped (SIGTERM) afterwards."""
        from redis import Redis
        from rq import Worker

        env = env_for(self.config)
        procs, logs = [], []
        for n in range(count):
            out = open(self.directory / f"worker-{count}-{n}.log", "wb")  # noqa: SIM115
            logs.append(out)
            procs.append(subprocess.Popen([venv_bin("parapheur"), "worker"], env=env, stdout=out,
                                          stderr=subprocess.STDOUT))
        redis = Redis.from_url(self.config["REDIS_URL"])
        try:
            deadline = time.time() + 60
            while True:
                alive = [w for w in Worker.all(connection=redis) if w.get_state() == "idle"
                         and w.name.startswith("parapheur-")]
                if len(alive) >= count:
                    break
                for proc in procs:
                    if proc.poll() is not None:
                        raise RuntimeError(f"worker exited: {self._tail(count)}")
                if time.time() > deadline:
                    raise TimeoutError(f"workers not ready: {self._tail(count)}")
                time.sleep(0.1)
            yield procs
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
            for proc in procs:
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            for out in logs:
                out.close()
            for worker in Worker.all(connection=redis):  # a killed worker leaves its registration behind
                with contextlib.suppress(Exception):
                    worker.register_death()

    def _tail(self, count: int) -> str:
        text = ""
        for path in sorted(self.directory.glob(f"worker-{count}-*.log")):
            text += f"\n--- {path.name}\n" + path.read_text(errors="replace")[-3000:]
        return text

    def cheapen_kdf(self) -> None:
        """DIAGNOSTIC ONLY: re-seal every signer's key under a trivial argon2 setting (t=1, 8 KiB), so a run
        shows what the rest of the pipeline can do once the key is not unlocked at full cost per dossier.
        Never a production setting; its row is labelled and kept out of the target."""
        from sqlalchemy import select

        from parapheur.extensions import db
        from parapheur.models import SigningCredential
        from signing import keys

        cheap = keys.KdfParams(time_cost=1, memory_cost_kib=8, parallelism=1)
        with self.app.app_context():
            for cred in db.session.scalars(select(SigningCredential).where(SigningCredential.kind == "software")):
                cred.sealed_key = keys.seal_private_key(keys.open_sealed_key(cred.sealed_key, PIN), PIN, kdf=cheap)
            db.session.commit()
            db.session.close()

    def check_outputs(self, by_signer: dict[int, list[int]], sample: int = 4) -> dict:
        """Validate a few signed documents (not timed): B-T, valid."""
        from parapheur.extensions import db
        from parapheur.models import Dossier
        from parapheur.services.credentials import instance_pki
        from parapheur.storage import store
        from signing.validation import validate

        ids = [i for ids in by_signer.values() for i in ids]
        picked = ids[:: max(1, len(ids) // sample)][:sample]
        levels, valid = [], []
        with self.app.app_context():
            trust = instance_pki(self.app).trust_config()
            for dossier_id in picked:
                dossier = db.session.get(Dossier, dossier_id)
                report = validate(store().get(dossier.documents[0].current.sha256), trust)
                levels += [s.level for s in report.signatures]
                valid.append(report.valid)
            db.session.close()
        return {"checked": len(picked), "valid": all(valid) and bool(valid), "levels": sorted(set(levels))}

    def breakdown(self) -> dict:
        """Where one signature's time goes, measured in this process (median of 5)."""
        import asyncio
        import hashlib

        from pyhanko.sign.timestamps import HTTPTimeStamper
        from sqlalchemy import select

        from parapheur.extensions import db
        from parapheur.models import SigningCredential
        from signing import keys

        with self.app.app_context():
            cred = db.session.scalar(select(SigningCredential).where(SigningCredential.kind == "software"))
            blob, cert = cred.sealed_key, cred.certificate_pem.encode()
            db.session.close()
        unlock, cpu = [], []
        for _ in range(5):
            start, cpu_start = time.perf_counter(), time.process_time()
            signer = keys.software_signer(blob, PIN, cert)
            unlock.append(time.perf_counter() - start)
            cpu.append(time.process_time() - cpu_start)
        stamper = HTTPTimeStamper(self.tsa.url, timeout=10)

        from zoneinfo import ZoneInfo

        from parapheur.models import utcnow
        from signing.fields import FieldSpec, prepare_fields
        from signing.signer import StampText, sign

        prepared = prepare_fields(self.pdf, [FieldSpec("Signature-1")])
        stamp = StampText("Signataire 1", "étape 1", utcnow().astimezone(ZoneInfo("Europe/Paris")))
        signing = []
        for _ in range(6):
            start = time.perf_counter()
            sign(prepared, signer=signer, level="advanced", field_name="Signature-1", stamp=stamp, certify=True,
                 timestamper=stamper)
            signing.append(time.perf_counter() - start)

        async def stamps():
            out = []
            for i in range(6):
                start = time.perf_counter()
                await stamper.async_timestamp(hashlib.sha256(str(i).encode()).digest(), "sha256")
                out.append(time.perf_counter() - start)
            return out[1:]

        tsa = asyncio.run(stamps())
        return {"pin_unlock_ms": ms(median(unlock)), "pin_unlock_cpu_ms": ms(median(cpu)),
                "tsa_roundtrip_ms": ms(median(tsa)), "sign_bt_ms": ms(median(signing[1:]))}


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__)
    p.add_argument("--signatures", type=int, default=None, help="signatures per run (default 100; 20 with --quick)")
    p.add_argument("--workers", default="1,2", help="worker counts to run, comma-separated (default 1,2)")
    p.add_argument("--no-diagnostic", action="store_true",
                   help="skip the diagnostic run with a trivial key-derivation cost")
    p.add_argument("--signers", type=int, default=1, choices=range(1, SIGNERS + 1),
                   help="signers starting a batch each, the dossiers shared between them (default 1)")
    args = p.parse_args(argv)
    count = args.signatures or (20 if args.quick else 100)
    counts = [int(n) for n in args.workers.split(",")]
    report = Report("batch", f"Batch signing through RQ: {count} advanced (PAdES B-T) signatures, "
                             f"{args.signers} batch{'es' if args.signers > 1 else ''}, TSA on loopback",
                    ["workers", "signatures", "failed", "seconds", "signatures/s", "drained s", "TSA requests"])
    with workdir("batch", args.keep) as directory, scratch_database("batch", args.keep) as database, \
            scratch_redis(args.keep) as redis_url:
        bench = Bench(directory, database, redis_url, args.signers)
        try:
            for n in counts:
                log(f"{n} worker(s): creating and launching {count} dossiers (not timed)")
                by_signer = bench.make_dossiers(count, n)
                with bench.workers(n):
                    tsa_before = bench.tsa.requests
                    log(f"{n} worker(s): signing")
                    job_ids, start = bench.start_batches(by_signer)
                    end, totals = bench.wait_jobs(job_ids, timeout=280)
                    drained = bench.wait_drained(timeout=120)
                    tsa_requests = bench.tsa.requests - tsa_before
                seconds = end - start
                rate = totals["done"] / seconds
                outputs = bench.check_outputs(by_signer)
                report.rows.append([n, totals["done"], totals["failed"], seconds, rate, drained - start,
                                    tsa_requests])
                report.data[f"workers_{n}"] = {"signatures": totals["done"], "failed": totals["failed"],
                                               "seconds": seconds, "per_second": rate,
                                               "drained_seconds": drained - start, "outputs": outputs,
                                               "tsa_requests": tsa_requests}
                if totals["failed"]:
                    report.notes.append(f"{n} worker(s): {totals['failed']} dossiers failed: {bench._tail(n)[-800:]}")
                if not outputs["valid"] or outputs["levels"] != ["B-T"]:
                    report.notes.append(f"{n} worker(s): sampled outputs {outputs}")
                if n == 2:
                    report.target("signatures/s with 2 workers", rate, 20, "/s", higher_is_better=True)
            split = bench.breakdown()
            report.data["breakdown"] = split
            report.notes.append(
                f"per signature, measured apart in one process: PIN unlock (argon2id, sealed key) "
                f"{split['pin_unlock_ms']:.0f} ms ({split['pin_unlock_cpu_ms']:.0f} ms CPU), B-T signature of the "
                f"10-page file with the key unlocked {split['sign_bt_ms']:.0f} ms, of which TSA round trip "
                f"{split['tsa_roundtrip_ms']:.0f} ms; a batch part unlocks the key once (not per dossier), "
                f"so that cost is paid once per batch part, not per dossier")
            if not args.no_diagnostic and 2 in counts:
                log("diagnostic: 2 workers, signers' keys re-sealed with a trivial KDF (not a production setting)")
                bench.cheapen_kdf()
                by_signer = bench.make_dossiers(count, 99)
                with bench.workers(2):
                    job_ids, start = bench.start_batches(by_signer)
                    end, totals = bench.wait_jobs(job_ids, timeout=280)
                    drained = bench.wait_drained(timeout=120)
                rate = totals["done"] / (end - start)
                report.rows.append(["2 (diagnostic: trivial KDF)", totals["done"], totals["failed"], end - start, rate,
                                    drained - start, "-"])
                report.data["diagnostic_trivial_kdf_2_workers"] = {"signatures": totals["done"], "per_second": rate,
                                                                   "seconds": end - start,
                                                                   "outputs": bench.check_outputs(by_signer)}
                report.notes.append("the 'diagnostic' row re-seals the signers' keys with argon2 t=1, 8 KiB to show "
                                    "what the queue, signing, TSA and database sustain without the per-dossier key "
                                    "unlock; it is not a configuration to run, and not the target's figure")
        finally:
            bench.close()
    report.notes.append("clock: first enqueue → last batch job finished (PIN/TOTP check of batches.start excluded); "
                        "'drained': until the queues are empty (completion jobs: chain timestamps, notifications)")
    report.emit(args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
