"""Background work on RQ and Redis, with real workers (``parapheur worker`` subprocesses) on PostgreSQL:
queued signatures, a worker killed in the middle of one, two workers sharing a batch, Redis down."""

from __future__ import annotations

import html
import json
import os
import signal
import socket
import time

import pyotp
import pytest
from sqlalchemy import func, select

from parapheur import audit, jobs
from parapheur.extensions import db
from parapheur.models import AuditEvent, ChainTimestamp, Document, Dossier, JobRecord, Revision, utcnow
from parapheur.services import batches, signing_jobs

from .conftest import Browser
from .factories import act, create_dossier, user
from .workers import (  # noqa: F401 - redis_url_fixture: a fixture
    Worker,
    assert_signed_once,
    blob_names,
    job_record,
    process_gone,
    redis_url_fixture,
    run_burst,
    state,
    wait_for,
)

TOTP = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
postgresql_only = pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
pytestmark = [pytest.mark.redis]


def text(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def queued_app(make_app, redis_url, **overrides):
    return make_app("org", REDIS_URL=redis_url, **overrides)


def logged_in(app, username: str) -> Browser:
    b = Browser(app)
    assert b.login(username).status_code == 302
    return b


# -- a queued signature, run by a real worker -----------------------------------------------------------


@postgresql_only
def test_a_signature_is_queued_checked_at_once_and_done_by_a_worker(make_app, redis_url, tmp_path):
    app = queued_app(make_app, redis_url)
    with app.app_context():
        number = create_dossier("contrat").id
    visa = logged_in(app, "drh.bernard")
    assert visa.post_form(f"/dossiers/{number}", f"/dossiers/{number}/act",
                          {"action": "approve", "version": 2}).status_code == 302
    signer = logged_in(app, "dgs.martin")
    before = state(app, number)

    wrong = signer.post_form(f"/dossiers/{number}", f"/dossiers/{number}/act",
                             {"action": "sign", "version": 3, "pin": "000000", "otp": pyotp.TOTP(TOTP).now()})
    assert wrong.status_code == 400 and "Code de signature incorrect" in text(wrong)  # answered in the request
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(JobRecord)) == 0

    queued = signer.post_form(f"/dossiers/{number}", f"/dossiers/{number}/act",
                              {"action": "sign", "version": 3, "pin": "482913", "otp": pyotp.TOTP(TOTP).now()})
    assert queued.status_code == 302 and "?job=" in queued.headers["Location"]
    job_id = queued.headers["Location"].rsplit("=", 1)[1]
    assert state(app, number) == before  # nothing signed yet
    record = job_record(app, job_id)
    assert record["status"] == "queued" and record["dossiers"] == [number]
    with app.app_context():  # RQ's job is linked to the JobRecord, and carries no PIN in clear
        from rq.job import Job

        rq_job = Job.fetch(record["rq_jobs"][0], connection=jobs.connection(app))
        assert rq_job.origin == "signing" and rq_job.meta["record"] == job_id
        assert "482913" not in repr(rq_job.args)
    page = text(signer.get(queued.headers["Location"]))
    assert "Signature en cours" in page and 'id="sign-dialog"' not in page
    again = signer.post_form(f"/dossiers/{number}", f"/dossiers/{number}/act",
                             {"action": "sign", "version": 3, "pin": "482913", "otp": pyotp.TOTP(TOTP).now()})
    assert again.status_code == 409 and "déjà en cours" in text(again)

    run_burst(app, tmp_path / "worker.log")

    progress = signer.get(f"/batches/{job_id}.json").get_json()
    assert progress["status"] == "done" and progress["done"] == 1 and progress["items"][str(number)]["ok"]
    assert_signed_once(app, number)
    with app.app_context():  # the completion job (chain timestamp) ran on the worker too
        assert db.session.scalar(select(ChainTimestamp).where(ChainTimestamp.dossier_id == number))
        signed = db.session.scalars(select(AuditEvent).where(AuditEvent.dossier_id == number,
                                                             AuditEvent.kind == "document.signed")).one()
        assert signed.actor == "dgs.martin" and json.loads(signed.data)["level"] == "advanced"
    assert "Signature terminée" in text(signer.get(queued.headers["Location"]))


