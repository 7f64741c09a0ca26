"""Fixtures of the provider tests: a PostgreSQL database of our own, created and dropped per session."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh database on the ``OOTS_TEST_POSTGRES_URL`` server (never the server's own databases)."""
    server = os.environ.get("OOTS_TEST_POSTGRES_URL")
    if not server:
        pytest.skip("OOTS_TEST_POSTGRES_URL is not set (e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test)")
    url = sa.make_url(server)
    name = f"oots_provider_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except sa.exc.OperationalError as exc:
        admin.dispose()
        pytest.skip(f"cannot reach PostgreSQL at OOTS_TEST_POSTGRES_URL: {exc.orig}")
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
