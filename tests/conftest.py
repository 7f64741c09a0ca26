"""Shared test fixtures. Test data comes from the specification kit in ../shared/spec."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SPEC = Path(os.environ.get("OOTS_TEST_SPEC_DIR", ROOT.parent / "shared" / "spec"))


@pytest.fixture(scope="session")
def spec_dir() -> Path:
    """The read-only specification kit (official schemas, rules, samples, captures)."""
    if not SPEC.is_dir():
        pytest.skip(f"the specification kit is not at {SPEC} (set OOTS_TEST_SPEC_DIR)")
    return SPEC


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No OOTS_ settings from the caller's environment leak into a test."""
    for name in list(os.environ):
        if name.startswith("OOTS_") and not name.startswith("OOTS_TEST_"):
            monkeypatch.delenv(name)
    return monkeypatch


@pytest.fixture(autouse=True)
def _oots_environment_restored() -> Iterator[None]:
    """What a test leaves in ``OOTS_*`` variables does not reach the next one.

    Commands run in-process (``oots cs serve`` hands its options to the server through the
    environment) would otherwise point every later test's settings at their database and keys.
    """
    before = {name: value for name, value in os.environ.items() if name.startswith("OOTS_")}
    yield
    for name in [name for name in os.environ if name.startswith("OOTS_")]:
        if name not in before:
            del os.environ[name]
    os.environ.update(before)


# --- databases ------------------------------------------------------------------------------------

POSTGRES_ENV = "OOTS_TEST_POSTGRES_URL"


@pytest.fixture(scope="session")
def postgres_server() -> str:
    """URL of the PostgreSQL server named by ``OOTS_TEST_POSTGRES_URL`` (its own database is never touched).

    Skips, saying why, when the variable is not set or the server does not answer.
    """
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import DBAPIError
    from sqlalchemy.pool import NullPool

    from oots.store.database import normalise_url

    raw = os.environ.get(POSTGRES_ENV, "").strip()
    if not raw:
        pytest.skip(
            f"{POSTGRES_ENV} is not set: PostgreSQL tests need a server (e.g. postgresql://postgres@127.0.0.1/test)"
        )
    url = normalise_url(raw)
    engine = create_engine(url, poolclass=NullPool, connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except DBAPIError as exc:
        pytest.skip(f"the PostgreSQL server {url.render_as_string()} is unreachable: {exc.orig}")
    finally:
        engine.dispose()
    return url.render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def postgres_database(postgres_server: str) -> Iterator[Callable[[], str]]:
    """A factory of fresh, empty PostgreSQL databases with random names, all dropped at the end."""
    from oots.store.scratch import create_database, drop_database

    made: list[str] = []

    def make() -> str:
        url = create_database(postgres_server, prefix="oots_test")
        made.append(url)
        return url

    yield make
    for url in made:
        drop_database(url, server_url=postgres_server)


@pytest.fixture(scope="session")
def postgres_url(postgres_database: Callable[[], str]) -> str:
    """One fresh PostgreSQL database for the test session (dropped at the end). Mark users ``postgres``."""
    return postgres_database()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """URL of a SQLite file in the test's own temporary directory (not created yet)."""
    return f"sqlite:///{(tmp_path / 'oots.db').as_posix()}"
