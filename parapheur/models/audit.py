"""Append-only audit events, hash-chained for the whole instance and per dossier."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, utcnow


class AuditEvent(Base):
    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_events_dossier_seq", "dossier_id", "dossier_seq"),
        Index("ix_audit_events_actor_kind", "actor", "kind"),  # auditors' search: dossiers a person signed
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    #: position in the instance chain (1, 2, …); gaps or swaps are detected by ``audit verify``
    seq: Mapped[int] = mapped_column(unique=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    kind: Mapped[str] = mapped_column(String(40), index=True)
    actor: Mapped[str | None] = mapped_column(String(80), default=None)
    on_behalf_of: Mapped[str | None] = mapped_column(String(80), default=None)
    ip: Mapped[str | None] = mapped_column(String(64), default=None)
    user_agent: Mapped[str | None] = mapped_column(String(300), default=None)
    dossier_id: Mapped[int | None] = mapped_column(ForeignKey("dossiers.id"), default=None)
    dossier_seq: Mapped[int | None] = mapped_column(default=None)
    revision_sha256: Mapped[str | None] = mapped_column(String(64), default=None)
    #: event details as canonical JSON (what changed, reason, level, hashes before/after…)
    data: Mapped[str] = mapped_column(Text, default="{}")
    prev_hash: Mapped[str] = mapped_column(String(64))
    dossier_prev_hash: Mapped[str | None] = mapped_column(String(64), default=None)
    hash: Mapped[str] = mapped_column(String(64))


class AuditHead(Base):
    """The head of a chain (``instance`` or ``dossier:<id>``); locked while appending so that
    concurrent writers cannot fork the chain."""

    __tablename__ = "audit_heads"

    scope: Mapped[str] = mapped_column(String(40), primary_key=True)
    seq: Mapped[int] = mapped_column(default=0)
    hash: Mapped[str] = mapped_column(String(64))


class ChainTimestamp(Base):
    """An RFC 3161 token over a dossier's chain head, taken when the dossier completes."""

    __tablename__ = "chain_timestamps"

    id: Mapped[int] = mapped_column(primary_key=True)
    dossier_id: Mapped[int] = mapped_column(ForeignKey("dossiers.id"), index=True)
    head_hash: Mapped[str] = mapped_column(String(64))
    dossier_seq: Mapped[int]
    token: Mapped[bytes] = mapped_column(LargeBinary)
    at: Mapped[datetime] = mapped_column(default=utcnow)
