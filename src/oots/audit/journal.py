"""The audit journal: append, verify, purge, search and export (IR 2022/1463 art. 17).

Every step of every exchange, on both sides, is one :class:`~oots.audit.models.AuditEntry` appended in
the transaction that records the step itself, so the journal and the state never disagree. Entries
carry the AS4 message ids that link them to the access point's non-repudiation records. Personal data
(whom the step was about) is kept encrypted; only its digest enters the seal chain. Appends are
serialised across processes by locking the head row, whose MAC they check and renew.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging
import secrets
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import Connection, String, Table, bindparam, cast, delete, func, insert, select, update
from sqlalchemy.orm import Session

from oots.audit.chain import (
    SEAL_VERSION,
    ChainBreak,
    EntryFields,
    Head,
    head_mac,
    seal,
    verify_chain,
    verify_head,
)
from oots.audit.models import CONVERSATION_ID_CHARACTERS, EXCHANGE_ID_CHARACTERS, AuditEntry, AuditHead
from oots.audit.sealing import decrypt_personal, digest, encrypt_personal
from oots.errors import ConfigError, SecurityError, StoreError
from oots.settings import Settings
from oots.store.files import write_once
from oots.store.queue import end_group_after

__all__ = ["Entry", "Event", "Journal", "Side", "VerifyReport", "check_keys", "load_journal"]

log = logging.getLogger(__name__)

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
    #: The requester's exchange ended without evidence for a reason of its own (no provider, unreachable...);
    #: on the provider's side, an answer could not be sent (outcome ``answer_not_sent``: the requester's
    #: certificate is not valid), until its dead job is requeued.
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


def _kept(value: str | None, limit: int) -> str | None:
    return value if value is None or len(value) <= limit else None


def _within_columns(entry: Entry) -> Entry:
    """``entry`` without an exchange or conversation id longer than its column keeps (a peer's may be):
    the step is journaled without it rather than failing the caller's transaction (PostgreSQL refuses
    an over-long value; SQLite would keep it)."""
    exchange_id = _kept(entry.exchange_id, EXCHANGE_ID_CHARACTERS)
    conversation_id = _kept(entry.conversation_id, CONVERSATION_ID_CHARACTERS)
    if (exchange_id, conversation_id) == (entry.exchange_id, entry.conversation_id):
        return entry
    return replace(entry, exchange_id=exchange_id, conversation_id=conversation_id)


@dataclass(frozen=True)
class VerifyReport:
    entries: int
    anchor_seq: int
    head_seq: int
    breaks: tuple[ChainBreak, ...]
    #: False while the head has no MAC yet (last moved by an oots before the keyed head; see the docs).
    head_keyed: bool = True

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
        # From the ciphertext itself, not from the personal_digest column: a removed or swapped
        # ciphertext breaks the seal.
        personal_digest=digest(row.personal) if row.personal is not None else None,
        subject_key=row.subject_key,
        version=row.seal_version,
    )


def _head(row: AuditHead) -> Head:
    return Head(row.seq, row.seal, row.anchor_seq, row.anchor_seal, row.mac)


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


# The statements of an append, built once (Core: an entry is written once and never read back in the
# appending transaction, so the ORM's unit of work would only add cost). The head row is locked first:
# appends of concurrent transactions (and processes) queue there, so each follows the seal before it.
_ENTRIES: Table = AuditEntry.__table__  # type: ignore[assignment]
_HEADS: Table = AuditHead.__table__  # type: ignore[assignment]
_LOCK_HEAD = (
    select(_HEADS.c.seq, _HEADS.c.seal, _HEADS.c.anchor_seq, _HEADS.c.anchor_seal, _HEADS.c.mac)
    .where(_HEADS.c.id == 1)
    .with_for_update()
)
_INSERT_ENTRY = insert(_ENTRIES)
_SEAL_VERSION_OF = select(_ENTRIES.c.seal_version).where(_ENTRIES.c.seq == bindparam("seq"))
#: The head as an ORM object (verify, purge), read again from the database even when the session
#: holds it already: appends move it behind the ORM's back.
_HEAD = select(AuditHead).where(AuditHead.id == 1)
_MOVE_HEAD = (
    update(_HEADS)
    .where(_HEADS.c.id == 1)
    .values(seq=bindparam("new_seq"), seal=bindparam("new_seal"), mac=bindparam("new_mac"))
)


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
        entries = [_within_columns(entry) for entry in entries]
        conn = session.connection()
        head = conn.execute(_LOCK_HEAD).first()
        end_group_after(session)  # a worker commits the head's lock with this job, not with its next ones
        if head is None:
            raise StoreError("the audit journal has no head row: the database is not migrated")
        current = Head(int(head.seq), head.seal, int(head.anchor_seq), head.anchor_seal, head.mac)
        keyed = self._head_may_be_keyed(conn, current)
        seq, sealed = current.seq, current.seal
        rows = []
        for entry in entries:
            seq += 1
            row = self._sealed_row(entry, seq, sealed)
            sealed = row["seal"]
            rows.append(row)
        conn.execute(_INSERT_ENTRY, rows[0] if len(rows) == 1 else rows)
        mac = self._head_mac(seq, sealed, current.anchor_seq, current.anchor_seal) if keyed else current.mac
        conn.execute(_MOVE_HEAD, {"new_seq": seq, "new_seal": sealed, "new_mac": mac})
        return [row["seq"] for row in rows]

    def _head_mac(self, seq: int, sealed: str, anchor_seq: int, anchor_seal: str) -> str:
        return head_mac(self._seal_key, seq, sealed, anchor_seq, anchor_seal)

    def _head_may_be_keyed(self, conn: Connection, head: Head) -> bool:
        """Whether moving ``head`` may give it a valid MAC: only when it is intact, so an append never
        launders a head rewritten without the key (its MAC is left as it is, and stays wrong).

        An unkeyed head is one from an oots before the keyed head, keyed at its first append here,
        unless the entry it ends at was sealed by this version (then someone removed its MAC).
        """
        if head.mac is not None:
            broken = verify_head(self._seal_key, head)
        elif head.seq > head.anchor_seq and (conn.execute(_SEAL_VERSION_OF, {"seq": head.seq}).scalar() or 1) >= 2:
            broken = ChainBreak(head.seq, "the journal's head has no MAC")
        else:
            return True
        if broken is not None:
            log.error("audit journal: %s; appending without renewing it (run `oots audit verify`)", broken.reason)
            return False
        return True

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
            subject_key=self.subject_key(entry.subject) if entry.subject else None,
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
            "subject_key": fields.subject_key,
            "seal": seal(self._seal_key, previous_seal, fields),
            "seal_version": SEAL_VERSION,
        }

    def entries(self, session: Session, *, upto: int | None = None, batch: int = 1000) -> Iterator[AuditEntry]:
        """Every entry in ``seq`` order (up to entry ``upto``), read in batches."""
        last = 0
        while True:
            query = select(AuditEntry).where(AuditEntry.seq > last).order_by(AuditEntry.seq).limit(batch)
            if upto is not None:
                query = query.where(AuditEntry.seq <= upto)
            rows = session.execute(query).scalars()
            got = list(rows)
            if not got:
                return
            yield from got
            last = got[-1].seq

    def verify(self, session: Session) -> VerifyReport:
        """Check the whole chain from its anchor to its head, and the head's MAC.

        On a live node give it a session of :meth:`~oots.store.database.Database.snapshot`: in a plain
        transaction on PostgreSQL each batch of entries is read as of its own statement, so entries
        appended after the head was read look like a chain that runs past its head, and a purge
        committed meanwhile like missing entries. In one snapshot an entry past the head is a forgery.
        """
        head = _head(session.execute(_HEAD.execution_options(populate_existing=True)).scalar_one())
        return self._verify(session, head)

    def _verify(self, session: Session, head: Head, *, upto: int | None = None) -> VerifyReport:
        """Check the chain from the anchor (to entry ``upto``: no head comparison then) and the head's MAC."""
        count = 0
        newest_version = 0

        def pairs() -> Iterator[tuple[EntryFields, str]]:
            nonlocal count, newest_version
            for row in self.entries(session, upto=upto):
                count += 1
                newest_version = max(newest_version, row.seal_version)
                yield _fields(row), row.seal

        breaks = verify_chain(
            self._seal_key,
            pairs(),
            anchor_seq=head.anchor_seq,
            anchor_seal=head.anchor_seal,
            head=(head.seq, head.seal) if upto is None else None,
        )
        head_break = verify_head(self._seal_key, head)
        if head_break is not None:
            breaks.append(head_break)
        elif head.mac is None and newest_version >= 2:
            reason = (
                f"the journal's head has no MAC, yet entries sealed by version {newest_version} exist: it was rewritten"
            )
            breaks.append(ChainBreak(head.seq, reason))
        return VerifyReport(count, head.anchor_seq, head.seq, tuple(breaks), head_keyed=head.mac is not None)

    def purge(self, session: Session, *, older_than: dt.datetime) -> int:
        """Delete the oldest entries recorded before ``older_than``; the chain stays verifiable.

        Only a prefix of the chain is removed (up to the last entry older than the cut-off that has
        no younger entry before it); the last removed entry's seal becomes the new anchor. The entries
        to remove and the head's MAC are verified first (the whole chain when the head is not keyed
        yet): a journal that does not verify is refused with :class:`SecurityError`, nothing removed,
        so a purge never erases the evidence of a change.
        """
        row = session.execute(_HEAD.with_for_update().execution_options(populate_existing=True)).scalar_one()
        head = _head(row)
        first_young = session.execute(
            select(func.min(AuditEntry.seq)).where(AuditEntry.recorded_at >= older_than)
        ).scalar_one_or_none()
        limit = (first_young - 1) if first_young is not None else head.seq
        if limit <= head.anchor_seq:
            return 0
        report = self._verify(session, head, upto=limit if head.mac is not None else None)
        if not report.ok:
            first = report.breaks[0]
            raise SecurityError(
                f"the audit journal does not verify (entry {first.seq}: {first.reason}"
                + (f"; {len(report.breaks) - 1} more" if len(report.breaks) > 1 else "")
                + "): nothing was purged, as purging would erase the evidence; see `oots audit verify`"
            )
        anchor = session.execute(select(AuditEntry).where(AuditEntry.seq == limit)).scalar_one_or_none()
        if anchor is None:
            raise SecurityError(f"entry {limit} of the audit journal is missing: nothing was purged")
        result = session.execute(delete(AuditEntry).where(AuditEntry.seq <= limit))
        row.anchor_seq, row.anchor_seal = anchor.seq, anchor.seal
        row.mac = self._head_mac(row.seq, row.seal, anchor.seq, anchor.seal)
        row.note = f"purged up to entry {limit} ({older_than.isoformat()})"
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
        offset: int = 0,
    ) -> list[AuditEntry]:
        """Entries newest first, ``limit`` of them after skipping ``offset``; every filter is applied by the
        database before the limit, so an old entry is found however many came after it."""
        query = select(AuditEntry).order_by(AuditEntry.seq.desc())
        if exchange_id:
            query = query.where(AuditEntry.exchange_id == exchange_id)
        if conversation_id:
            query = query.where(AuditEntry.conversation_id == conversation_id)
        if subject:
            query = query.where(AuditEntry.subject_key == self.subject_key(subject))
        if event:
            query = query.where(AuditEntry.event == event)
        if message_id:
            # the id as a JSON string within the stored list: the same text on SQLite and PostgreSQL for
            # ids in printable ASCII without quotes or backslashes (AS4 message ids are such)
            if not message_id.isascii() or not message_id.isprintable() or '"' in message_id or "\\" in message_id:
                return []
            query = query.where(cast(AuditEntry.message_ids, String).contains(f'"{message_id}"', autoescape=True))
        return list(session.execute(query.limit(limit).offset(offset)).scalars())

    def derive_key(self, label: str) -> bytes:
        """A 32-byte key for another use of the node, derived from the seal key (HKDF-SHA256 with
        ``oots:<label>`` as its info): every process of the node has it without another secret to set,
        it differs per label, and it gives away nothing of the seal key."""
        info = b"oots:" + label.encode()
        return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(self._seal_key)

    def head(self, session: Session) -> Head:
        """The journal's head record as stored (where the chain ends and starts, and its MAC)."""
        return _head(session.execute(_HEAD.execution_options(populate_existing=True)).scalar_one())

    def seal_of(self, session: Session, seq: int) -> str | None:
        """The stored seal of entry ``seq`` (``None`` when there is no such entry)."""
        return session.execute(select(AuditEntry.seal).where(AuditEntry.seq == seq)).scalar_one_or_none()

    def export(self, rows: Sequence[AuditEntry]) -> list[dict[str, Any]]:
        """Entries as JSON-able dicts with their personal data decrypted (for an authority's request).

        An entry whose personal data cannot be decrypted is exported with ``personal`` null and
        ``personal_error`` saying why, so one bad entry does not hide the others.
        """
        out = []
        for row in sorted(rows, key=lambda r: r.seq):
            personal = None
            problem = None
            if row.personal is not None:
                try:
                    personal = decrypt_personal(
                        self._data_key, row.personal, associated=f"{row.node}:{row.seq}".encode()
                    )
                except SecurityError:
                    problem = (
                        f"the personal data of entry {row.seq} cannot be decrypted: it was changed or moved from "
                        "another entry, or audit.data_key is not the key it was written with "
                        "(see `oots audit verify`)"
                    )
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
                    **({"personal_error": problem} if problem else {}),
                    "seal": row.seal,
                }
            )
        return out


