"""The access point's tables: messages received and sent, their payloads and non-repudiation records.

* ``as4_inbound``: one row per received UserMessage (``message_id`` unique: a message is kept once),
  written with its receipt before the receipt is sent; its payloads in ``as4_inbound_payloads``; a
  message whose delivery failed names its dead delivery job (``delivery_job``).
* ``as4_outbound``: one row per UserMessage we send: the signed bytes every attempt resends, the
  state of ``oots.as4.msh``, the retry schedule's next time, and a lease for the sender loop; the
  signed receipt that came back is kept with the references we signed (non-repudiation).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from oots.store.base import Base, BigId, JsonValue, utcnow

__all__ = ["As4Inbound", "As4InboundPayload", "As4Outbound"]


class As4Inbound(Base):
    __tablename__ = "as4_inbound"
    __table_args__ = (Index(None, "state", "received_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    message_id: Mapped[str] = mapped_column(String(255), unique=True)
    #: The received eb:UserMessage header (JSON of oots.as4.model.UserMessage).
    header: Mapped[Any] = mapped_column(JsonValue)
    from_party: Mapped[str] = mapped_column(String(255))
    partner: Mapped[str] = mapped_column(String(100))
    leg: Mapped[str] = mapped_column(String(100))
    state: Mapped[str] = mapped_column(String(20))
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    delivered_at: Mapped[datetime | None]
    #: Who verified the message: ``as4`` (this access point) or ``domibus``.
    via: Mapped[str] = mapped_column(String(20), default="as4")
    #: DER of the certificate that signed the message (empty when Domibus verified it).
    signer: Mapped[bytes] = mapped_column(LargeBinary)
    #: The references the sender signed (echoed in our receipt): non-repudiation of receipt.
    references: Mapped[Any] = mapped_column(JsonValue)
    receipt_content_type: Mapped[str] = mapped_column(String(400))
    receipt: Mapped[bytes] = mapped_column(LargeBinary)
    last_error: Mapped[str | None] = mapped_column(Text)
    #: The dead-lettered delivery job (``queue_jobs.id``) of a ``delivery_failed`` message: the purge
    #: keeps the message while that job can still run (dead, or queued or running again once requeued).
    delivery_job: Mapped[int | None] = mapped_column(BigId)


class As4InboundPayload(Base):
    __tablename__ = "as4_inbound_payloads"

    inbound_id: Mapped[int] = mapped_column(BigId, ForeignKey("as4_inbound.id", ondelete="CASCADE"), primary_key=True)
    position: Mapped[int] = mapped_column(primary_key=True)
    content_id: Mapped[str] = mapped_column(String(255))
    mime_type: Mapped[str] = mapped_column(String(255))
    properties: Mapped[Any] = mapped_column(JsonValue)
    data: Mapped[bytes] = mapped_column(LargeBinary)


class As4Outbound(Base):
    __tablename__ = "as4_outbound"
    __table_args__ = (Index(None, "state", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    message_id: Mapped[str] = mapped_column(String(255), unique=True)
    partner: Mapped[str] = mapped_column(String(100))
    leg: Mapped[str] = mapped_column(String(100))
    state: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    attempts: Mapped[int] = mapped_column(default=0)
    first_sent_at: Mapped[datetime | None]
    next_attempt_at: Mapped[datetime | None]
    #: The sender loop's lease: a row being sent is held until then (a killed sender loses nothing).
    locked_until: Mapped[datetime | None]
    error_code: Mapped[str | None] = mapped_column(String(20))
    error_detail: Mapped[str | None] = mapped_column(Text)
    content_type: Mapped[str] = mapped_column(String(400))
    body: Mapped[bytes] = mapped_column(LargeBinary)
    references: Mapped[Any] = mapped_column(JsonValue)
    receipt: Mapped[bytes | None] = mapped_column(LargeBinary)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
