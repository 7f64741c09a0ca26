"""The evidence requester's exchanges: discovery, choices, explicit request, requests, answers, previews.

:class:`Requester` holds no state of its own: every operation takes a database session, reads the
exchange, applies one event of :mod:`oots.requester.states`, and writes the result in that session's
transaction — together with the queue jobs (discovery, webhook) and the AS4 messages the change
calls for. Any process serving the node can therefore take the next step of any exchange.

Timeouts need no job of their own: a step that starts a wait sets the exchange's ``deadline``, and the
node's workers sweep now and then for exchanges that have not ended and whose deadline has passed
(:meth:`Requester.expire_due`, run by the role's periodic sweep), so the hot steps write no timeout job.

Answers are matched to their request by the ``QueryRequest`` id the response names *and* the AS4
conversation id it came in (never by guessing), and must come from the access point the request went
to: an answer that does not match is dropped and logged.

Every step is also written to the node's audit journal (``oots.audit``, side ``requester``) in the same
transaction as the state change: the exchange created, discovery done, the explicit request, each
request sent and each answer received (with the AS4 message ids that link the entry to the access
point's records), the preview asked for and the user's return, failures, timeouts and cancellations.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import secrets
import uuid
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar, cast
from urllib.parse import urlsplit

from sqlalchemy import Connection, and_, bindparam, func, or_, select
from sqlalchemy.orm import Session

from oots import edm
from oots.as4 import profile
from oots.as4.model import PartyId, Payload, UserMessage
from oots.as4.msh import VerifiedMessage
from oots.audit.journal import Entry, Journal, Side
from oots.audit.journal import Event as Step
from oots.cs.client import ClientCore
from oots.errors import LocalProtocolError, ModelError, NotFound, SecurityError, XmlError
from oots.requester import discovery, records
from oots.requester.models import (
    ERROR_CODE_CHARACTERS,
    EVIDENCE_ID_CHARACTERS,
    MEDIA_TYPE_CHARACTERS,
    PREVIEW_LOCATION_CHARACTERS,
    TITLE_CHARACTERS,
    RequesterEvidence,
    RequesterExchange,
    RequesterRequest,
)
from oots.requester.outbox import Outbox
from oots.requester.records import ExchangeRecord, RequestRecord
from oots.requester.states import REASON_TEXT, TERMINAL, Event, Reason, RequestStatus, State, next_state
from oots.settings import Settings
from oots.store.queue import enqueue
from oots.store.wake import on_commit

__all__ = [
    "CHANGED_TOPIC",
    "DISCOVER_JOB",
    "EXPIRE_JOB",
    "WEBHOOK_JOB",
    "Discovered",
    "Document",
    "ExchangeView",
    "RequestAhead",
    "Requester",
    "subject_from_json",
]

log = logging.getLogger(__name__)
_P = ParamSpec("_P")
_R = TypeVar("_R")

DISCOVER_JOB = "requester.discover"
#: The timeout job an exchange had before the periodic sweep (:meth:`Requester.expire_due`) replaced it;
#: no longer made. A database from before may still hold some: its handler ends that exchange if due.
EXPIRE_JOB = "requester.expire"
WEBHOOK_JOB = "requester.webhook"
#: The :mod:`oots.store.wake` topic fired, keyed by exchange id, when a changed exchange commits.
CHANGED_TOPIC = "requester.exchange"

#: EDM error codes of an answer → the reason the exchange fails with.
_ERROR_REASONS: Mapping[str, Reason] = {
    "EDM:ERR:0001": Reason.LEVEL_OF_ASSURANCE_TOO_LOW,
    "EDM:ERR:0002": Reason.REQUEST_REFUSED,
    "EDM:ERR:0003": Reason.REQUEST_REFUSED,
    "EDM:ERR:0004": Reason.PERSON_NOT_FOUND,
    "EDM:ERR:0005": Reason.TIMEOUT,
    "EDM:ERR:0006": Reason.EVIDENCE_NOT_AVAILABLE,
    "EDM:ERR:0007": Reason.EVIDENCE_NOT_AVAILABLE,
    "EDM:ERR:0008": Reason.PROVIDER_ERROR,
}


class _Unit:
    """What a running step has to write when it ends: the records it read or made, in that order, and
    its journal entries, in the order of its steps."""

    __slots__ = ("entries", "records")

    def __init__(self) -> None:
        self.records: list[ExchangeRecord | RequestRecord] = []
        self.entries: list[Entry] = []


#: Where a step keeps its :class:`_Unit` (in its session's ``info``) until it ends.
_UNIT = "oots.requester.unit"


def _step(
    step: Callable[Concatenate[Requester, Session, _P], _R],
) -> Callable[Concatenate[Requester, Session, _P], _R]:
    """Run a step of an exchange, then write what it changed: the records it read or made, in that order
    (:func:`oots.requester.records.write`: the new ones inserted, the changed ones updated, column by
    column), then its journal entries (:meth:`~oots.audit.journal.Journal.append_all`: the head locked
    once, at the end of the transaction's work). A step that raises writes nothing (its transaction is
    rolled back). A step reads back none of its own changes (the requests it makes, it keeps)."""

    @functools.wraps(step)
    def once(self: Requester, session: Session, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        unit = _Unit()
        outer = session.info.get(_UNIT)
        session.info[_UNIT] = unit
        try:
            result = step(self, session, *args, **kwargs)
        finally:
            session.info[_UNIT] = outer
        records.write(session.connection(), unit.records)
        if unit.entries and self.journal is not None:
            self.journal.append_all(session, unit.entries)
        return result

    return once


def _kept(session: Session, *rows: ExchangeRecord | RequestRecord) -> None:
    """Write ``rows`` when the running step ends (outside a step they are only read)."""
    unit: _Unit | None = session.info.get(_UNIT)
    if unit is not None:
        unit.records.extend(rows)


def subject_from_json(data: Any) -> edm.Person | edm.LegalPerson:
    """The user as the portal gives it: ``{"natural_person": {...}}`` or ``{"legal_person": {...}}``
    (the JSON form of ``sdg:Person`` / ``sdg:LegalPerson``, level of assurance included).

    A name longer than :data:`oots.edm.PERSON_NAME_CHARACTERS`, another text longer than
    :data:`oots.edm.PERSON_TEXT_CHARACTERS` or a list longer than :data:`oots.edm.PERSON_LIST_ITEMS`
    is a ModelError naming the field (the provider holds a request to the same limits)."""
    if not isinstance(data, Mapping) or len(data) != 1:
        raise ModelError("the person is an object with exactly one of natural_person and legal_person")
    ((kind, value),) = data.items()
    edm.check_person_sizes(value, f"person.{kind}")
    subject: edm.Person | edm.LegalPerson
    if kind == "natural_person":
        subject = edm.object_from_json(edm.Person, value, "natural_person")
    elif kind == "legal_person":
        subject = edm.object_from_json(edm.LegalPerson, value, "legal_person")
    else:
        raise ModelError(f"unknown kind of person {kind!r}; expected natural_person or legal_person")
    if subject.level_of_assurance is None:
        raise ModelError(f"{kind}.level_of_assurance is needed (the level of the user's eID login)")
    return subject


@dataclass(frozen=True)
class RequestAhead:
    """The first request of an explicit request step, made before the step for an exchange at
    ``version``: the ``QueryRequest``, its conversation id, its AS4 message and payload, and the
    message packed for the partner (see :meth:`Requester.explicit_request_ahead`)."""

    version: int
    request: edm.QueryRequest
    conversation_id: str
    message: UserMessage
    payload: Payload
    packed: object | None

    @property
    def made(self) -> tuple[edm.QueryRequest, str, UserMessage, Payload, object | None]:
        return self.request, self.conversation_id, self.message, self.payload, self.packed


@dataclass(frozen=True)
class Discovered:
    """What the Common Services said for an exchange at ``version``: its requirements' entries, and
    whether nothing waits for the user any more — or why discovery cannot go on (``failure``)."""

    version: int
    entries: list[dict[str, Any]]
    complete: bool = False
    failure: discovery.DiscoveryFailed | None = None


@dataclass(frozen=True)
class Document:
    """One evidence document as received: its row id (``/evidence/{id}``), media type and bytes."""

    id: int
    media_type: str
    content: bytes


class ExchangeRow(Protocol):
    """The columns of an exchange the portal API shows (a row of ``_VIEW_EXCHANGE``)."""

    @property
    def id(self) -> str: ...
    @property
    def client_id(self) -> str: ...
    @property
    def state(self) -> str: ...
    @property
    def version(self) -> int: ...
    @property
    def procedure(self) -> str: ...
    @property
    def country(self) -> str: ...
    @property
    def reason(self) -> str | None: ...
    @property
    def detail(self) -> str | None: ...
    @property
    def created_at(self) -> dt.datetime: ...
    @property
    def updated_at(self) -> dt.datetime: ...
    @property
    def deadline(self) -> dt.datetime: ...
    @property
    def explicit_request_given(self) -> bool: ...
    @property
    def requirements(self) -> list[dict[str, Any]] | None: ...


class RequestRow(Protocol):
    """The columns of a request the portal API shows (a row of ``_VIEW_REQUESTS``)."""

    @property
    def id(self) -> int: ...
    @property
    def requirement_id(self) -> str: ...
    @property
    def evidence_type(self) -> str: ...
    @property
    def provider(self) -> dict[str, Any]: ...
    @property
    def status(self) -> str: ...
    @property
    def error_code(self) -> str | None: ...
    @property
    def preview_location(self) -> str | None: ...
    @property
    def preview_method(self) -> str | None: ...


class EvidenceRow(Protocol):
    """An evidence received, without its content (a row of ``_VIEW_EVIDENCE``)."""

    @property
    def id(self) -> int: ...
    @property
    def evidence_id(self) -> str: ...
    @property
    def title(self) -> str | None: ...
    @property
    def media_type(self) -> str: ...
    @property
    def request_row(self) -> int: ...
    @property
    def size(self) -> int | None:
        """The content's length in bytes."""

    @property
    def metadata_json(self) -> dict[str, Any]:
        """The evidence's ``sdg:Evidence`` metadata (JSON form)."""


