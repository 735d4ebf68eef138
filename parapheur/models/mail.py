"""Emails sent, one row per (purpose, recipient): a job that runs twice mails once."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, utcnow


class SentMail(Base):
    __tablename__ = "sent_mails"
    __table_args__ = (UniqueConstraint("key", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(120))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    dossier_id: Mapped[int | None] = mapped_column(ForeignKey("dossiers.id"), default=None, index=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
