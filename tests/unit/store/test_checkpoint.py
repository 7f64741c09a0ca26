"""The SQLite write-ahead log is checkpointed by a thread of the process, not by the writers' commits."""

from __future__ import annotations

import logging
import shutil
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from oots.store import Database
from oots.store.checkpoint import BACKSTOP_PAGES, Checkpointer


def _until(condition: Callable[[], bool], seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def _checkpoint_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "oots-sqlite-checkpoint"]


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'node.db'}")
    with database.session(immediate=True) as session:
        session.execute(text("CREATE TABLE notes (n INTEGER PRIMARY KEY, body TEXT)"))
    yield database
    database.dispose()


def _write(db: Database, n: int) -> None:
    with db.session(immediate=True) as session:
        session.execute(text("INSERT INTO notes (n, body) VALUES (:n, :body)"), {"n": n, "body": "x" * 2000})


def _rows_in_the_main_file(db: Database, tmp_path: Path) -> int:
    """The rows a copy of the database file alone holds (without its log): what checkpoints put there
    (-1 for a copy taken while a checkpoint was writing the file: torn, it is read again)."""
    copy = tmp_path / "copy.db"
    shutil.copyfile(db.url.database or "", copy)
    conn = sqlite3.connect(copy)
    try:
        return int(conn.execute("SELECT count(*) FROM notes").fetchone()[0])
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):  # the table itself is still only in the log
            return 0
        return -1
    except sqlite3.DatabaseError:  # "database disk image is malformed": a torn copy
        return -1
    finally:
        conn.close()


def test_the_commits_leave_the_checkpoint_to_the_thread(db: Database, tmp_path: Path) -> None:
    with db.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == BACKSTOP_PAGES
    for n in range(20):
        _write(db, n)
    assert db._checkpointer is not None
    # the thread copies the log into the file soon after the writes (no commit reached 10,000 pages)
    assert _until(lambda: _rows_in_the_main_file(db, tmp_path) == 20)
    assert db._checkpointer.checkpoints >= 1


def test_an_idle_database_keeps_no_thread_and_the_next_write_starts_one(tmp_path: Path) -> None:
    path = tmp_path / "idle.db"
    sqlite3.connect(path).execute("PRAGMA journal_mode = WAL").fetchall()
    checkpointer = Checkpointer(str(path), pause=0.01, idle=0.1)
    try:
        checkpointer.written()
        assert _until(lambda: checkpointer.checkpoints == 1)
        assert _until(lambda: checkpointer._thread is None)  # ended after 0.1 s without writes
        checkpointer.written()
        assert _until(lambda: checkpointer.checkpoints == 2)
    finally:
        checkpointer.close()
    assert checkpointer._thread is None or not checkpointer._thread.is_alive()


def test_dispose_stops_the_thread(tmp_path: Path) -> None:
    before = len(_checkpoint_threads())
    database = Database(f"sqlite:///{tmp_path / 'node.db'}")
    with database.session(immediate=True) as session:
        session.execute(text("CREATE TABLE notes (n INTEGER PRIMARY KEY, body TEXT)"))
    assert _until(lambda: len(_checkpoint_threads()) == before + 1)
    database.dispose()
    assert len(_checkpoint_threads()) == before
    _write(database, 1)  # a database used after dispose still writes (its commits checkpoint)
    assert len(_checkpoint_threads()) == before
    database.dispose()


def test_a_checkpoint_that_fails_is_said_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "not-a-database.db"
    path.write_bytes(b"this is not a SQLite file" * 100)
    checkpointer = Checkpointer(str(path), pause=0.01)
    try:
        with caplog.at_level(logging.WARNING, logger="oots.store.checkpoint"):
            checkpointer.written()
            assert _until(lambda: checkpointer.checkpoints == 1)
            checkpointer.written()
            assert _until(lambda: checkpointer.checkpoints == 2)
    finally:
        checkpointer.close()
    said = [r.getMessage() for r in caplog.records]
    assert len(said) == 1
    assert "checkpointing the write-ahead log of" in said[0]
    assert "commits will" in said[0]


def test_in_memory_databases_have_no_checkpointer() -> None:
    database = Database("sqlite:///:memory:")
    try:
        assert database._checkpointer is None
    finally:
        database.dispose()
