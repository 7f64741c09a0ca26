"""The PostgreSQL server the benchmarks may use, when one answers.

``make bench`` names a server on the local machine by default; without one running there, the
PostgreSQL figures are skipped with a line saying so, and the rest of the benchmarks still run.
"""

from __future__ import annotations

import os

#: Seconds to wait for the server's first answer.
CONNECT_TIMEOUT_SECONDS = 3

_SET_ONE = "set OOTS_BENCH_POSTGRES_URL or OOTS_TEST_POSTGRES_URL"


def configured() -> str | None:
    """The server URL the environment names (``OOTS_BENCH_POSTGRES_URL``, else ``OOTS_TEST_POSTGRES_URL``)."""
    return os.environ.get("OOTS_BENCH_POSTGRES_URL") or os.environ.get("OOTS_TEST_POSTGRES_URL") or None


def answering(server: str | None, what: str) -> str | None:
    """``server`` when a PostgreSQL server answers there; otherwise ``None``, having printed why ``what``
    (the figures that needed it) is skipped."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import DBAPIError
    from sqlalchemy.pool import NullPool

    from oots.store.database import normalise_url

    if not server:
        print(f"   {what}: skipped ({_SET_ONE})")
        return None
    url = normalise_url(server)
    engine = create_engine(url, poolclass=NullPool, connect_args={"connect_timeout": CONNECT_TIMEOUT_SECONDS})
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except DBAPIError:
        where = url.render_as_string(hide_password=True)
        print(f"   {what}: skipped (no PostgreSQL server answers at {where}; start one there or {_SET_ONE})")
        return None
    finally:
        engine.dispose()
    return server
