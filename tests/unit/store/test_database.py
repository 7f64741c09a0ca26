"""The database layer: engines, sessions, migrations on SQLite and PostgreSQL."""

from __future__ import annotations

import ast
import logging
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, select, text
from sqlalchemy.exc import StatementError

from oots.errors import ConfigError, StoreError
from oots.settings import Settings
from oots.store import Database, load_models, open_database
from oots.store.database import MIGRATIONS_DIR, alembic_config, normalise_url
from oots.store.models import QueueJob


def heads() -> set[str]:
    return set(ScriptDirectory.from_config(alembic_config()).get_heads())


def assert_schema_matches_models(db: Database) -> None:
    with db.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), load_models())
    assert diff == []


# --- migrations -----------------------------------------------------------------------------------


def test_an_empty_sqlite_database_migrates_to_heads_matching_the_models(sqlite_url: str) -> None:
    db = Database(sqlite_url)
    assert db.revisions() == set()
    assert db.migrate() == heads()
    assert_schema_matches_models(db)
    assert db.migrate() == heads()  # a second run changes nothing
    db.dispose()


def test_a_migration_logs_one_line_of_ours_and_none_of_alembic(
    sqlite_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    db = Database(sqlite_url)
    with db.connect(immediate=True) as conn:
        command.upgrade(alembic_config(conn), "audit_0001")  # a database an older oots made
    before = ", ".join(sorted(db.revisions()))
    caplog.clear()
    with caplog.at_level(logging.INFO):
        db.migrate()
        db.migrate()  # nothing to do: nothing said
    told = [(r.name, r.getMessage()) for r in caplog.records]
    assert told == [
        (
            "oots.store.database",
            f"database schema upgraded from {before} to {', '.join(sorted(heads()))}",
        )
    ]
    db.dispose()
    fresh = Database(sqlite_url.replace(".db", "-fresh.db"))
    caplog.clear()
    with caplog.at_level(logging.INFO):
        fresh.migrate()
    assert [r.getMessage() for r in caplog.records] == [f"database schema created at {', '.join(sorted(heads()))}"]
    fresh.dispose()


@pytest.mark.postgres
def test_an_empty_postgres_database_migrates_to_heads_matching_the_models(
    postgres_database: Callable[[], str],
) -> None:
    db = Database(postgres_database())
    assert db.revisions() == set()
    assert db.migrate() == heads()
    assert_schema_matches_models(db)
    assert db.migrate() == heads()
    db.dispose()


def test_every_migration_follows_the_branch_rules() -> None:
    """versions/<owner>_<NNNN>_<what>.py; an owner's first revision starts its own branch."""
    script = ScriptDirectory.from_config(alembic_config())
    files = sorted(p for p in (MIGRATIONS_DIR / "versions").glob("*.py") if p.name != "__init__.py")
    assert files, "no migrations found"
    owners: dict[str, list[int]] = {}
    for path in files:
        match = re.fullmatch(r"([a-z][a-z0-9]*)_(\d{4})_[a-z0-9_]+\.py", path.name)
        assert match, f"{path.name} is not named <owner>_<NNNN>_<what>.py"
        owner, number = match.group(1), int(match.group(2))
        rev = script.get_revision(f"{owner}_{number:04d}")
        assert rev is not None, f"{path.name} must have revision = {owner}_{number:04d}"
        assert Path(rev.path).name == path.name
        if number == 1:
            assert rev.down_revision is None, f"{path.name} starts the {owner} branch: down_revision=None"
            assert rev.branch_labels == {owner}, f"{path.name} needs branch_labels=({owner!r},)"
        else:
            # Alembic gives every later revision its branch's label; the file itself must not set one
            assert rev.module.branch_labels is None, f"{path.name} must not start a branch"
            downs = rev.down_revision if isinstance(rev.down_revision, tuple) else (rev.down_revision,)
            assert f"{owner}_{number - 1:04d}" in downs, f"{path.name} must follow {owner}_{number - 1:04d}"
        owners.setdefault(owner, []).append(number)
        ast.parse(path.read_text(encoding="utf-8"))
    for owner, numbers in owners.items():
        assert sorted(numbers) == list(range(1, len(numbers) + 1)), f"{owner} revisions are not consecutive"
    assert "store" in owners


def test_a_database_from_a_newer_oots_is_refused(sqlite_url: str) -> None:
    db = Database(sqlite_url)
    db.migrate()
    with db.connect() as conn:
        conn.execute(text("INSERT INTO alembic_version (version_num) VALUES ('future_0042')"))
    with pytest.raises(StoreError, match="does not know"):
        db.migrate()
    db.dispose()


@pytest.mark.postgres
def test_a_postgres_database_whose_default_is_repeatable_read_still_migrates_and_appends(
    postgres_database: Callable[[], str],
) -> None:
    """The node's transactions are READ COMMITTED whatever the database's default (before, with
    ``default_transaction_isolation = 'repeatable read'``, concurrent starts failed to migrate and an
    append that waited for another's head lock failed with a serialization error)."""
    from sqlalchemy import create_engine

    from oots.audit.journal import Journal

    url = postgres_database()
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        name = conn.execute(text("SELECT current_database()")).scalar_one()
        conn.execute(text(f"ALTER DATABASE \"{name}\" SET default_transaction_isolation = 'repeatable read'"))
    admin.dispose()
    db = Database(url)
    try:
        db.migrate()
        journal = Journal("node", b"s" * 32, b"d" * 32)
        with db.session() as first, db.session() as second:
            second.execute(text("SELECT 1"))  # its first read
            journal.append(first, side="requester", event="exchange_created")
            first.commit()  # the head moved after the second transaction's first read
            journal.append(second, side="requester", event="exchange_created")
        with db.snapshot() as session:
            assert session.execute(text("SHOW transaction_isolation")).scalar_one() == "repeatable read"
            assert journal.verify(session).head_seq == 2
    finally:
        db.dispose()


def test_unreachable_postgres_is_a_store_error() -> None:
    db = Database("postgresql://nobody@127.0.0.1:1/none")
    with pytest.raises(StoreError, match="cannot open the database") as info:
        db.migrate()
    assert "127.0.0.1:1" in info.value.message


# --- engines and sessions -------------------------------------------------------------------------


def test_open_database_makes_the_sqlite_file_and_migrates(tmp_path: Path, clean_env: pytest.MonkeyPatch) -> None:
    settings = Settings(node={"data_dir": tmp_path / "deep" / "dir"})  # type: ignore[arg-type]
    db = open_database(settings)
    assert (tmp_path / "deep" / "dir" / "oots.db").is_file()
    assert db.revisions() == heads()
    with db.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30_000
    assert "queue_jobs" in inspect(db.engine).get_table_names()
    # personal data: the directory and the files are this user's only (the WAL takes the file's mode)
    folder = tmp_path / "deep" / "dir"
    assert folder.stat().st_mode & 0o777 == 0o700
    for name in ("oots.db", "oots.db-wal", "oots.db-shm"):
        assert (folder / name).stat().st_mode & 0o777 == 0o600, name
    db.dispose()


def test_open_database_keeps_an_existing_files_mode(tmp_path: Path, clean_env: pytest.MonkeyPatch) -> None:
    (tmp_path / "oots.db").touch(mode=0o640)
    (tmp_path / "oots.db").chmod(0o640)
    open_database(Settings(node={"data_dir": tmp_path})).dispose()  # type: ignore[arg-type]
    assert (tmp_path / "oots.db").stat().st_mode & 0o777 == 0o640


@pytest.mark.postgres
def test_open_database_on_postgres(postgres_url: str, clean_env: pytest.MonkeyPatch) -> None:
    plain = postgres_url.replace("postgresql+psycopg://", "postgresql://")
    with open_database(Settings(database={"url": plain})) as db:  # type: ignore[arg-type]
        assert db.url.drivername == "postgresql+psycopg"
        assert db.revisions() == heads()
        assert "queue_jobs" in inspect(db.engine).get_table_names()


def test_session_commits_or_rolls_back(sqlite_url: str) -> None:
    db = Database(sqlite_url)
    db.migrate()
    row = {"kind": "k", "payload": {}, "max_attempts": None}
    with db.session() as s:
        s.add(QueueJob(**row))

    def add_then_fail() -> None:
        with db.session() as s:
            s.add(QueueJob(**row))
            s.flush()
            _ = 1 / 0

    with pytest.raises(ZeroDivisionError):
        add_then_fail()
    with db.session() as s:
        assert len(s.scalars(select(QueueJob)).all()) == 1
    db.dispose()


def _trace(db: Database, record: Callable[[str], None]) -> None:
    """Record every statement SQLite itself runs on ``db``'s connections (the BEGIN that opens a
    transaction goes to the driver directly, past SQLAlchemy's statement events)."""
    from sqlalchemy import event

    db.engine.dispose()  # connections opened from now on are traced
    event.listen(db.engine, "connect", lambda dbapi_connection, _record: dbapi_connection.set_trace_callback(record))


def test_sqlite_immediate_sessions_take_the_write_lock_at_once(sqlite_url: str) -> None:
    db = Database(sqlite_url)
    db.migrate()
    statements: list[str] = []
    _trace(db, statements.append)
    with db.session(immediate=True) as s:
        s.execute(select(1))
    with db.session() as s:
        s.execute(select(1))
    assert [st for st in statements if st.startswith("BEGIN")] == ["BEGIN IMMEDIATE", "BEGIN DEFERRED"]
    db.dispose()


def test_sqlite_writers_of_one_process_queue_for_the_write_lock_and_readers_do_not(sqlite_url: str) -> None:
    import threading
    import time

    db = Database(sqlite_url)
    db.migrate()
    seen: list[str] = []
    name = lambda: threading.current_thread().name  # noqa: E731
    _trace(db, lambda statement: seen.append(f"{name()} {statement}"))
    holding, release = threading.Event(), threading.Event()

    def first() -> None:
        with db.session(immediate=True) as s:
            s.execute(select(1))
            holding.set()
            release.wait(10)

    def second() -> None:
        with db.session(immediate=True) as s:
            s.execute(select(2))

    a = threading.Thread(target=first, name="A")
    b = threading.Thread(target=second, name="B")
    a.start()
    assert holding.wait(10)
    b.start()
    time.sleep(0.2)  # B queues in this process, not in SQLite's polling for its lock
    with db.session() as s:  # a reader is not queued behind the writer
        assert s.execute(select(3)).scalar() == 3
    release.set()
    a.join(10)
    b.join(10)
    order = [line for line in seen if line.startswith(("A ", "B ")) and "SELECT 3" not in line]
    assert order == ["A BEGIN IMMEDIATE", "A SELECT 1", "A COMMIT", "B BEGIN IMMEDIATE", "B SELECT 2", "B COMMIT"]
    db.dispose()


@pytest.mark.parametrize(
    ("url", "driver"),
    [
        ("postgresql://u@h/db", "postgresql+psycopg"),
        ("postgres://u@h/db", "postgresql+psycopg"),
        ("postgresql+psycopg2://u@h/db", "postgresql+psycopg"),
        ("postgresql+psycopg://u@h/db", "postgresql+psycopg"),
        ("sqlite:///x.db", "sqlite"),
    ],
)
def test_urls_are_normalised(url: str, driver: str) -> None:
    assert normalise_url(url).drivername == driver


@pytest.mark.parametrize("url", ["mysql://u@h/db", "not a url"])
def test_unsupported_urls_are_a_config_error(url: str) -> None:
    with pytest.raises(ConfigError, match=r"database\.url"):
        Database(url)


def test_the_password_never_shows(sqlite_url: str) -> None:
    db = Database("postgresql://user:s3cret@127.0.0.1:1/db")
    assert "s3cret" not in repr(db)
    assert "s3cret" not in db.safe_url


# --- types ----------------------------------------------------------------------------------------


def test_datetimes_come_back_in_utc_and_naive_ones_are_refused(sqlite_url: str) -> None:
    db = Database(sqlite_url)
    db.migrate()
    paris = timezone(timedelta(hours=1))
    moment = datetime(2026, 3, 29, 2, 30, 15, 123456, tzinfo=paris)
    with db.session() as s:
        s.add(QueueJob(kind="k", payload=[], max_attempts=None, run_at=moment))
    with db.session() as s:
        got = s.scalars(select(QueueJob.run_at)).one()
    assert got == moment
    assert got.tzinfo == UTC
    naive = datetime(2026, 1, 1)
    with db.session() as s:
        s.add(QueueJob(kind="k", payload=[], max_attempts=None, run_at=naive))
        with pytest.raises(StatementError, match="naive datetime"):
            s.flush()
        s.rollback()
    db.dispose()


def test_public_api() -> None:
    import inspect as pyinspect

    import oots.store.queue

    for name in oots.store.__all__:
        assert hasattr(oots.store, name), name
    for name in oots.store.queue.__all__:
        assert hasattr(oots.store.queue, name), name
    public = {
        n
        for n, v in vars(oots.store.queue).items()
        if not n.startswith("_") and getattr(v, "__module__", None) == "oots.store.queue" and pyinspect.isroutine(v)
    }
    assert public <= set(oots.store.queue.__all__)
    assert "oots.store.models" in oots.store.MODEL_MODULES


# --- writing migrations ---------------------------------------------------------------------------


def test_new_revision_continues_a_branch_or_starts_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    import oots.store.database as database
    from oots.store.revision import new_revision

    copy = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS_DIR, copy, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(database, "MIGRATIONS_DIR", copy)
    follow = new_revision("store", "nothing new")
    assert follow.parent == copy / "versions"
    assert follow.name == "store_0002_nothing_new.py"
    text_ = follow.read_text(encoding="utf-8")
    assert "down_revision: str | Sequence[str] | None = 'store_0001'" in text_
    assert "branch_labels: str | Sequence[str] | None = None" in text_
    start = new_revision("zeta", "first tables")
    assert start.name == "zeta_0001_first_tables.py"
    assert "branch_labels: str | Sequence[str] | None = ('zeta',)" in start.read_text(encoding="utf-8")
    with pytest.raises(ConfigError):
        new_revision("Bad-Owner", "x")


@pytest.mark.postgres
def test_processes_starting_together_migrate_once(postgres_database: Callable[[], str]) -> None:
    import threading

    url = postgres_database()
    results: list[set[str]] = []
    errors: list[BaseException] = []

    def start() -> None:
        db = Database(url)
        try:
            results.append(db.migrate())
        except BaseException as exc:
            errors.append(exc)
        finally:
            db.dispose()

    threads = [threading.Thread(target=start) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert results == [heads()] * 3


def test_a_sqlite_begin_that_finds_the_write_lock_taken_fails_as_sqlalchemy_errors_do(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """BEGIN goes to the driver directly; when the busy timeout runs out it still raises SQLAlchemy's
    OperationalError (a DBAPIError, what the worker and the callers catch), not the driver's own."""
    import sqlite3

    from sqlalchemy.exc import DBAPIError, OperationalError

    import oots.store.database as database_module

    monkeypatch.setattr(database_module, "SQLITE_BUSY_TIMEOUT_MS", 50)
    db = Database(sqlite_url)
    db.migrate()
    holder = sqlite3.connect(db.url.database or "", isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")
        with pytest.raises(OperationalError) as info, db.connect(immediate=True) as conn:
            conn.execute(select(1))
        assert isinstance(info.value, DBAPIError)
        assert isinstance(info.value.orig, sqlite3.OperationalError)
        assert "BEGIN IMMEDIATE" in str(info.value)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    with db.connect(immediate=True) as conn:  # the lock given back: the next writer goes ahead
        assert conn.execute(select(1)).scalar() == 1
    db.dispose()
