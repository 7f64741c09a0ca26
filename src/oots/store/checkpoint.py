"""SQLite write-ahead log checkpoints in a thread of their own, not in the writers' commits.

In WAL mode a commit appends the pages it changed to the ``-wal`` file; a checkpoint copies them back
into the database file and syncs it to disk. By default the commit that takes the log past 1,000 pages
runs that checkpoint itself, while it still holds the write lock, so every writer of the node waits
through the copy and the disk syncs. Under load on the requester node that was about a tenth of the
time the write lock was held.

Here, after a write, a thread of the process checkpoints the file (``PASSIVE``: it waits for no
writer or reader, and none waits for it), at most every :data:`PAUSE_SECONDS`. The commits' own
checkpoint is kept as a backstop for a log past :data:`BACKSTOP_PAGES` pages (the thread stopped, or
a reader holding an old snapshot kept the checkpoints from finishing). The thread ends after
:data:`IDLE_SECONDS` without writes, and starts again with the next one.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading

__all__ = ["BACKSTOP_PAGES", "IDLE_SECONDS", "PAUSE_SECONDS", "Checkpointer"]

log = logging.getLogger(__name__)

#: ``PRAGMA wal_autocheckpoint`` of every connection: the log size (pages) at which a commit checkpoints.
BACKSTOP_PAGES = 10_000
#: Shortest time between two checkpoints of the thread.
PAUSE_SECONDS = 0.5
#: How long the thread waits for a write before it ends (an idle database keeps no thread).
IDLE_SECONDS = 30.0


class Checkpointer:
    """Checkpoints one SQLite file's write-ahead log after writes (:meth:`written`), in a thread of its own."""

    def __init__(self, path: str, *, pause: float = PAUSE_SECONDS, idle: float = IDLE_SECONDS) -> None:
        self.path = path
        self.pause = pause
        self.idle = idle
        #: Checkpoints run so far (all of them complete or not), for tests and diagnostics.
        self.checkpoints = 0
        self._written = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pid = 0
        self._failing = False

    def written(self) -> None:
        """Say that a write transaction ended: the log is checkpointed soon (at once when idle)."""
        self._written.set()
        thread = self._thread
        if thread is not None and thread.is_alive() and self._pid == os.getpid():
            return
        with self._lock:
            if self._stop.is_set():
                return
            thread = self._thread
            if thread is None or not thread.is_alive() or self._pid != os.getpid():
                self._pid = os.getpid()
                self._thread = threading.Thread(target=self._run, name="oots-sqlite-checkpoint", daemon=True)
                self._thread.start()

    def close(self, timeout: float = 5.0) -> None:
        """Stop the thread (after the checkpoint in hand)."""
        with self._lock:
            self._stop.set()
            self._written.set()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread() and self._pid == os.getpid():
            thread.join(timeout)

    def _run(self) -> None:
        try:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            log.warning("cannot open %s to checkpoint its write-ahead log (%s); commits will", self.path, exc)
            return
        try:
            while self._written.wait(self.idle) and not self._stop.is_set():
                self._written.clear()
                self._checkpoint(conn)
                if self._stop.wait(self.pause):
                    break
        finally:
            conn.close()
            with self._lock:
                if self._thread is threading.current_thread():
                    self._thread = None
            # a write that came as the thread ended starts the next one
            if self._written.is_set() and not self._stop.is_set():
                self.written()

    def _checkpoint(self, conn: sqlite3.Connection) -> None:
        try:
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        except sqlite3.Error as exc:
            # left to the commits' backstop; said once, not at every pause
            if not self._failing:
                log.warning("checkpointing the write-ahead log of %s failed (%s); commits will", self.path, exc)
            self._failing = True
        else:
            self._failing = False
        self.checkpoints += 1
