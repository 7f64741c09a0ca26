"""Wake-ups after commits: fired when the transaction commits, never on rollback, keyed for readers."""

from __future__ import annotations

import asyncio
import threading

import pytest
from sqlalchemy import text

from oots.store import Database
from oots.store import queue as q
from oots.store.wake import listen, on_commit, topic, wait_for


def test_a_topic_fires_when_the_transaction_commits_and_not_before(db: Database) -> None:
    wake = topic("test.commit")
    before = wake.generation
    with db.session() as session:
        on_commit(session, "test.commit")
        on_commit(session, "test.commit")  # once per transaction is enough
        session.execute(text("SELECT 1"))
        assert wake.generation == before
    assert wake.generation == before + 1
    assert wake.wait(before, 0.0)  # a waiter that looked before the commit does not sleep


def test_a_savepoint_released_wakes_nobody_until_the_transaction_commits(db: Database) -> None:
    # (an AS4 delivery runs its hook in a savepoint: a reader woken at its release would find nothing yet)
    wake = topic("test.savepoint")
    before = wake.generation
    with db.session() as session:
        session.execute(text("SELECT 1"))
        with session.begin_nested():
            on_commit(session, "test.savepoint")
        assert wake.generation == before
    assert wake.generation == before + 1


def test_a_rolled_back_transaction_wakes_nobody(db: Database) -> None:
    wake = topic("test.rollback")
    before = wake.generation

    def change_and_fail() -> None:
        with db.session() as session:
            on_commit(session, "test.rollback")
            raise RuntimeError("changed my mind")

    with pytest.raises(RuntimeError):
        change_and_fail()
    assert wake.generation == before
    assert not wake.wait(before, 0.01)
    with db.session() as session:  # a later transaction of another session starts clean
        session.execute(text("SELECT 1"))
    assert wake.generation == before


def test_enqueue_wakes_the_queue_topic(db: Database) -> None:
    wake = topic(q.WAKE_TOPIC)
    before = wake.generation
    with db.session() as session:
        q.enqueue(session, "test.kind", {"n": 1})
    assert wake.generation > before


def test_a_waiting_thread_is_woken_by_a_commit_in_another_thread(db: Database) -> None:
    wake = topic("test.thread")
    seen = wake.generation
    woken: list[bool] = []
    waiter = threading.Thread(target=lambda: woken.append(wake.wait(seen, 60.0)))
    waiter.start()
    with db.session() as session:
        on_commit(session, "test.thread")
    waiter.join(60)
    assert woken == [True]


def test_a_keyed_watch_sees_its_key_only(db: Database) -> None:
    wake = topic("test.keyed")

    async def scenario() -> tuple[bool, bool]:
        with wake.watch("mine") as mine, wake.watch("other") as other:
            await asyncio.to_thread(_commit, db, "test.keyed", "mine")
            return await wait_for(mine, 60.0), await wait_for(other, 0.01)

    assert asyncio.run(scenario()) == (True, False)
    assert "mine" not in wake._waiters  # watches are removed when they end


def test_a_watch_keyed_from_another_thread_is_woken_by_the_commits_after_that(db: Database) -> None:
    # (a step of the portal API commits in a worker thread, then watches the exchange there and peeks at it)
    wake = topic("test.later")

    async def scenario() -> tuple[bool, bool]:
        with wake.watching() as watch:

            def commit_then_watch_then_commit() -> None:
                _commit(db, "test.later", "ex")  # before the watch: not seen (the peek after the watch is)
                watch.key("ex")
                _commit(db, "test.later", "ex")

            await asyncio.to_thread(_commit, db, "test.later", "ex")
            early = watch.flag.is_set()
            await asyncio.to_thread(commit_then_watch_then_commit)
            return early, await wait_for(watch.flag, 60.0)

    assert asyncio.run(scenario()) == (False, True)
    assert "ex" not in wake._waiters  # the watch is removed when it ends


def _commit(db: Database, name: str, key: str) -> None:
    with db.session() as session:
        on_commit(session, name, key)


def test_listen_is_for_postgresql_only(db: Database) -> None:
    assert listen(db) is (not db.is_sqlite)


@pytest.mark.postgres
def test_postgresql_notifications_of_other_processes_are_relayed(db: Database) -> None:
    if db.is_sqlite:
        pytest.skip("SQLite has no notifications")
    wake = topic("test.relay")
    seen = wake.generation
    assert listen(db)
    for _ in range(600):  # until the listener's LISTEN is in place
        with db.session() as session:  # what another process's commit sends
            session.execute(text("SELECT pg_notify('oots_wake', 'test.relay|k')"))
        if wake.wait(seen, 0.1):
            break
    assert wake.generation > seen
