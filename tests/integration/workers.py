"""Real RQ workers for the job tests: a Redis database of their own, ``parapheur worker`` as a subprocess
with the app's settings, and a worker that stops in the middle of a signature so a test can kill it.

``python -m tests.integration.workers BARRIER_DIR [worker options]`` runs ``parapheur worker`` with one
change, made here and not in the application: the first signature of the process stops right after
``dossiers._persist`` (signed blob stored, revision and audit rows flushed, nothing committed), writes the
work horse's pid to ``BARRIER_DIR/reached`` and waits to be killed; later signatures go through.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from parapheur import audit
from parapheur.extensions import db
from parapheur.models import AuditEvent, Document, Dossier, JobRecord, Revision
from parapheur.services import validation
from parapheur.storage import store
from tests import services

ROOT = Path(__file__).resolve().parents[2]
PARAPHEUR = str(Path(sys.executable).with_name("parapheur"))
#: Redis databases the job tests may take (0 is left to the other tests)
DATABASES = range(1, 16)


@pytest.fixture(name="redis_url")
def redis_url_fixture() -> Iterator[str]:
    """A Redis database for this test alone (claimed with a key, so parallel runs pick different ones),
    flushed afterwards."""
    from redis import Redis

    try:
        services.redis_client()
    except Exception as error:  # noqa: BLE001
        services.unavailable("Redis", error)
    base = services.REDIS_URL.rsplit("/", 1)[0]
    token = f"{os.getpid()}-{time.time_ns()}"
    for number in DATABASES:
        client = Redis.from_url(f"{base}/{number}")
        if client.set("parapheur-test:claimed", token, nx=True, ex=900):
            client.flushdb()
            client.set("parapheur-test:claimed", token, ex=900)
            break
    else:
        pytest.skip("no free Redis database for the job tests")
    try:
        yield f"{base}/{number}"
    finally:
        client.flushdb()
        client.close()


def environment(app, **extra: str) -> dict[str, str]:
    """The environment a worker needs to act on ``app``'s instance (PARAPHEUR_* taken from its config)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARAPHEUR_")}
    config = app.config
    env.update({
        "PARAPHEUR_INSTANCE_DIR": config["INSTANCE_DIR"],
        "PARAPHEUR_DATABASE_URL": config["DATABASE_URL"],
        "PARAPHEUR_REDIS_URL": config["REDIS_URL"],
        "PARAPHEUR_STORAGE_URL": config["STORAGE_URL"],
        "PARAPHEUR_SECRET_KEY": config["SECRET_KEY"],  # opens the sealed PIN handed to signing jobs
        "PARAPHEUR_ORG_NAME": config["ORG_NAME"],
        "PYTHONPATH": str(ROOT),
    })
    if config.get("S3_ENDPOINT_URL"):
        env["PARAPHEUR_S3_ENDPOINT_URL"] = config["S3_ENDPOINT_URL"]
    env.update(extra)
    return env