def _key(value: str, what: str) -> bytes:
    try:
        key = bytes.fromhex(value.strip())
    except ValueError:
        key = b""
    if len(key) != 32:
        reason = "must be 32 bytes written as 64 hexadecimal characters"
        raise ConfigError(f"audit.{what} {reason}", [(f"audit.{what}", reason)])
    return key


def check_keys(settings: Settings) -> None:
    """Refuse the keys given in ``[audit]`` that :func:`load_journal` would refuse (every one at once)."""
    problems: list[tuple[str, str]] = []
    for what in ("seal_key", "data_key"):
        given = getattr(settings.audit, what)
        if given is None:
            continue
        try:
            _key(given.get_secret_value(), what)
        except ConfigError as exc:
            problems.extend(exc.problems)
    if problems:
        raise ConfigError("; ".join(f"{p} {r}" for p, r in problems), problems)


def _generated_keys(path: Path) -> dict[str, str]:
    fresh = json.dumps({"seal_key": secrets.token_hex(32), "data_key": secrets.token_hex(32)})
    try:
        data = json.loads(write_once(path, fresh))
    except ValueError:
        data = None
    if isinstance(data, dict):
        return {str(k): str(v) for k, v in data.items()}
    raise ConfigError(f"{path} is not a key file of the audit journal")