# -- a worker killed in the middle of a signature -----------------------------------------------------


@postgresql_only
@pytest.mark.parametrize("victim", ["horse", "whole worker"])
def test_a_worker_killed_while_signing_leaves_the_dossier_intact_and_the_retry_signs_once(
        make_app, redis_url, tmp_path, victim):
    app = queued_app(make_app, redis_url)
    with app.app_context():
        number = create_dossier("attestation").id
        signer = user("drh.bernard")
        dossier = db.session.get(Dossier, number)
        request = signing_jobs.request_signature(db.session, app, dossier, signer, None, None,
                                                 audit.Meta("drh.bernard"), utcnow())
        db.session.commit()
        jobs.enqueue_after_commit(request.jobs)
        job_id = request.job.id
    before, blobs_before = state(app, number), blob_names(app)
    barrier = tmp_path / "barrier"
    worker = Worker(app, tmp_path / "slow-worker.log", "--burst", "--heartbeat", "1", barrier=barrier)
    try:
        horse = int(wait_for(lambda: (barrier / "reached").exists() and (barrier / "reached").read_text(), 60,
                             "the worker to reach the barrier"))
        # the signed blob is stored, its revision and audit rows flushed but not committed: nothing shows
        assert state(app, number) == before
        assert len(blob_names(app) - blobs_before) == 1
        if victim == "horse":  # the worker sees its work horse die and retries the job itself
            os.kill(horse, signal.SIGKILL)
            assert worker.wait(90) == 0, worker.output()
            assert "Work-horse terminated unexpectedly" in worker.output()
        else:  # the machine is lost: worker and work horse die together, nobody reports anything
            worker.kill()
            os.kill(horse, signal.SIGKILL)
            wait_for(lambda: process_gone(horse), 10, "the work horse to die")
            after_crash = state(app, number)
            assert after_crash == before  # the dossier is exactly as it was: no orphan revision, no event
            with app.app_context():
                from rq.registry import StartedJobRegistry

                started = StartedJobRegistry("signing", connection=jobs.connection(app))
                expiry = max(score for _, score in jobs.connection(app).zrange(started.key, 0, -1,
                                                                              withscores=True))
            # RQ finds the job abandoned once its heartbeat lapses (2 missed beats), then retries it
            wait_for(lambda: time.time() > expiry + 0.2, 15, "the heartbeat of the dead worker to lapse")
            run_burst(app, tmp_path / "worker.log")
    finally:
        worker.kill()
    assert_signed_once(app, number)
    record = job_record(app, job_id)
    assert record["status"] == "done" and record["done"] == 1
    reason = record["attempts"][0]["reason"]
    assert ("SIGKILL" in reason) if victim == "horse" else ("disparu" in reason), record["attempts"]
    with app.app_context():  # the blob of the lost attempt stays, named by no revision: harmless
        named = set(db.session.scalars(select(Revision.sha256)))
    assert len(blob_names(app) - named) == 1


# -- two workers, one batch -----------------------------------------------------------------------------


