"""The engine, sessions and migrations of one node's database (SQLite file or PostgreSQL)."""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, MetaData, create_engine, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, InterfaceError, NoSuchModuleError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from oots.errors import ConfigError, StoreError, StoreUnavailable, TransportError
from oots.store.base import Base
from oots.store.checkpoint import BACKSTOP_PAGES, Checkpointer

if TYPE_CHECKING:
    from alembic.config import Config

    from oots.settings import Settings

__all__ = [
    "MIGRATIONS_DIR",
    "MODEL_MODULES",
    "OUTAGE_RETRY_SECONDS",
    "Database",
    "Reconnect",
    "WriterQueue",
    "alembic_config",
    "load_models",
    "normalise_url",
    "open_database",
    "open_existing_database",
    "outage",
    "schema_heads",
    "sqlite_file",
    "unreachable",
]

log = logging.getLogger(__name__)

#: The modules whose tables belong to ``Base.metadata`` — one per owner (``oots/<package>/models.py``).
#: Add yours on its own line; migrations and the schema check see only the tables listed here.
MODEL_MODULES: tuple[str, ...] = (
    "oots.store.models",
    "oots.as4.models",
    "oots.audit.models",
    "oots.cs.models",
    "oots.eid.models",
    "oots.requester.models",
    "oots.provider.models",
    "oots.node.models",
)

#: Where the Alembic environment and every owner's migration branch live (package data).
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

#: How long a SQLite connection waits for the write lock before giving up.
SQLITE_BUSY_TIMEOUT_MS = 30_000

#: Key of the PostgreSQL advisory lock that serialises migrations of concurrently starting processes.
_MIGRATION_LOCK_KEY = 0x6F6F7473  # "oots"

try:
    import fcntl as _FLOCK
except ImportError:  # pragma: no cover - not POSIX
    _FLOCK = None  # type: ignore[assignment]

#: Execution option selecting how a SQLite transaction begins (``DEFERRED`` or ``IMMEDIATE``).
SQLITE_BEGIN = "oots_sqlite_begin"


