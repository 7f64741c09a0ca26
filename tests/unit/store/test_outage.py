"""A database that cannot be reached for a while: the worker and the loops wait it out and go on.

The outage is real: the SQLite file's directory is moved away and the engine's pool emptied, so that
every new connection fails to open the file ("unable to open database file"), until it is put back.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from oots.errors import OotsError, StoreUnavailable
from oots.settings import QueueSettings
from oots.store import Database
from oots.store import queue as q
from oots.store.database import unreachable
from oots.store.loops import Loops
from oots.store.queue import Job, Worker

from .conftest import LEDGER_DDL

WAIT = 20.0  # generous bound for threads to reach a point; never a timing assertion
#: How long the outage lasts before the database comes back.
OUTAGE_SECONDS = 2.5


class Outage:
    """The SQLite database under ``home``, made unreachable and reachable again."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.away = home.with_name(home.name + "-away")
        self.db = Database(f"sqlite:///{(home / 'oots.db').as_posix()}")

    def begin(self) -> None:
        self.home.rename(self.away)
        self.db.engine.dispose()  # the pooled connections go: the next one must open the file

    def end(self) -> None:
        self.away.rename(self.home)


@pytest.fixture
def outage(tmp_path: Path) -> Iterator[Outage]:
    home = tmp_path / "data"
    home.mkdir()
    found = Outage(home)
    found.db.migrate()
    with found.db.connect() as conn:
        conn.execute(text(LEDGER_DDL))
    yield found
    if found.away.exists():
        found.end()
    found.db.dispose()


def unreachable_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if "database unreachable" in r.getMessage()]


def wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what}")
        time.sleep(0.02)


def ledger_rows(db: Database) -> int:
    with db.session() as session:
        return session.scalar(select(func.count()).select_from(text("ledger"))) or 0


def test_an_unopenable_database_counts_as_unreachable(outage: Outage) -> None:
    outage.begin()
    with pytest.raises(StoreUnavailable, match="cannot open the database") as opening, outage.db.connect():
        pass
    assert unreachable(opening.value)
    with pytest.raises(Exception) as in_session, outage.db.session() as session:
        session.execute(text("SELECT 1"))
    assert unreachable(in_session.value)
    assert not unreachable(ValueError("not the database"))


def test_the_worker_waits_out_an_unreachable_database_and_then_works_again(
    outage: Outage, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="oots.store.database")

    def ledger(session: Session, job: Job) -> None:
        session.execute(text("INSERT INTO ledger (job_id, worker) VALUES (:j, 'w')"), {"j": job.id})

    worker = Worker(outage.db, QueueSettings(poll_interval_seconds=0.05), handlers={"ledger": ledger})
    thread = threading.Thread(target=worker.run_forever, kwargs={"install_signal_handlers": False}, daemon=True)
    thread.start()
    try:
        outage.begin()
        wait_until(lambda: bool(unreachable_lines(caplog)) or not thread.is_alive(), "the worker to meet the outage")
        time.sleep(OUTAGE_SECONDS)
        assert thread.is_alive(), "the worker died of the outage"
        tries = len(unreachable_lines(caplog))
        # It waited longer each time (0.5 s, 1 s, 2 s ...), instead of trying every poll (50 ms).
        assert tries <= 4, f"{tries} tries in {OUTAGE_SECONDS} s: not backing off"
        first = unreachable_lines(caplog)[0]
        assert first.levelno == logging.WARNING
        assert "retrying in 0.5 s" in first.getMessage()
        outage.end()
        with outage.db.session() as session:
            q.enqueue(session, "ledger", {})
        wait_until(lambda: ledger_rows(outage.db) == 1, "the worker to run a job once the database is back")
        # logged once the worker's round has ended, which may be just after the job's commit is seen here
        wait_until(
            lambda: any("database reachable again" in r.getMessage() for r in caplog.records),
            "the worker to say the database is back",
        )
    finally:
        worker.stop()
        thread.join(WAIT)
    assert not thread.is_alive()


def test_a_loop_outlives_an_unreachable_database_whatever_errors_it_names(
    outage: Outage, caplog: pytest.LogCaptureFixture
) -> None:
    """Domibus mode's sweep names only ``OotsError``: a driver's error from a session used to end it."""
    caplog.set_level(logging.DEBUG, logger="oots.store.database")
    ticks: list[bool] = []

    def tick() -> int:
        try:
            with outage.db.session() as session:  # a session's errors come from the driver, unwrapped
                session.execute(text("SELECT count(*) FROM queue_jobs"))
        except Exception:
            ticks.append(False)
            raise
        ticks.append(True)
        return 0

    loops = Loops()
    loops.every("probe", tick, poll_seconds=0.01, errors=(OotsError,))
    loops.start()
    try:
        wait_until(lambda: bool(ticks), "a first tick")
        outage.begin()
        wait_until(lambda: False in ticks, "a tick to fail")
        time.sleep(OUTAGE_SECONDS)
        assert any(t.name == "probe" and t.is_alive() for t in threading.enumerate()), "the loop died of the outage"
        failed = ticks.count(False)
        assert failed <= 4, f"{failed} failed ticks in {OUTAGE_SECONDS} s: not backing off"
        outage.end()
        wait_until(lambda: ticks[-1], "a tick to succeed once the database is back")
        assert unreachable_lines(caplog)[0].getMessage().startswith("probe loop: database unreachable")
    finally:
        loops.stop(WAIT)
    assert not any(t.name == "probe" and t.is_alive() for t in threading.enumerate())
