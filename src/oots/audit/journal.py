"""The audit journal: append, verify, purge, search and export (IR 2022/1463 art. 17).

Every step of every exchange, on both sides, is one :class:`~oots.audit.models.AuditEntry` appended in
the transaction that records the step itself, so the journal and the state never disagree. Entries
carry the AS4 message ids that link them to the access point's non-repudiation records. Personal data
(whom the step was about) is kept encrypted; only its digest enters the seal chain. Appends are
serialised across processes by locking the head row.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import secrets
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from sqlalchemy import Table, bindparam, delete, func, insert, select, update
from sqlalchemy.orm import Session

from oots.audit.chain import ChainBreak, EntryFields, seal, verify_chain
from oots.audit.models import AuditEntry, AuditHead
from oots.audit.sealing import decrypt_personal, digest, encrypt_personal
from oots.errors import ConfigError, StoreError
from oots.settings import Settings
from oots.store.files import write_once

__all__ = ["Entry", "Event", "Journal", "Side", "VerifyReport", "load_journal"]

#: Personal data may be kept in entries only under these keys (the eIDAS minimum data set and friends).
PERSONAL_KEYS = frozenset(
    {
        "person_identifier",
        "family_name",
        "given_name",
        "date_of_birth",
        "legal_person_identifier",
        "legal_name",
        "representative_identifier",
        "representative_name",
    }
)


class Side(StrEnum):
    REQUESTER = "requester"
    PROVIDER = "provider"


class Event(StrEnum):
    """The steps an exchange goes through, as the journal names them."""

    EXCHANGE_CREATED = "exchange_created"
    DISCOVERY_DONE = "discovery_done"
    EXPLICIT_REQUEST_GIVEN = "explicit_request_given"
    REQUEST_SENT = "request_sent"
    REQUEST_RECEIVED = "request_received"
    REQUEST_REJECTED = "request_rejected"
    MATCHING_DONE = "matching_done"
    PREVIEW_REQUIRED = "preview_required"
    PREVIEW_SHOWN = "preview_shown"
    PREVIEW_DECISION = "preview_decision"
    EVIDENCE_SENT = "evidence_sent"
    EVIDENCE_RECEIVED = "evidence_received"
    ERROR_SENT = "error_sent"
    ERROR_RECEIVED = "error_received"
    TIMEOUT = "timeout"
    CANCELLED = "cancelled"
    #: The requester's exchange ended without evidence for a reason of its own (no provider, unreachable...).
    EXCHANGE_FAILED = "exchange_failed"
    #: The user came back from a provider's preview space to the requester's return location.
    PREVIEW_RETURNED = "preview_returned"
    #: An answer arrived that matches no live request (unknown ids, or its exchange already ended).
    ANSWER_DROPPED = "answer_dropped"


@dataclass(frozen=True)
class Entry:
    """One step to append (:meth:`Journal.append_all`); the fields are :meth:`Journal.append`'s."""

    side: Side | str
    event: Event | str
    exchange_id: str | None = None
    conversation_id: str | None = None
    message_ids: Sequence[str] = ()
    outcome: str | None = None
    details: Mapping[str, Any] | None = None
    personal: Mapping[str, str] | None = None
    subject: str | None = None


@dataclass(frozen=True)
class VerifyReport:
    entries: int
    anchor_seq: int
    head_seq: int
    breaks: tuple[ChainBreak, ...]

    @property
    def ok(self) -> bool:
        return not self.breaks


def _fields(row: AuditEntry) -> EntryFields:
    return EntryFields(
        seq=row.seq,
        recorded_at=row.recorded_at,
        node=row.node,
        side=row.side,
        event=row.event,
        exchange_id=row.exchange_id,
        conversation_id=row.conversation_id,
        message_ids=tuple(row.message_ids),
        outcome=row.outcome,
        details=row.details,
        personal_digest=row.personal_digest,
    )


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


# The statements of an append, built once (Core: an entry is written once and never read back in the
# appending transaction, so the ORM's unit of work would only add cost). The head row is locked first:
# appends of concurrent transactions (and processes) queue there, so each follows the seal before it.
_ENTRIES: Table = AuditEntry.__table__  # type: ignore[assignment]
_HEADS: Table = AuditHead.__table__  # type: ignore[assignment]
_LOCK_HEAD = select(_HEADS.c.seq, _HEADS.c.seal).where(_HEADS.c.id == 1).with_for_update()
_INSERT_ENTRY = insert(_ENTRIES)
#: The head as an ORM object (verify, purge), read again from the database even when the session
#: holds it already: appends move it behind the ORM's back.
_HEAD = select(AuditHead).where(AuditHead.id == 1)
_MOVE_HEAD = update(_HEADS).where(_HEADS.c.id == 1).values(seq=bindparam("new_seq"), seal=bindparam("new_seal"))