class Worker:
    """A ``parapheur worker`` subprocess, its output in a log file (shown when a test fails)."""

    def __init__(self, app, log: Path, *args: str, barrier: Path | None = None):
        command = [sys.executable, "-m", "tests.integration.workers", str(barrier)] if barrier else [PARAPHEUR]
        self.log_path = log
        self._log = log.open("wb")
        self.process = subprocess.Popen([*command, "worker", *args], cwd=ROOT, env=environment(app),
                                        stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)

    @property
    def pid(self) -> int:
        return self.process.pid

    def wait(self, timeout: float = 60) -> int:
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"the worker did not stop in {timeout} s:\n{self.output()}") from None
        finally:
            self._log.close()

    def terminate(self, timeout: float = 60) -> int:
        """Warm shutdown (RQ finishes the job in hand)."""
        self.process.send_signal(signal.SIGTERM)
        return self.wait(timeout)

    def kill(self) -> None:
        """SIGKILL, as a lost machine would: RQ gets no chance to say anything."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self._log.close()

    def output(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")


def run_burst(app, log: Path, timeout: float = 90) -> str:
    """``parapheur worker --burst`` until the queues are empty; its output."""
    worker = Worker(app, log, "--burst")
    status = worker.wait(timeout)
    assert status == 0, worker.output()
    return worker.output()


def wait_for(predicate, timeout: float, what: str, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def process_gone(pid: int) -> bool:
    """True once ``pid`` has exited (a zombie left unreaped counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return True
    return state in {"Z", "X"}


# -- what a dossier holds -----------------------------------------------------------------------------


def state(app, dossier_id: int) -> dict:
    """What a dossier holds, read afresh: status, version, revisions, audit events."""
    with app.app_context():
        dossier = db.session.get(Dossier, dossier_id)
        revisions = db.session.execute(
            select(Revision.document_id, Revision.number, Revision.reason, Revision.sha256).join(Document)
            .where(Document.dossier_id == dossier_id).order_by(Revision.document_id, Revision.number)).all()
        events = db.session.scalars(select(AuditEvent.kind).where(AuditEvent.dossier_id == dossier_id)
                                    .order_by(AuditEvent.dossier_seq)).all()
        return {"status": dossier.status, "version": dossier.version, "revisions": [tuple(r) for r in revisions],
                "events": list(events)}


def blob_names(app) -> set[str]:
    """Every blob in the app's store (a folder, or a bucket)."""
    with app.app_context():
        blobs = store()
    if hasattr(blobs, "root"):
        return {p.name for p in blobs.root.rglob("*") if p.is_file() and not p.name.startswith(".")}
    pages = blobs.client.get_paginator("list_objects_v2").paginate(Bucket=blobs.bucket, Prefix=blobs.prefix)
    return {item["Key"].rsplit("/", 1)[-1] for page in pages for item in page.get("Contents", [])}


def job_record(app, job_id: str) -> dict:
    with app.app_context():
        job = db.session.get(JobRecord, job_id)
        return {"status": job.status, "done": job.done, "failed": job.failed, **json.loads(job.result)}


def assert_signed_once(app, dossier_id: int) -> None:
    """One signature revision, one document.signed event, every revision's blob present and numbered
    without gaps, the document valid and the audit chains intact."""
    now = state(app, dossier_id)
    assert now["status"] == "completed", now
    reasons = [r[2] for r in now["revisions"]]
    assert reasons.count("signature") == 1, reasons
    assert now["events"].count("document.signed") == 1, now["events"]
    with app.app_context():
        blobs = store()
        numbers: dict[int, list[int]] = {}
        for document_id, number, _reason, sha256 in now["revisions"]:
            assert blobs.exists(sha256), f"revision {number} names a missing blob"
            numbers.setdefault(document_id, []).append(number)
        assert all(found == list(range(1, len(found) + 1)) for found in numbers.values()), numbers
        document = db.session.scalar(select(Document).where(Document.dossier_id == dossier_id,
                                                            Document.kind == "document"))
        assert validation.validate_bytes(blobs.get(document.current.sha256)).valid
        assert audit.verify(db.session, dossier_id).ok
        assert audit.verify(db.session).ok


# -- the worker that stops in the middle of a signature ----------------------------------------------


def _install_barrier(directory: Path) -> None:
    from parapheur.services import dossiers

    original = dossiers._persist

    def persist_then_wait(*args, **kwargs):
        result = original(*args, **kwargs)
        marker = directory / "reached"
        if not marker.exists():
            tmp = directory / f".reached-{os.getpid()}"
            tmp.write_text(str(os.getpid()))
            os.replace(tmp, marker)
            while True:  # the test kills this process here, before the commit
                time.sleep(0.05)
        return result

    dossiers._persist = persist_then_wait


def main(argv: list[str]) -> None:
    barrier = Path(argv[0])
    barrier.mkdir(parents=True, exist_ok=True)
    _install_barrier(barrier)
    from parapheur.cli import main as cli

    cli(argv[1:], prog_name="parapheur")


if __name__ == "__main__":
    main(sys.argv[1:])
