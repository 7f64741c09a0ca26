"""Wake-ups after commits: pollers wait for a signal instead of sleeping a whole poll interval.

A transaction that makes work for someone calls :func:`on_commit` (``"queue"`` for a new job,
``"as4.outbound"`` for a message to send, ``"requester.exchange"`` with the exchange id for a changed
exchange). When, and only when, it commits, every waiter on that :class:`Topic` in this process wakes
up at once: the queue worker, the AS4 sender loop, a long-polling reader of the portal API. Commits
made by other processes are seen at the waiter's next poll, or at once on PostgreSQL, where the commit
also sends ``NOTIFY oots_wake`` and :func:`listen` relays it into the listening process's topics.

A wake-up is a hint, never a promise: waiters always look at the database again, so a spurious or a
missed wake-up costs time, not correctness.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from sqlalchemy import event, text
from sqlalchemy.orm import Session

if TYPE_CHECKING:
    from oots.store.database import Database

__all__ = ["CHANNEL", "Topic", "Watch", "listen", "on_commit", "topic", "wait_for"]

log = logging.getLogger(__name__)

#: The PostgreSQL notification channel (payload ``topic`` or ``topic|key``).
CHANNEL = "oots_wake"
_PENDING = "oots_wake_pending"
_NOTIFY = text("SELECT pg_notify(:channel, :payload)")


class Topic:
    """One kind of work: threads wait for its next generation, coroutines for a key of it."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._cond = threading.Condition()
        self._generation = 0
        self._waiters: dict[str, set[tuple[asyncio.AbstractEventLoop, asyncio.Event]]] = {}

    @property
    def generation(self) -> int:
        """Read it before looking for work; pass it to :meth:`wait` afterwards (no wake-up is lost)."""
        return self._generation

    def fire(self, keys: Iterable[str] = ()) -> None:
        """Wake every thread waiting on the topic and the coroutines waiting for one of ``keys``."""
        with self._cond:
            self._generation += 1
            self._cond.notify_all()
            targets = [w for key in keys for w in self._waiters.get(key, ())]
        for loop, flag in targets:
            with contextlib.suppress(RuntimeError):  # that loop has closed
                loop.call_soon_threadsafe(flag.set)

    def wait(self, since: int, timeout: float) -> bool:
        """Block until the topic fires after generation ``since`` (True) or ``timeout`` passes (False)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._generation == since:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
        return True

    @contextmanager
    def watch(self, key: str) -> Iterator[asyncio.Event]:
        """An event set when a commit fires ``key`` (in a coroutine; watch first, then look, then wait)."""
        with self.watching() as watch:
            watch.key(key)
            yield watch.flag

    @contextmanager
    def watching(self) -> Iterator[Watch]:
        """A :class:`Watch` made in a coroutine, whose key is given later (from any thread); closed at the end."""
        watch = Watch(self, asyncio.get_running_loop())
        try:
            yield watch
        finally:
            watch.close()

    def _add(self, key: str, entry: tuple[asyncio.AbstractEventLoop, asyncio.Event]) -> None:
        with self._cond:
            self._waiters.setdefault(key, set()).add(entry)

    def _discard(self, key: str, entry: tuple[asyncio.AbstractEventLoop, asyncio.Event]) -> None:
        with self._cond:
            waiting = self._waiters.get(key)
            if waiting is not None:
                waiting.discard(entry)
                if not waiting:
                    del self._waiters[key]


class Watch:
    """A coroutine's watch on one key of a :class:`Topic`: ``flag`` is set when a commit fires the key.

    The key may be given from another thread: a step of the portal API commits in a worker thread, then
    in the same thread watches the exchange it made and reads it, so that no commit in between is missed
    and the coroutine needs no second thread hop for the read (see :meth:`Topic.watching`).
    """

    def __init__(self, topic: Topic, loop: asyncio.AbstractEventLoop) -> None:
        self.flag = asyncio.Event()
        self._topic = topic
        self._entry = (loop, self.flag)
        self._keys: list[str] = []

    def key(self, key: str) -> None:
        """Watch ``key`` from now on (thread-safe); a commit firing it sets :attr:`flag`."""
        self._topic._add(key, self._entry)
        self._keys.append(key)

    def close(self) -> None:
        for key in self._keys:
            self._topic._discard(key, self._entry)
        self._keys.clear()


async def wait_for(flag: asyncio.Event, timeout: float) -> bool:
    """Wait until ``flag`` is set (True, and clear it) or ``timeout`` passes (False)."""
    try:
        await asyncio.wait_for(flag.wait(), timeout)
    except TimeoutError:
        return False
    flag.clear()
    return True


_topics: dict[str, Topic] = {}
_topics_lock = threading.Lock()


def topic(name: str) -> Topic:
    """The process's topic called ``name`` (created on first use)."""
    with _topics_lock:
        found = _topics.get(name)
        if found is None:
            found = _topics[name] = Topic(name)
        return found


# Listeners of every session (registered once: a listener added per session costs more than a statement).
@event.listens_for(Session, "after_commit")
def _fire_pending(session: Session) -> None:
    if _PENDING not in session.info or session.in_nested_transaction():
        return  # nothing to fire, or a savepoint released: nothing is visible to others before the commit
    pending: dict[str, set[str]] = session.info.pop(_PENDING)
    for name, keys in pending.items():
        topic(name).fire(k for k in keys if k)


@event.listens_for(Session, "after_rollback")
def _drop_pending(session: Session, *_: Any) -> None:
    session.info.pop(_PENDING, None)


def on_commit(session: Session, name: str, key: str | None = None) -> None:
    """Fire topic ``name`` (and ``key`` of it) when ``session``'s transaction commits; nothing on rollback."""
    pending: dict[str, set[str]] | None = session.info.get(_PENDING)
    if pending is None:
        pending = session.info[_PENDING] = {}
    keys = pending.setdefault(name, set())
    if (key or "") in keys:
        return
    keys.add(key or "")
    if session.get_bind().dialect.name == "postgresql":
        session.execute(_NOTIFY, {"channel": CHANNEL, "payload": name if key is None else f"{name}|{key}"})


_listening: set[str] = set()
_listening_lock = threading.Lock()


def listen(database: Database) -> bool:
    """On PostgreSQL, relay ``NOTIFY oots_wake`` of other processes into this process's topics.

    Starts one daemon thread per database URL (a second call is a no-op); returns False on SQLite,
    whose writers all live in processes that poll.
    """
    if database.is_sqlite:
        return False
    url = database.url.set(drivername="postgresql").render_as_string(hide_password=False)
    with _listening_lock:
        if url in _listening:
            return True
        _listening.add(url)
    threading.Thread(target=_relay, args=(url, database.safe_url), name="oots-wake-listener", daemon=True).start()
    return True


def _relay(url: str, safe_url: str) -> None:
    import psycopg

    delay = 0.5
    while True:
        try:
            with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:
                conn.execute(f"LISTEN {CHANNEL}")
                delay = 0.5
                for note in conn.notifies():
                    name, _, key = note.payload.partition("|")
                    # A job or a message may have been made for this process's pollers: wake them.
                    topic(name).fire([key] if key else [])
        except Exception as exc:  # the relay must outlive a database restart
            (log.warning if delay == 0.5 else log.debug)(
                "wake-up listener on %s: %s; reconnecting", safe_url, type(exc).__name__
            )
            time.sleep(delay)
            delay = min(delay * 2, 10.0)
