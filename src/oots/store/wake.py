"""Wake-ups after commits: pollers wait for a signal instead of sleeping a whole poll interval.

A transaction that makes work for someone calls :func:`on_commit` (``"queue"`` for a new job,
``"as4.outbound"`` for a message to send, ``"requester.exchange"`` with the exchange id for a changed
exchange). When, and only when, it commits, every waiter on that :class:`Topic` in this process wakes
up at once: the queue worker, the AS4 sender loop, a long-polling reader of the portal API. Commits
made by other processes of the node reach them too once the process has called :func:`listen`: on
PostgreSQL the transaction sends, just before it commits, one ``NOTIFY oots_wake`` with all its topics
(PostgreSQL delivers it at the commit), which a listener thread relays into the process's topics; on a
SQLite file, the committing process sends the same payload as a datagram to every other
process listening on that file (:class:`Neighbours`: Unix sockets named after the file, found through
a directory of markers beside it).

A wake-up is a hint, never a promise: waiters always look at the database again, so a spurious or a
missed wake-up costs time, not correctness.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import hashlib
import logging
import os
import selectors
import socket
import sys
import threading
import time
import weakref
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, event, text
from sqlalchemy.orm import Session

if TYPE_CHECKING:
    from oots.store.database import Database

__all__ = [
    "CHANNEL",
    "Neighbours",
    "Topic",
    "Watch",
    "forget",
    "listen",
    "on_commit",
    "topic",
    "unlisten",
    "wait_for",
]

log = logging.getLogger(__name__)

#: The PostgreSQL notification channel (payload: lines ``topic`` or ``topic|key``, one per topic or key).
CHANNEL = "oots_wake"
#: The longest payload of one notification, in bytes (PostgreSQL refuses 8,000 or more).
NOTIFY_BYTES = 7900
_PENDING = "oots_wake_pending"
_NOTIFIED = "oots_wake_notified"
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
        """Wake every thread waiting on the topic and the coroutines waiting for one of ``keys`` (but a
        watch the calling thread has muted, see :meth:`Watch.own_commits`)."""
        muted = getattr(_muting, "flag", None)
        with self._cond:
            self._generation += 1
            self._cond.notify_all()
            targets = [w for key in keys for w in self._waiters.get(key, ()) if w[1] is not muted]
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

    @contextmanager
    def own_commits(self) -> Iterator[None]:
        """Commits the calling thread makes in the block do not set :attr:`flag` (other threads' and other
        processes' do): a step that watches its exchange before its own write, and knows what that
        write left, waits for the next change without being woken by its own."""
        previous = getattr(_muting, "flag", None)
        _muting.flag = self.flag
        try:
            yield
        finally:
            _muting.flag = previous


#: The flag of the watch the current thread's commits leave alone (:meth:`Watch.own_commits`).
_muting = threading.local()


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
    session.info.pop(_NOTIFIED, None)
    for name, keys in pending.items():
        topic(name).fire(k for k in keys if k)
    neighbours = _neighbours_of(session.get_bind())
    if neighbours is not None:
        neighbours.send(_payload(pending))


@event.listens_for(Session, "after_rollback")
def _drop_pending(session: Session, *_: Any) -> None:
    session.info.pop(_PENDING, None)
    session.info.pop(_NOTIFIED, None)


@event.listens_for(Session, "before_commit")
def _notify_pending(session: Session) -> None:
    """PostgreSQL: the transaction's topics to the node's other processes, just before the commit, in one
    notification where they fit: one round trip inside the write transaction, not one per topic."""
    if session.in_nested_transaction() or session.info.get(_NOTIFIED):
        return  # a savepoint released (the outer transaction notifies when it commits), or sent already
    pending: dict[str, set[str]] | None = session.info.get(_PENDING)
    if not pending or session.get_bind().dialect.name != "postgresql":
        return
    session.info[_NOTIFIED] = True  # a later on_commit of this transaction notifies at once
    for payload in _chunks(_payload(pending).decode(), NOTIFY_BYTES):
        session.execute(_NOTIFY, {"channel": CHANNEL, "payload": payload})


def _chunks(lines: str, most: int) -> Iterator[str]:
    """``lines`` cut at line ends into pieces of at most ``most`` bytes (a longer line alone is cut)."""
    piece: list[str] = []
    size = 0
    for whole in lines.splitlines():
        # a key that long is not ours; keep the wake-up of its topic
        line = whole if len(whole.encode()) <= most else whole.partition("|")[0][:most]
        if piece and size + 1 + len(line.encode()) > most:
            yield "\n".join(piece)
            piece, size = [], 0
        piece.append(line)
        size += len(line.encode()) + (1 if len(piece) > 1 else 0)
    if piece:
        yield "\n".join(piece)


def on_commit(session: Session, name: str, key: str | None = None) -> None:
    """Fire topic ``name`` (and ``key`` of it) when ``session``'s transaction commits; nothing on rollback."""
    pending: dict[str, set[str]] | None = session.info.get(_PENDING)
    if pending is None:
        pending = session.info[_PENDING] = {}
    keys = pending.setdefault(name, set())
    if (key or "") in keys:
        return
    keys.add(key or "")
    if session.info.get(_NOTIFIED):  # called while the transaction commits: the notification has gone
        session.execute(_NOTIFY, {"channel": CHANNEL, "payload": name if key is None else f"{name}|{key}"})


def _payload(pending: dict[str, set[str]]) -> bytes:
    """One datagram for a commit's topics: a line ``topic`` or ``topic|key`` each."""
    return "\n".join(f"{name}|{key}" if key else name for name, keys in pending.items() for key in keys).encode()


def _fire_payload(payload: bytes) -> None:
    fired: dict[str, list[str]] = {}
    for line in payload.decode("utf-8", "replace").splitlines():
        name, _, key = line.partition("|")
        fired.setdefault(name, [])
        if key:
            fired[name].append(key)
    for name, keys in fired.items():
        topic(name).fire(keys)


#: How often a sender looks for processes that started or stopped listening on a SQLite file (seconds).
NEIGHBOURS_REFRESH_SECONDS = 1.0


class Neighbours:
    """The processes that share one SQLite file, and the datagrams that wake them after a commit.

    A listening process binds a Unix datagram socket in Linux's abstract namespace (``oots-wake-`` and a
    digest of the file's real path, then its pid: nothing on disk to leave behind) and puts a marker
    named after its pid in the directory ``<file>-wake``. A committing process lists that directory
    (at most every :data:`NEIGHBOURS_REFRESH_SECONDS`) and sends each other marker's socket the commit's
    topics; a marker whose socket refuses belongs to a process that died and is removed (a live process
    puts its marker back within a second: processes in different network namespaces, which cannot reach
    each other's sockets, keep removing each other's and fall back on polling). Sends never block: a
    datagram a busy process cannot take is dropped, as a wake-up is only a hint. Where the abstract
    namespace does not exist (not Linux), nothing is sent and the processes poll.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self.directory = Path(f"{path}-wake")
        self._prefix = f"\0oots-wake-{hashlib.sha256(path.encode()).hexdigest()[:24]}-"
        self._own: str | None = None
        self._listener: socket.socket | None = None
        self._peers: list[str] = []
        self._looked = -NEIGHBOURS_REFRESH_SECONDS
        self._lock = threading.Lock()
        self._sender: socket.socket | None = None

    def address(self, pid: int | str) -> str:
        return f"{self._prefix}{pid}"

    def listen(self) -> socket.socket | None:
        """Bind this process's socket and marker (once per process); the socket, or None when impossible."""
        pid = str(os.getpid())
        with self._lock:
            if self._listener is not None and self._own == pid:
                return self._listener
            try:
                listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                listener.bind(self.address(pid))
                listener.setblocking(False)
                self.directory.mkdir(mode=0o700, exist_ok=True)
                (self.directory / pid).touch()
            except OSError as exc:
                log.info("no wake-ups from other processes on %s (%s): their commits are polled for", self.path, exc)
                return None
            self._listener, self._own = listener, pid
            self._looked = -NEIGHBOURS_REFRESH_SECONDS  # look again: our own marker is now there
            return listener

    def keep_marker(self) -> None:
        """Put this process's marker back if it went (a peer that could not reach our socket removed it)."""
        own = self._own
        if own is None:
            return
        marker = self.directory / own
        if not marker.exists():
            with contextlib.suppress(OSError):
                self.directory.mkdir(mode=0o700, exist_ok=True)
                marker.touch()

    def close(self) -> None:
        """Stop listening (the marker is removed, the socket closed) and sending."""
        with self._lock:
            listener, own, sender = self._listener, self._own, self._sender
            self._listener = self._own = self._sender = None
        if sender is not None:
            sender.close()
        if listener is not None:
            _datagrams.discard(listener)
            with contextlib.suppress(OSError):
                (self.directory / str(own)).unlink()
            listener.close()

    def peers(self) -> list[str]:
        """The pids of the other listening processes (the directory is read at most once a refresh)."""
        now = time.monotonic()
        if now - self._looked < NEIGHBOURS_REFRESH_SECONDS:
            return self._peers
        self._looked = now
        own = self._own or str(os.getpid())
        try:
            self._peers = [entry for entry in os.listdir(self.directory) if entry.isdigit() and entry != own]
        except OSError:
            self._peers = []
        return self._peers

    def send(self, payload: bytes) -> None:
        """Send ``payload`` to every other listening process (never blocks; failures are dropped)."""
        peers = self.peers()
        if not peers:
            return
        sender = self._sender
        if sender is None:
            sender = self._sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            sender.setblocking(False)
        for pid in peers:
            try:
                sender.sendto(payload, self.address(pid))
            except (ConnectionRefusedError, FileNotFoundError):
                # nobody listens there any more (the process died without removing its marker)
                with contextlib.suppress(OSError):
                    (self.directory / pid).unlink()
                self._looked = -NEIGHBOURS_REFRESH_SECONDS
            except OSError:
                pass  # full (BlockingIOError) or too large: the wake-up is lost, the poll finds the work


_ABSTRACT_SOCKETS = sys.platform.startswith("linux")
_neighbours: dict[str, Neighbours] = {}
_neighbours_lock = threading.Lock()
#: Per engine: the neighbours of its SQLite file, or None (PostgreSQL, memory, no abstract sockets).
_by_engine: weakref.WeakKeyDictionary[Engine, Neighbours | None] = weakref.WeakKeyDictionary()


def _neighbours_of(bind: Any) -> Neighbours | None:
    engine = getattr(bind, "engine", bind)  # a session bound to a connection: its engine
    try:
        return _by_engine[engine]
    except KeyError:
        pass
    except TypeError:  # not an engine (a connection bound by hand): no neighbours
        return None
    found: Neighbours | None = None
    url = engine.url
    if _ABSTRACT_SOCKETS and url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        path = os.path.realpath(url.database)
        with _neighbours_lock:
            found = _neighbours.get(path)
            if found is None:
                found = _neighbours[path] = Neighbours(path)
    _by_engine[engine] = found
    return found


class _Relay:
    """The process's one thread that receives other processes' datagrams and fires what they name."""

    def __init__(self) -> None:
        self._sockets: dict[socket.socket, Neighbours] = {}
        self._selector: selectors.BaseSelector | None = None
        self._lock = threading.Lock()

    def add(self, listener: socket.socket, neighbours: Neighbours) -> None:
        with self._lock:
            if listener in self._sockets:
                return
            self._sockets[listener] = neighbours
            if self._selector is None:
                self._selector = selectors.DefaultSelector()
                threading.Thread(target=self._run, args=(self._selector,), name="oots-wake-relay", daemon=True).start()
            self._selector.register(listener, selectors.EVENT_READ)

    def discard(self, listener: socket.socket) -> None:
        with self._lock:
            self._sockets.pop(listener, None)
            if self._selector is not None:
                with contextlib.suppress(KeyError, ValueError):
                    self._selector.unregister(listener)

    def _run(self, selector: selectors.BaseSelector) -> None:
        kept = time.monotonic()
        while True:
            try:
                ready = selector.select(timeout=NEIGHBOURS_REFRESH_SECONDS)
            except (OSError, ValueError):  # a socket closed while being watched: look again
                time.sleep(0.01)
                continue
            if time.monotonic() - kept >= NEIGHBOURS_REFRESH_SECONDS:
                kept = time.monotonic()
                with self._lock:
                    listening = list(self._sockets.values())
                for neighbours in listening:
                    neighbours.keep_marker()
            for key, _ in ready:
                listener: socket.socket = key.fileobj  # type: ignore[assignment]
                try:
                    while True:
                        _fire_payload(listener.recv(65536))
                except (BlockingIOError, InterruptedError):
                    pass
                except OSError:  # closed meanwhile
                    self.discard(listener)


_datagrams = _Relay()


def forget(database: Database) -> None:
    """Stop relaying for ``database`` (when it is disposed): on PostgreSQL every use :func:`listen` made
    of it ends (the listener stops when no other database of this process uses it); on SQLite its
    socket is closed and its marker removed, unless another database of this process is open on the
    same file (they share them)."""
    if not database.is_sqlite:
        _release(database, every=True)
        return
    with _neighbours_lock:
        neighbours = _by_engine.pop(database.engine, None)
        if neighbours is None or any(other is neighbours for other in list(_by_engine.values())):
            return
        _neighbours.pop(neighbours.path, None)
    neighbours.close()


@atexit.register
def _leave() -> None:
    with _neighbours_lock:
        every = list(_neighbours.values())
    for neighbours in every:
        neighbours.close()


#: The name of a PostgreSQL listener's thread, followed by the database's URL without its password.
LISTENER_THREAD = "oots-wake-listener"
#: How long the PostgreSQL listener waits for a notification before it looks whether to stop (seconds).
LISTENER_STOP_SECONDS = 0.5


class _Listener:
    """The thread relaying one PostgreSQL database's notifications, and the uses that keep it running."""

    def __init__(self, url: str, safe_url: str) -> None:
        self.uses: dict[Database, int] = {}
        self.stopping = threading.Event()
        self.thread = threading.Thread(
            target=_relay, args=(url, safe_url, self.stopping), name=f"{LISTENER_THREAD} {safe_url}", daemon=True
        )


_listeners: dict[str, _Listener] = {}
_listeners_lock = threading.Lock()


def listen(database: Database) -> bool:
    """Relay other processes' commits on the same database into this process's topics.

    On PostgreSQL, one daemon thread per database URL listens for ``NOTIFY oots_wake``, for as long as
    someone uses it: each call is one use, ended by :func:`unlisten` (or by disposing the database,
    which ends all of its uses); when the last use ends the thread stops. On a SQLite file, the process
    joins the file's :class:`Neighbours` and one relay thread receives their datagrams, until the
    database is disposed (a second call is a no-op). Returns False where nothing can be relayed (an
    in-memory SQLite database, or no abstract Unix sockets): other processes' commits are then found by
    polling.
    """
    if database.is_sqlite:
        neighbours = _neighbours_of(database.engine)
        listener = neighbours.listen() if neighbours is not None else None
        if neighbours is None or listener is None:
            return False
        _datagrams.add(listener, neighbours)
        return True
    url = _listener_key(database)
    with _listeners_lock:
        found = _listeners.get(url)
        if found is None:
            found = _listeners[url] = _Listener(url, database.safe_url)
            found.thread.start()
        found.uses[database] = found.uses.get(database, 0) + 1
    return True


def unlisten(database: Database) -> None:
    """End one use :func:`listen` made of ``database`` (PostgreSQL; SQLite files listen until disposed)."""
    if not database.is_sqlite:
        _release(database, every=False)


def _listener_key(database: Database) -> str:
    return database.url.set(drivername="postgresql").render_as_string(hide_password=False)


def _release(database: Database, *, every: bool) -> None:
    url = _listener_key(database)
    with _listeners_lock:
        found = _listeners.get(url)
        if found is None or database not in found.uses:
            return
        left = 0 if every else found.uses[database] - 1
        if left:
            found.uses[database] = left
            return
        del found.uses[database]
        if found.uses:
            return
        del _listeners[url]
    # the last use: the thread ends within LISTENER_STOP_SECONDS (not waited for here: this may run on an
    # event loop), quietly even if its connection breaks meanwhile (the database dropped or shut down)
    found.stopping.set()


def _relay(url: str, safe_url: str, stopping: threading.Event) -> None:
    import psycopg

    delay = 0.5
    while not stopping.is_set():
        try:
            with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:
                conn.execute(f"LISTEN {CHANNEL}")
                delay = 0.5
                while not stopping.is_set():
                    for note in conn.notifies(timeout=LISTENER_STOP_SECONDS):
                        # A job or a message may have been made for this process's pollers: wake them.
                        _fire_payload(note.payload.encode())
        except Exception as exc:  # the relay must outlive a database restart
            if stopping.is_set():
                return  # stopped while its connection went (the database dropped, the node shutting down)
            (log.warning if delay == 0.5 else log.debug)(
                "wake-up listener on %s: %s; reconnecting", safe_url, type(exc).__name__
            )
            stopping.wait(delay)
            delay = min(delay * 2, 10.0)