def _existing_keys(path: Path) -> dict[str, str]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"the audit journal has no keys: [audit] seal_key and data_key are not both set and {path} does not "
            "exist (is node.data_dir the node's?)"
        ) from None
    except OSError as exc:
        raise ConfigError(f"cannot read the audit keys in {path}: {exc.strerror}") from None
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, dict) and {"seal_key", "data_key"} <= data.keys():
        return {str(k): str(v) for k, v in data.items()}
    raise ConfigError(f"{path} is not a key file of the audit journal")


def load_journal(
    settings: Settings, *, clock: Callable[[], dt.datetime] = _utcnow, generate_keys: bool = True
) -> Journal:
    """The node's journal; keys from ``[audit]``, or generated once into ``<data_dir>/audit.keys``.

    With ``generate_keys=False`` (commands that only read or maintain a journal) a missing key file is
    a :class:`ConfigError`: keys made now could verify or decrypt nothing written before.
    """
    audit = settings.audit
    generated: dict[str, str] = {}
    if audit.seal_key is None or audit.data_key is None:
        path = settings.node.data_dir / "audit.keys"
        generated = _generated_keys(path) if generate_keys else _existing_keys(path)
    seal_key = audit.seal_key.get_secret_value() if audit.seal_key else generated["seal_key"]
    data_key = audit.data_key.get_secret_value() if audit.data_key else generated["data_key"]
    return Journal(settings.node.name, _key(seal_key, "seal_key"), _key(data_key, "data_key"), clock=clock)
