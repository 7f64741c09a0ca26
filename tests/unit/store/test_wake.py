"""Wake-ups after commits: fired when the transaction commits, never on rollback, keyed for readers."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from oots.store import Database
from oots.store import queue as q
from oots.store.wake import (
    CHANNEL,
    NOTIFY_BYTES,
    _chunks,
    listen,
    on_commit,
    topic,
    unlisten,
    wait_for,
)
from wake_threads import listeners, no_listener_left

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="abstract Unix sockets are Linux's")


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


def test_a_job_for_later_wakes_no_worker(db: Database) -> None:
    wake = topic(q.WAKE_TOPIC)
    before = wake.generation
    now = datetime.now(UTC)
    with db.session() as session:
        q.enqueue(session, "test.kind", {"n": 1}, run_at=now + timedelta(minutes=5), now=now)
        q.enqueue_many(session, "test.kind", [{"n": 2}], run_at=now + timedelta(minutes=5), now=now)
    assert wake.generation == before  # a worker woken now would claim nothing
    with db.session() as session:
        q.enqueue(session, "test.kind", {"n": 3}, run_at=now, now=now)  # due now
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


def test_a_watch_muted_for_its_own_commits_is_woken_by_the_others_only(db: Database) -> None:
    # (a step of the portal API watches its exchange before its write and knows what its own commit changed)
    wake = topic("test.muted")

    async def scenario() -> tuple[bool, bool, bool]:
        with wake.watching() as watch, wake.watch("ex") as other:

            def own_commit() -> None:
                watch.key("ex")
                with watch.own_commits():
                    _commit(db, "test.muted", "ex")

            await asyncio.to_thread(own_commit)
            await asyncio.sleep(0.05)  # a wake-up would have been delivered by now
            own, seen_by_others = watch.flag.is_set(), await wait_for(other, 60.0)
            await asyncio.to_thread(_commit, db, "test.muted", "ex")  # another commit, unmuted
            return own, seen_by_others, await wait_for(watch.flag, 60.0)

    assert asyncio.run(scenario()) == (False, True, True)


def _commit(db: Database, name: str, key: str) -> None:
    with db.session() as session:
        on_commit(session, name, key)


def test_listen_relays_on_postgresql_and_on_a_sqlite_file_not_in_memory(db: Database) -> None:
    assert listen(db)
    memory = Database("sqlite://")
    try:
        assert not listen(memory)
    finally:
        memory.dispose()


#: Another process of the node: commits topic test.neighbour with key "k", or holds the writer queue.
_NEIGHBOUR = """
import sys
from sqlalchemy import text
from oots.store import Database
from oots.store.wake import on_commit
db = Database(sys.argv[1])
if sys.argv[2] == "commit":
    with db.session() as session:
        on_commit(session, "test.neighbour", "k")
        session.execute(text("SELECT 1"))
else:
    with db.session(immediate=True) as session:
        session.execute(text("INSERT INTO ledger (job_id, worker) VALUES (1, 'neighbour')"))
        print("holding", flush=True)
        sys.stdin.readline()