@postgresql_only
def test_two_workers_share_a_50_dossier_batch_and_sign_each_once(make_app, redis_url, tmp_path):
    app = queued_app(make_app, redis_url, BATCH_PART_SIZE=5)
    with app.app_context():
        numbers = [create_dossier("attestation", title=f"Attestation {i}").id for i in range(50)]
    workers = [Worker(app, tmp_path / f"worker-{n}.log") for n in range(2)]
    try:
        with app.app_context():
            from rq import Worker as RQWorker

            wait_for(lambda: RQWorker.count(connection=jobs.connection(app)) == 2, 60, "two workers")
            job, work = batches.start(db.session, app, user("drh.bernard"), numbers, None, None,
                                      audit.Meta("drh.bernard"))
            db.session.commit()
            jobs.enqueue_after_commit(work)
            # every part handed out twice, as a lost acknowledgement or an operator's re-run would
            jobs.enqueue_after_commit([(name, args, {**options, "job_id": options["job_id"] + "-again"})
                                       for name, args, options in work])
            job_id = job.id
        wait_for(lambda: job_record(app, job_id)["status"] not in batches.ACTIVE, 120, "the batch to finish",
                 interval=0.5)
        with app.app_context():  # let the duplicates run out too
            from rq import Queue

            signing = Queue("signing", connection=jobs.connection(app))
            wait_for(lambda: all(j and j.get_status() == "finished" for j in
                                 [signing.fetch_job(f"{i}-again") for i in job_record(app, job_id)["rq_jobs"]]),
                     60, "the duplicate parts to run")
            names = {signing.fetch_job(i).worker_name for i in job_record(app, job_id)["rq_jobs"]}
    finally:
        for worker in workers:
            worker.terminate()
    record = job_record(app, job_id)
    assert record["status"] == "done" and record["done"] == 50 and record["failed"] == 0, record
    assert len(names) == 2, f"one worker did everything: {names}"
    with app.app_context():
        signed = db.session.execute(select(AuditEvent.dossier_id, func.count()).where(
            AuditEvent.kind == "document.signed").group_by(AuditEvent.dossier_id)).all()
        assert dict(signed) == dict.fromkeys(numbers, 1)
        revisions = db.session.execute(select(Document.dossier_id, func.count()).join(Revision).where(
            Revision.reason == "signature").group_by(Document.dossier_id)).all()
        assert dict(revisions) == dict.fromkeys(numbers, 1)
        assert {d.status for d in db.session.scalars(select(Dossier))} == {"completed"}
        assert audit.verify(db.session).ok


# -- Redis down -------------------------------------------------------------------------------------------


def closed_port_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"redis://127.0.0.1:{port}/0"


def test_with_redis_down_pages_load_and_actions_say_so_changing_nothing(make_app):
    app = make_app("org")
    with app.app_context():
        number = create_dossier("attestation").id
        other = create_dossier("note-interne", title="Note à viser").id
    app.config["REDIS_URL"] = closed_port_url()
    before, before_other = state(app, number), state(app, other)
    b = logged_in(app, "drh.bernard")
    inbox = b.get("/inbox")
    assert inbox.status_code == 200 and "Note à viser" in text(inbox)
    assert b.get(f"/dossiers/{number}").status_code == 200
    signed = b.post_form(f"/dossiers/{number}", f"/dossiers/{number}/act", {"action": "sign", "version": 2})
    assert signed.status_code == 503 and "Le service de tâches est indisponible" in text(signed)
    approved = b.post_form(f"/dossiers/{other}", f"/dossiers/{other}/act", {"action": "approve"})
    assert approved.status_code == 503 and "Rien n'a été modifié" in text(approved)
    batch = b.post_form("/inbox", "/inbox/batch", {"dossier": [number]})
    assert batch.status_code == 302 and "service de tâches est indisponible" in text(b.get("/inbox"))
    assert state(app, number) == before and state(app, other) == before_other
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(JobRecord)) == 0


def test_a_queue_lost_after_commit_marks_the_job_failed_with_the_reason(make_app, redis_url):
    app = queued_app(make_app, redis_url)
    with app.app_context():
        number = create_dossier("attestation").id
        request = signing_jobs.request_signature(db.session, app, db.session.get(Dossier, number),
                                                 user("drh.bernard"), None, None, audit.Meta("drh.bernard"),
                                                 utcnow())
        db.session.commit()
        app.config["REDIS_URL"] = closed_port_url()  # Redis goes away between the commit and the enqueue
        with pytest.raises(jobs.Unavailable):
            jobs.enqueue_after_commit(request.jobs)
        job_id = request.job.id
    record = job_record(app, job_id)
    assert record["status"] == "failed" and "service de tâches est indisponible" in record["error"]
    admin = logged_in(app, "admin")
    assert "service de tâches est indisponible" in text(admin.get("/admin/"))


# -- records kept truthful, jobs idempotent -------------------------------------------------------------


