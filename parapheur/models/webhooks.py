"""Webhooks: URLs an administrator registers per event type, and the log of every delivery to them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import Base, utcnow


class Webhook(Base):
    """A receiver: payloads for the event types it subscribes to are POSTed to ``url``, signed with
    HMAC-SHA256 under ``secret`` (kept in clear: the instance needs it to sign)."""

    __tablename__ = "webhooks"

    id: Mapped[int] = mapped_column(primary_key=True)
    url: Mapped[str] = mapped_column(String(500))
    description: Mapped[str] = mapped_column(String(200), default="")
    #: subscribed event types, space-separated ("dossier.launched step.done …")
    events: Mapped[str] = mapped_column(String(200))
    secret: Mapped[str] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), default=None)

    @property
    def event_list(self) -> list[str]:
        return self.events.split()


class WebhookDelivery(Base):
    """One event for one webhook: created in the transaction of the action that caused it, then sent
    (and retried with exponential backoff) by the ``deliver_webhook`` job. ``body`` is the exact JSON sent
    at every attempt; each attempt signs it with a fresh timestamp."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (Index("ix_webhook_deliveries_status_next", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    #: public id of the event, sent as X-Parapheur-Delivery so receivers can drop duplicates
    uid: Mapped[str] = mapped_column(String(36), unique=True)
    webhook_id: Mapped[int] = mapped_column(ForeignKey("webhooks.id", ondelete="CASCADE"), index=True)
    event: Mapped[str] = mapped_column(String(40))
    dossier_id: Mapped[int | None] = mapped_column(ForeignKey("dossiers.id", ondelete="SET NULL"), default=None,
                                                   index=True)
    body: Mapped[str] = mapped_column(Text)
    #: pending | delivered | failed (gave up after the last attempt)
    status: Mapped[str] = mapped_column(String(20), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    last_status_code: Mapped[int | None] = mapped_column(default=None)
    last_error: Mapped[str | None] = mapped_column(String(500), default=None)
    next_attempt_at: Mapped[datetime | None] = mapped_column(default=None)
    #: a sender holds the delivery until then, so two workers never send it at once
    claimed_until: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(default=None)
    webhook: Mapped[Webhook] = relationship(lazy="joined")
