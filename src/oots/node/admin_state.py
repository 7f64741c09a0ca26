"""What the admin area remembers between requests, kept in the node's database so that every process
serving the node shares it and a restart keeps it: wrong passwords per client (:class:`LoginThrottle`)
and the sessions (:class:`AdminSessions`).

The methods block on the database: the area calls them in the node's worker threads
(:func:`oots.threads.run_in_thread`), never on the event loop.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sqlalchemy import Table, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite

from oots.node.models import AdminLoginFailure, AdminSession

if TYPE_CHECKING:
    from oots.store import Database

__all__ = [
    "FAILURES_ALLOWED",
    "FAILURE_WINDOW",
    "FIRST_PAUSE",
    "AdminSessions",
    "LoginThrottle",
]

#: Wrong passwords one client may give in a row (each within :data:`FAILURE_WINDOW` of the one before)
#: before it must wait.
FAILURES_ALLOWED = 5
FAILURE_WINDOW = dt.timedelta(minutes=15)
#: The first wait; each further wrong password doubles it, up to the window.
FIRST_PAUSE = dt.timedelta(seconds=30)

_FAILURES: Table = AdminLoginFailure.__table__  # type: ignore[assignment]
_SESSIONS: Table = AdminSession.__table__  # type: ignore[assignment]
_NEW_CLIENT = {
    "postgresql": postgresql.insert(_FAILURES).on_conflict_do_nothing(index_elements=["client"]),
    "sqlite": sqlite.insert(_FAILURES).on_conflict_do_nothing(index_elements=["client"]),
}


def _forget(table: Table, key: str, column: str, before: dt.datetime) -> Any:
    """Delete the rows of ``table`` whose ``column`` is at or before ``before``, passing over the rows
    another transaction holds (two cleanups at once on PostgreSQL never wait for each other)."""
    old = select(table.c[key]).where(table.c[column] <= before).with_for_update(skip_locked=True)
    return delete(table).where(table.c[key].in_(old))


def _seconds(left: dt.timedelta) -> int:
    """A wait in whole seconds, rounded up (0 when it is over)."""
    return max(0, int(left.total_seconds() + 0.999))


class LoginThrottle:
    """Wrong admin passwords per client: after :data:`FAILURES_ALLOWED` in a row, that client waits
    (30 s, doubling with every further wrong password, at most the window) and its tries are refused
    without hashing, so guessing is slow and cannot keep the node's CPU busy.

    A try is counted *before* its password is checked (:meth:`attempt`, under a lock of the client's
    row), so tries sent at once to several processes get no more checks than tries sent one after the
    other; a right password then clears the client (:meth:`succeeded`). A client's count is forgotten
    when its last wrong password is older than the window. ``client`` is an opaque key (the area passes
    a keyed hash of the address).
    """

    def __init__(self, database: Database, clock: Callable[[], dt.datetime]) -> None:
        self._db = database
        self._clock = clock
        self._new_client = _NEW_CLIENT[database.dialect]

    def wait(self, client: str) -> int:
        """Seconds ``client`` must still wait before its next try (0: it may try now); reads only."""
        with self._db.connect() as connection:
            paused = connection.execute(
                select(_FAILURES.c.paused_until).where(_FAILURES.c.client == client)
            ).scalar_one_or_none()
        return 0 if paused is None else _seconds(paused - self._clock())

    def attempt(self, client: str) -> tuple[int, int]:
        """Count a try of ``client`` before its password is checked: ``(0, n)`` when it may go on, ``n``
        being its tries in a row counting this one; ``(seconds, 0)`` when it must wait (not counted).

        Also forgets the clients whose last wrong password is older than the window."""
        now = self._clock()
        with self._db.connect(immediate=True) as connection:
            connection.execute(_forget(_FAILURES, "client", "last_at", now - FAILURE_WINDOW))
            # the row exists before it is locked: two first tries of one client cannot both insert it
            connection.execute(self._new_client, {"client": client, "failures": 0, "last_at": now})
            row = connection.execute(
                select(_FAILURES.c.failures, _FAILURES.c.last_at, _FAILURES.c.paused_until)
                .where(_FAILURES.c.client == client)
                .with_for_update()
            ).one()
            if row.paused_until is not None and row.paused_until > now:
                return _seconds(row.paused_until - now), 0
            failures = 1 if now - row.last_at >= FAILURE_WINDOW else row.failures + 1
            values: dict[str, Any] = {"failures": failures, "last_at": now, "paused_until": None}
            over = failures - FAILURES_ALLOWED
            if over >= 0:
                values["paused_until"] = now + min(FIRST_PAUSE * 2 ** min(over, 16), FAILURE_WINDOW)
            connection.execute(update(_FAILURES).where(_FAILURES.c.client == client).values(values))
        return 0, failures

    def succeeded(self, client: str) -> None:
        """A right password: ``client`` starts again from nothing."""
        with self._db.connect(immediate=True) as connection:
            connection.execute(delete(_FAILURES).where(_FAILURES.c.client == client))


def _id_hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


class AdminSessions:
    """The admin sessions: a random id for the cookie, a row under its SHA-256 for the server.

    A session is valid while its row exists, has not expired and is not revoked; logging out revokes
    it, so a copy of the cookie opens nothing afterwards. Expired rows are removed when the next
    session starts.
    """

    def __init__(self, database: Database, clock: Callable[[], dt.datetime], minutes: int) -> None:
        self._db = database
        self._clock = clock
        self._length = dt.timedelta(minutes=minutes)

    def start(self, kind: str) -> str:
        """A new session of ``kind`` (``password`` or ``eid``): its id, for the cookie."""
        session_id = secrets.token_hex(32)
        now = self._clock()
        with self._db.connect(immediate=True) as connection:
            connection.execute(_forget(_SESSIONS, "id_hash", "expires_at", now))
            connection.execute(
                _SESSIONS.insert().values(
                    id_hash=_id_hash(session_id), kind=kind, created_at=now, expires_at=now + self._length
                )
            )
        return session_id

    def kind_of(self, session_id: str) -> str | None:
        """The kind of the live session ``session_id`` (``None``: unknown, expired or revoked)."""
        with self._db.connect() as connection:
            row = connection.execute(
                select(_SESSIONS.c.kind, _SESSIONS.c.expires_at, _SESSIONS.c.revoked_at).where(
                    _SESSIONS.c.id_hash == _id_hash(session_id)
                )
            ).one_or_none()
        if row is None or row.revoked_at is not None or row.expires_at <= self._clock():
            return None
        kind: str = row.kind
        return kind

    def revoke(self, session_id: str) -> None:
        """End the session ``session_id`` (logout): its cookie is refused from now on, wherever it is."""
        with self._db.connect(immediate=True) as connection:
            connection.execute(
                update(_SESSIONS)
                .where(_SESSIONS.c.id_hash == _id_hash(session_id), _SESSIONS.c.revoked_at.is_(None))
                .values(revoked_at=self._clock())
            )