db.dispose()
"""


@linux_only
@pytest.mark.parametrize("db", ["sqlite"], indirect=True)
def test_a_second_database_on_the_file_disposed_leaves_the_first_listening(db: Database) -> None:
    assert listen(db)
    marker = Path(f"{os.path.realpath(str(db.url.database))}-wake") / str(os.getpid())
    other = Database(db.url)  # say, a check that opens the node's file in the node's own process
    with other.session() as session:
        on_commit(session, "test.other")
    other.dispose()
    assert marker.exists()  # still listening for the first one
    db.dispose()
    assert not marker.exists()


@pytest.mark.parametrize("db", ["sqlite"], indirect=True)
def test_a_writer_process_killed_in_its_turn_does_not_block_the_others(db: Database) -> None:
    with _holding(db) as proc:
        proc.kill()  # SIGKILL inside its write transaction: the kernel drops its flock, SQLite rolls back
        proc.communicate(timeout=60)
        with db.session(immediate=True) as session:
            assert session.execute(text("SELECT count(*) FROM ledger")).scalar_one() == 0


@contextmanager
def _holding(db: Database) -> Iterator[subprocess.Popen[str]]:
    """Another process of the node, inside a write transaction until it is told to go on (or killed)."""
    proc = _neighbour(db, "hold")
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "holding"
        yield proc
    finally:
        proc.kill()
        proc.wait()


def _neighbour(db: Database, what: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", _NEIGHBOUR, db.url.render_as_string(), what],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )


@linux_only
@pytest.mark.parametrize("db", ["sqlite"], indirect=True)
def test_a_commit_in_another_process_on_the_sqlite_file_wakes_this_one(db: Database) -> None:
    wake = topic("test.neighbour")
    assert listen(db)

    async def scenario() -> bool:
        with wake.watch("k") as flag:
            proc = await asyncio.to_thread(_neighbour, db, "commit")
            await asyncio.to_thread(proc.communicate, "", 60)
            assert proc.returncode == 0
            return await wait_for(flag, 60.0)

    assert asyncio.run(scenario())


@linux_only
@pytest.mark.parametrize("db", ["sqlite"], indirect=True)
def test_this_process_does_not_wake_itself_twice_and_a_dead_neighbours_marker_is_removed(db: Database) -> None:
    assert listen(db)
    directory = Path(f"{os.path.realpath(str(db.url.database))}-wake")
    assert (directory / str(os.getpid())).exists()
    dead = directory / "999999999"  # a marker whose process died without removing it
    dead.touch()
    wake = topic("test.self")
    before = wake.generation
    with db.session() as session:
        on_commit(session, "test.self")
    time.sleep(0.3)  # a datagram to itself would have arrived by now
    assert wake.generation == before + 1
    assert not dead.exists()
    (directory / str(os.getpid())).unlink()  # removed by mistake (say, by a peer that could not reach us)
    for _ in range(600):  # the relay puts it back (within a second or so)
        if (directory / str(os.getpid())).exists():
            break
        time.sleep(0.05)
    assert (directory / str(os.getpid())).exists()
    db.dispose()
    assert not (directory / str(os.getpid())).exists()  # disposed: no longer listening


@pytest.mark.parametrize("db", ["sqlite"], indirect=True)
def test_sqlite_writers_of_other_processes_wait_in_the_writer_queue(db: Database) -> None:
    with _holding(db) as proc:
        with open(f"{db.url.database}-writers", "rb") as fh:
            with pytest.raises(BlockingIOError):
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            proc.communicate("go\n", timeout=60)
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)  # released with the neighbour's commit
            fcntl.flock(fh, fcntl.LOCK_UN)
        with db.session(immediate=True) as session:
            assert session.execute(text("SELECT worker FROM ledger")).scalars().all() == ["neighbour"]


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


@pytest.mark.postgres
def test_a_postgresql_transaction_notifies_its_topics_in_one_notification_at_its_commit(db: Database) -> None:
    if db.is_sqlite:
        pytest.skip("SQLite has no notifications")
    import psycopg

    url = db.url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(url, autocommit=True) as listener:
        listener.execute(f"LISTEN {CHANNEL}")
        with contextlib.suppress(RuntimeError), db.session() as session:
            on_commit(session, "test.rolled.back")
            session.execute(text("SELECT 1"))
            raise RuntimeError("rolled back")
        with db.session() as session:
            on_commit(session, "test.one")
            on_commit(session, "test.two", "k1")
            on_commit(session, "test.two", "k2")
            on_commit(session, "test.one")  # once is enough
            session.execute(text("SELECT 1"))
        notes = list(listener.notifies(timeout=2.0, stop_after=2))
    assert len(notes) == 1  # one round trip for the transaction, none for the rolled back one
    assert sorted(notes[0].payload.splitlines()) == ["test.one", "test.two|k1", "test.two|k2"]


@pytest.mark.postgres
def test_a_notification_of_several_topics_wakes_each_of_them(db: Database) -> None:
    if db.is_sqlite:
        pytest.skip("SQLite has no notifications")
    one, two = topic("test.relay.one"), topic("test.relay.two")
    seen = two.generation
    assert listen(db)
    for _ in range(600):  # until the listener's LISTEN is in place
        with db.session() as session:  # another process's commit of two topics
            session.execute(text("SELECT pg_notify('oots_wake', 'test.relay.one|k' || chr(10) || 'test.relay.two')"))
        if two.wait(seen, 0.1):
            break
    assert two.generation > seen
    assert one.generation > 0


@pytest.mark.postgres
def test_the_postgresql_listener_runs_while_a_database_uses_it_and_stops_with_the_last_use(
    postgres_database: Callable[[], str],
) -> None:
    url = postgres_database()
    first, second = Database(url), Database(url)  # say, the node's and a check's, in one process
    try:
        assert listeners(first) == []
        assert listen(first)
        assert listen(first)  # the app and the worker of one node
        assert listen(second)
        assert len(listeners(first)) == 1  # one thread for the database
        unlisten(first)
        first.dispose()  # ends the uses it had left
        assert len(listeners(first)) == 1  # the second still uses it
        unlisten(second)
        assert no_listener_left(first)  # the last use ended: the thread too
        assert listen(second)
        assert len(listeners(second)) == 1  # started again when needed
        second.dispose()
        assert no_listener_left(second)
    finally:
        first.dispose()
        second.dispose()


def test_a_long_payload_is_cut_at_line_ends_and_an_overlong_key_keeps_its_topic() -> None:
    lines = "\n".join(f"requester.exchange|{n:024d}" for n in range(1000))
    pieces = list(_chunks(lines, NOTIFY_BYTES))
    assert len(pieces) > 1
    assert all(len(p.encode()) <= NOTIFY_BYTES for p in pieces)
    assert "\n".join(pieces) == lines
    assert list(_chunks("queue\nas4.outbound|" + "x" * 9000, 100)) == ["queue\nas4.outbound"]
