"""The wake-up listener's threads, as tests of the store and of the node count them."""

from __future__ import annotations

import threading

from oots.store import Database
from oots.store.wake import LISTENER_THREAD


def listeners(db: Database) -> list[threading.Thread]:
    """The threads relaying ``db``'s notifications in this process (a stopped one may still be ending)."""
    return [t for t in threading.enumerate() if t.name == f"{LISTENER_THREAD} {db.safe_url}"]


def no_listener_left(db: Database) -> bool:
    """Whether every thread that relayed ``db``'s notifications ends (a stopped one within
    ``LISTENER_STOP_SECONDS``; waited for here much longer, so that a slow machine does not fail it)."""
    for thread in listeners(db):
        thread.join(10.0)
    return listeners(db) == []
