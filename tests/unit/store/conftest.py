"""Fixtures of the store tests: a migrated database on each backend, a pinned clock."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from oots.store import Database

#: Tables the tests create beside the real schema (a handler's "business" effects).
LEDGER_DDL = "CREATE TABLE ledger (job_id BIGINT NOT NULL, worker VARCHAR(200) NOT NULL, note VARCHAR(200))"


class Clock:
    """Pinned time that tests move by hand."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(scope="session")
def _postgres_db(postgres_url: str) -> Iterator[Database]:
    db = Database(postgres_url)
    db.migrate()
    with db.connect() as conn:
        conn.execute(text(LEDGER_DDL))
    yield db
    db.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db(request: pytest.FixtureRequest, sqlite_url: str) -> Iterator[Database]:
    """A migrated database with an empty queue and an empty ``ledger`` table, on SQLite and PostgreSQL."""
    if request.param == "sqlite":
        database = Database(sqlite_url)
        database.migrate()
        with database.connect() as conn:
            conn.execute(text(LEDGER_DDL))
        yield database
        database.dispose()
        return
    database = request.getfixturevalue("_postgres_db")
    with database.connect() as conn:
        conn.execute(text("TRUNCATE queue_jobs, ledger RESTART IDENTITY"))
    yield database
