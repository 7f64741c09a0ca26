"""Throw-away PostgreSQL databases (tests, benchmarks, local networks): create one, drop it after.

``server_url`` names any database on the server (it is only used to connect); the new database gets
a random name with the given prefix. Nothing here touches the database named in ``server_url``.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from oots.errors import StoreError
from oots.store.database import normalise_url

__all__ = ["create_database", "drop_database", "scratch_database"]

_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def _admin(url: URL) -> str:
    return url.render_as_string(hide_password=False)


def create_database(server_url: str | URL, *, prefix: str = "oots_scratch") -> str:
    """Create an empty database with a random name on the server of ``server_url``; return its URL."""
    url = normalise_url(server_url)
    if url.get_backend_name() != "postgresql":
        raise StoreError("scratch databases are made on PostgreSQL only")
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    if not _NAME.match(name):
        raise StoreError(f"{name!r} is not a plain database name")
    engine = create_engine(_admin(url), isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        with engine.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except DBAPIError as exc:
        raise StoreError(f"cannot create a database on {url.render_as_string()}: {exc.orig}") from exc
    finally:
        engine.dispose()
    return _admin(url.set(database=name))


def drop_database(url: str | URL, *, server_url: str | URL | None = None) -> None:
    """Drop the database named by ``url`` (closing its open connections), connected via ``server_url``."""
    target = normalise_url(url)
    name = target.database or ""
    if not _NAME.match(name):
        raise StoreError(f"{name!r} is not a plain database name")
    admin = normalise_url(server_url) if server_url is not None else target.set(database="postgres")
    engine = create_engine(_admin(admin), isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        with engine.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    except DBAPIError as exc:
        raise StoreError(f"cannot drop the database {name}: {exc.orig}") from exc
    finally:
        engine.dispose()


@contextmanager
def scratch_database(server_url: str | URL, *, prefix: str = "oots_scratch") -> Iterator[str]:
    """A new empty database for the duration of the block (dropped afterwards, even on errors)."""
    url = create_database(server_url, prefix=prefix)
    try:
        yield url
    finally:
        drop_database(url, server_url=server_url)
