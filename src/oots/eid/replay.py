"""Remembering one-time values (SAML assertion ids) until they expire, so none is accepted twice."""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from oots.store import Database

__all__ = ["DatabaseReplayCache", "MemoryReplayCache", "ReplayCache"]


class ReplayCache(Protocol):
    def first_use(self, value: str, expires_at: float) -> bool:
        """Record ``value``; True the first time, False if it was already recorded and not expired."""
        ...


class MemoryReplayCache:
    """A replay cache in this process's memory (one process per node; a shared store for more)."""

    def __init__(self, clock: Callable[[], float] = time.time, max_entries: int = 100_000) -> None:
        self._seen: dict[str, float] = {}
        self._lock = threading.Lock()
        self._clock = clock
        self._max = max_entries

    def first_use(self, value: str, expires_at: float) -> bool:
        now = self._clock()
        with self._lock:
            if len(self._seen) >= self._max:
                self._seen = {k: v for k, v in self._seen.items() if v > now}
            known = self._seen.get(value)
            if known is not None and known > now:
                return False
            self._seen[value] = max(expires_at, now + 1)
            return True


class DatabaseReplayCache:
    """A replay cache in the node's database, shared by every process serving the node.

    Each value is stored as a SHA-256 key with its expiry; expired rows are removed as new ones come.
    Two processes recording the same value at once: the primary key lets exactly one of them win.
    """

    def __init__(self, database: Database, clock: Callable[[], float] = time.time) -> None:
        self._db = database
        self._clock = clock

    def first_use(self, value: str, expires_at: float) -> bool:
        from sqlalchemy import delete
        from sqlalchemy.exc import IntegrityError

        from oots.eid.models import UsedAssertion

        now = self._clock()
        key = hashlib.sha256(value.encode("utf-8")).hexdigest()
        stamp = dt.datetime.fromtimestamp(now, dt.UTC)
        try:
            with self._db.session() as session:
                session.execute(delete(UsedAssertion).where(UsedAssertion.expires_at <= stamp))
                session.add(
                    UsedAssertion(key=key, expires_at=dt.datetime.fromtimestamp(max(expires_at, now + 1), dt.UTC))
                )
        except IntegrityError:
            return False
        return True