@dataclass(frozen=True)
class ExchangeView:
    """What the portal API shows of an exchange: its row, its requests and its evidence, as read (rows
    of the columns the view shows, not ORM objects: a portal reads this often)."""

    exchange: ExchangeRow
    requests: Sequence[RequestRow]
    #: The evidence received, without its content (the API lists it; a download reads the content).
    evidence: Sequence[EvidenceRow]

    def to_json(self, base_url: str, lang: str = "EN") -> dict[str, Any]:
        """The exchange as the API gives it; names, titles and labels in ``lang`` where the Common Services
        (or the evidence) gave that language, else in English, else in the first one given."""
        ex = self.exchange
        preview = next((r for r in self.requests if r.status == RequestStatus.PREVIEW), None)
        requests = {r.id: r for r in self.requests}
        titles = _type_titles(ex.requirements or [], lang)
        out: dict[str, Any] = {
            "id": ex.id,
            "state": ex.state,
            "version": ex.version,
            "procedure": ex.procedure,
            "country": ex.country,
            "reason": ex.reason,
            "reason_text": REASON_TEXT[Reason(ex.reason)] if ex.reason else None,
            "detail": ex.detail,
            "created_at": ex.created_at.isoformat(),
            "updated_at": ex.updated_at.isoformat(),
            "deadline": ex.deadline.isoformat(),
            "explicit_request_given": ex.explicit_request_given,
            "requirements": [_public(e, lang) for e in ex.requirements or []],
            "requests": [
                {
                    "requirement": r.requirement_id,
                    "evidence_type": r.evidence_type,
                    "provider": discovery.text_of(r.provider.get("names", []), lang),
                    "status": r.status,
                    "error_code": r.error_code,
                }
                for r in self.requests
            ],
            "preview": None,
            "evidence": [
                {
                    "id": e.id,
                    "evidence_id": e.evidence_id,
                    "title": e.title,
                    "evidence_type_title": _evidence_type_title(e, requests.get(e.request_row), titles, lang),
                    "issuing_authority": _issuing_authority(e.metadata_json, lang),
                    "media_type": e.media_type,
                    "requirement": requests[e.request_row].requirement_id if e.request_row in requests else None,
                    "size": int(e.size or 0),
                    "href": f"{base_url}/api/v1/exchanges/{ex.id}/evidence/{e.id}",
                }
                for e in self.evidence
            ],
        }
        if preview is not None and ex.state == State.AWAITING_PREVIEW:
            out["preview"] = {"location": preview.preview_location, "method": preview.preview_method or "GET"}
        return out


def _in(item: Mapping[str, Any], one: str, many: str, lang: str) -> Any:
    """``item[one]`` in ``lang`` when discovery kept every language of it in ``item[many]``.

    An exchange discovered before the languages were kept has only ``item[one]`` (English)."""
    return discovery.text_of(item[many], lang) if item.get(many) else item.get(one)


def _type_titles(requirements: Sequence[dict[str, Any]], lang: str) -> dict[tuple[str, str], str]:
    """The title of each evidence type the requirements list, in ``lang``, by (requirement, classification)."""
    return {
        (entry["id"], etype["classification"]): _in(etype, "title", "titles", lang)
        for entry in requirements
        for lst in entry.get("lists", [])
        for etype in lst.get("evidence_types", [])
        if etype.get("title")
    }


def _evidence_type_title(
    evidence: EvidenceRow, request: RequestRow | None, titles: Mapping[tuple[str, str], str], lang: str
) -> str | None:
    """What the evidence is: its type's title as the exchange was told (the Evidence Broker), else as the
    evidence's own metadata names it (``IsConformantTo``)."""
    if request is not None and (request.requirement_id, request.evidence_type) in titles:
        return titles[(request.requirement_id, request.evidence_type)]
    conformant = (evidence.metadata_json or {}).get("is_conformant_to") or {}
    return discovery.text_of(conformant.get("titles") or [], lang) or None


def _issuing_authority(metadata: dict[str, Any] | None, lang: str) -> str | None:
    """The name of the authority that issued the evidence (``IssuingAuthority``) in ``lang``, else English."""
    authority = (metadata or {}).get("issuing_authority") or {}
    return discovery.text_of(authority.get("names") or [], lang) or None


_EXCHANGES = RequesterExchange.__table__
_REQUESTS = RequesterRequest.__table__
_EVIDENCE = RequesterEvidence.__table__

