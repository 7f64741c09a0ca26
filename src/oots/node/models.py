"""The admin area's tables, shared by every process serving the node.

* ``admin_login_failures``: wrong admin passwords per client, under a keyed hash of the client's
  address (no address is stored): how many in a row, when the last one came, and until when the
  client must wait.
* ``admin_sessions``: one row per admin login, under the SHA-256 of the random session id its cookie
  carries: what kind of login it was, when it started and expires, and when it was revoked (logout).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from oots.store.base import Base, UtcDateTime

__all__ = ["AdminLoginFailure", "AdminSession"]


class AdminLoginFailure(Base):
    """The wrong passwords of one client; removed by a right password or once it is forgotten."""

    __tablename__ = "admin_login_failures"
    __table_args__ = (Index(None, "last_at"),)

    #: HMAC-SHA256 (hex) of the client's address, keyed from the journal's seal key.
    client: Mapped[str] = mapped_column(String(64), primary_key=True)
    #: Wrong passwords in a row (each within the failure window of the one before).
    failures: Mapped[int] = mapped_column(Integer)
    last_at: Mapped[datetime] = mapped_column(UtcDateTime())
    paused_until: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)


class AdminSession(Base):
    """One admin login; the cookie is valid only while its row is neither expired nor revoked."""

    __tablename__ = "admin_sessions"
    __table_args__ = (Index(None, "expires_at"),)

    #: SHA-256 (hex) of the session id the cookie carries: the table alone opens no session.
    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    #: ``password`` or ``eid``.
    kind: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
