"""Webhooks: tell other software what happened to dossiers.

An administrator registers a URL, the event types it wants and a secret. When an action moves a dossier,
``jobs_for`` writes one delivery row per subscribed webhook *in the action's transaction* (so no event is
lost if the process dies after the commit) and returns the ``deliver_webhook`` jobs to enqueue after the
commit. ``deliver`` POSTs the JSON body signed with HMAC-SHA256:

    X-Parapheur-Timestamp: <unix seconds>
    X-Parapheur-Signature: sha256=<hex HMAC(secret, timestamp + "." + body)>

A failed attempt (network error, timeout, non-2xx answer) is retried with exponential backoff; every
attempt is logged on the delivery row, which the admin page lists.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import random
import secrets
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from flask import Flask
from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

import circuits

from .. import audit
from ..models import ChainTimestamp, Dossier, User, Webhook, WebhookDelivery, utcnow
from .errors import Invalid, NotFound

log = logging.getLogger(__name__)

#: event type → (French label, English label), in the order the admin page lists them
EVENTS = {
    "dossier.launched": ("Dossier lancé (ou relancé) dans son circuit", "Dossier launched (or relaunched)"),
    "step.done": ("Étape terminée (visa ou signature)", "Step done (approval or signature)"),
    "dossier.rejected": ("Dossier rejeté", "Dossier rejected"),
    "dossier.completed": ("Dossier terminé : documents signés", "Dossier completed: documents signed"),
}
#: sent by the admin page's "test" button only
PING = "ping"

DEFAULTS = {
    "WEBHOOK_MAX_ATTEMPTS": 10,  # 30 s, 1 min, 2 min … capped at 1 h: gives up after about 3 h
    "WEBHOOK_BACKOFF_SECONDS": 30,
    "WEBHOOK_MAX_BACKOFF_SECONDS": 3600,
    "WEBHOOK_TIMEOUT_SECONDS": 5,
}
#: a completion webhook waits (without counting attempts) for the completion job to seal the dossier,
#: at most this long, so that receivers download the final documents
COMPLETION_WAIT = timedelta(minutes=10)
USER_AGENT = "Parapheur-Webhooks/1"


def setting(app: Flask, name: str) -> int:
    return int(app.config.get(name) or DEFAULTS[name])


# --- events → deliveries (inside the action's transaction) ------------------------------------------


def payloads_for(dossier: Dossier, events: Iterable[circuits.Event], now: datetime) -> list[tuple[str, dict]]:
    """(event type, payload) for each engine event that webhooks announce."""
    found: list[tuple[str, dict]] = []
    snapshot = None
    for event in events:
        extra: dict = {}
        match event:
            case circuits.DossierLaunched():
                name = "dossier.launched"
                extra["relaunched"] = False
            case circuits.DossierRelaunched():
                name = "dossier.launched"
                extra["relaunched"] = True
            case circuits.StepCompleted(index=index):
                name = "step.done"
                snapshot = snapshot or _snapshot(dossier)
                extra["step"] = _step(snapshot.steps[index])
            case circuits.DossierRejected(index=index, reason=reason):
                name = "dossier.rejected"
                snapshot = snapshot or _snapshot(dossier)
                extra["step"] = _step(snapshot.steps[index])
                extra["reason"] = reason
            case circuits.DossierCompleted():
                name = "dossier.completed"
            case _:
                continue
        found.append((name, _payload(name, dossier, now, extra)))
    return found


def _snapshot(dossier: Dossier) -> circuits.Snapshot:
    return circuits.snapshot_from_dict(json.loads(dossier.circuit))


def _step(step: circuits.StepState) -> dict:
    acts = [{"actor": a.actor, "on_behalf_of": a.on_behalf_of, "action": str(a.action),
             "at": a.at.isoformat()} for a in step.acts]
    return {"index": step.index, "name": step.name, "kind": str(step.kind),
            "level": str(step.level) if step.level else None, "status": str(step.status), "acts": acts}


def _payload(name: str, dossier: Dossier | None, now: datetime, extra: dict) -> dict:
    body: dict = {"id": str(uuid.uuid4()), "event": name, "occurred_at": now.isoformat()}
    if dossier is not None:
        body["dossier"] = {
            "id": dossier.id, "title": dossier.title, "type": dossier.type.code, "status": dossier.status,
            "version": dossier.version, "current_step": dossier.current_step,
            "links": {"self": f"/api/v1/dossiers/{dossier.id}",
                      "evidence": f"/api/v1/dossiers/{dossier.id}/evidence"},
        }
    body.update(extra)
    return body


def jobs_for(session: Session, dossier: Dossier, events: Iterable[circuits.Event],
             now: datetime | None = None) -> list[tuple[str, tuple]]:
    """Write the deliveries the engine's ``events`` call for; return the jobs to enqueue after commit.

    Call it inside the action's transaction, after the dossier is flushed (its version is the new one).
    """
    now = now or utcnow()
    announced = payloads_for(dossier, events, now)
    if not announced:
        return []
    hooks = session.scalars(select(Webhook).where(Webhook.active.is_(True)).order_by(Webhook.id)).all()
    deliveries = []
    for name, payload in announced:
        for hook in hooks:
            if name in hook.event_list:
                deliveries.append(_new_delivery(session, hook, name, payload, dossier.id, now))
    session.flush()
    return [("deliver_webhook", (d.id,)) for d in deliveries]


def _new_delivery(session: Session, hook: Webhook, name: str, payload: dict, dossier_id: int | None,
                  now: datetime) -> WebhookDelivery:
    payload = dict(payload, id=str(uuid.uuid4()))  # one id per delivery: receivers deduplicate on it
    delivery = WebhookDelivery(uid=payload["id"], webhook=hook, event=name, dossier_id=dossier_id,
                               body=json.dumps(payload, ensure_ascii=False, separators=(",", ":")),
                               status="pending", attempts=0, next_attempt_at=now, created_at=now)
    session.add(delivery)
    return delivery


# --- sending (a job) --------------------------------------------------------------------------------


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The X-Parapheur-Signature value for ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(secret: str, timestamp: str, body: bytes, signature: str, *, tolerance: int = 300,
           now: float | None = None) -> bool:
    """What a receiver does: check the signature and that the timestamp is recent (replays)."""
    try:
        age = abs((now if now is not None else time.time()) - int(timestamp))
    except (TypeError, ValueError):
        return False
    return age <= tolerance and hmac.compare_digest(sign(secret, timestamp, body), signature or "")


@dataclass(frozen=True)
class Attempt:
    ok: bool
    status_code: int | None
    error: str | None


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # a redirect is an answer, not something to follow
        return None


def post(url: str, body: bytes, headers: dict[str, str], timeout: float) -> Attempt:
    """POST once; any 2xx is a success, anything else (3xx included) a failure with a reason."""
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(request, timeout=timeout) as response:
            return Attempt(200 <= response.status < 300, response.status, None)
    except urllib.error.HTTPError as error:
        excerpt = error.read(300).decode("utf-8", "replace").strip()
        return Attempt(False, error.code, f"HTTP {error.code}" + (f" : {excerpt}" if excerpt else ""))
    except (urllib.error.URLError, OSError, ValueError) as error:
        reason = getattr(error, "reason", None) or error
        return Attempt(False, None, f"{type(error).__name__} : {reason}"[:500])


def _claim(session: Session, delivery_id: int, now: datetime, hold: timedelta) -> bool:
    """Take the delivery for one attempt (an atomic UPDATE, committed): False if it is not due, already
    delivered, given up, or being sent by another worker."""
    result = session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.id == delivery_id, WebhookDelivery.status == "pending",
               or_(WebhookDelivery.claimed_until.is_(None), WebhookDelivery.claimed_until < now),
               or_(WebhookDelivery.next_attempt_at.is_(None),
                   WebhookDelivery.next_attempt_at <= now + timedelta(seconds=1)))
        .values(claimed_until=now + hold)
        .execution_options(synchronize_session=False)
    )
    session.commit()
    return result.rowcount == 1


def deliver(app: Flask, session: Session, delivery_id: int) -> str:
    """Make one attempt at a due delivery; commit its outcome; schedule the retry. Idempotent: a delivery
    that is not due (or already delivered) is left alone. Returns what happened, for logs and tests."""
    now = utcnow()
    timeout = setting(app, "WEBHOOK_TIMEOUT_SECONDS")
    if not _claim(session, delivery_id, now, timedelta(seconds=timeout + 30)):
        return "skipped"
    delivery = session.get(WebhookDelivery, delivery_id)
    session.refresh(delivery)
    hook = delivery.webhook
    if not hook.active:
        delivery.status, delivery.last_error, delivery.claimed_until = "failed", "webhook désactivé", None
        session.commit()
        return "cancelled"
    if delivery.event == "dossier.completed" and not _sealed(session, delivery) \
            and now - delivery.created_at < COMPLETION_WAIT:
        delivery.next_attempt_at, delivery.claimed_until = now + timedelta(seconds=5), None
        session.commit()
        schedule(app, delivery)
        return "waiting"
    body = delivery.body.encode()
    timestamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json", "User-Agent": USER_AGENT,
        "X-Parapheur-Event": delivery.event, "X-Parapheur-Delivery": delivery.uid,
        "X-Parapheur-Timestamp": timestamp, "X-Parapheur-Signature": sign(hook.secret, timestamp, body),
    }
    attempt = post(hook.url, body, headers, timeout)
    now = utcnow()
    delivery.attempts += 1
    delivery.last_status_code = attempt.status_code
    delivery.claimed_until = None
    if attempt.ok:
        delivery.status, delivery.delivered_at, delivery.next_attempt_at = "delivered", now, None
        delivery.last_error = None
    else:
        delivery.last_error = (attempt.error or "")[:500]
        if delivery.attempts >= setting(app, "WEBHOOK_MAX_ATTEMPTS"):
            delivery.status, delivery.next_attempt_at = "failed", None
        else:
            delivery.next_attempt_at = now + backoff(app, delivery.attempts)
    session.commit()
    if delivery.status == "pending":
        schedule(app, delivery)
    return delivery.status


def _sealed(session: Session, delivery: WebhookDelivery) -> bool:
    if delivery.dossier_id is None:
        return True
    return session.scalar(select(ChainTimestamp.id).where(ChainTimestamp.dossier_id == delivery.dossier_id)
                          .limit(1)) is not None


def backoff(app: Flask, attempts: int) -> timedelta:
    """Delay before the next attempt after ``attempts`` failures: doubling, capped, ±10 % jitter."""
    base = setting(app, "WEBHOOK_BACKOFF_SECONDS") * 2 ** max(attempts - 1, 0)
    seconds = min(base, setting(app, "WEBHOOK_MAX_BACKOFF_SECONDS"))
    return timedelta(seconds=seconds * random.uniform(0.9, 1.1))


def schedule(app: Flask, delivery: WebhookDelivery) -> None:
    """Ask RQ's scheduler to run the next attempt on time. Without Redis nothing waits in the background:
    ``pump`` (``parapheur remind``, the admin page) sends what is due."""
    url = app.config.get("REDIS_URL")
    if not url or delivery.next_attempt_at is None:
        return
    try:
        from redis import Redis
        from rq import Queue

        queue = Queue("default", connection=Redis.from_url(url))
        queue.enqueue_at(delivery.next_attempt_at, "parapheur.jobs.deliver_webhook", delivery.id)
    except Exception:  # noqa: BLE001 - the row stays pending: the next pump sends it
        log.exception("could not schedule webhook delivery %s", delivery.id)


def due_ids(session: Session, now: datetime, limit: int = 100) -> list[int]:
    return list(session.scalars(
        select(WebhookDelivery.id)
        .where(WebhookDelivery.status == "pending",
               or_(WebhookDelivery.next_attempt_at.is_(None), WebhookDelivery.next_attempt_at <= now),
               or_(WebhookDelivery.claimed_until.is_(None), WebhookDelivery.claimed_until < now))
        .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id).limit(limit)))


def pump(app: Flask, session: Session, limit: int = 100) -> dict[str, int]:
    """Attempt every due delivery (retries when no RQ scheduler runs, or after Redis lost a job)."""
    counts: dict[str, int] = {}
    for delivery_id in due_ids(session, utcnow(), limit):
        outcome = deliver(app, session, delivery_id)
        counts[outcome] = counts.get(outcome, 0) + 1
    return counts


# --- administration ---------------------------------------------------------------------------------


def check_url(url: str) -> str:
    url = (url or "").strip()
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.hostname or len(url) > 500:
        raise Invalid("Adresse invalide : indiquez une URL http:// ou https:// complète.",
                      "Invalid address: give a full http:// or https:// URL.", code="invalid_url")
    return url


def check_events(events: Iterable[str]) -> str:
    chosen = [e for e in EVENTS if e in set(events)]
    unknown = set(events) - set(EVENTS)
    if unknown or not chosen:
        raise Invalid("Choisissez au moins un type d'événement.", "Choose at least one event type.",
                      code="invalid_events")
    return " ".join(chosen)


def new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


def create(session: Session, admin: User, url: str, events: Iterable[str], description: str, secret: str | None,
           meta: audit.Meta, now: datetime) -> Webhook:
    secret = (secret or "").strip() or new_secret()
    if len(secret) < 16 or len(secret) > 200:
        raise Invalid("Le secret doit compter de 16 à 200 caractères.", "The secret must be 16 to 200 characters.",
                      code="invalid_secret")
    hook = Webhook(url=check_url(url), events=check_events(list(events)), description=(description or "")[:200],
                   secret=secret, active=True, created_at=now, created_by_id=admin.id)
    session.add(hook)
    session.flush()
    audit.record(session, "webhook.created", meta, webhook_id=hook.id, url=hook.url, events=hook.event_list)
    return hook


def list_hooks(session: Session) -> list[Webhook]:
    return list(session.scalars(select(Webhook).order_by(Webhook.id)))


def get(session: Session, webhook_id: int) -> Webhook:
    hook = session.get(Webhook, webhook_id)
    if hook is None:
        raise NotFound("Webhook introuvable.", "Webhook not found.")
    return hook


def update_hook(session: Session, hook: Webhook, *, url: str, events: Iterable[str], description: str,
                active: bool, meta: audit.Meta) -> Webhook:
    hook.url, hook.events = check_url(url), check_events(list(events))
    hook.description, hook.active = (description or "")[:200], active
    audit.record(session, "webhook.updated", meta, webhook_id=hook.id, url=hook.url, events=hook.event_list,
                 active=active)
    return hook


def rotate_secret(session: Session, hook: Webhook, meta: audit.Meta) -> str:
    hook.secret = new_secret()
    audit.record(session, "webhook.secret_rotated", meta, webhook_id=hook.id)
    return hook.secret


def delete(session: Session, hook: Webhook, meta: audit.Meta) -> None:
    audit.record(session, "webhook.deleted", meta, webhook_id=hook.id, url=hook.url)
    session.delete(hook)


def ping(session: Session, hook: Webhook, now: datetime) -> list[tuple[str, tuple]]:
    """Queue a ``ping`` delivery to check the receiver; returns the job to enqueue after commit."""
    delivery = _new_delivery(session, hook, PING, _payload(PING, None, now, {}), None, now)
    session.flush()
    return [("deliver_webhook", (delivery.id,))]


def retry(session: Session, delivery_id: int, now: datetime) -> list[tuple[str, tuple]]:
    """One more attempt now, for a failed or waiting delivery (an admin's button)."""
    delivery = session.get(WebhookDelivery, delivery_id)
    if delivery is None:
        raise NotFound("Envoi introuvable.", "Delivery not found.")
    if delivery.status == "delivered":
        return []
    delivery.status, delivery.next_attempt_at, delivery.claimed_until = "pending", now, None
    return [("deliver_webhook", (delivery.id,))]


def recent_deliveries(session: Session, webhook_id: int | None = None, status: str | None = None,
                      limit: int = 50) -> list[WebhookDelivery]:
    query = select(WebhookDelivery)
    conditions = []
    if webhook_id is not None:
        conditions.append(WebhookDelivery.webhook_id == webhook_id)
    if status:
        conditions.append(WebhookDelivery.status == status)
    if conditions:
        query = query.where(and_(*conditions))
    return list(session.scalars(query.order_by(WebhookDelivery.id.desc()).limit(limit)))