def load_models() -> MetaData:
    """Import every module of :data:`MODEL_MODULES` and return the metadata holding all their tables."""
    for name in MODEL_MODULES:
        importlib.import_module(name)
    return Base.metadata


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic configuration built in code (no ``alembic.ini``), optionally bound to ``connection``."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("path_separator", "os")
    cfg.set_main_option("file_template", "%%(rev)s_%%(slug)s")
    cfg.set_main_option("truncate_slug_length", "40")
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def normalise_url(url: str | URL) -> URL:
    """Parse a database URL; PostgreSQL URLs get the psycopg 3 driver, other databases are refused."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise ConfigError(f"database.url is not a database URL: {exc}", [("database.url", str(exc))]) from None
    backend = parsed.drivername.partition("+")[0]
    if backend in ("postgresql", "postgres"):
        # psycopg 3 is the one PostgreSQL driver oots depends on.
        parsed = parsed.set(drivername="postgresql+psycopg")
    elif backend != "sqlite":
        reason = f"unsupported database {backend!r} (oots runs on SQLite or PostgreSQL)"
        raise ConfigError(f"database.url: {reason}", [("database.url", reason)])
    return parsed


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy's "begin" event issue BEGIN itself (pysqlite's own implicit transactions
    # cannot do BEGIN IMMEDIATE, savepoints or transactional DDL properly).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        # the log is checkpointed by a thread of the process, not by the commits (oots.store.checkpoint)
        cursor.execute(f"PRAGMA wal_autocheckpoint = {BACKSTOP_PAGES}")
    finally:
        cursor.close()


def _sqlite_on_begin(connection: Connection) -> None:
    mode = connection.get_execution_options().get(SQLITE_BEGIN, "DEFERRED")
    if mode not in ("DEFERRED", "IMMEDIATE"):
        raise StoreError(f"unknown SQLite transaction mode {mode!r}")
    # Straight to the driver: through ``exec_driver_sql`` a BEGIN would run SQLAlchemy's whole statement
    # path (execution context, cursor events, result) for every transaction. A failure (the write lock
    # still taken when the busy timeout ends) is wrapped as that path would wrap it.
    statement = f"BEGIN {mode}"
    try:
        connection.connection.driver_connection.execute(statement)  # type: ignore[union-attr]
    except sqlite3.Error as exc:
        raise DBAPIError.instance(statement, (), exc, sqlite3.Error) from exc


class WriterQueue:
    """Where the SQLite writers of a node wait their turn: threads of one process on a lock, processes on
    an exclusive ``flock`` of the file ``<database>-writers``, taken by the thread that holds the lock.

    A connection that finds SQLite's write lock taken polls for it with growing sleeps (1, 2, 5, 10 ...
    100 ms), so without the queue a busy node's writers would spend their time sleeping past each
    other's commits; in the queue, the next writer is woken when the last one's transaction ends.
    Re-entrant: a thread that opens a second write transaction inside its first waits on SQLite, as it
    would without this queue, instead of on itself. Where the file cannot be locked (not a file, no
    ``flock``), processes fall back on SQLite's polling. ``ended`` is called after each write turn.
    """

    def __init__(self, path: str | None, *, ended: Callable[[], None] | None = None) -> None:
        self._ended = ended
        self._threads = threading.RLock()
        self._path = os.path.abspath(f"{path}-writers") if path and path != ":memory:" and _FLOCK is not None else None
        self._fd: int | None = None
        self._pid = 0
        self._depth = 0
        self._owner: int | None = None

    def held(self) -> bool:
        """Whether the calling thread is in the queue's write turn (inside a write transaction)."""
        return self._owner == threading.get_ident()

    def __enter__(self) -> None:
        self._threads.acquire()
        if self._depth == 0:
            self._owner = threading.get_ident()
            try:
                fd = self._file()
                if fd is not None:
                    _FLOCK.flock(fd, _FLOCK.LOCK_EX)
            except BaseException:
                self._owner = None
                self._threads.release()
                raise
        self._depth += 1

    def __exit__(self, *exc: object) -> None:
        self._depth -= 1
        ended = self._depth == 0
        try:
            if ended:
                self._owner = None
                if self._fd is not None:
                    _FLOCK.flock(self._fd, _FLOCK.LOCK_UN)
        finally:
            self._threads.release()
        if ended and self._ended is not None:
            self._ended()

    def _file(self) -> int | None:
        """The lock file, opened once per process (a forked child opens its own)."""
        if self._path is None:
            return None
        if self._fd is None or self._pid != os.getpid():
            try:
                self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            except OSError as exc:
                log.info("SQLite writers of other processes are not queued (%s: %s)", self._path, exc.strerror)
                self._path = None
                return None
            self._pid = os.getpid()
        return self._fd

    def close(self) -> None:
        if self._fd is not None and self._pid == os.getpid():
            os.close(self._fd)
        self._fd = None


