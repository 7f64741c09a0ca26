"""The requester's rows as the steps of an exchange read and change them: plain objects, Core statements.

A step of :class:`~oots.requester.exchange.Requester` reads an exchange (and, for an answer, its
requests) with one statement built once, changes attributes of the records it got, makes new ones
(the requests of the explicit request, the evidence of an answer), and writes them all when it ends
(:func:`write`): one ``INSERT`` per table for the new rows, one ``UPDATE`` per changed row naming only
the columns that changed. Nothing is read back. The ORM (``oots.requester.models``) stays the schema;
its unit of work, identity map and per-object bookkeeping would only add cost to the exchange's hot
steps, each of which touches a handful of rows once.

A record remembers which of its columns were assigned since it was read (or, for a new one, that it is
new); :func:`write` clears that, so writing twice writes nothing the second time.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, ClassVar, Self

from sqlalchemy import Connection, Table, bindparam, func, insert, select, update

from oots.requester.models import RequesterEvidence, RequesterExchange, RequesterRequest

__all__ = [
    "EVIDENCE_COLUMNS",
    "ExchangeRecord",
    "RequestRecord",
    "insert_evidence",
    "load_answered",
    "load_exchange",
    "load_preview_request",
    "stored_evidence_bytes",
    "write",
]

_EXCHANGES: Table = RequesterExchange.__table__  # type: ignore[assignment]
_REQUESTS: Table = RequesterRequest.__table__  # type: ignore[assignment]
_EVIDENCE: Table = RequesterEvidence.__table__  # type: ignore[assignment]


class _Record:
    """Columns as attributes; assigning one marks it changed (see the module docstring)."""

    __slots__ = ("_changed", "_new")
    table: ClassVar[Table]
    columns: ClassVar[tuple[str, ...]]

    _changed: set[str]
    _new: bool

    def __init__(self, values: Mapping[str, Any]) -> None:
        """A new row (inserted by :func:`write`); a column not in ``values`` is NULL."""
        setter = object.__setattr__
        for name in self.columns:
            setter(self, name, values.get(name))
        setter(self, "_changed", set())
        setter(self, "_new", True)

    @classmethod
    def _stored(cls, values: Sequence[Any]) -> Self:
        """A row as read: ``values`` in the order of :attr:`columns`."""
        record = cls.__new__(cls)
        setter = object.__setattr__
        for name, value in zip(cls.columns, values, strict=True):
            setter(record, name, value)
        setter(record, "_changed", set())
        setter(record, "_new", False)
        return record

    def __setattr__(self, name: str, value: Any) -> None:
        object.__setattr__(self, name, value)
        self._changed.add(name)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {getattr(self, 'id', None)!r}{' new' if self._new else ''}>"

    @property
    def changed(self) -> frozenset[str]:
        """The columns assigned since the record was read or last written."""
        return frozenset(self._changed)

    def _values(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.columns}


class ExchangeRecord(_Record):
    """A row of ``requester_exchanges`` (see :class:`~oots.requester.models.RequesterExchange`)."""

    table = _EXCHANGES
    columns = tuple(c.name for c in _EXCHANGES.c)
    __slots__ = columns

    id: str
    client_id: str
    procedure: str
    country: str
    subject: Any
    wanted: Any
    requirements: Any
    state: str
    reason: str | None
    detail: str | None
    preview: bool
    explicit_request_given: bool
    return_url: str | None
    version: int
    created_at: dt.datetime
    updated_at: dt.datetime
    deadline: dt.datetime


class RequestRecord(_Record):
    """A row of ``requester_requests`` (see :class:`~oots.requester.models.RequesterRequest`); a new one
    has no ``id`` (the database numbers it)."""

    table = _REQUESTS
    columns = tuple(c.name for c in _REQUESTS.c)
    __slots__ = columns

    id: int | None
    exchange_id: str
    position: int
    requirement_id: str
    evidence_type: str
    data_service: Any
    provider: Any
    access_point: str
    access_point_type: str | None
    specification: str
    status: str
    conversation_id: str | None
    request_id: str | None
    first_request_id: str | None
    message_id: str | None
    preview_location: str | None
    preview_method: str | None
    error_code: str | None
    error_detail: str | None


#: The columns of a new ``requester_evidence`` row (all but its id) — :func:`insert_evidence` takes them.
EVIDENCE_COLUMNS = tuple(c.name for c in _EVIDENCE.c if c.name != "id")

_x, _r = _EXCHANGES.c, _REQUESTS.c
_LOAD_EXCHANGE = select(_EXCHANGES).where(_x.id == bindparam("exchange"))
#: The same, the row locked until the transaction ends (PostgreSQL; SQLite's writers take turns anyway):
#: the steps of one exchange (an answer, a cancel, a timeout) run one after the other, each reading what
#: the one before it wrote, instead of the later one writing over the earlier one.
_LOCK_EXCHANGE = _LOAD_EXCHANGE.with_for_update()
#: Every request of the exchange whose request answers ``request_id``, by position, each row with the
#: exchange's columns (labelled ``x_<name>``): an answer's request, its exchange and the next to send, in one read.
_ANSWERED = (
    select(_REQUESTS, *(c.label(f"x_{c.name}") for c in _EXCHANGES.c))
    .join_from(_REQUESTS, _EXCHANGES, _x.id == _r.exchange_id)
    .where(
        _r.exchange_id
        == select(_r.exchange_id).where(_r.request_id == bindparam("request_id")).correlate(None).scalar_subquery()
    )
    .order_by(_r.position)
    .with_for_update()  # the exchange and its requests locked (as _LOCK_EXCHANGE), in the same read
)
#: The same, for the request of the AS4 conversation ``conversation`` (an error answer without a request id).
_IN_CONVERSATION = (
    select(_REQUESTS, *(c.label(f"x_{c.name}") for c in _EXCHANGES.c))
    .join_from(_REQUESTS, _EXCHANGES, _x.id == _r.exchange_id)
    .where(
        _r.exchange_id
        == select(_r.exchange_id)
        .where(_r.conversation_id == bindparam("conversation"))
        .correlate(None)
        .scalar_subquery()
    )
    .order_by(_r.position)
    .with_for_update()
)
#: The exchange's latest request that sent the user to a preview (waiting for it or answered since).
_PREVIEW_REQUEST = (
    select(_REQUESTS)
    .where(_r.exchange_id == bindparam("exchange"), _r.preview_location.is_not(None))
    .order_by(_r.position.desc())
    .limit(1)
)
#: The SET clause of an update is the parameters' column names (``b_id`` is the row's key): one
#: statement, compiled once per set of changed columns.
_UPDATE = {
    _EXCHANGES.name: update(_EXCHANGES).where(_x.id == bindparam("b_id")),
    _REQUESTS.name: update(_REQUESTS).where(_r.id == bindparam("b_id")),
}
_INSERT = {_EXCHANGES.name: insert(_EXCHANGES), _REQUESTS.name: insert(_REQUESTS)}
_INSERT_EVIDENCE = insert(_EVIDENCE)
_EVIDENCE_BYTES = select(func.coalesce(func.sum(func.length(_EVIDENCE.c.content)), 0)).where(
    _EVIDENCE.c.exchange_id == bindparam("exchange")
)
_SPLIT = len(RequestRecord.columns)


def load_exchange(conn: Connection, exchange_id: str, *, lock: bool = False) -> ExchangeRecord | None:
    """The exchange ``exchange_id``; with ``lock`` (a step that changes it), its row locked until the
    transaction ends: a step of the same exchange in another transaction waits, then reads what this one wrote."""
    row = conn.execute(_LOCK_EXCHANGE if lock else _LOAD_EXCHANGE, {"exchange": exchange_id}).first()
    return None if row is None else ExchangeRecord._stored(row)


def load_answered(conn: Connection, request_id: str) -> tuple[ExchangeRecord | None, list[RequestRecord]]:
    """The exchange one of whose requests has ``request_id``, and all its requests by position, their rows
    locked until the transaction ends (see :func:`load_exchange`)."""
    rows = conn.execute(_ANSWERED, {"request_id": request_id}).all()
    if not rows:
        return None, []
    exchange = ExchangeRecord._stored(rows[0][_SPLIT:])
    return exchange, [RequestRecord._stored(row[:_SPLIT]) for row in rows]


def load_conversation(conn: Connection, conversation_id: str) -> tuple[ExchangeRecord | None, list[RequestRecord]]:
    """The exchange one of whose requests went out in the AS4 conversation ``conversation_id``, and all
    its requests by position, locked (as :func:`load_answered`)."""
    rows = conn.execute(_IN_CONVERSATION, {"conversation": conversation_id}).all()
    if not rows:
        return None, []
    exchange = ExchangeRecord._stored(rows[0][_SPLIT:])
    return exchange, [RequestRecord._stored(row[:_SPLIT]) for row in rows]


def load_preview_request(conn: Connection, exchange_id: str) -> RequestRecord | None:
    """The exchange's latest request that sent the user to a preview (waiting for it, or answered since)."""
    row = conn.execute(_PREVIEW_REQUEST, {"exchange": exchange_id}).first()
    return None if row is None else RequestRecord._stored(row)


def write(conn: Connection, records: Iterable[_Record]) -> None:
    """Insert the new records (one statement per table, in the order given) and update the changed ones."""
    new: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        if record._new:
            values = record._values()
            if values.get("id") is None:
                del values["id"]
            new.setdefault(record.table.name, []).append(values)
            object.__setattr__(record, "_new", False)
        elif record._changed:
            values = {name: getattr(record, name) for name in record._changed}
            values["b_id"] = getattr(record, "id")  # noqa: B009 - every record has an id once stored
            conn.execute(_UPDATE[record.table.name], values)
        record._changed.clear()
    for table, rows in new.items():
        conn.execute(_INSERT[table], rows)


def insert_evidence(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Keep received documents: rows of :data:`EVIDENCE_COLUMNS`, in one statement."""
    if rows:
        conn.execute(_INSERT_EVIDENCE, rows)


def stored_evidence_bytes(conn: Connection, exchange_id: str) -> int:
    """The bytes of the documents kept for the exchange so far."""
    return int(conn.execute(_EVIDENCE_BYTES, {"exchange": exchange_id}).scalar_one())
