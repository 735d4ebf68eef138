"""Document types, dossiers, their documents and content-addressed revisions.

The circuit instance of a dossier is the engine's snapshot, stored as JSON (``circuit``); the
``dossier_assignees`` rows mirror who is assigned where, so inboxes and access checks are index lookups
and never scan dossiers the user cannot see.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import Base, utcnow
from .users import User


class DocumentType(Base):
    __tablename__ = "document_types"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(80), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    min_level: Mapped[str] = mapped_column(String(20), default="simple")
    allow_assignee_change: Mapped[bool] = mapped_column(default=False)
    #: the circuit template, as circuits.serialise's JSON form; copied into each dossier at launch
    template: Mapped[str] = mapped_column(Text)
    active: Mapped[bool] = mapped_column(default=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Dossier(Base):
    __tablename__ = "dossiers"
    __table_args__ = (
        Index("ix_dossiers_initiator_status", "initiator_id", "status"),
        Index("ix_dossiers_status_updated", "status", "updated_at"),
        Index("ix_dossiers_created_at", "created_at"),  # auditors' search: date range, newest first
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(300))
    type_id: Mapped[int] = mapped_column(ForeignKey("document_types.id"), index=True)
    initiator_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    status: Mapped[str] = mapped_column(String(20), default="draft")
    #: engine snapshot (JSON); the single source of truth for the circuit's state
    circuit: Mapped[str] = mapped_column(Text)
    #: index of the active step, or None; denormalised for lists
    current_step: Mapped[int | None] = mapped_column(default=None)
    #: when the active step becomes overdue, for the "en retard" count and reminders
    due_at: Mapped[datetime | None] = mapped_column(default=None, index=True)
    reminded_at: Mapped[datetime | None] = mapped_column(default=None)
    #: optimistic lock: every accepted action bumps it; a stale form or API call is refused (409)
    version: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    completed_at: Mapped[datetime | None] = mapped_column(default=None)

    __mapper_args__ = {"version_id_col": version}

    type: Mapped[DocumentType] = relationship(lazy="joined")
    initiator: Mapped[User] = relationship(lazy="joined")
    documents: Mapped[list[Document]] = relationship(
        back_populates="dossier", order_by="Document.position", cascade="all, delete-orphan"
    )
    assignees: Mapped[list[DossierAssignee]] = relationship(
        back_populates="dossier", cascade="all, delete-orphan"
    )


class DossierAssignee(Base):
    """One assignee slot of one step: a user or a desk. ``active`` marks the active step's slots."""

    __tablename__ = "dossier_assignees"
    __table_args__ = (
        Index("ix_dossier_assignees_user_active", "user_id", "active"),
        Index("ix_dossier_assignees_desk_active", "desk_id", "active"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    dossier_id: Mapped[int] = mapped_column(ForeignKey("dossiers.id", ondelete="CASCADE"), index=True)
    step_index: Mapped[int]
    kind: Mapped[str] = mapped_column(String(10))  # visa | signature
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)
    desk_id: Mapped[int | None] = mapped_column(ForeignKey("desks.id"), default=None)
    active: Mapped[bool] = mapped_column(default=False)
    dossier: Mapped[Dossier] = relationship(back_populates="assignees")


class Document(Base):
    """A PDF to sign (``kind='document'``) or an annex (attached, never signed)."""

    __tablename__ = "documents"

    id: Mapped[int] = mapped_column(primary_key=True)
    dossier_id: Mapped[int] = mapped_column(ForeignKey("dossiers.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(10), default="document")
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(100), default="application/pdf")
    position: Mapped[int] = mapped_column(default=0)
    pages: Mapped[int | None] = mapped_column(default=None)
    dossier: Mapped[Dossier] = relationship(back_populates="documents")
    revisions: Mapped[list[Revision]] = relationship(
        back_populates="document", order_by="Revision.number", cascade="all, delete-orphan",
        lazy="selectin",
    )

    @property
    def current(self) -> Revision:
        return self.revisions[-1]


class Revision(Base):
    """An immutable version of a document's bytes, named by their sha256 in the blob store."""

    __tablename__ = "revisions"
    __table_args__ = (UniqueConstraint("document_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id", ondelete="CASCADE"))
    number: Mapped[int]
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    size: Mapped[int]
    #: what produced it: upload | fields | signature | timestamp
    reason: Mapped[str] = mapped_column(String(20), default="upload")
    step_index: Mapped[int | None] = mapped_column(default=None)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    document: Mapped[Document] = relationship(back_populates="revisions")
