"""Failures of a node's own several tests answer: each names a host, a URL or a file (``db.internal``)
that must not reach the caller, with the status it is answered (503 an outage beneath the node, 500 a
failure of its own)."""

from __future__ import annotations

from sqlalchemy.exc import OperationalError

from oots.errors import ConfigError, StoreError, StoreUnavailable, TransportError

#: What no answer may carry of these failures.
SECRET_HOST = "db.internal"

NODE_FAILURES: list[tuple[BaseException, int]] = [
    (StoreUnavailable("the database at postgresql://oots@db.internal/node cannot be reached"), 503),
    (TransportError("connect to https://register.db.internal refused"), 503),
    (
        OperationalError(
            "SELECT 1", {}, Exception('connection to server at "db.internal" (10.0.0.7), port 5432 failed: refused')
        ),
        503,
    ),
    (StoreError("the database at postgresql://oots@db.internal/node is at schema 0042"), 500),
    (ConfigError("the key file /etc/oots/db.internal.pem cannot be read"), 500),
]
