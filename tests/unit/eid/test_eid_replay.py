"""Replay caches: in memory, and in the node's database (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import func, select

from oots.eid.models import UsedAssertion
from oots.eid.replay import DatabaseReplayCache, MemoryReplayCache, ReplayCache
from oots.store import Database


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest, sqlite_url: str) -> Iterator[Database]:
    url = sqlite_url if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    db = Database(url)
    db.migrate()
    yield db
    with db.session() as session:
        session.query(UsedAssertion).delete()
    db.dispose()


def check_cache(cache: ReplayCache, clock: Clock) -> None:
    assert cache.first_use("idp|id-1", clock.now + 300)
    assert not cache.first_use("idp|id-1", clock.now + 300)  # a replay
    assert cache.first_use("idp|id-2", clock.now + 300)
    clock.now += 301
    assert cache.first_use("idp|id-1", clock.now + 300)  # expired, so forgotten


def test_memory_cache() -> None:
    clock = Clock()
    check_cache(MemoryReplayCache(clock), clock)


def test_database_cache(database: Database) -> None:
    clock = Clock()
    check_cache(DatabaseReplayCache(database, clock), clock)
    with database.session() as session:
        keys = session.scalars(select(UsedAssertion.key)).all()
    assert "idp|id-1" not in keys  # only hashes are stored
    assert all(len(k) == 64 for k in keys)


def test_database_cache_is_shared_between_instances(database: Database) -> None:
    clock = Clock()
    first, second = DatabaseReplayCache(database, clock), DatabaseReplayCache(database, clock)
    assert first.first_use("idp|x", clock.now + 60)
    assert not second.first_use("idp|x", clock.now + 60)  # another process sees the first use
    clock.now += 120
    assert second.first_use("idp|y", clock.now + 60)
    with database.session() as session:
        assert session.scalar(select(func.count()).select_from(UsedAssertion)) == 1  # expired rows swept
