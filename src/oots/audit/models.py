"""The audit journal's tables: the entries (a sealed chain) and the head that records its end."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Index, Integer, LargeBinary, SmallInteger, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from oots.store import Base, JsonValue, UtcDateTime

__all__ = ["CONVERSATION_ID_CHARACTERS", "EXCHANGE_ID_CHARACTERS", "AuditEntry", "AuditHead"]

#: The longest AS4 conversation id an entry keeps (a peer's may be longer: the caller leaves it out).
CONVERSATION_ID_CHARACTERS = 200
#: The longest OOTS ExchangeId an entry keeps.
EXCHANGE_ID_CHARACTERS = 200


class AuditEntry(Base):
    """One step of one exchange. ``seal`` chains it to the entry before (see ``oots.audit.chain``)."""

    __tablename__ = "audit_entries"

    seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"), primary_key=True)
    recorded_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
    node: Mapped[str] = mapped_column(String(100))
    side: Mapped[str] = mapped_column(String(16))
    event: Mapped[str] = mapped_column(String(40), index=True)
    exchange_id: Mapped[str | None] = mapped_column(String(EXCHANGE_ID_CHARACTERS), index=True)
    conversation_id: Mapped[str | None] = mapped_column(String(CONVERSATION_ID_CHARACTERS), index=True)
    message_ids: Mapped[list[str]] = mapped_column(JsonValue)
    outcome: Mapped[str | None] = mapped_column(String(100))
    details: Mapped[dict[str, Any]] = mapped_column(JsonValue)
    #: AES-GCM ciphertext of the personal data of this step (who it was about), or NULL.
    personal: Mapped[bytes | None] = mapped_column(LargeBinary())
    #: SHA-256 of ``personal`` as written (informative: verification recomputes it from ``personal``).
    personal_digest: Mapped[str | None] = mapped_column(String(64))
    #: A keyed hash of the person's identifier, to find a person's entries without keeping it in clear.
    subject_key: Mapped[str | None] = mapped_column(String(64))
    seal: Mapped[str] = mapped_column(String(64))
    #: Which rule sealed the entry (``oots.audit.chain``): 1 before ``subject_key`` was sealed, 2 since.
    seal_version: Mapped[int] = mapped_column(SmallInteger(), server_default=text("1"))

    __table_args__ = (Index("ix_audit_entries_subject_key", "subject_key"),)


class AuditHead(Base):
    """The single row that says where the chain ends and where it starts after purges."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger())
    seal: Mapped[str] = mapped_column(String(64))
    anchor_seq: Mapped[int] = mapped_column(BigInteger())
    anchor_seal: Mapped[str] = mapped_column(String(64))
    #: ``oots.audit.chain.head_mac`` of the four fields above; NULL until an oots that keys it moves the head.
    mac: Mapped[str | None] = mapped_column(String(64))
    note: Mapped[str | None] = mapped_column(Text())