#: The reads of :meth:`Requester.view`, :meth:`Requester.peek` and the others: Core statements of the columns
#: needed, built once (with parameters) so that each read skips building and keying a statement.
_x, _r, _e = _EXCHANGES.c, _REQUESTS.c, _EVIDENCE.c
_VIEW_EXCHANGE = select(
    _x.id,
    _x.client_id,
    _x.state,
    _x.version,
    _x.procedure,
    _x.country,
    _x.reason,
    _x.detail,
    _x.created_at,
    _x.updated_at,
    _x.deadline,
    _x.explicit_request_given,
    _x.requirements,
).where(_x.id == bindparam("exchange"))
_VIEW_REQUESTS = (
    select(
        _r.id,
        _r.requirement_id,
        _r.evidence_type,
        _r.provider,
        _r.status,
        _r.error_code,
        _r.preview_location,
        _r.preview_method,
    )
    .where(_r.exchange_id == bindparam("exchange"))
    .order_by(_r.position)
)
# the documents stay in the database, only their sizes (and their metadata, for the issuer's name) are read
_VIEW_EVIDENCE = (
    select(
        _e.id,
        _e.evidence_id,
        _e.title,
        _e.media_type,
        _e.request_row,
        func.length(_e.content).label("size"),
        _e.metadata_json,
    )
    .where(_e.exchange_id == bindparam("exchange"))
    .order_by(_e.id)
)
#: Exchanges that have not ended and whose deadline is ``now`` or earlier: what the sweep ends. The index
#: on (state, deadline) answers it; no order, so a batch's read stops at its limit (the sweep takes them all).
_DUE = select(_x.id).where(_x.state.in_([s.value for s in State if s not in TERMINAL]), _x.deadline <= bindparam("now"))
#: The same, each row locked as it is taken and rows another transaction holds skipped (PostgreSQL; on
#: SQLite, which has no row locks, the statement is :data:`_DUE`).
_DUE_LOCKED = _DUE.with_for_update(skip_locked=True)
_PEEK = select(_x.version, _x.state, _x.client_id).where(_x.id == bindparam("exchange"))
#: The columns of an exchange in a list of them (:meth:`Requester.listing`), newest first.
_LISTED = select(
    _x.id,
    _x.state,
    _x.version,
    _x.procedure,
    _x.country,
    _x.reason,
    _x.created_at,
    _x.updated_at,
    _x.deadline,
).order_by(_x.created_at.desc(), _x.id.desc())
_VERSIONS = select(_x.id, _x.version).where(_x.id.in_(bindparam("exchanges", expanding=True)))
# the exchange (its owner) and, if it has it, the document
_DOCUMENT = (
    select(_x.client_id, _e.id, _e.media_type, _e.content)
    .select_from(_EXCHANGES.outerjoin(_EVIDENCE, (_e.exchange_id == _x.id) & (_e.id == bindparam("row"))))
    .where(_x.id == bindparam("exchange"))
)


def _connection(where: Session | Connection) -> Connection:
    """The connection of ``where``'s transaction (a session's changes flushed first: a read sees them)."""
    if isinstance(where, Session):
        where.flush()
        return where.connection()
    return where


