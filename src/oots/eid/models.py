"""The eID tables: SAML assertions already used (so none is accepted twice, across processes)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, String
from sqlalchemy.orm import Mapped, mapped_column

from oots.store.base import Base, UtcDateTime

__all__ = ["UsedAssertion"]


class UsedAssertion(Base):
    """One used one-time value (a SAML assertion id with its issuer), kept until it expires.

    ``key`` is the SHA-256 of ``issuer|assertion id`` — fixed length, nothing readable.
    """

    __tablename__ = "eid_used_assertions"
    __table_args__ = (Index(None, "expires_at"),)

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime())
