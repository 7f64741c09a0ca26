"""``Idempotency-Key`` on the start of an exchange: a portal whose answer was lost sends the start again.

A start sent with ``Idempotency-Key: <key>`` is remembered per client with a digest of its body and the
answer it got, in the transaction that makes the exchange. The same key from the same client within
:data:`KEY_LIFETIME` is a *replay*: with the same body it gets that answer again (the exchange is not
made twice); with another body it is refused (:class:`KeyReused`). Keys older than that are forgotten:
:func:`find` ignores them and :func:`remember` writes over one that comes again; their rows are dropped
by :func:`forget`, which the requester role's periodic work runs every :data:`SWEEP_INTERVAL` in each
worker, as housekeeping only (no start writes more than its own key). Keys of different clients never meet.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Table, bindparam, delete, select
from sqlalchemy.dialects import postgresql, sqlite

from oots.errors import ModelError
from oots.requester.models import RequesterIdempotencyKey

__all__ = [
    "KEY_LIFETIME",
    "MAX_KEY_LENGTH",
    "SWEEP_INTERVAL",
    "KeyInUse",
    "KeyReused",
    "Remembered",
    "body_digest",
    "check_key",
    "find",
    "forget",
    "remember",
]

#: How long a key answers with the exchange it made.
KEY_LIFETIME = dt.timedelta(hours=24)
#: How often a worker drops the rows of keys past their day.
SWEEP_INTERVAL = dt.timedelta(minutes=1)
#: The longest key accepted (printable ASCII, as the header field's value).
MAX_KEY_LENGTH = 255

_KEYS: Table = RequesterIdempotencyKey.__table__  # type: ignore[assignment]
_k = _KEYS.c
_FIND = select(_k.body_sha256, _k.exchange_id, _k.status, _k.answer).where(
    _k.client_id == bindparam("client"), _k.key == bindparam("key"), _k.created_at > bindparam("since")
)
_FORGET = delete(_KEYS).where(_k.created_at <= bindparam("since"))
_KEPT = ("body_sha256", "exchange_id", "status", "answer", "created_at")
# A key's row past its day is written over (its sweep may not have come yet); a row within its day is
# left, and nothing is returned: another start with the key committed first.
_REMEMBER = {
    name: dialect.insert(_KEYS)
    .on_conflict_do_update(
        index_elements=["client_id", "key"],
        set_={column: getattr(dialect.insert(_KEYS).excluded, column) for column in _KEPT},
        where=_k.created_at <= bindparam("since"),
    )
    .returning(_k.client_id)
    for name, dialect in (("postgresql", postgresql), ("sqlite", sqlite))
}


class KeyReused(ModelError):
    """The key came before with another body: a new start needs a new key."""


class KeyInUse(ModelError):
    """Another start with the key committed first (two at once): the start is the other's replay."""


@dataclass(frozen=True)
class Remembered:
    """What a start sent with the key got: its exchange and its answer."""

    exchange_id: str
    status: int
    answer: dict[str, Any]


def check_key(key: str) -> str:
    """The key as sent; ModelError when it is empty, too long or not printable ASCII."""
    if not 0 < len(key) <= MAX_KEY_LENGTH or not all(" " <= c <= "~" for c in key):
        raise ModelError(f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} printable ASCII characters")
    return key


def body_digest(body: Any) -> str:
    """SHA-256 (hex) of a start's body in canonical JSON (key order and spacing do not count)."""
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def find(conn: Connection, client_id: str, key: str, digest: str, now: dt.datetime) -> Remembered | None:
    """The start remembered under ``key`` for the client (None: a new key); KeyReused for another body."""
    row = conn.execute(_FIND, {"client": client_id, "key": key, "since": now - KEY_LIFETIME}).first()
    if row is None:
        return None
    if row.body_sha256 != digest:
        raise KeyReused(
            "this Idempotency-Key was used in the last 24 hours for a start with another body; "
            "send a new key for a new exchange, or the same body to get the first answer again"
        )
    return Remembered(str(row.exchange_id), int(row.status), dict(row.answer))


def remember(conn: Connection, client_id: str, key: str, digest: str, *, now: dt.datetime, done: Remembered) -> None:
    """Keep the key with the start's answer (in the start's transaction).

    A row of the key that is past its day is written over, so the key may be used again whether or
    not it was dropped yet; KeyInUse when the key's row is within its day (another start with it
    committed since :func:`find` looked: PostgreSQL, two starts at once)."""
    stmt = _REMEMBER["postgresql" if conn.dialect.name == "postgresql" else "sqlite"]
    params = {
        "client_id": client_id,
        "key": key,
        "body_sha256": digest,
        "exchange_id": done.exchange_id,
        "status": done.status,
        "answer": done.answer,
        "created_at": now,
        "since": now - KEY_LIFETIME,
    }
    if conn.execute(stmt, params).first() is None:
        raise KeyInUse("another start with this Idempotency-Key was made at the same moment")


def forget(conn: Connection, now: dt.datetime) -> int:
    """Drop the rows of every key past its day (of every client); how many."""
    return int(conn.execute(_FORGET, {"since": now - KEY_LIFETIME}).rowcount)