def test_reconcile_fails_records_whose_rq_jobs_are_gone_and_requeues_lost_completions(make_app, redis_url):
    from datetime import timedelta

    from rq import Queue

    app = queued_app(make_app, redis_url)
    with app.app_context():
        number = create_dossier("attestation").id
        request = signing_jobs.request_signature(db.session, app, db.session.get(Dossier, number),
                                                 user("drh.bernard"), None, None, audit.Meta("drh.bernard"),
                                                 utcnow())
        db.session.commit()
        jobs.enqueue_after_commit(request.jobs)
        job_id = request.job.id
        signing = Queue("signing", connection=jobs.connection(app))
        signing.fetch_job(f"{job_id}-p0").delete()  # e.g. Redis restarted without persistence
        done = create_dossier("attestation", title="Signée, jamais scellée").id
        act(db.session.get(Dossier, done), "drh.bernard", "sign")  # its completion job waits in Redis…
        signing.empty()  # … and is lost
        for row in db.session.scalars(select(JobRecord)):
            row.updated_at = utcnow() - timedelta(minutes=2)
        db.session.get(Dossier, done).completed_at = utcnow() - timedelta(minutes=10)
        db.session.commit()
        assert jobs.reconcile(app) == {"failed": 1, "completions": 1}
        assert [j.args for j in signing.get_jobs()] == [(done,)]
        assert jobs.reconcile(app)["completions"] == 0  # asked again at most hourly
    record = job_record(app, job_id)
    assert record["status"] == "failed" and "disparu" in record["error"]


def test_a_job_run_twice_signs_once_and_large_batches_run_in_parts_inline(make_app):
    app = make_app("org", BATCH_PART_SIZE=4)
    with app.app_context():
        numbers = [create_dossier("attestation", title=f"Attestation {i}").id for i in range(10)]
        job, work = batches.start(db.session, app, user("drh.bernard"), numbers, None, None,
                                  audit.Meta("drh.bernard"))
        db.session.commit()
        assert [len(args[2]) for _, args, _ in work] == [4, 4, 2]
        jobs.enqueue_after_commit(work)
        jobs.enqueue_after_commit(work)  # again: every dossier already has its result
        job_id = job.id
    record = job_record(app, job_id)
    assert record["status"] == "done" and record["done"] == 10 and record["failed"] == 0
    for number in numbers:
        assert state(app, number)["events"].count("document.signed") == 1


# -- the API's queued signature ----------------------------------------------------------------------------


@postgresql_only
def test_the_api_answers_202_with_a_job_a_worker_completes(make_app, redis_url, tmp_path):
    from .apiclient import Api

    app = queued_app(make_app, redis_url)
    with app.app_context():
        number = create_dossier("contrat").id
        act(db.session.get(Dossier, number), "drh.bernard", "approve")
    api = Api(app, "dgs.martin")
    wrong = api.act(number, "sign", pin="000000", otp=pyotp.TOTP(TOTP).now())
    assert wrong.status_code == 400 and wrong.mimetype == "application/problem+json"
    queued = api.sign_advanced(number)
    assert queued.status_code == 202, queued.get_json()
    job_id = queued.get_json()["job"]
    assert queued.headers["Location"].endswith(f"/jobs/{job_id}")
    assert api.get(f"/jobs/{job_id}").get_json()["status"] == "queued"
    assert Api(app, "drh.bernard").get(f"/jobs/{job_id}").status_code == 404  # someone else's job
    run_burst(app, tmp_path / "worker.log")
    assert api.get(f"/jobs/{job_id}").get_json()["status"] == "done"
    assert api.get(f"/dossiers/{number}").get_json()["status"] == "completed"
    assert_signed_once(app, number)


def test_the_api_says_503_when_the_queue_is_down_and_changes_nothing(make_app):
    from .apiclient import Api

    app = make_app("org")
    with app.app_context():
        number = create_dossier("note-interne").id
    app.config["REDIS_URL"] = "redis://127.0.0.1:9/0"  # Redis goes down
    response = Api(app, "dgs.martin").act(number, "approve")
    assert response.status_code == 503 and "indisponible" in response.get_json()["detail"]
    with app.app_context():
        assert db.session.get(Dossier, number).status == "in_progress"
