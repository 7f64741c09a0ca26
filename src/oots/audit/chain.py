"""The audit journal's hash chain, without I/O.

Each entry is sealed with ``HMAC-SHA256(seal_key, previous_seal || canonical(entry))``. Editing an
entry breaks its own seal; deleting or reordering entries breaks the link of the next one; truncating
the tail is caught by comparing with the head record kept beside the journal, and deleting the first
entries by the anchor it records. The head record is keyed too (:func:`head_mac`), so moving its end
or its anchor needs the seal key. Personal data never enters the chain in clear: only the SHA-256
digest of its ciphertext does (computed from the ciphertext when verifying), so a purge that removes
whole entries behind an anchor keeps the chain verifiable.

Seal versions: version 1 (oots before the keyed head) covers the fields of :class:`EntryFields` but
not ``subject_key``; version 2 covers ``subject_key`` and its own version number as well. An entry
keeps the version it was sealed with; new entries are sealed with :data:`SEAL_VERSION`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

__all__ = [
    "GENESIS",
    "SEAL_VERSION",
    "ChainBreak",
    "EntryFields",
    "Head",
    "canonical",
    "head_mac",
    "seal",
    "verify_chain",
    "verify_head",
]

#: The seal before the first entry (and the anchor of an empty journal).
GENESIS = "0" * 64

#: The seal version new entries get (see the module's docstring); verification knows every earlier one.
SEAL_VERSION = 2
SEAL_VERSIONS = frozenset({1, 2})


@dataclass(frozen=True)
class EntryFields:
    """What the chain covers of one entry (everything but the seal itself)."""

    seq: int
    recorded_at: datetime
    node: str
    side: str
    event: str
    exchange_id: str | None = None
    conversation_id: str | None = None
    message_ids: tuple[str, ...] = ()
    outcome: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)
    personal_digest: str | None = None
    #: The keyed hash of the person's identifier (sealed from version 2 on).
    subject_key: str | None = None
    version: int = SEAL_VERSION


def canonical(entry: EntryFields) -> bytes:
    """A stable byte form of ``entry`` (sorted-key JSON, UTC ISO timestamps), as its seal version has it."""
    if entry.version not in SEAL_VERSIONS:
        raise ValueError(f"unknown seal version {entry.version}")
    doc: dict[str, Any] = {
        "seq": entry.seq,
        "recorded_at": entry.recorded_at.isoformat(),
        "node": entry.node,
        "side": entry.side,
        "event": entry.event,
        "exchange_id": entry.exchange_id,
        "conversation_id": entry.conversation_id,
        "message_ids": list(entry.message_ids),
        "outcome": entry.outcome,
        "details": dict(entry.details),
        "personal_digest": entry.personal_digest,
    }
    if entry.version >= 2:
        doc |= {"seal_version": entry.version, "subject_key": entry.subject_key}
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def seal(key: bytes, previous: str, entry: EntryFields) -> str:
    """The seal of ``entry`` following the seal ``previous``."""
    mac = hmac.new(key, previous.encode("ascii"), hashlib.sha256)
    mac.update(b"\n")
    mac.update(canonical(entry))
    return mac.hexdigest()


@dataclass(frozen=True)
class ChainBreak:
    """Where and how the chain does not hold."""

    seq: int
    reason: str


def verify_chain(
    key: bytes,
    entries: Iterable[tuple[EntryFields, str]],
    *,
    anchor_seq: int = 0,
    anchor_seal: str = GENESIS,
    head: tuple[int, str] | None = None,
) -> list[ChainBreak]:
    """Check ``entries`` (fields and stored seal, in ``seq`` order) from an anchor; return every break.

    ``head`` is the (seq, seal) the journal recorded as its last entry; a shorter chain means the tail
    was cut off.
    """
    breaks: list[ChainBreak] = []
    expected_seq = anchor_seq + 1
    previous = anchor_seal
    last_seq, last_seal = anchor_seq, anchor_seal
    for fields, stored in entries:
        if fields.seq != expected_seq:
            what = "missing" if fields.seq > expected_seq else "out of order or repeated"
            breaks.append(ChainBreak(fields.seq, f"expected entry {expected_seq}, found {fields.seq} ({what})"))
        if fields.version not in SEAL_VERSIONS:
            breaks.append(ChainBreak(fields.seq, f"unknown seal version {fields.version}: the entry was changed"))
        elif not hmac.compare_digest(seal(key, previous, fields), stored):
            breaks.append(ChainBreak(fields.seq, "seal does not match: the entry or its predecessor was changed"))
        previous = stored
        expected_seq = fields.seq + 1
        last_seq, last_seal = fields.seq, stored
    if head is not None:
        head_seq, head_seal = head
        if head_seq != last_seq or not hmac.compare_digest(head_seal, last_seal):
            breaks.append(
                ChainBreak(head_seq, f"the journal's head is entry {head_seq} but the chain ends at {last_seq}")
            )
    return breaks


@dataclass(frozen=True)
class Head:
    """The journal's head record: where the chain ends (``seq``, ``seal``) and starts (the anchor).

    ``mac`` keys the four together (:func:`head_mac`); ``None`` for a head last moved by an oots
    before the keyed head, which the next append keys.
    """

    seq: int
    seal: str
    anchor_seq: int
    anchor_seal: str
    mac: str | None = None


def head_mac(key: bytes, seq: int, seal: str, anchor_seq: int, anchor_seal: str) -> str:
    """The MAC of a head record: rewriting where the chain ends or starts needs the seal key."""
    message = f"audit-head\n{seq}\n{seal}\n{anchor_seq}\n{anchor_seal}".encode("ascii")
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def verify_head(key: bytes, head: Head) -> ChainBreak | None:
    """A break when the head's MAC does not match its fields (``None`` also for an unkeyed head)."""
    if head.mac is None:
        return None
    if hmac.compare_digest(head_mac(key, head.seq, head.seal, head.anchor_seq, head.anchor_seal), head.mac):
        return None
    return ChainBreak(
        head.seq,
        f"the journal's head (entries {head.anchor_seq + 1}..{head.seq}) does not match its MAC: "
        "where the chain ends or starts was rewritten without the seal key",
    )