class Requester:
    """The requester role's operations (see the module docstring)."""

    def __init__(
        self,
        settings: Settings,
        *,
        common_services: Callable[[], discovery.CommonServices],
        outbox: Callable[[], Outbox],
        clock: Callable[[], dt.datetime],
        journal: Journal | None = None,
    ) -> None:
        self.settings = settings
        self.config = settings.requester
        self._cs = common_services
        self._outbox = outbox
        self.clock = clock
        self.journal = journal

    # ---- reading -------------------------------------------------------------------------------

    def load(self, session: Session, exchange_id: str, client_id: str | None = None) -> ExchangeRecord:
        """The exchange (of ``client_id``, if given); in a step, its row is locked until the transaction
        ends (the exchange's other steps wait) and what the step changes on it is written."""
        in_step = session.info.get(_UNIT) is not None
        ex = records.load_exchange(session.connection(), exchange_id, lock=in_step)
        if ex is None or (client_id is not None and ex.client_id != client_id):
            raise NotFound(f"there is no exchange {exchange_id}")
        _kept(session, ex)
        return ex

    def save(self, session: Session, *changed: ExchangeRecord | RequestRecord) -> None:
        """Write what the caller changed on records a step gave back (the portal's return address, say)."""
        records.write(session.connection(), changed)

    def peek(self, where: Session | Connection, exchange_id: str, client_id: str | None = None) -> tuple[int, str]:
        """The exchange's version (its count of state changes) and state, read on their own."""
        row = _connection(where).execute(_PEEK, {"exchange": exchange_id}).first()
        if row is None or (client_id is not None and row.client_id != client_id):
            raise NotFound(f"there is no exchange {exchange_id}")
        return int(row.version), str(row.state)

    def versions(self, where: Session | Connection, exchange_ids: Collection[str]) -> dict[str, int]:
        """The versions of several exchanges, by id, in one read (an unknown id is left out)."""
        rows = _connection(where).execute(_VERSIONS, {"exchanges": list(exchange_ids)})
        return {str(row.id): int(row.version) for row in rows}

    def view(self, where: Session | Connection, exchange_id: str, client_id: str | None = None) -> ExchangeView:
        """The exchange as the portal API shows it, read with plain (Core) statements."""
        conn = _connection(where)
        row = conn.execute(_VIEW_EXCHANGE, {"exchange": exchange_id}).first()
        if row is None or (client_id is not None and row.client_id != client_id):
            raise NotFound(f"there is no exchange {exchange_id}")
        ex = cast(ExchangeRow, row)
        if not ex.explicit_request_given:
            # requests (and so evidence) are made in the transaction that records the explicit request
            return ExchangeView(ex, (), ())
        requests = conn.execute(_VIEW_REQUESTS, {"exchange": exchange_id}).all()
        evidence = conn.execute(_VIEW_EVIDENCE, {"exchange": exchange_id}).all()
        return ExchangeView(ex, cast(Sequence[RequestRow], requests), cast(Sequence[EvidenceRow], evidence))

    def listing(
        self,
        where: Session | Connection,
        client_id: str,
        *,
        state: State | None = None,
        limit: int = 50,
        after: tuple[dt.datetime, str] | None = None,
    ) -> list[dict[str, Any]]:
        """The client's exchanges, newest first (in ``state``, if given), at most ``limit``: those after the
        one made at ``after[0]`` with id ``after[1]`` (the last of the page before), or from the newest."""
        statement = _LISTED.where(_x.client_id == client_id)
        if state is not None:
            statement = statement.where(_x.state == state.value)
        if after is not None:
            made, last = after
            statement = statement.where(or_(_x.created_at < made, and_(_x.created_at == made, _x.id < last)))
        return [
            {
                "id": row.id,
                "state": row.state,
                "version": row.version,
                "procedure": row.procedure,
                "country": row.country,
                "reason": row.reason,
                "reason_text": REASON_TEXT[Reason(row.reason)] if row.reason else None,
                "created_at": row.created_at.isoformat(),
                "updated_at": row.updated_at.isoformat(),
                "deadline": row.deadline.isoformat(),
            }
            for row in _connection(where).execute(statement.limit(limit))
        ]

    def evidence(
        self, where: Session | Connection, exchange_id: str, evidence_row: int, client_id: str | None
    ) -> Document:
        """One document of the exchange, with its media type (the exchange and the document in one read)."""
        # no row has an id outside this range (and the database could not even compare one above it)
        looked_up = evidence_row if 0 < evidence_row < 2**63 else 0
        row = _connection(where).execute(_DOCUMENT, {"exchange": exchange_id, "row": looked_up}).first()
        if row is None or (client_id is not None and row.client_id != client_id):
            raise NotFound(f"there is no exchange {exchange_id}")
        if row.id is None:
            raise NotFound(f"the exchange has no evidence {evidence_row}")
        return Document(int(row.id), str(row.media_type), bytes(row.content))

    # ---- the portal's steps --------------------------------------------------------------------

    @_step
    def create(
        self,
        session: Session,
        *,
        client_id: str,
        procedure: str,
        country: str,
        subject: edm.Person | edm.LegalPerson,
        requirements: Sequence[str] = (),
        return_url: str | None = None,
        preview: bool | None = None,
        discovered: Discovered | None = None,
    ) -> ExchangeRecord:
        """A new exchange in state ``discovering``; discovery runs as a queue job.

        With ``discovered`` (what :meth:`discover_cached` found for the same procedure, country and
        requirements, with no network I/O), discovery is done in this step instead: the exchange is
        created and discovered in one transaction, without the job."""
        now = self.clock()
        key = "natural_person" if isinstance(subject, edm.Person) else "legal_person"
        ex = ExchangeRecord(
            {
                "id": secrets.token_urlsafe(18),
                "client_id": client_id,
                "procedure": procedure,
                "country": country,
                "subject": {key: edm.object_to_json(subject)},
                "wanted": list(requirements),
                "requirements": [],
                "state": State.DISCOVERING.value,
                "preview": self.config.possibility_for_preview
                if preview is None
                else preview and self.config.possibility_for_preview,
                "explicit_request_given": False,
                "return_url": return_url,
                "version": 1,
                "created_at": now,
                "updated_at": now,
                "deadline": now + dt.timedelta(seconds=self.config.choice_timeout_seconds),
            }
        )
        _kept(session, ex)
        if discovered is None:
            enqueue(session, DISCOVER_JOB, {"exchange": ex.id}, key=f"{ex.id}:1", now=now)
        self.record(
            session,
            ex,
            Step.EXCHANGE_CREATED,
            outcome=ex.state,
            details={"client": client_id, "procedure": procedure, "country": country, "preview": ex.preview},
            personal=True,
        )
        if discovered is None:
            self._webhook(session, ex)
        else:  # the webhook is of the state discovery leaves it in
            self._apply(session, ex, discovered)
        return ex

    @_step
    def discover(self, session: Session, exchange_id: str, *, ahead: Discovered | None = None) -> None:
        """Run (or continue) discovery; the job handler of :data:`DISCOVER_JOB`.

        ``ahead`` is what :meth:`discover_ahead` learnt before the job's transaction; it is used when
        the exchange has not changed since (same version), else the Common Services are asked here.
        """
        ex = self.load(session, exchange_id)
        if ex.state != State.DISCOVERING:
            return
        found = ahead if ahead is not None and ahead.version == ex.version else self._ask(ex)
        self._apply(session, ex, found)

    def _apply(self, session: Session, ex: ExchangeRecord, found: Discovered) -> None:
        """Move ``ex`` on with what discovery ``found``."""
        ex.requirements = found.entries
        if found.failure is not None:
            self._move(session, ex, Event.FAIL, found.failure.reason, found.failure.detail)
            return
        if not found.complete:
            self._move(session, ex, Event.NEEDS_CHOICE)
        elif all(e["upload"] for e in found.entries):
            self._move(session, ex, Event.FAIL, Reason.CANCELLED, "the user uploads every document")
        else:
            self._move(session, ex, Event.DISCOVERED)

    def discover_ahead(self, session: Session, exchange_id: str) -> Discovered | None:
        """What the Common Services say for an exchange being discovered (None for any other), asked
        outside the discovery job's transaction: the node's writers need not wait for their answers."""
        ex = records.load_exchange(session.connection(), exchange_id)
        if ex is None or ex.state != State.DISCOVERING:
            return None
        return self._ask(ex)

    def discover_cached(self, *, procedure: str, country: str, requirements: Sequence[str] = ()) -> Discovered | None:
        """What discovery finds for a new exchange (version 1) from the Common Services client's cache
        alone, with no network I/O; None when an answer it needs is not cached (or the client keeps
        none): discovery then runs as its queue job. Given to :meth:`create`, so that an exchange
        whose discovery the node already knows the answers for needs no job, no second transaction,
        and no wait for either."""
        client = self._cs()
        if not isinstance(client, ClientCore):
            return None
        try:
            return self._discover(discovery.CachedOnly(client), procedure, country, list(requirements), [], 1)
        except discovery.NotCached:
            return None

    def _ask(self, ex: ExchangeRecord) -> Discovered:
        """Ask the Common Services what discovery needs next (EB queries, then DSD queries); the entries
        of ``ex`` are changed in place (a record read for this step alone: it writes what is assigned)."""
        return self._discover(self._cs(), ex.procedure, ex.country, list(ex.wanted or []), ex.requirements, ex.version)

    def _discover(  # noqa: PLR0917 - private helper
        self,
        client: discovery.CommonServices,
        procedure: str,
        country: str,
        wanted: list[str],
        entries: list[dict[str, Any]] | None,
        version: int,
    ) -> Discovered:
        entries = entries or []
        try:
            if not entries:
                entries = discovery.start(
                    client, procedure=procedure, own_country=self.settings.node.country, country=country, wanted=wanted
                )
            complete = discovery.resolve(client, entries, country)
        except discovery.DiscoveryFailed as failure:
            return Discovered(version, entries, failure=failure)
        return Discovered(version, entries, complete)

    @_step
    def choose(
        self, session: Session, exchange_id: str, client_id: str | None, choices: Mapping[str, Any]
    ) -> ExchangeRecord:
        """Record the user's choices and answers; discovery goes on (ModelError for an invalid choice)."""
        ex = self.load(session, exchange_id, client_id)
        entries: list[dict[str, Any]] = ex.requirements
        discovery.apply_choices(entries, choices)  # a ModelError leaves the step unwritten
        ex.requirements = entries
        self._move(session, ex, Event.CHOSEN)
        enqueue(session, DISCOVER_JOB, {"exchange": ex.id}, key=f"{ex.id}:{ex.version}", now=self.clock())
        return ex

    @_step
    def give_explicit_request(
        self, session: Session, exchange_id: str, client_id: str | None, *, ahead: RequestAhead | None = None
    ) -> ExchangeRecord:
        """The user asked for the evidence: create one request per evidence type and send the first.

        ``ahead`` is the first request made by :meth:`explicit_request_ahead` before the step's
        transaction; it is sent when the exchange has not changed since (same version), else the
        request is made here.
        """
        ex = self.load(session, exchange_id, client_id)
        usable = ahead if ahead is not None and ahead.version == ex.version else None
        state = self._move(session, ex, Event.EXPLICIT_REQUEST)
        ex.explicit_request_given = True
        rows = self._requests_for(ex)
        _kept(session, *rows)
        assert state is State.REQUESTING
        self._send_next(session, ex, rows[0] if rows else None, after_evidence=False, ahead=usable)
        return ex

    def explicit_request_ahead(self, session: Session, exchange_id: str, client_id: str | None) -> RequestAhead | None:
        """The first request of the explicit request step, made (and packed for the partner) in a read
        transaction before the step's: building and signing it then keeps nobody's writes waiting.
        None when the step would not send one (another state, nothing to ask, an unknown partner)."""
        ex = self.load(session, exchange_id, client_id)
        if ex.state != State.AWAITING_EXPLICIT_REQUEST:
            return None
        version = ex.version
        ex.explicit_request_given = True  # as the step will have it; this record is only read
        rows = self._requests_for(ex)
        if not rows:
            return None
        try:
            return RequestAhead(version, *self._compose(ex, rows[0], None, pack=True))
        except (NotFound, SecurityError):
            return None  # the step finds the partner unknown (or its certificate expired) too, and says so

    def _requests_for(self, ex: ExchangeRecord) -> list[RequestRecord]:
        """One request per evidence type the user chose a provider for (uploads left out), in order."""
        rows: list[RequestRecord] = []
        for entry in ex.requirements:
            if entry["upload"]:
                continue
            chosen = next((lst for lst in entry["lists"] if lst["id"] == entry["chosen_list"]), None)
            if chosen is None:
                raise LocalProtocolError(f"no evidence type list is chosen for {entry['name']}; choose one first")
            for etype in chosen["evidence_types"]:
                slot = entry["types"].get(etype["classification"]) or {"providers": [], "chosen_provider": None}
                provider = next((p for p in slot["providers"] if p["id"] == slot["chosen_provider"]), None)
                if provider is None:
                    raise LocalProtocolError(
                        f"no provider offered is chosen for {etype['classification']}; choose one first"
                    )
                rows.append(
                    RequestRecord(
                        {
                            "exchange_id": ex.id,
                            "position": len(rows),
                            "requirement_id": entry["id"],
                            "evidence_type": etype["classification"],
                            "data_service": provider["data_service"],
                            "provider": provider["publisher"],
                            "access_point": provider["access_point"],
                            "access_point_type": provider["access_point_type"],
                            "specification": provider["specification"],
                            "status": RequestStatus.PENDING.value,
                        }
                    )
                )
        return rows

    @_step
    def cancel(self, session: Session, exchange_id: str, client_id: str | None) -> ExchangeRecord:
        ex = self.load(session, exchange_id, client_id)
        self._move(session, ex, Event.CANCEL, Reason.CANCELLED, "cancelled by the portal")
        return ex

    def due(self, session: Session, *, limit: int) -> list[str]:
        """The ids of up to ``limit`` exchanges that have not ended and whose deadline has passed (a plain
        read: the sweep looks with it before it takes the write lock)."""
        rows = session.connection().execute(_DUE.limit(limit), {"now": self.clock()})
        return [str(exchange_id) for exchange_id in rows.scalars()]

    def expire_due(self, session: Session, *, limit: int) -> int:
        """End up to ``limit`` exchanges whose deadline has passed, each as :meth:`expire` does, in the
        caller's (write) transaction; return how many it ended. The periodic sweep's step.

        Several processes may sweep at once: on PostgreSQL each takes only rows no other holds (``FOR
        UPDATE SKIP LOCKED``); on SQLite the write lock takes them in turn. Either way :meth:`expire`
        reads the exchange again under its row lock, so one that has just ended (or moved its deadline)
        is left as it is: no exchange is expired twice."""
        rows = session.connection().execute(_DUE_LOCKED.limit(limit), {"now": self.clock()})
        return sum(self.expire(session, str(exchange_id)) for exchange_id in rows.scalars().all())

    @_step
    def expire(self, session: Session, exchange_id: str) -> bool:
        """End the exchange with ``timeout`` if its deadline has passed and it has not ended; say whether
        it did. (Also the handler of the :data:`EXPIRE_JOB` jobs left from before the sweep.)"""
        ex = records.load_exchange(session.connection(), exchange_id, lock=True)
        if ex is None or State(ex.state) in TERMINAL or ex.deadline > self.clock():
            return False
        _kept(session, ex)
        waiting = {
            State.AWAITING_PREVIEW: "the user did not finish the preview in time",
            State.REQUESTING: "the provider did not answer in time",
        }.get(State(ex.state), "the user did not finish the choices in time")
        self._move(session, ex, Event.TIMEOUT, Reason.TIMEOUT, waiting)
        return True

    # ---- answers from providers ----------------------------------------------------------------

    @staticmethod
    def read_answer(message: VerifiedMessage) -> Any:
        """The RegRep document an answer carries, parsed as :meth:`on_message` reads it (None: it carries
        none). Raises :class:`XmlError` or :class:`ModelError` as ``edm.parse`` does. For the delivery's
        preparer: the parse then happens before the delivery's write transaction, not in it."""
        regrep = _regrep_payload(message)
        return None if regrep is None else edm.parse(regrep.data)

    @_step
    def on_message(self, session: Session, message: VerifiedMessage, *, document: Any = None) -> None:
        """An ``ExecuteQueryResponse`` or ``ExceptionResponse`` delivered by the access point (``document``:
        its RegRep document as :meth:`read_answer` gave it ahead, else it is parsed here)."""
        conversation = message.user_message.collaboration_info.conversation_id
        regrep = _regrep_payload(message)
        if regrep is None:
            log.warning("answer %s carries no RegRep document; dropped", message.message_id)
            self._dropped(session, None, message, "unmatched", conversation)
            return
        try:
            doc = document if document is not None else edm.parse(regrep.data)
        except (XmlError, ModelError) as exc:
            log.warning("answer %s is not an evidence response (%s); dropped", message.message_id, exc.message)
            self._dropped(session, None, message, "unmatched", conversation)
            return
        if isinstance(doc, edm.QueryError) and doc.request_id is None:
            # A provider that refuses a request it could not read (EDM:ERR:0003, too large) may not name
            # its request id; the AS4 conversation, ours and unique per request, still says which it is.
            ex, requests = records.load_conversation(session.connection(), conversation)
            row = next((r for r in requests if r.conversation_id == conversation), None)
        elif isinstance(doc, edm.QueryResponse | edm.QueryError) and doc.request_id is not None:
            # the request answered, its exchange and the exchange's other requests (the next to send), in one read
            ex, requests = records.load_answered(session.connection(), doc.request_id)
            row = next((r for r in requests if r.request_id == doc.request_id), None)
        else:
            log.warning("answer %s is a %s without a request id; dropped", message.message_id, type(doc).__name__)
            self._dropped(session, None, message, "unmatched", conversation)
            return
        if ex is None or row is None or row.conversation_id != conversation:
            log.warning("answer %s matches no request of ours (request id, conversation); dropped", message.message_id)
            self._dropped(session, None, message, "unmatched", conversation)
            return
        if not _from_asked_access_point(message.user_message, row):
            log.warning(
                "answer %s comes from another access point than its request went to; dropped", message.message_id
            )
            self._dropped(session, None, message, "unmatched", conversation)
            return
        _kept(session, ex, *requests)
        if State(ex.state) in TERMINAL or row.status not in (RequestStatus.SENT, RequestStatus.PREVIEW):
            log.info("answer %s for a finished request; ignored", message.message_id)
            self._dropped(session, ex, message, "late", conversation)
            return
        ids = [message.message_id, row.message_id or ""]
        if isinstance(doc, edm.QueryResponse):
            self.record(
                session,
                ex,
                Step.EVIDENCE_RECEIVED,
                row=row,
                message_ids=ids,
                outcome="evidence",
                details={"evidences": [e.id for p in doc.packages for e in p.evidences]},
            )
            self._on_evidence(session, ex, row, doc, message.payloads, requests=requests)
        else:
            preview = (
                doc.code == "EDM:ERR:0002"
                and doc.preview_location is not None
                and row.status == RequestStatus.SENT
                and row.preview_location is None
            )
            self.record(
                session,
                ex,
                Step.PREVIEW_REQUIRED if preview else Step.ERROR_RECEIVED,
                row=row,
                message_ids=ids,
                outcome=doc.code if len(doc.code) <= ERROR_CODE_CHARACTERS else None,
                details={"preview_origin": _origin(doc.preview_location)} if preview else {},
            )
            self._on_error(session, ex, row, doc)

    def _dropped(
        self, session: Session, ex: ExchangeRecord | None, message: VerifiedMessage, why: str, conversation: str
    ) -> None:
        if self.journal is None:
            return
        ref = message.user_message.message_info.ref_to_message_id
        self._journal(
            session,
            Entry(
                side=Side.REQUESTER,
                event=Step.ANSWER_DROPPED,
                exchange_id=ex.id if ex is not None else None,
                conversation_id=conversation,  # one too long to keep is left out by the journal
                message_ids=[message.message_id, *([ref] if ref else [])],
                outcome=why,
                details={"action": message.user_message.collaboration_info.action},
            ),
        )

    @_step
    def returned(self, session: Session, exchange_id: str) -> ExchangeRecord | None:
        """The user is back from a preview at the return location: journal it (once per preview), whatever
        the exchange's state: the evidence may have arrived while the user was on the way back."""
        ex = records.load_exchange(session.connection(), exchange_id)
        if ex is None:
            return ex
        row = records.load_preview_request(session.connection(), ex.id)
        if row is not None and self.journal is not None:
            seen = self.journal.search(session, exchange_id=ex.id, event=Step.PREVIEW_RETURNED.value)
            if not any(e.conversation_id == row.conversation_id for e in seen):
                self.record(session, ex, Step.PREVIEW_RETURNED, row=row, outcome=ex.state)
        return ex

    def _on_evidence(
        self,
        session: Session,
        ex: ExchangeRecord,
        row: RequestRecord,
        doc: edm.QueryResponse,
        payloads: Sequence[Payload],
        *,
        requests: Sequence[RequestRecord],
    ) -> None:
        """Keep the evidence of ``row``'s answer; send the next request of ``requests`` (by position), or end."""
        if row.preview_location is not None and not doc.evidences:
            # after a preview, a response without evidence means the user refused every document (TC08)
            row.status = RequestStatus.FAILED.value
            row.error_detail = "the user refused every evidence in the provider's preview"
            self._move(session, ex, Event.FAIL, Reason.PREVIEW_REFUSED, row.error_detail)
            return
        parts = {p.content_id.strip("<>"): p for p in payloads}
        evidences = doc.evidences
        earlier = any(r.status == RequestStatus.RECEIVED for r in requests)  # documents of other answers kept already
        stored = records.stored_evidence_bytes(session.connection(), ex.id) if earlier else 0
        problem = self._unusable_evidence(evidences, parts, stored)
        if problem is not None:  # nothing of the answer is kept
            row.status = RequestStatus.FAILED.value
            row.error_detail = problem
            self._move(session, ex, Event.FAIL, Reason.PROVIDER_ERROR, problem)
            return
        kept: list[dict[str, Any]] = []
        for evidence in evidences:
            part = parts[evidence.attachment.href.removeprefix("cid:")]
            kept.append(
                {
                    "exchange_id": ex.id,
                    "request_row": row.id,
                    "evidence_id": evidence.id,
                    "title": _shortened(
                        evidence.attachment.title or discovery.text_of(evidence.metadata.is_conformant_to.titles),
                        TITLE_CHARACTERS,
                    ),
                    "media_type": _media_type(evidence, part),
                    "metadata_json": edm.object_to_json(evidence.metadata),
                    "content": part.data,
                    "received_at": self.clock(),
                }
            )
        records.insert_evidence(session.connection(), kept)
        row.status = RequestStatus.RECEIVED.value
        pending = next((r for r in requests if r.status == RequestStatus.PENDING), None)
        self._send_next(session, ex, pending, after_evidence=True)

    def _unusable_evidence(
        self, evidences: Sequence[edm.ResponseEvidence], parts: Mapping[str, Payload], stored: int
    ) -> str | None:
        """Why the evidence of an answer cannot be kept (the provider's error), or None: more items than
        ``max_evidence_per_answer``, an item whose id or media type is longer than its column, an item
        naming a missing attachment or one another item names too, or more bytes, with the ``stored``
        ones of the exchange's earlier answers, than ``max_evidence_bytes_per_exchange``. (A title too
        long is shortened: it is only shown.)"""
        cfg = self.config
        if len(evidences) > cfg.max_evidence_per_answer:
            return f"the answer carries {len(evidences)} evidences, more than the {cfg.max_evidence_per_answer} taken"
        named: set[str] = set()
        total = stored
        for evidence in evidences:
            if len(evidence.id) > EVIDENCE_ID_CHARACTERS:
                return f"an evidence id is longer than {EVIDENCE_ID_CHARACTERS} characters"
            cid = evidence.attachment.href.removeprefix("cid:")
            part = parts.get(cid)
            if part is None:
                return f"the evidence {evidence.id} names a missing attachment"
            if len(_media_type(evidence, part)) > MEDIA_TYPE_CHARACTERS:
                return f"the media type of the evidence {evidence.id} is longer than {MEDIA_TYPE_CHARACTERS} characters"
            if cid in named:
                return f"the evidence {evidence.id} names an attachment another evidence of the answer names too"
            named.add(cid)
            total += len(part.data)
        if total > cfg.max_evidence_bytes_per_exchange:
            return f"the evidence of the exchange is larger than {cfg.max_evidence_bytes_per_exchange} bytes"
        return None

    def _on_error(self, session: Session, ex: ExchangeRecord, row: RequestRecord, doc: edm.QueryError) -> None:
        first_preview = row.status == RequestStatus.SENT and row.preview_location is None
        problem = _unusable_error(doc, first_preview)
        if problem is not None:
            row.status = RequestStatus.FAILED.value
            row.error_code = doc.code if len(doc.code) <= ERROR_CODE_CHARACTERS else None
            row.error_detail = problem
            self._move(session, ex, Event.FAIL, Reason.PROVIDER_ERROR, problem)
            return
        if doc.code == "EDM:ERR:0002" and doc.preview_location is not None and first_preview:
            if not _preview_location_ok(doc.preview_location, self.config.allow_http_preview_hosts):
                row.status = RequestStatus.FAILED.value
                self._move(session, ex, Event.FAIL, Reason.PROVIDER_ERROR, "the preview location is not https")
                return
            row.preview_location = doc.preview_location
            row.preview_method = (doc.preview_method or "GET").upper()
            try:
                self._send(session, ex, row, preview_location=doc.preview_location)
            except (NotFound, SecurityError) as exc:  # the provider's certificate expired since the first
                self._unsendable(session, ex, row, exc)
                return
            row.status = RequestStatus.PREVIEW.value
            self._move(session, ex, Event.PREVIEW_REQUIRED)
            return
        row.status = RequestStatus.FAILED.value
        row.error_code = doc.code
        row.error_detail = doc.detail or doc.message
        reason = _ERROR_REASONS.get(doc.code, Reason.PROVIDER_ERROR)
        if row.preview_location is not None and doc.code == "EDM:ERR:0004":
            # the provider found the person for the first request: "not found" after its preview means
            # the person who logged in there was not the request's subject (the user refusing every
            # document is an empty response, TC08, handled with the evidence)
            reason = Reason.PREVIEW_NOT_THE_SUBJECT
        self._move(session, ex, Event.FAIL, reason, f"{doc.code}: {row.error_detail or ''}".rstrip(": "))

    # ---- sending -------------------------------------------------------------------------------

    def _send_next(
        self,
        session: Session,
        ex: ExchangeRecord,
        pending: RequestRecord | None,
        *,
        after_evidence: bool,
        ahead: RequestAhead | None = None,
    ) -> None:
        """Send ``pending``, the exchange's next request; without one, the exchange is complete."""
        if pending is None:
            self._move(session, ex, Event.ALL_RECEIVED)
            return
        try:
            self._send(session, ex, pending, ahead=ahead)
        except (NotFound, SecurityError) as exc:  # an unknown partner, or one whose certificate has expired
            self._unsendable(session, ex, pending, exc)
            return
        pending.status = RequestStatus.SENT.value
        if after_evidence:
            self._move(session, ex, Event.EVIDENCE_RECEIVED)

    def _unsendable(
        self, session: Session, ex: ExchangeRecord, row: RequestRecord, exc: NotFound | SecurityError
    ) -> None:
        """``row``'s request cannot be sent (an unknown access point, or one whose certificate is expired or
        not valid yet): the exchange fails at once, naming the reason (waiting would not mend it)."""
        row.status = RequestStatus.FAILED.value
        log.warning("exchange %s: its request to %s cannot be sent: %s", ex.id, row.access_point, exc.message)
        self._move(session, ex, Event.FAIL, Reason.PROVIDER_UNREACHABLE, exc.message)

    def build_request(
        self, ex: ExchangeRecord, row: RequestRecord, *, preview_location: str | None = None
    ) -> edm.QueryRequest:
        """The ``QueryRequest`` for one request row (the second one of a preview carries its location)."""
        cfg = self.config
        version = edm.Version(row.specification)
        publisher = edm.object_from_json(edm.EvidenceProvider, row.provider)
        entry = next(e for e in ex.requirements if e["id"] == row.requirement_id)
        return edm.evidence_request(
            requester=edm.Agent(
                identifier=edm.Identifier(cfg.identifier, cfg.scheme_id),
                names=(edm.Text(cfg.name, "EN"),),
            ),
            provider=edm.Agent(identifier=publisher.identifier, names=publisher.names),
            evidence_type=edm.object_from_json(edm.DataServiceEvidenceType, row.data_service),
            subject=subject_from_json(ex.subject),
            procedure=ex.procedure,
            requirements=(edm.Requirement(identifier=entry["id"], names=_requirement_names(entry)),),
            possibility_for_preview=ex.preview,
            explicit_request_given=ex.explicit_request_given,
            preview_location=preview_location,
            return_location=(
                f"{self.settings.node.base_url.rstrip('/')}/requester/return/{ex.id}"
                if preview_location is not None and version is not edm.Version.EDM_V1
                else None
            ),
            version=version,
            issued=_millis(self.clock()),
        )

    def _send(
        self,
        session: Session,
        ex: ExchangeRecord,
        row: RequestRecord,
        *,
        preview_location: str | None = None,
        ahead: RequestAhead | None = None,
    ) -> None:
        if ahead is not None and preview_location is None and row.position == 0:
            request, conversation_id, message, payload, packed = ahead.made
        else:
            request, conversation_id, message, payload, packed = self._compose(ex, row, preview_location)
        if row.conversation_id is None:
            row.conversation_id = conversation_id
            row.first_request_id = request.id
        row.request_id = request.id
        message_id = message.message_info.message_id
        row.message_id = message_id
        self._outbox().submit(session, message, [payload], packed=packed)
        self.record(
            session,
            ex,
            Step.REQUEST_SENT,
            row=row,
            message_ids=[message_id],
            outcome="preview_done" if preview_location is not None else "sent",
            details={
                "request_id": request.id,
                "data_service": edm.object_from_json(edm.DataServiceEvidenceType, row.data_service).identifier,
                "evidence_type": row.evidence_type,
                "access_point": row.access_point,
                "specification": row.specification,
                "explicit_request_given": ex.explicit_request_given,
                "possibility_for_preview": ex.preview,
            },
            personal=True,
        )

    def _compose(
        self, ex: ExchangeRecord, row: RequestRecord, preview_location: str | None, *, pack: bool = False
    ) -> tuple[edm.QueryRequest, str, UserMessage, Payload, object | None]:
        """The ``QueryRequest`` for ``row``, the conversation it goes in (``row``'s, else a new one), its
        AS4 message and payload and, with ``pack``, the message packed for the partner."""
        outbox = self._outbox()
        request = self.build_request(ex, row, preview_location=preview_location)
        conversation_id = row.conversation_id or str(uuid.uuid4())
        message_id = outbox.new_message_id()
        publisher = edm.object_from_json(edm.EvidenceProvider, row.provider)
        cfg = self.config
        v2 = request.specification is not edm.Version.EDM_V1
        message = profile.user_message(
            message_id=message_id,
            timestamp=self.clock(),
            from_party=outbox.own_party,
            to_party=PartyId(row.access_point, row.access_point_type or profile.PARTY_ID_TYPE),
            original_sender=PartyId(cfg.identifier, cfg.scheme_id),
            final_recipient=PartyId(publisher.identifier.value, publisher.identifier.scheme_id),
            conversation_id=conversation_id,
            exchange_id=conversation_id if v2 else None,
            specification_id=request.specification.value if v2 else None,
        )
        domain = message_id.partition("@")[2] or "oots"
        payload = Payload(f"{uuid.uuid4()}@{domain}", profile.REGREP_MIME_TYPE, edm.to_xml(request))
        packed = outbox.pack(message, [payload]) if pack else None
        return request, conversation_id, message, payload, packed

    # ---- state changes -------------------------------------------------------------------------

    def _move(
        self,
        session: Session,
        ex: ExchangeRecord,
        event: Event,
        reason: Reason | None = None,
        detail: str | None = None,
        *,
        deadline: float | None = None,
    ) -> State:
        state = next_state(State(ex.state), event)
        now = self.clock()
        changed = state.value != ex.state or event is Event.EVIDENCE_RECEIVED
        ex.state = state.value
        ex.updated_at = now
        if reason is not None:
            ex.reason = reason.value
            ex.detail = detail
        if changed:
            ex.version += 1
            self._webhook(session, ex)
            on_commit(session, CHANGED_TOPIC, ex.id)
        step = _STEPS.get(event)
        if step is not None:
            self.record(
                session,
                ex,
                step,
                outcome=reason.value if reason is not None else state.value,
                details={"state": state.value, "version": ex.version},
            )
        if state in TERMINAL:
            return state
        if deadline is None:
            deadline = {
                State.REQUESTING: self.config.response_timeout_seconds,
                State.AWAITING_PREVIEW: self.config.preview_timeout_seconds,
            }.get(state)
        if deadline is not None:
            self._extend(ex, deadline)
        return state

    def _extend(self, ex: ExchangeRecord, seconds: float) -> None:
        """Set the exchange's deadline ``seconds`` from now: the sweep (:meth:`expire_due`) ends it then
        if it is still waiting. Nothing else is written for it (no job to move)."""
        ex.deadline = self.clock() + dt.timedelta(seconds=seconds)

    def record(
        self,
        session: Session,
        ex: ExchangeRecord,
        step: Step,
        *,
        row: RequestRecord | None = None,
        message_ids: Sequence[str] = (),
        outcome: str | None = None,
        details: Mapping[str, Any] | None = None,
        personal: bool = False,
    ) -> None:
        """Append one step of ``ex`` to the audit journal (in the caller's transaction, as the running step ends)."""
        if self.journal is None:
            return
        subject = _subject_identifier(ex.subject)
        self._journal(
            session,
            Entry(
                side=Side.REQUESTER,
                event=step,
                exchange_id=ex.id,
                conversation_id=row.conversation_id if row is not None else None,
                message_ids=[m for m in message_ids if m],
                outcome=outcome,
                details=dict(details or {}),
                personal={"person_identifier": subject} if personal and subject else None,
                subject=subject,
            ),
        )

    def _journal(self, session: Session, entry: Entry) -> None:
        """Append ``entry`` when the running step ends (outside a step: now)."""
        unit: _Unit | None = session.info.get(_UNIT)
        if unit is not None:
            unit.entries.append(entry)
        elif self.journal is not None:
            self.journal.append_all(session, [entry])

    def _webhook(self, session: Session, ex: ExchangeRecord) -> None:
        client = next((c for c in self.config.clients if c.id == ex.client_id), None)
        if client is None or not client.webhook_url:
            return
        now = self.clock()
        enqueue(
            session,
            WEBHOOK_JOB,
            {
                "client": client.id,
                "delivery": uuid.uuid4().hex,  # the same on every attempt: the portal drops repeats by it
                "exchange": ex.id,
                "state": ex.state,
                "reason": ex.reason,
                "version": ex.version,
                "at": now.isoformat(),
            },
            key=f"{ex.id}:{ex.version}",
            max_attempts=self.config.webhook_max_attempts,
            now=now,
        )


