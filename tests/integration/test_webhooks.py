"""Webhooks: deliveries written with the action, signed, retried with backoff, logged, administered."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from jsonschema import Draft202012Validator
from sqlalchemy import func, select

from parapheur import audit
from parapheur.extensions import db
from parapheur.models import AuditEvent, Base, WebhookDelivery, utcnow
from parapheur.services import dossiers, webhooks

from .apiclient import Api, Receiver, add_webhook
from .factories import act, create_dossier, user

ALL = list(webhooks.EVENTS)


def _deliveries(app, **where) -> list[WebhookDelivery]:
    with app.app_context():
        query = select(WebhookDelivery).order_by(WebhookDelivery.id)
        for name, value in where.items():
            query = query.where(getattr(WebhookDelivery, name) == value)
        return db.session.scalars(query).all()


def _make_due(app, delivery_id: int) -> None:
    with app.app_context():
        delivery = db.session.get(WebhookDelivery, delivery_id)
        delivery.next_attempt_at = utcnow() - timedelta(seconds=1)
        db.session.commit()


def _pump(app) -> dict:
    with app.app_context():
        return webhooks.pump(app, db.session)


# --- signing ----------------------------------------------------------------------------------------


def test_signature_is_hmac_sha256_of_timestamp_dot_body():
    body = b'{"event":"dossier.completed"}'
    signature = webhooks.sign("secret", "1700000000", body)
    import hashlib
    import hmac

    assert signature == "sha256=" + hmac.new(b"secret", b"1700000000." + body, hashlib.sha256).hexdigest()
    assert webhooks.verify("secret", "1700000000", body, signature, now=1700000100)
    assert not webhooks.verify("secret", "1700000000", body + b" ", signature, now=1700000100)
    assert not webhooks.verify("other", "1700000000", body, signature, now=1700000100)
    assert not webhooks.verify("secret", "1700000000", body, signature, now=1700001000)  # too old: a replay
    assert not webhooks.verify("secret", "not-a-time", body, signature)


# --- deliveries and the action's transaction --------------------------------------------------------


def test_deliveries_are_written_in_the_actions_transaction(org):
    add_webhook(org, "http://127.0.0.1:9/never", ALL)
    with org.app_context():
        dossier = create_dossier("note-interne", launch=False)
        result = dossiers.perform(db.session, org, dossier, user("rh.dupont"), "launch", audit.Meta("rh.dupont"),
                                  utcnow())
        assert [name for name, _ in result.jobs if name == "deliver_webhook"] == ["deliver_webhook"]
        db.session.rollback()  # the action is abandoned: so is its announcement
        assert db.session.scalar(select(func.count(WebhookDelivery.id))) == 0
        dossier = db.session.get(type(dossier), dossier.id)
        dossiers.perform(db.session, org, dossier, user("rh.dupont"), "launch", audit.Meta("rh.dupont"), utcnow())
        db.session.commit()  # committed, not yet sent: the row waits for its job (or the pump)
        pending = db.session.scalars(select(WebhookDelivery)).all()
        assert [(d.event, d.status, d.attempts) for d in pending] == [("dossier.launched", "pending", 0)]


def test_each_webhook_gets_only_the_events_it_subscribed_to(org):
    with Receiver() as everything, Receiver() as rejections:
        add_webhook(org, everything.url, ALL)
        add_webhook(org, rejections.url, ["dossier.rejected"])
        disabled = add_webhook(org, everything.url + "/off", ALL)
        with org.app_context():
            webhooks.get(db.session, disabled).active = False
            db.session.commit()
            dossier = create_dossier("contrat")
            act(dossier, "drh.bernard", "reject", reason="Pièce manquante")
        assert [r["payload"]["event"] for r in everything.events()] == ["dossier.launched", "dossier.rejected"]
        rejected = rejections.events()
        assert [r["payload"]["event"] for r in rejected] == ["dossier.rejected"]
        assert rejected[0]["payload"]["reason"] == "Pièce manquante"
        assert rejected[0]["payload"]["step"]["index"] == 0
        assert not any(r["path"].endswith("/off") for r in everything.requests)


def test_payloads_match_the_documented_schema(org):
    schema = org.test_client().get("/api/v1/openapi.json").json["components"]["schemas"]["WebhookPayload"]
    with Receiver() as receiver:
        add_webhook(org, receiver.url, ALL)
        with org.app_context():
            dossier = create_dossier("note-interne")
            act(dossier, "dgs.martin", "approve")
        events = receiver.events()
    assert [e["payload"]["event"] for e in events] == ["dossier.launched", "step.done", "dossier.completed"]
    for event in events:
        Draft202012Validator(schema).validate(event["payload"])
    assert len({e["payload"]["id"] for e in events}) == 3


def test_a_relaunch_is_announced_as_a_launch(org):
    with Receiver() as receiver:
        add_webhook(org, receiver.url, ["dossier.launched"])
        with org.app_context():
            dossier = create_dossier("contrat")
            act(dossier, "drh.bernard", "reject", reason="À revoir")
            act(dossier, "rh.dupont", "relaunch")
        assert [e["payload"]["relaunched"] for e in receiver.events()] == [False, True]


# --- retries ----------------------------------------------------------------------------------------


def test_failures_are_retried_with_exponential_backoff_and_logged(org):
    with Receiver(statuses=(500, 503, 200)) as receiver:
        add_webhook(org, receiver.url, ["dossier.launched"])
        Api(org, "rh.dupont").create_dossier("note-interne")  # first attempt: inline, after the commit
        [first] = _deliveries(org)
        assert (first.status, first.attempts, first.last_status_code) == ("pending", 1, 500)
        assert first.last_error.startswith("HTTP 500")
        delay = (first.next_attempt_at - utcnow()).total_seconds()
        assert 25 <= delay <= 34  # 30 s ± 10 %

        assert _pump(org) == {}  # not due yet: nothing is sent
        _make_due(org, first.id)
        assert _pump(org) == {"pending": 1}
        [second] = _deliveries(org)
        assert (second.attempts, second.last_status_code) == (2, 503)
        assert 52 <= (second.next_attempt_at - utcnow()).total_seconds() <= 67  # doubled

        _make_due(org, first.id)
        assert _pump(org) == {"delivered": 1}
        [done] = _deliveries(org)
        assert (done.status, done.attempts, done.last_status_code, done.last_error) == ("delivered", 3, 200, None)
        assert done.delivered_at is not None and done.next_attempt_at is None
        assert len(receiver.requests) == 3
        # every attempt carries the same body and delivery id, signed with its own timestamp
        assert len({r["body"] for r in receiver.requests}) == 1
        assert len({r["headers"]["X-Parapheur-Delivery"] for r in receiver.requests}) == 1
        with org.app_context():
            assert webhooks.deliver(org, db.session, done.id) == "skipped"  # idempotent


def test_gives_up_after_the_last_attempt_and_an_admin_can_retry(make_app):
    app = make_app("org", WEBHOOK_MAX_ATTEMPTS=2)
    with Receiver(statuses=(500, 500, 200)) as receiver:
        add_webhook(app, receiver.url, ["dossier.launched"])
        Api(app, "rh.dupont").create_dossier("note-interne")
        [delivery] = _deliveries(app)
        _make_due(app, delivery.id)
        _pump(app)
        [failed] = _deliveries(app)
        assert (failed.status, failed.attempts, failed.next_attempt_at) == ("failed", 2, None)
        assert _pump(app) == {}
        with app.app_context():
            work = webhooks.retry(db.session, delivery.id, utcnow())
            db.session.commit()
            assert webhooks.deliver(app, db.session, work[0][1][0]) == "delivered"
        assert len(receiver.requests) == 3


def test_unreachable_receivers_and_redirects_are_failures_with_a_reason(org):
    with Receiver(statuses=(302,)) as redirecting:
        add_webhook(org, redirecting.url, ["dossier.launched"])
        add_webhook(org, "http://127.0.0.1:9/closed-port", ["dossier.launched"])
        Api(org, "rh.dupont").create_dossier("note-interne")
    redirected, unreachable = _deliveries(org)
    assert (redirected.status, redirected.last_status_code) == ("pending", 302)
    assert unreachable.status == "pending" and unreachable.last_status_code is None
    assert "refused" in unreachable.last_error.lower() or "URLError" in unreachable.last_error


def test_a_delivery_being_sent_is_not_sent_twice(org):
    add_webhook(org, "http://127.0.0.1:9/closed-port", ["dossier.launched"])
    with org.app_context():
        dossier = create_dossier("note-interne", launch=False)
        dossiers.perform(db.session, org, dossier, user("rh.dupont"), "launch", audit.Meta("rh.dupont"), utcnow())
        db.session.commit()
        delivery = db.session.scalars(select(WebhookDelivery)).one()
        delivery.claimed_until = utcnow() + timedelta(minutes=1)  # another worker holds it
        db.session.commit()
        assert webhooks.deliver(org, db.session, delivery.id) == "skipped"
        assert webhooks.due_ids(db.session, utcnow()) == []


def test_the_completion_webhook_waits_for_the_dossier_to_be_sealed(org):
    with Receiver() as receiver:
        hook_id = add_webhook(org, receiver.url, ["dossier.completed"])
        with org.app_context():
            dossier = create_dossier("note-interne")
            hook = webhooks.get(db.session, hook_id)
            delivery = webhooks._new_delivery(db.session, hook, "dossier.completed", {"event": "dossier.completed"},
                                              dossier.id, utcnow())
            db.session.commit()
            assert webhooks.deliver(org, db.session, delivery.id) == "waiting"  # not completed nor sealed yet
            db.session.refresh(delivery)
            assert delivery.attempts == 0 and delivery.next_attempt_at > utcnow()
            delivery.created_at = utcnow() - timedelta(hours=1)  # waited long enough: send anyway
            delivery.next_attempt_at = utcnow()
            db.session.commit()
            assert webhooks.deliver(org, db.session, delivery.id) == "delivered"
        assert len(receiver.requests) == 1


@pytest.mark.redis
def test_with_redis_the_retry_is_scheduled_in_rq(make_app):
    from rq import Queue
    from rq.registry import ScheduledJobRegistry

    from tests import services

    try:
        client = services.redis_client()
    except Exception as error:  # noqa: BLE001
        services.unavailable("Redis", error)
    app = make_app("org", REDIS_URL=services.REDIS_URL)
    add_webhook(app, "http://127.0.0.1:9/closed-port", ["dossier.launched"])
    with app.app_context():
        dossier = create_dossier("note-interne", launch=False)
        dossiers.perform(db.session, app, dossier, user("rh.dupont"), "launch", audit.Meta("rh.dupont"), utcnow())
        db.session.commit()
        delivery = db.session.scalars(select(WebhookDelivery)).one()
        assert webhooks.deliver(app, db.session, delivery.id) == "pending"
    registry = ScheduledJobRegistry(queue=Queue("default", connection=client))
    ours = [job for job in (Queue("default", connection=client).fetch_job(i) for i in registry.get_job_ids())
            if job and job.func_name == "parapheur.jobs.deliver_webhook" and job.args == (delivery.id,)
            and job.enqueued_at is None]
    try:
        assert ours, "the retry was not scheduled"
        when = registry.get_scheduled_time(ours[-1])
        assert abs(when.timestamp() - delivery.next_attempt_at.timestamp()) < 2
    finally:
        for job in ours:
            registry.remove(job, delete_job=True)


# --- administration ---------------------------------------------------------------------------------


def test_admin_pages_register_ping_follow_and_retry(browser, org):
    admin = browser("admin")
    assert admin.get("/admin/webhooks/").status_code == 200
    with Receiver(statuses=(500, 200)) as receiver:
        bad = admin.post_form("/admin/webhooks/", data={"url": "ftp://nope", "events": ["step.done"]})
        assert bad.status_code == 400 and "URL" in bad.get_data(as_text=True)
        created = admin.post_form("/admin/webhooks/", data={"url": receiver.url, "description": "SIRH",
                                                           "events": ["dossier.completed", "step.done"]})
        assert created.status_code == 302
        page_url = created.headers["Location"]
        page = admin.get(page_url).get_data(as_text=True)
        with org.app_context():
            hook = webhooks.list_hooks(db.session)[0]
            assert hook.event_list == ["step.done", "dossier.completed"] and hook.secret.startswith("whsec_")
        assert hook.secret in page
        assert admin.post_form(page_url, f"{page_url}/ping").status_code == 302
        [ping] = _deliveries(org)
        assert (ping.event, ping.status, ping.last_status_code) == ("ping", "pending", 500)
        listing = admin.get("/admin/webhooks/?status=pending").get_data(as_text=True)
        assert "HTTP 500" in listing and "ping" in listing
        assert admin.post_form("/admin/webhooks/", f"/admin/webhooks/deliveries/{ping.id}/retry",
                               data={"back": page_url}).status_code == 302
        assert _deliveries(org)[0].status == "delivered"
        assert webhooks.verify(hook.secret, receiver.requests[-1]["headers"]["X-Parapheur-Timestamp"],
                               receiver.requests[-1]["body"],
                               receiver.requests[-1]["headers"]["X-Parapheur-Signature"])
        assert json.loads(receiver.requests[-1]["body"])["event"] == "ping"

    updated = admin.post_form(page_url, data={"url": receiver.url, "events": ["dossier.rejected"], "active": ""})
    assert updated.status_code == 302
    with org.app_context():
        hook = webhooks.get(db.session, hook.id)
        assert hook.event_list == ["dossier.rejected"] and hook.active is False
        old_secret = hook.secret
    admin.post_form(page_url, f"{page_url}/rotate")
    with org.app_context():
        assert webhooks.get(db.session, hook.id).secret != old_secret
        kinds = db.session.scalars(select(AuditEvent.kind).where(AuditEvent.kind.like("webhook.%"))
                                .order_by(AuditEvent.seq)).all()
        assert kinds == ["webhook.created", "webhook.updated", "webhook.secret_rotated"]
    assert admin.post_form(page_url, f"{page_url}/delete").status_code == 302
    assert admin.get(page_url).status_code == 404
    assert _deliveries(org) == []


def test_only_admins_reach_the_webhook_pages(browser):
    assert browser("rh.dupont").get("/admin/webhooks/").status_code == 403
    assert browser().get("/admin/webhooks/").status_code == 302  # to the login page


# --- schema -----------------------------------------------------------------------------------------


def test_the_migration_matches_the_models(app):
    mine = {"webhooks", "webhook_deliveries", "api_rate_windows"}
    with app.app_context(), db.engine.connect() as connection:
        diffs = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    ours = [d for d in diffs if any(name in repr(d) for name in mine)]
    assert ours == []


def test_the_migration_downgrades_and_upgrades(app):
    from alembic import command

    from parapheur.migrate import alembic_config, upgrade

    url = app.config["DATABASE_URL"]
    command.downgrade(alembic_config(url), "0002")
    with app.app_context():
        from sqlalchemy import inspect

        assert "webhooks" not in inspect(db.engine).get_table_names()
        db.dispose(app)
    upgrade(url)
    with app.app_context():
        from sqlalchemy import inspect

        assert {"webhooks", "webhook_deliveries", "api_rate_windows"} <= set(inspect(db.engine).get_table_names())