class Database:
    """One database: an engine, a session factory, the schema migrations.

    ``session()`` is the unit of work: it commits when the block ends and rolls back when it raises.
    On SQLite (one writer at a time) ``session(immediate=True)`` takes the write lock at the start, so
    a transaction that reads and then writes never fails half-way on a concurrent writer; the writers
    first wait their turn in a :class:`WriterQueue`, across the node's processes.
    """

    def __init__(self, url: str | URL, *, pool_size: int = 5, echo: bool = False) -> None:
        self.url = normalise_url(url)
        self.dialect = self.url.get_backend_name()
        kwargs: dict[str, Any] = {"echo": echo}
        if self.dialect == "postgresql":
            kwargs |= {
                # What the code is written for (appends queue on the journal's head, migrations on an
                # advisory lock, then read what the one before them committed), whatever the database's
                # default_transaction_isolation says. A reader that needs a snapshot asks for one.
                "isolation_level": "READ COMMITTED",
                "pool_size": pool_size,
                "max_overflow": pool_size,
                "pool_pre_ping": True,
                "connect_args": {"connect_timeout": 10},
            }
        else:
            kwargs["connect_args"] = {"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}
        try:
            self.engine: Engine = create_engine(self.url, **kwargs)
        except NoSuchModuleError as exc:
            raise ConfigError(f"database.url: no driver for {self.url.drivername}: {exc}") from None
        if self.dialect == "sqlite":
            event.listen(self.engine, "connect", _sqlite_on_connect)
            event.listen(self.engine, "begin", _sqlite_on_begin)
        self.sessionmaker = sessionmaker(self.engine, expire_on_commit=False)
        path = self.url.database
        self._checkpointer = Checkpointer(path) if self.dialect == "sqlite" and path and path != ":memory:" else None
        self._writers = (
            WriterQueue(path, ended=self._checkpointer.written if self._checkpointer else None)
            if self.dialect == "sqlite"
            else None
        )

    def __repr__(self) -> str:
        return f"Database({self.safe_url!r})"

    @property
    def safe_url(self) -> str:
        """The URL with any password hidden (for messages and logs)."""
        return self.url.render_as_string(hide_password=True)

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    @contextmanager
    def session(self, *, immediate: bool = False) -> Iterator[Session]:
        """A session in one transaction: committed at the end of the block, rolled back on an exception."""
        with self._writer(immediate), self.sessionmaker() as session, session.begin():
            if immediate and self.is_sqlite:
                session.connection(execution_options={SQLITE_BEGIN: "IMMEDIATE"})
            yield session

    @contextmanager
    def snapshot(self) -> Iterator[Session]:
        """A read-only session that sees the database as it was at its first read, however long it reads.

        For a reader that must see one consistent state across many statements (verifying the audit
        journal while the node appends to it or purges it). PostgreSQL: a ``REPEATABLE READ READ ONLY``
        transaction; SQLite: a deferred transaction, which in WAL mode reads one snapshot from its
        first read on. Nothing waits for writers, and writers do not wait for it.
        """
        with self.sessionmaker() as session, session.begin():
            if not self.is_sqlite:
                session.connection(
                    execution_options={"isolation_level": "REPEATABLE READ", "postgresql_readonly": True}
                )
            yield session

    @contextmanager
    def connect(self, *, immediate: bool = False) -> Iterator[Connection]:
        """A Core connection in one transaction (committed at the end of the block)."""
        with self._writer(immediate), self._connect() as raw:
            conn = raw.execution_options(**{SQLITE_BEGIN: "IMMEDIATE"}) if immediate and self.is_sqlite else raw
            with conn.begin():
                yield conn

    def _writer(self, immediate: bool) -> AbstractContextManager[object]:
        """This process's queue of SQLite writers (held until the transaction has ended)."""
        if immediate and self._writers is not None:
            return self._writers
        return contextlib.nullcontext()

    @contextmanager
    def _connect(self) -> Iterator[Connection]:
        try:
            conn = self.engine.connect()
        except DBAPIError as exc:
            raise StoreUnavailable(f"cannot open the database {self.safe_url}: {_reason(exc)}") from exc
        with conn:
            yield conn

    def migrate(self) -> set[str]:
        """Upgrade the schema to the head of every owner's branch; return the revisions now applied.

        Concurrent starts are safe: PostgreSQL serialises them with an advisory lock, SQLite with its
        write lock. A database at a revision this code does not know is refused with :class:`StoreError`.
        """
        settled = self._settled_revisions()
        if settled is not None:
            return settled
        from alembic import command
        from alembic.util import CommandError

        with _quiet_alembic(), self.connect(immediate=True) as conn:
            if self.dialect == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK_KEY})
            config = alembic_config(conn)
            config.attributes["load_models"] = False  # an upgrade runs the migration files; only autogenerate compares
            before = self._revisions(conn)
            try:
                command.upgrade(config, "heads")
            except CommandError as exc:
                raise StoreError(
                    f"the database {self.safe_url} is at a schema this version of oots does not know: {exc}"
                ) from exc
            after = self._revisions(conn)
            if before and after != before:
                log.info("database schema upgraded from %s to %s", ", ".join(sorted(before)), ", ".join(sorted(after)))
            elif after != before:
                log.info("database schema created at %s", ", ".join(sorted(after)))
            return after

    def _settled_revisions(self) -> set[str] | None:
        """The revisions when the database is already at every known head (nothing to run), else ``None``.

        A read of ``alembic_version`` against the heads parsed from the migration files
        (:mod:`oots.store.heads`), so a start with nothing to migrate loads neither Alembic nor the models.
        """
        from oots.store.heads import current_revisions, known_heads

        with self.connect() as conn:
            current = current_revisions(conn)
        return current if current is not None and current == known_heads(MIGRATIONS_DIR) else None

    def revisions(self) -> set[str]:
        """The migration revisions the database is at (empty for a database never migrated)."""
        with self.connect() as conn:
            return self._revisions(conn)

    @staticmethod
    def _revisions(conn: Connection) -> set[str]:
        from alembic.runtime.migration import MigrationContext

        with _quiet_alembic():
            return set(MigrationContext.configure(conn).get_current_heads())

    def dispose(self) -> None:
        """Close every pooled connection and stop listening for other processes' commits (the process's
        listener of a PostgreSQL database stops when no other open database of the process uses it)."""
        from oots.store.wake import forget

        forget(self)
        if self._checkpointer is not None:
            self._checkpointer.close()
        if self._writers is not None:
            self._writers.close()
        self.engine.dispose()

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.dispose()