#: State-machine events the journal records as steps of their own (messages are recorded where they go or come).
_STEPS: Mapping[Event, Step] = {
    Event.DISCOVERED: Step.DISCOVERY_DONE,
    Event.NEEDS_CHOICE: Step.DISCOVERY_DONE,
    Event.EXPLICIT_REQUEST: Step.EXPLICIT_REQUEST_GIVEN,
    Event.FAIL: Step.EXCHANGE_FAILED,
    Event.CANCEL: Step.CANCELLED,
    Event.TIMEOUT: Step.TIMEOUT,
}


def _regrep_payload(message: VerifiedMessage) -> Any:
    """The payload holding an answer's RegRep document: the one of its media type, else the first."""
    regrep = next((p for p in message.payloads if p.mime_type == profile.REGREP_MIME_TYPE), None)
    return regrep or (message.payloads[0] if message.payloads else None)


def _subject_identifier(subject: Any) -> str | None:
    """The identifier of the person (or company) an exchange is about, from its stored JSON form."""
    person = next(iter(subject.values()), None) if isinstance(subject, Mapping) else None
    ident = person.get("identifier") if isinstance(person, Mapping) else None
    value = ident.get("value") if isinstance(ident, Mapping) else None
    return str(value) if value else None


def _origin(url: str | None) -> str | None:
    """Scheme and host of a URL (a preview location may carry a token; the journal keeps only where it led)."""
    if not url:
        return None
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _public(entry: dict[str, Any], lang: str = "EN") -> dict[str, Any]:
    """A requirement entry as the API shows it: providers without their stored model objects; names,
    titles and labels in ``lang`` (every language stays in ``names``, ``titles``, ``labels``)."""
    types = {
        cls: {
            **slot,
            "questions": [{**q, "label": _in(q, "label", "labels", lang)} for q in slot["questions"]],
            "providers": [
                {
                    **{k: v for k, v in p.items() if k not in ("data_service", "publisher")},
                    "name": _in(p, "name", "names", lang),
                }
                for p in slot["providers"]
            ],
        }
        for cls, slot in entry["types"].items()
    }
    lists = [
        {
            **lst,
            "name": _in(lst, "name", "names", lang),
            "evidence_types": [{**t, "title": _in(t, "title", "titles", lang)} for t in lst["evidence_types"]],
        }
        for lst in entry["lists"]
    ]
    return {**entry, "name": _in(entry, "name", "names", lang), "lists": lists, "types": types}