class Journal:
    """The journal of one node. Keys are 32 bytes each: one seals the chain, one encrypts personal data."""

    def __init__(
        self, node: str, seal_key: bytes, data_key: bytes, *, clock: Callable[[], dt.datetime] = _utcnow
    ) -> None:
        if len(seal_key) != 32 or len(data_key) != 32:
            raise ConfigError("the audit seal and data keys must be 32 bytes each")
        self.node = node
        self._seal_key = seal_key
        self._data_key = data_key
        self.clock = clock

    def subject_key(self, identifier: str) -> str:
        """The keyed hash under which a person's entries are found (the identifier is never stored)."""
        return hmac.new(self._data_key, b"subject\n" + identifier.encode("utf-8"), hashlib.sha256).hexdigest()

    def append(
        self,
        session: Session,
        *,
        side: Side | str,
        event: Event | str,
        exchange_id: str | None = None,
        conversation_id: str | None = None,
        message_ids: Sequence[str] = (),
        outcome: str | None = None,
        details: Mapping[str, Any] | None = None,
        personal: Mapping[str, str] | None = None,
        subject: str | None = None,
    ) -> int:
        """Append one step in the caller's transaction; returns its sequence number.

        ``details`` must hold no personal data (codes, reasons, ids); ``personal`` holds what the step was
        about (only :data:`PERSONAL_KEYS`) and is encrypted; ``subject`` is the person's identifier, kept
        only as a keyed hash so an authority's request for one person can be answered.
        """
        entry = Entry(side, event, exchange_id, conversation_id, message_ids, outcome, details, personal, subject)
        return self.append_all(session, [entry])[0]

    def append_all(self, session: Session, entries: Sequence[Entry]) -> list[int]:
        """Append several steps, in order, in the caller's transaction (the head locked and moved once, the
        entries inserted in one statement); returns their sequence numbers. Each is sealed as
        :meth:`append` seals it: appending them one by one makes the same chain."""
        for entry in entries:
            if entry.personal:
                unknown = set(entry.personal) - PERSONAL_KEYS
                if unknown:
                    raise ValueError(f"not personal-data keys of the audit journal: {sorted(unknown)}")
        if not entries:
            return []
        conn = session.connection()
        head = conn.execute(_LOCK_HEAD).first()
        if head is None:
            raise StoreError("the audit journal has no head row: the database is not migrated")
        seq, sealed = int(head.seq), head.seal
        rows = []
        for entry in entries:
            seq += 1
            row = self._sealed_row(entry, seq, sealed)
            sealed = row["seal"]
            rows.append(row)
        conn.execute(_INSERT_ENTRY, rows[0] if len(rows) == 1 else rows)
        conn.execute(_MOVE_HEAD, {"new_seq": seq, "new_seal": sealed})
        return [row["seq"] for row in rows]

    def _sealed_row(self, entry: Entry, seq: int, previous_seal: str) -> dict[str, Any]:
        """The row of ``entry`` as entry ``seq`` of the chain, sealed after ``previous_seal``."""
        blob = None
        if entry.personal:
            blob = encrypt_personal(self._data_key, dict(entry.personal), associated=f"{self.node}:{seq}".encode())
        # Seal what the database will give back (JSON as stored: tuples become lists), so verification agrees.
        fields = EntryFields(
            seq=seq,
            recorded_at=self.clock(),
            node=self.node,
            side=str(entry.side),
            event=str(entry.event),
            exchange_id=entry.exchange_id,
            conversation_id=entry.conversation_id,
            message_ids=tuple(entry.message_ids),
            outcome=entry.outcome,
            details=json.loads(json.dumps(dict(entry.details or {}), sort_keys=True)),
            personal_digest=digest(blob) if blob is not None else None,
        )
        return {
            "seq": seq,
            "recorded_at": fields.recorded_at,
            "node": fields.node,
            "side": fields.side,
            "event": fields.event,
            "exchange_id": entry.exchange_id,
            "conversation_id": entry.conversation_id,
            "message_ids": list(fields.message_ids),
            "outcome": entry.outcome,
            "details": fields.details,
            "personal": blob,
            "personal_digest": fields.personal_digest,
            "subject_key": self.subject_key(entry.subject) if entry.subject else None,
            "seal": seal(self._seal_key, previous_seal, fields),
        }

    def entries(self, session: Session, *, batch: int = 1000) -> Iterator[AuditEntry]:
        last = 0
        while True:
            rows = session.execute(
                select(AuditEntry).where(AuditEntry.seq > last).order_by(AuditEntry.seq).limit(batch)
            ).scalars()
            got = list(rows)
            if not got:
                return
            yield from got
            last = got[-1].seq

    def verify(self, session: Session) -> VerifyReport:
        """Check the whole chain from its anchor to its head."""
        head = session.execute(_HEAD.execution_options(populate_existing=True)).scalar_one()
        count = 0

        def pairs() -> Iterator[tuple[EntryFields, str]]:
            nonlocal count
            for row in self.entries(session):
                count += 1
                yield _fields(row), row.seal

        breaks = verify_chain(
            self._seal_key,
            pairs(),
            anchor_seq=head.anchor_seq,
            anchor_seal=head.anchor_seal,
            head=(head.seq, head.seal),
        )
        return VerifyReport(count, head.anchor_seq, head.seq, tuple(breaks))

    def purge(self, session: Session, *, older_than: dt.datetime) -> int:
        """Delete the oldest entries recorded before ``older_than``; the chain stays verifiable.

        Only a prefix of the chain is removed (up to the last entry older than the cut-off that has
        no younger entry before it); the last removed entry's seal becomes the new anchor.
        """
        head = session.execute(_HEAD.with_for_update().execution_options(populate_existing=True)).scalar_one()
        first_young = session.execute(
            select(func.min(AuditEntry.seq)).where(AuditEntry.recorded_at >= older_than)
        ).scalar_one_or_none()
        limit = (first_young - 1) if first_young is not None else head.seq
        if limit <= head.anchor_seq:
            return 0
        anchor = session.execute(select(AuditEntry).where(AuditEntry.seq == limit)).scalar_one()
        result = session.execute(delete(AuditEntry).where(AuditEntry.seq <= limit))
        head.anchor_seq, head.anchor_seal = anchor.seq, anchor.seal
        head.note = f"purged up to entry {limit} ({older_than.isoformat()})"
        return int(getattr(result, "rowcount", 0) or 0)

    def search(
        self,
        session: Session,
        *,
        exchange_id: str | None = None,
        conversation_id: str | None = None,
        message_id: str | None = None,
        subject: str | None = None,
        event: str | None = None,
        limit: int = 200,
    ) -> list[AuditEntry]:
        query = select(AuditEntry).order_by(AuditEntry.seq.desc()).limit(limit)
        if exchange_id:
            query = query.where(AuditEntry.exchange_id == exchange_id)
        if conversation_id:
            query = query.where(AuditEntry.conversation_id == conversation_id)
        if subject:
            query = query.where(AuditEntry.subject_key == self.subject_key(subject))
        if event:
            query = query.where(AuditEntry.event == event)
        rows = list(session.execute(query).scalars())
        if message_id:
            rows = [r for r in rows if message_id in r.message_ids]
        return rows

    def export(self, rows: Sequence[AuditEntry]) -> list[dict[str, Any]]:
        """Entries as JSON-able dicts with their personal data decrypted (for an authority's request)."""
        out = []
        for row in sorted(rows, key=lambda r: r.seq):
            personal = None
            if row.personal is not None:
                personal = decrypt_personal(self._data_key, row.personal, associated=f"{row.node}:{row.seq}".encode())
            out.append(
                {
                    "seq": row.seq,
                    "recorded_at": row.recorded_at.isoformat(),
                    "node": row.node,
                    "side": row.side,
                    "event": row.event,
                    "exchange_id": row.exchange_id,
                    "conversation_id": row.conversation_id,
                    "message_ids": list(row.message_ids),
                    "outcome": row.outcome,
                    "details": row.details,
                    "personal": personal,
                    "seal": row.seal,
                }
            )
        return out


