"""``Idempotency-Key`` on the start of an exchange: a portal whose answer was lost sends the start again.

A start sent with ``Idempotency-Key: <key>`` is remembered per client with a digest of its body and the
answer it got, in the transaction that makes the exchange. The same key from the same client within
:data:`KEY_LIFETIME` is a *replay*: with the same body it gets that answer again (the exchange is not
made twice); with another body it is refused (:class:`KeyReused`). Keys older than that are forgotten
(their rows are dropped as new keys come). Keys of different clients never meet.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Table, bindparam, delete, insert, select

from oots.errors import ModelError
from oots.requester.models import RequesterIdempotencyKey

__all__ = ["KEY_LIFETIME", "MAX_KEY_LENGTH", "KeyReused", "Remembered", "body_digest", "check_key", "find", "remember"]

#: How long a key answers with the exchange it made.
KEY_LIFETIME = dt.timedelta(hours=24)
#: The longest key accepted (printable ASCII, as the header field's value).
MAX_KEY_LENGTH = 255

_KEYS: Table = RequesterIdempotencyKey.__table__  # type: ignore[assignment]
_k = _KEYS.c
_FIND = select(_k.body_sha256, _k.exchange_id, _k.status, _k.answer).where(
    _k.client_id == bindparam("client"), _k.key == bindparam("key"), _k.created_at > bindparam("since")
)
_FORGET = delete(_KEYS).where(_k.created_at <= bindparam("since"))
_REMEMBER = insert(_KEYS)


class KeyReused(ModelError):
    """The key came before with another body: a new start needs a new key."""


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
    """Keep the key with the start's answer (in the start's transaction), dropping keys past their day.

    A key of the client whose row is past its day is dropped first, so it may be used again."""
    conn.execute(_FORGET, {"since": now - KEY_LIFETIME})
    conn.execute(
        _REMEMBER,
        {
            "client_id": client_id,
            "key": key,
            "body_sha256": digest,
            "exchange_id": done.exchange_id,
            "status": done.status,
            "answer": done.answer,
            "created_at": now,
        },
    )
