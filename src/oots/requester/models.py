"""The evidence requester's tables: exchanges, the evidence requests they send, the evidence received.

* ``requester_exchanges``: one row per exchange a portal started (one user, one procedure, one or more
  requirements): its state (``oots.requester.states``), the person as the request carries it (the JSON
  form of ``sdg:Person``), the discovery results and the user's choices (JSON, see ``discovery``), the
  deadline, and a counter of state changes (``version``) that numbers the webhooks.
* ``requester_requests``: one row per evidence type to ask for (all types of the chosen list of each
  requirement): the chosen data service, the provider's access point and final recipient, the EDM version,
  the conversation id and the current ``QueryRequest`` id (answers are matched by these, never guessed),
  and the preview location when the provider asked for one.
* ``requester_evidence``: the documents received, with their ``sdg:Evidence`` metadata.
* ``requester_idempotency_keys``: the ``Idempotency-Key`` a portal sent with a start, per client, with a
  digest of the start's body and the answer it got (status and body), so that the same start sent again
  within a day answers the same exchange instead of making a second one.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from oots.requester.states import RequestStatus
from oots.store.base import Base, BigId, JsonValue, utcnow

__all__ = [
    "ERROR_CODE_CHARACTERS",
    "EVIDENCE_ID_CHARACTERS",
    "MEDIA_TYPE_CHARACTERS",
    "PREVIEW_LOCATION_CHARACTERS",
    "TITLE_CHARACTERS",
    "RequesterEvidence",
    "RequesterExchange",
    "RequesterIdempotencyKey",
    "RequesterRequest",
]

#: The longest texts of a provider's answer the columns keep (an answer is checked against them on receipt).
ERROR_CODE_CHARACTERS = 40
PREVIEW_LOCATION_CHARACTERS = 2000
EVIDENCE_ID_CHARACTERS = 255
TITLE_CHARACTERS = 500
MEDIA_TYPE_CHARACTERS = 255


class RequesterExchange(Base):
    __tablename__ = "requester_exchanges"
    __table_args__ = (Index(None, "state", "deadline"), Index(None, "client_id", "created_at"))

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    client_id: Mapped[str] = mapped_column(String(100), index=True)
    procedure: Mapped[str] = mapped_column(String(255))
    country: Mapped[str] = mapped_column(String(2))
    #: The JSON form of the sdg:Person (or sdg:LegalPerson, under ``legal_person``) of the user.
    subject: Mapped[Any] = mapped_column(JsonValue)
    #: Requirement ids the portal asked for (empty: every requirement of the procedure).
    wanted: Mapped[Any] = mapped_column(JsonValue)
    #: Discovery results and choices: a list of requirement entries (see ``oots.requester.discovery``).
    requirements: Mapped[Any] = mapped_column(JsonValue)
    state: Mapped[str] = mapped_column(String(40))
    reason: Mapped[str | None] = mapped_column(String(60))
    detail: Mapped[str | None] = mapped_column(Text)
    preview: Mapped[bool]
    explicit_request_given: Mapped[bool] = mapped_column(default=False)
    #: Where the portal wants its user back after a preview (its own page).
    return_url: Mapped[str | None] = mapped_column(String(2000))
    #: Incremented on every state change; webhooks carry it so a portal can order and deduplicate them.
    version: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    deadline: Mapped[datetime]


class RequesterRequest(Base):
    __tablename__ = "requester_requests"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    exchange_id: Mapped[str] = mapped_column(ForeignKey("requester_exchanges.id", ondelete="CASCADE"), index=True)
    position: Mapped[int]
    requirement_id: Mapped[str] = mapped_column(String(500))
    evidence_type: Mapped[str] = mapped_column(String(500))
    #: The DataServiceEvidenceType as the request carries it (JSON form of the model object).
    data_service: Mapped[Any] = mapped_column(JsonValue)
    #: The publisher (evidence provider) of the chosen access service (JSON form).
    provider: Mapped[Any] = mapped_column(JsonValue)
    access_point: Mapped[str] = mapped_column(String(255))
    access_point_type: Mapped[str | None] = mapped_column(String(255))
    specification: Mapped[str] = mapped_column(String(40))
    #: A :class:`~oots.requester.states.RequestStatus` value: pending, sent, preview, received, failed
    status: Mapped[str] = mapped_column(String(20), default=RequestStatus.PENDING.value)
    conversation_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    request_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    first_request_id: Mapped[str | None] = mapped_column(String(255))
    message_id: Mapped[str | None] = mapped_column(String(255))
    preview_location: Mapped[str | None] = mapped_column(String(PREVIEW_LOCATION_CHARACTERS))
    preview_method: Mapped[str | None] = mapped_column(String(10))
    error_code: Mapped[str | None] = mapped_column(String(ERROR_CODE_CHARACTERS))
    error_detail: Mapped[str | None] = mapped_column(Text)


class RequesterEvidence(Base):
    __tablename__ = "requester_evidence"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    exchange_id: Mapped[str] = mapped_column(ForeignKey("requester_exchanges.id", ondelete="CASCADE"), index=True)
    request_row: Mapped[int] = mapped_column(BigId, ForeignKey("requester_requests.id", ondelete="CASCADE"))
    evidence_id: Mapped[str] = mapped_column(String(EVIDENCE_ID_CHARACTERS))
    title: Mapped[str | None] = mapped_column(String(TITLE_CHARACTERS))
    media_type: Mapped[str] = mapped_column(String(MEDIA_TYPE_CHARACTERS))
    #: The sdg:Evidence metadata (JSON form).
    metadata_json: Mapped[Any] = mapped_column(JsonValue)
    content: Mapped[bytes] = mapped_column(LargeBinary)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)


class RequesterIdempotencyKey(Base):
    """A start sent with ``Idempotency-Key``: the key is the client's own (two clients may use the same)."""

    __tablename__ = "requester_idempotency_keys"

    client_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    #: SHA-256 (hex) of the start's body in canonical JSON: the same key with another body is refused.
    body_sha256: Mapped[str] = mapped_column(String(64))
    exchange_id: Mapped[str] = mapped_column(ForeignKey("requester_exchanges.id", ondelete="CASCADE"), index=True)
    #: The answer the start got (without ``Prefer: wait``): its HTTP status and JSON body.
    status: Mapped[int]
    answer: Mapped[Any] = mapped_column(JsonValue)
    #: A key is kept for a day after it was first used (then ignored; its row dropped by a later sweep).
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