@contextmanager
def _quiet_alembic() -> Iterator[None]:
    """Alembic's own INFO lines (one per migration, and its context) kept out of the log while it runs,
    unless this module logs at DEBUG: :meth:`Database.migrate` logs one line of its own instead."""
    alembic = logging.getLogger("alembic")
    if log.isEnabledFor(logging.DEBUG) or alembic.getEffectiveLevel() >= logging.WARNING:
        yield
        return
    level = alembic.level
    alembic.setLevel(logging.WARNING)
    try:
        yield
    finally:
        alembic.setLevel(level)


def _reason(exc: DBAPIError) -> str:
    return str(exc.orig).strip().splitlines()[0] if exc.orig is not None else str(exc)


def schema_heads() -> set[str]:
    """The revisions this oots brings a database to (the head of every owner's branch)."""
    from oots.store.heads import known_heads

    heads = known_heads(MIGRATIONS_DIR)
    if heads is None:
        from alembic.script import ScriptDirectory

        heads = set(ScriptDirectory.from_config(alembic_config()).get_heads())
    return heads


def sqlite_file(settings: Settings) -> Path | None:
    """The SQLite file of the node's database (``None`` for PostgreSQL or an in-memory database)."""
    url = normalise_url(settings.database_url)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        return Path(url.database)
    return None


def unreachable(exc: BaseException) -> bool:
    """Whether ``exc`` says the database cannot be reached or failed beneath us, so that a loop should wait
    and try again: no connection could be opened (:class:`StoreUnavailable`), or the driver lost one or
    refused an operation (an ``OperationalError`` or ``InterfaceError``: server gone, connection
    terminated, a SQLite file that cannot be opened or stayed locked)."""
    if isinstance(exc, StoreUnavailable):
        return True
    if not isinstance(exc, DBAPIError):
        return False
    return exc.connection_invalidated or isinstance(exc, OperationalError | InterfaceError)


#: The seconds an answer given during an outage (503) asks its caller to wait before trying again.
OUTAGE_RETRY_SECONDS = 30


def outage(exc: BaseException) -> bool:
    """Whether ``exc`` is an outage beneath the node rather than a failure of its own: its database cannot
    be reached (:func:`unreachable`) or a network service it calls cannot (``TransportError``)."""
    return isinstance(exc, TransportError) or unreachable(exc)


