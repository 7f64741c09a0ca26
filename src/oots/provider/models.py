"""The evidence provider's tables: the previews it holds open, and the documents shown in them.

* ``provider_previews``: one row per preview (``EDM:ERR:0002`` answered to a first request). The key is
  the SHA-256 of the secret in the PreviewLocation — the location itself is never stored, so the table
  does not let anyone into a preview. The row keeps what the second request must agree with (the
  conversation, the AS4 party that asked, a fingerprint of subject and evidence type), the deadline,
  then the held second request (its payload and how to answer it) and the user's decision. Personal
  data (the subject, the held request) is erased when the preview closes.
* ``provider_preview_documents``: the evidence rendered for the first request, exactly as it is shown
  to the user and, when accepted, sent. Deleted when the preview closes.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from oots.store.base import Base, BigId, JsonValue, utcnow

__all__ = ["ProviderPreview", "ProviderPreviewDocument"]


class ProviderPreview(Base):
    __tablename__ = "provider_previews"
    __table_args__ = (Index(None, "state", "deadline"),)

    #: SHA-256 (hex) of the secret token of the PreviewLocation.
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    #: ``oots.provider.preview.PreviewState``.
    state: Mapped[str] = mapped_column(String(20))
    conversation_id: Mapped[str] = mapped_column(String(255))
    #: The AS4 party (``type|value``) that sent the first request; the second must come from it too.
    requester_party: Mapped[str] = mapped_column(String(600))
    first_request_id: Mapped[str] = mapped_column(String(255))
    first_message_id: Mapped[str] = mapped_column(String(255))
    data_service: Mapped[str] = mapped_column(String(255))
    #: The identifier of the authority the data service issues as (the one the first request's
    #: ``EvidenceProvider`` names, when the service issues for several); None in older previews.
    authority: Mapped[str | None] = mapped_column(String(255))
    specification: Mapped[str] = mapped_column(String(20))
    #: SHA-256 of subject, evidence type, distributions and requester of the first request.
    fingerprint: Mapped[str] = mapped_column(String(64))
    #: The match's reason code (no personal data), for the journal of the final answer.
    match_reason: Mapped[str] = mapped_column(String(200))
    #: The request's subject (JSON form of sdg:Person / sdg:LegalPerson); erased when the preview closes.
    subject: Mapped[Any | None] = mapped_column(JsonValue)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    deadline: Mapped[datetime]
    #: The held second request: its payload, its message id, how to answer it (AS4 routing).
    held_at: Mapped[datetime | None]
    request_payload: Mapped[bytes | None] = mapped_column(LargeBinary)
    request_message_id: Mapped[str | None] = mapped_column(String(255))
    routing: Mapped[Any | None] = mapped_column(JsonValue)
    return_location: Mapped[str | None] = mapped_column(String(2000))
    #: The user's decision: ``accepted`` (some or all), ``refused`` (all), ``not_the_subject``.
    decision: Mapped[str | None] = mapped_column(String(20))
    #: Evidence identifiers the user accepted.
    accepted: Mapped[Any | None] = mapped_column(JsonValue)
    shown_at: Mapped[datetime | None]
    decided_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    #: What the second request was answered with: ``evidence`` or the EDM:ERR code.
    outcome: Mapped[str | None] = mapped_column(String(20))


class ProviderPreviewDocument(Base):
    __tablename__ = "provider_preview_documents"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    preview_key: Mapped[str] = mapped_column(ForeignKey("provider_previews.key", ondelete="CASCADE"), index=True)
    position: Mapped[int]
    evidence_id: Mapped[str] = mapped_column(String(255))
    annex: Mapped[bool] = mapped_column(default=False)
    media_type: Mapped[str] = mapped_column(String(100))
    filename: Mapped[str] = mapped_column(String(255))
    title: Mapped[str] = mapped_column(Text)
    language: Mapped[str] = mapped_column(String(10))
    conforms_to: Mapped[str | None] = mapped_column(String(500))
    #: The sdg:Evidence metadata (JSON form) sent with the document.
    metadata_json: Mapped[Any] = mapped_column(JsonValue)
    content: Mapped[bytes] = mapped_column(LargeBinary)