def _key(value: str, what: str) -> bytes:
    try:
        key = bytes.fromhex(value.strip())
    except ValueError:
        raise ConfigError(f"audit.{what} must be 64 hexadecimal characters") from None
    if len(key) != 32:
        raise ConfigError(f"audit.{what} must be 32 bytes (64 hexadecimal characters)")
    return key


def _generated_keys(path: Path) -> dict[str, str]:
    fresh = json.dumps({"seal_key": secrets.token_hex(32), "data_key": secrets.token_hex(32)})
    try:
        data = json.loads(write_once(path, fresh))
    except ValueError:
        data = None
    if isinstance(data, dict):
        return {str(k): str(v) for k, v in data.items()}
    raise ConfigError(f"{path} is not a key file of the audit journal")


def load_journal(settings: Settings, *, clock: Callable[[], dt.datetime] = _utcnow) -> Journal:
    """The node's journal; keys from ``[audit]``, or generated once into ``<data_dir>/audit.keys``."""
    audit = settings.audit
    generated: dict[str, str] = {}
    if audit.seal_key is None or audit.data_key is None:
        generated = _generated_keys(settings.node.data_dir / "audit.keys")
    seal_key = audit.seal_key.get_secret_value() if audit.seal_key else generated["seal_key"]
    data_key = audit.data_key.get_secret_value() if audit.data_key else generated["data_key"]
    return Journal(settings.node.name, _key(seal_key, "seal_key"), _key(data_key, "data_key"), clock=clock)