def _from_asked_access_point(message: UserMessage, row: RequestRecord) -> bool:
    """Whether ``message`` comes from the access point ``row``'s request went to (its party id, and its
    type when the answer names one)."""
    sender = message.party_info.from_party.party_id
    asked_type = row.access_point_type or profile.PARTY_ID_TYPE
    return sender.value == row.access_point and sender.type in (None, asked_type)


def _shortened(text: str | None, limit: int) -> str | None:
    """``text`` cut to ``limit`` characters, an ellipsis marking the cut."""
    return text if text is None or len(text) <= limit else text[: limit - 1] + "…"


def _media_type(evidence: edm.ResponseEvidence, part: Payload) -> str:
    """The media type of an evidence's document: as its metadata says, else as its attachment is labelled."""
    return evidence.metadata.distribution.format or part.mime_type


def _unusable_error(doc: edm.QueryError, first_preview: bool) -> str | None:
    """Why an error answer cannot be kept as it is (the provider's error), or None: its code, or the
    location or method of the preview it asks for, longer than their columns, or a method but GET or POST."""
    if len(doc.code) > ERROR_CODE_CHARACTERS:
        return f"the provider's error code is longer than {ERROR_CODE_CHARACTERS} characters"
    if doc.code != "EDM:ERR:0002" or doc.preview_location is None or not first_preview:
        return None
    if len(doc.preview_location) > PREVIEW_LOCATION_CHARACTERS:
        return f"the preview location is longer than {PREVIEW_LOCATION_CHARACTERS} characters"
    if (doc.preview_method or "GET").upper() not in ("GET", "POST"):
        return "the preview method is neither GET nor POST"
    return None


def _preview_location_ok(location: str, http_hosts: Sequence[str]) -> bool:
    """Never send a user to a plain-http page — except on the hosts of a local demo network."""
    if location.startswith("https://"):
        return True
    parts = urlsplit(location)
    return parts.scheme == "http" and bool(parts.hostname) and parts.hostname in http_hosts


def _millis(moment: dt.datetime) -> dt.datetime:
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def _requirement_names(entry: dict[str, Any]) -> tuple[edm.Text, ...]:
    """The requirement's names in every language the Evidence Broker gave (an exchange recorded before
    they were kept has its English name only)."""
    names = tuple(edm.Text(str(t["value"]), t.get("lang")) for t in entry.get("names") or () if t.get("value"))
    return names or (edm.Text(entry["name"], "EN"),)
