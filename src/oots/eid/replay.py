"""Remembering one-time values (SAML assertion ids) until they expire, so none is accepted twice."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Protocol

__all__ = ["MemoryReplayCache", "ReplayCache"]


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