class Reconnect:
    """How a long-running loop waits while its database is unreachable: 0.5 s, doubling up to ``most``.

    :meth:`failed` logs a plain warning (on the first failure, then about once a minute, the rest at
    debug level) and returns the pause before the next try; :meth:`succeeded` ends an outage (logged
    when there was one). One per thread.
    """

    FIRST_SECONDS = 0.5
    #: How often a continuing outage is logged again as a warning.
    REPEAT_SECONDS = 60.0

    def __init__(self, who: str, *, most: float = 5.0) -> None:
        self.who = who
        self.most = most
        self.failures = 0
        self._delay = 0.0
        self._warned = 0.0

    def failed(self, exc: BaseException) -> float:
        """The pause before trying again after ``exc``; logged."""
        self.failures += 1
        self._delay = min(self.most, self._delay * 2 if self._delay else self.FIRST_SECONDS)
        now = time.monotonic()
        loud = self.failures == 1 or now - self._warned >= self.REPEAT_SECONDS
        if loud:
            self._warned = now
        (log.warning if loud else log.debug)(
            "%s: database unreachable (%s), retrying in %g s%s",
            self.who,
            _describe(exc),
            self._delay,
            "" if self.failures == 1 else f" (attempt {self.failures})",
        )
        return self._delay

    def succeeded(self) -> None:
        """The database answered again."""
        if self.failures:
            log.warning("%s: database reachable again after %d failed attempt(s)", self.who, self.failures)
        self.failures = 0
        self._delay = 0.0


def _describe(exc: BaseException) -> str:
    """The kind of failure, in a few words (no statement, no parameters)."""
    if isinstance(exc, DBAPIError):
        return f"{type(exc.orig).__name__}: {_reason(exc)}" if exc.orig is not None else type(exc).__name__
    if isinstance(exc, StoreUnavailable) and isinstance(exc.__cause__, DBAPIError):
        return _describe(exc.__cause__)
    return f"{type(exc).__name__}: {exc}"


def _create_private(path: Path) -> None:
    """Create the SQLite file ``path`` (and its directory) readable by this user only, when missing: the
    database holds personal data, and SQLite gives its ``-wal`` and ``-shm`` files the file's mode."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):  # an existing database keeps the mode its owner gave it
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600))


def open_database(settings: Settings, *, migrate: bool = True, create: bool = True) -> Database:
    """Open the node's database from its settings and bring its schema up to date.

    With no ``database.url`` this is the SQLite file ``<node.data_dir>/oots.db`` (the directory is
    created when missing). With ``create=False`` a SQLite file that does not exist is a
    :class:`StoreError` instead (nothing is created).
    """
    url = normalise_url(settings.database_url)
    path = sqlite_file(settings)
    if path is not None and not create and not path.is_file():
        raise StoreError(
            f"there is no database at {path}: is node.data_dir (or database.url) the node's? "
            "(`oots db migrate CONFIG` creates one)"
        )
    if path is not None and create:
        try:
            _create_private(path)
        except OSError as exc:
            raise StoreError(f"cannot create the data directory for {path}: {exc.strerror}") from exc
    db = Database(url, pool_size=settings.database.pool_size, echo=settings.database.echo)
    if migrate:
        try:
            db.migrate()
        except BaseException:
            db.dispose()
            raise
    return db


def open_existing_database(settings: Settings) -> Database:
    """Open the node's database for a command that only reads it (or maintains what is there).

    Nothing is created or migrated: a SQLite file that does not exist, a database never migrated, or
    one whose schema is behind (or ahead of) this oots is a :class:`StoreError` saying what to do.
    """
    from oots.store.heads import current_revisions

    db = open_database(settings, migrate=False, create=False)
    try:
        with db.connect() as conn:
            current = current_revisions(conn) or set()
        heads = schema_heads()
        if not current:
            raise StoreError(f"the database {db.safe_url} holds no oots schema: is it the node's?")
        if current != heads:
            raise StoreError(
                f"the database {db.safe_url} is at schema {', '.join(sorted(current))}, not at this oots's "
                f"({', '.join(sorted(heads))}): run `oots db migrate CONFIG` first (it has migrations pending, "
                "or it is from a newer oots)"
            )
    except BaseException:
        db.dispose()
        raise
    return db
