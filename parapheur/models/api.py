"""REST API bookkeeping: per-token request counters for rate limiting without Redis."""

from __future__ import annotations

from sqlalchemy import ForeignKey
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base


class ApiRateWindow(Base):
    """Requests made with one token in one fixed window (``window`` = start, in seconds since the epoch)."""

    __tablename__ = "api_rate_windows"

    token_id: Mapped[int] = mapped_column(ForeignKey("api_tokens.id", ondelete="CASCADE"), primary_key=True)
    window: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    count: Mapped[int] = mapped_column(default=0)
