"""The access point's durable side: what was received and sent, in the node's database.

Receiving (:class:`As4Store` is the :class:`oots.as4.http.Inbox`): a received message, its payloads,
the receipt we give and its delivery job are written in one transaction before the receipt is sent
(:meth:`As4Store.accept`); ``message_id`` is unique, so a message is kept once. Delivery runs as a
queue job (kind ``as4.deliver``, one per kept row, naming the row) whose handler calls the
application's hook *in the job's transaction* and marks the message delivered in that same
transaction: the application sees each message exactly once, however often it came over the wire.

Sending: :meth:`As4Store.submit` keeps an outgoing message (already packed) in the caller's
transaction; :func:`send_due` — run by the node's sender loop — claims due messages under a lease,
sends them *outside* any transaction (no database lock is held over the network), and saves what came
of it: a receipt (kept, with the references we signed, as the non-repudiation record), an error, the
next retry time, or ``failed`` with ``EBMS:0301``. A sender killed mid-send loses nothing: the lease
runs out and the same bytes are sent again; the receiver answers the duplicate with its first receipt.

Forgetting: a received message that is done (delivered, not for delivery, delivery failed) is kept
for the duplicate-detection window and then deleted with its payloads by :class:`InboundPurge` — the
periodic work of the node's workers (and of :class:`oots.as4.service.Background`), a bounded batch per
write transaction (:meth:`As4Store.purge_inbound`). A message whose delivery failed is kept past the
window while its dead delivery job can still be requeued: nothing an operator can still deliver is lost
(once an operator discarded that job, :func:`oots.store.queue.discard`, it is forgotten too).
"""

from __future__ import annotations

import base64
import datetime as dt
import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from sqlalchemy import (
    Connection,
    Integer,
    Table,
    Text,
    bindparam,
    delete,
    exists,
    insert,
    literal_column,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.orm import Session

from oots.as4 import msh
from oots.as4.domibus import DomibusMessage, UnusableMessage
from oots.as4.http import HttpSender
from oots.as4.model import (
    CollaborationInfo,
    MessageInfo,
    PartInfo,
    Party,
    PartyId,
    PartyInfo,
    Payload,
    Property,
    Reference,
    Service,
    Transform,
    UserMessage,
)
from oots.as4.models import As4Inbound, As4InboundPayload, As4Outbound
from oots.as4.msh import (
    InboundEvent,
    InboundRecord,
    InboundState,
    Outbound,
    OutboundState,
    PriorReceipt,
    VerifiedMessage,
)
from oots.as4.pmode import PModeSet
from oots.errors import NotFound, OotsError, StoreError, TransportError, error_text
from oots.store import Database, UtcDateTime
from oots.store.models import QueueJob
from oots.store.queue import Job, enqueue

__all__ = [
    "DELIVER_JOB",
    "PURGE_BATCH",
    "RETIRED_PURGE_JOB",
    "As4Store",
    "Deliver",
    "DeliveryFailed",
    "InboundPurge",
    "OutboundEventHook",
    "StoredInbound",
    "Unsent",
    "references_from_json",
    "references_to_json",
    "send_due",
    "user_message_from_json",
    "user_message_to_json",
]

log = logging.getLogger(__name__)

DELIVER_JOB = "as4.deliver"
#: The queue job that purged received messages before that was periodic work (:class:`InboundPurge`):
#: nothing queues it any more; a node's workers complete the ones an older version left, doing nothing.
RETIRED_PURGE_JOB = "as4.purge_inbound"
#: Received messages one :meth:`As4Store.purge_inbound` deletes at most, in one write transaction.
PURGE_BATCH = 200

#: The application's hook: gets the session of the delivery job's transaction and the verified message.
Deliver = Callable[[Session, VerifiedMessage], None]
#: What a delivery hook can do before the delivery's transaction (see :meth:`As4Store.deliver_preparer`).
PrepareDelivery = Callable[[VerifiedMessage], None]
#: Told that a message's delivery job was dead-lettered, with the error the hook failed with, in the
#: dead-lettering transaction (see :meth:`As4Store.delivery_dead`).
DeliveryFailed = Callable[[Session, VerifiedMessage, BaseException], None]
#: Told of what happened to an outgoing message (receipt, error, retry, failure), in the saving transaction.
OutboundEventHook = Callable[[Session, Any], None]


# -- JSON forms of the model ----------------------------------------------------------------------


def _props(props: Sequence[Property]) -> list[list[str | None]]:
    return [[p.name, p.value, p.type] for p in props]


def _props_back(data: Sequence[Sequence[str | None]]) -> tuple[Property, ...]:
    return tuple(Property(str(n), str(v), t) for n, v, t in data)


def user_message_to_json(um: UserMessage) -> dict[str, Any]:
    pi, ci, mi = um.party_info, um.collaboration_info, um.message_info
    return {
        "message_id": mi.message_id,
        "timestamp": mi.timestamp.isoformat(),
        "ref_to_message_id": mi.ref_to_message_id,
        "from": [pi.from_party.party_id.value, pi.from_party.party_id.type, pi.from_party.role],
        "to": [pi.to_party.party_id.value, pi.to_party.party_id.type, pi.to_party.role],
        "service": [ci.service.value, ci.service.type],
        "action": ci.action,
        "conversation_id": ci.conversation_id,
        "properties": _props(um.message_properties),
        "parts": [[p.href, _props(p.properties)] for p in um.payload_info],
        "mpc": um.mpc,
    }


def user_message_from_json(d: dict[str, Any]) -> UserMessage:
    return UserMessage(
        MessageInfo(d["message_id"], dt.datetime.fromisoformat(d["timestamp"]), d["ref_to_message_id"]),
        PartyInfo(
            Party(PartyId(d["from"][0], d["from"][1]), d["from"][2]), Party(PartyId(d["to"][0], d["to"][1]), d["to"][2])
        ),
        CollaborationInfo(Service(d["service"][0], d["service"][1]), d["action"], d["conversation_id"]),
        _props_back(d["properties"]),
        tuple(PartInfo(href, _props_back(props)) for href, props in d["parts"]),
        d["mpc"],
    )


def references_to_json(refs: Sequence[Reference]) -> list[dict[str, Any]]:
    return [
        {
            "uri": r.uri,
            "digest_method": r.digest_method,
            "digest_value": base64.b64encode(r.digest_value).decode("ascii"),
            "transforms": [[t.algorithm, list(t.inclusive_prefixes)] for t in r.transforms],
        }
        for r in refs
    ]


def references_from_json(data: Sequence[dict[str, Any]]) -> tuple[Reference, ...]:
    return tuple(
        Reference(
            r["uri"],
            r["digest_method"],
            base64.b64decode(r["digest_value"]),
            tuple(Transform(a, tuple(p)) for a, p in r["transforms"]),
        )
        for r in data
    )


@dataclass(frozen=True, slots=True)
class StoredInbound:
    """What the delivery job reads of a kept message besides the message itself."""

    id: int
    message_id: str
    state: str


@lru_cache(maxsize=256)
def _certificate(der: bytes) -> x509.Certificate:
    """The signer's certificate (the same few partners sign every message: parsed once each)."""
    return x509.load_der_x509_certificate(der)


def _outbound(row: Any) -> Outbound:
    """An outgoing message's record from its row (an ``As4Outbound`` or a row of its columns)."""
    return Outbound(
        message_id=row.message_id,
        partner=row.partner,
        leg=row.leg,
        state=OutboundState(row.state),
        created_at=row.created_at,
        content_type=row.content_type,
        body=row.body,
        references=references_from_json(row.references),
        attempts=row.attempts,
        first_sent_at=row.first_sent_at,
        next_attempt_at=row.next_attempt_at,
        error_code=row.error_code,
        error_detail=row.error_detail,
        receipt=row.receipt,
    )


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


# The statements of the receiving hot path, built once: values go in as parameters, so SQLAlchemy
# compiles each statement once and reuses it (``insert(...).values(row)`` would make a new statement,
# with a new cache key over every value, per message).
_INBOUND: Table = As4Inbound.__table__  # type: ignore[assignment]
_SEEN = select(_INBOUND.c.received_at, _INBOUND.c.receipt_content_type, _INBOUND.c.receipt, _INBOUND.c.partner).where(
    _INBOUND.c.message_id == bindparam("message_id")
)
# Kept unless the message id is there already (the unique constraint decides, also between processes:
# PostgreSQL makes a second insert of the same id wait for the first transaction, then do nothing).
_INSERT_INBOUND = {
    "postgresql": postgresql.insert(_INBOUND)
    .on_conflict_do_nothing(index_elements=["message_id"])
    .returning(_INBOUND.c.id),
    "sqlite": sqlite.insert(_INBOUND).on_conflict_do_nothing(index_elements=["message_id"]).returning(_INBOUND.c.id),
}
_PAYLOADS: Table = As4InboundPayload.__table__  # type: ignore[assignment]
_INSERT_PAYLOAD = insert(_PAYLOADS)
# The delivery job: the stored message and its payloads, and its state change (Core statements: the
# ORM's identity map and unit of work cost more than the queries themselves).
_I = _INBOUND.c
_P = _PAYLOADS.c
#: A kept message with its payloads in one query (one row per payload; one row of NULL payload columns
#: when it has none).
_LOAD_INBOUND = (
    select(
        _I.message_id,
        _I.header,
        _I.partner,
        _I.state,
        _I.via,
        _I.signer,
        _I.references,
        _P.content_id,
        _P.mime_type,
        _P.data,
        _P.properties,
    )
    .select_from(_INBOUND.outerjoin(_PAYLOADS, _P.inbound_id == _I.id))
    .where(_I.id == bindparam("inbound_id"))
    .order_by(_P.position)
)
_INBOUND_DONE = (
    update(_INBOUND)
    .where(_I.id == bindparam("inbound_id"))
    .values(
        state=bindparam("new_state"),
        delivered_at=bindparam("done_at", type_=UtcDateTime()),
        last_error=bindparam("error", type_=Text()),
        delivery_job=bindparam("job"),
    )
)
#: :data:`_INBOUND_DONE` only while the message is still ``received`` (or ``delivery_failed``: its dead
#: delivery job was requeued): the delivery job's check that it was not delivered already (a job re-run
#: after its completion was lost) and its state change in one statement (no row changed: delivered before).
_DELIVERABLE = (InboundState.RECEIVED.value, InboundState.DELIVERY_FAILED.value)
_INBOUND_CLAIMED = _INBOUND_DONE.where(_I.state.in_(_DELIVERABLE))
#: Messages a preparer read and its handler has not taken yet, kept at most, and their payloads' bytes
#: together at most (a worker prepares a whole batch before it handles it: a batch of large evidence
#: must not be held at once). What is not kept, or forgotten, its handler reads again.
_PREPARED_KEPT = 256
_PREPARED_BYTES = 16 * 1024 * 1024

# The sending side: submit, claim under a lease (oldest due first, then in submission order), save.
_OUTBOUND: Table = As4Outbound.__table__  # type: ignore[assignment]
_O = _OUTBOUND.c
_INSERT_OUTBOUND = insert(_OUTBOUND)
_WAITING = (OutboundState.CREATED.value, OutboundState.WAITING_TO_RETRY.value)
#: ``state IN ('created', 'waiting_to_retry')`` written into the statement: a list of values would be an
#: expanding parameter, rendered again at every execution.
_IS_WAITING = _O.state.in_([literal_column(f"'{state}'") for state in _WAITING])
_OUTBOUND_FIELDS = (
    _O.message_id,
    _O.partner,
    _O.leg,
    _O.state,
    _O.created_at,
    _O.content_type,
    _O.body,
    _O.references,
    _O.attempts,
    _O.first_sent_at,
    _O.next_attempt_at,
    _O.error_code,
    _O.error_detail,
    _O.receipt,
)
# Claimed in one statement: the due rows (locked, others' locked rows skipped on PostgreSQL) get the lease.
_CLAIM = (
    update(_OUTBOUND)
    .where(
        _O.id.in_(
            select(_O.id)
            .where(
                _IS_WAITING,
                _O.next_attempt_at <= bindparam("now"),
                or_(_O.locked_until.is_(None), _O.locked_until < bindparam("now")),
            )
            .order_by(_O.next_attempt_at, _O.id)
            .limit(bindparam("limit"))
            .with_for_update(skip_locked=True)
            .scalar_subquery()
        )
    )
    .values(locked_until=bindparam("until"))
    .returning(_O.id, *_OUTBOUND_FIELDS)
)
# Given back unsent (the sender is stopping): due again at once, for any sender, if this claim still holds it.
_RELEASE = (
    update(_OUTBOUND)
    .where(
        _O.message_id.in_(bindparam("ids", expanding=True)),
        _IS_WAITING,
        _O.locked_until == bindparam("until"),
    )
    .values(locked_until=None)
)
_SAVE = (
    update(_OUTBOUND)
    .where(_O.message_id == bindparam("b_message_id"))
    .values(
        state=bindparam("v_state"),
        attempts=bindparam("v_attempts"),
        first_sent_at=bindparam("v_first_sent_at"),
        next_attempt_at=bindparam("v_next_attempt_at"),
        locked_until=None,
        error_code=bindparam("v_error_code"),
        error_detail=bindparam("v_error_detail"),
        receipt=bindparam("v_receipt"),
        updated_at=bindparam("v_updated_at"),
    )
)
#: :data:`_SAVE` by the sender whose claim still holds the message (its lease, as claimed, unchanged): a
#: sender whose lease ran out, and whose message another sender took over, changes nothing.
_SAVE_HELD = _SAVE.where(_O.locked_until == bindparam("b_lease"))


class _PurgedMeanwhile(StoreError):
    """A message id found kept and then not found: kept before, and purged since (a duplicate)."""


class _DoesNotFit(StoreError):
    """The database refused a value of the message (too long for its column): keeping it again fails again."""


class As4Store:
    """The access point's tables in ``db``; ``pmodes`` resolves stored messages' PModes again."""

    def __init__(self, db: Database, pmodes: PModeSet, *, clock: Callable[[], dt.datetime] = _utcnow) -> None:
        self.db = db
        self.pmodes = pmodes
        self.clock = clock
        # what deliver_preparer read, by inbound row id, for deliver_handler (read once, not twice)
        self._prepared: dict[int, tuple[VerifiedMessage, int]] = {}
        self._prepared_bytes = 0
        self._prepared_lock = threading.Lock()

    @contextmanager
    def _writing(self) -> Iterator[Session]:
        """A write transaction (SQLite: the write lock taken at its start, in-process writers queued)."""
        with self.db.session(immediate=True) as session:
            yield session

    @contextmanager
    def _connection(self) -> Iterator[Connection]:
        """:meth:`_writing` without an ORM session, for the statements of the hot paths."""
        with self.db.connect(immediate=True) as conn:
            yield conn

    # -- receiving (the Inbox of oots.as4.http) -----------------------------------------------------

    def seen(self, message_id: str) -> PriorReceipt | None:
        with self.db.connect() as conn:
            row = conn.execute(_SEEN, {"message_id": message_id}).first()
        return None if row is None else PriorReceipt(row[0], row[1], row[2], row[3])

    def accept(self, record: InboundRecord) -> PriorReceipt | None:
        """Keep the message, its payloads, the receipt and its delivery job in one transaction.

        When the message id was kept before (a replay, or the same message from another thread or
        process a moment earlier), nothing is written and the first receipt is returned instead: the
        duplicate check is the insert itself, in the same transaction.
        """
        assert record.message.pmode is not None
        return self._insert(record, record.message.pmode.partner.name, record.message.pmode.leg.name)

    def _insert(self, record: InboundRecord, partner: str, leg: str) -> PriorReceipt | None:
        message = record.message
        state = record.state if record.deliver else msh.inbound_next(record.state, InboundEvent.NOT_FOR_DELIVERY)
        sender = message.user_message.party_info.from_party.party_id
        values = {
            "message_id": message.message_id,
            "header": user_message_to_json(message.user_message),
            "from_party": f"{sender.type or ''}|{sender.value}"[:255],
            "partner": partner,
            "leg": leg,
            "state": state.value,
            "received_at": record.received_at,
            "via": message.via,
            "signer": message.signer.public_bytes(serialization.Encoding.DER) if message.signer else b"",
            "references": references_to_json(message.references),
            "receipt_content_type": record.receipt.content_type,
            "receipt": record.receipt.body,
        }
        try:
            with self._writing() as session:
                conn = session.connection()
                insert_inbound = _INSERT_INBOUND["postgresql" if self.db.dialect == "postgresql" else "sqlite"]
                inbound_id = conn.execute(insert_inbound, values).scalar()
                if inbound_id is None:  # kept before: answer with what was given then
                    row = conn.execute(_SEEN, {"message_id": message.message_id}).first()
                    if row is None:  # purged in between (PostgreSQL): the sender will send it again
                        raise _PurgedMeanwhile(f"message {message.message_id} was kept and purged meanwhile")
                    return PriorReceipt(row[0], row[1], row[2], row[3])
                if message.payloads:
                    conn.execute(
                        _INSERT_PAYLOAD,
                        [
                            {
                                "inbound_id": inbound_id,
                                "position": i,
                                "content_id": p.content_id,
                                "mime_type": p.mime_type,
                                "properties": _props(p.properties),
                                "data": p.data,
                            }
                            for i, p in enumerate(message.payloads)
                        ],
                    )
                if record.deliver:  # only a row kept now gets a job: the insert above is the idempotency
                    enqueue(session, DELIVER_JOB, {"id": inbound_id}, now=record.received_at)
        except IntegrityError:
            raise StoreError(f"message {message.message_id} could not be kept (a constraint failed)") from None
        except DataError:
            raise _DoesNotFit(
                f"message {message.message_id} could not be kept: a header value does not fit the database"
            ) from None
        return None

    def accept_domibus(self, message: DomibusMessage) -> bool:
        """Keep a message Domibus received and queue its delivery; False when it was kept before.

        This is the hand-over of :func:`oots.as4.domibus.sweep`: idempotent on the message id, so a
        message fetched again after a crash is not delivered twice. Domibus gave the receipt, so none
        is kept here.
        """
        um = message.user_message
        sender = um.party_info.from_party.party_id
        ci = um.collaboration_info
        partner, leg, deliver = "domibus", "unknown", True
        try:
            partner = self.pmodes.sender(sender.value, sender.type).name
            found = self.pmodes.leg(ci.service.value, ci.action, ci.service.type)
            leg, deliver = found.name, not found.is_test
        except NotFound:
            pass
        record = InboundRecord(
            VerifiedMessage(um, message.payloads, None, (), None, "domibus"),
            InboundState.RECEIVED,
            self.clock(),
            deliver,
            msh.Packed("", b""),
        )
        try:
            return self._insert(record, partner, leg) is None
        except _PurgedMeanwhile:  # kept (and delivered) before: nothing more to do
            return False
        except _DoesNotFit as exc:
            raise UnusableMessage(exc.message) from None

    def load_inbound(self, session: Session, inbound_id: int) -> tuple[StoredInbound, VerifiedMessage]:
        """A received message as its delivery hook sees it, and its stored message id and state."""
        rows = session.connection().execute(_LOAD_INBOUND, {"inbound_id": inbound_id}).all()
        if not rows:
            raise NotFound(f"no received AS4 message with id {inbound_id}")
        row = rows[0]
        payloads = [r for r in rows if r.content_id is not None]
        um = user_message_from_json(row.header)
        pmode = None
        try:
            partner = self.pmodes.partner(row.partner)
            ci = um.collaboration_info
            pmode = self.pmodes.resolve(
                partner, self.pmodes.leg(ci.service.value, ci.action, ci.service.type), initiator_is_us=False
            )
        except NotFound:
            pmode = None
        message = VerifiedMessage(
            um,
            tuple(Payload(p.content_id, p.mime_type, p.data, _props_back(p.properties)) for p in payloads),
            _certificate(row.signer) if row.signer else None,
            references_from_json(row.references),
            pmode,
            row.via,
        )
        return StoredInbound(inbound_id, row.message_id, row.state), message

    def deliver_handler(self, hook: Deliver) -> Callable[[Session, Job], None]:
        """The handler of ``as4.deliver`` jobs: the hook and the state change commit with the job.

        When the hook raises, its effects are rolled back with the job's transaction, the state change
        too, and the queue retries the job; once it has no attempts left (or at once, for an error that
        is not retryable: ``OotsError.retryable``, an answer to a partner whose certificate has expired)
        the queue dead-letters it, and :meth:`delivery_dead`, its ``on_dead`` hook, marks the message
        ``delivery_failed`` with the reason and names the dead job. A message ``delivery_failed`` is delivered
        again when its dead job is requeued (once the operator mended the cause): the purge keeps it while
        that job can still run (:meth:`purge_inbound`). A job requeued whose message is not kept any more
        (purged by an older version, which did not wait for the job) ends done, with a warning.

        The message is marked ``delivered`` before the hook runs, in the same transaction and only while
        it is still ``received`` or ``delivery_failed``: that one statement is also the check that it was
        not delivered already (a job re-run after its completion was lost, or requeued twice). A message
        :meth:`deliver_preparer` read for this job is not read again (a kept message never changes, only
        its state does).
        """

        def handle(session: Session, job: Job) -> None:
            inbound_id = int(job.payload["id"])
            message = self._take_prepared(inbound_id)
            if message is None:
                try:
                    stored, message = self.load_inbound(session, inbound_id)
                except NotFound:
                    log.warning(
                        "AS4 delivery job %s: received message %s is no longer kept (purged before the job ran); "
                        "it cannot be delivered: the job ends without delivering it",
                        job.id,
                        inbound_id,
                    )
                    return
                if stored.state not in _DELIVERABLE:
                    return  # delivered already (a job re-run after its completion was lost)
            delivered = msh.inbound_next(InboundState.RECEIVED, InboundEvent.DELIVER)
            if not self._claim_delivery(session, inbound_id, delivered, self.clock()):
                return  # delivered already, or purged since it was read
            hook(session, message)  # a failure rolls the whole job back, the state change too

        return handle

    def delivery_dead(self, failed: DeliveryFailed | None = None) -> Callable[[Session, Job, BaseException], None]:
        """The ``on_dead`` hook of ``as4.deliver`` jobs: the message is marked ``delivery_failed`` with the
        error and the dead job's id (``delivery_job``: the purge keeps the message while that job can run),
        and ``failed`` (the application's hook) is told, in the transaction that dead-letters the job (its
        handler failed on its last attempt, or failed with an error that is not retryable, or its worker
        never finished its last attempt: a :class:`~oots.errors.LeaseExpired`)."""

        def dead(session: Session, job: Job, exc: BaseException) -> None:
            try:
                stored, message = self.load_inbound(session, int(job.payload["id"]))
            except NotFound:
                return
            if stored.state not in _DELIVERABLE:
                return
            state = InboundState(stored.state)
            if state is InboundState.RECEIVED:
                state = msh.inbound_next(state, InboundEvent.DELIVERY_FAILED)
            self._mark_failed(session, stored, state, error_text(exc)[:4000], job.id)
            if failed is not None:
                failed(session, message, exc)

        return dead

    def deliver_preparer(self, prepare: PrepareDelivery) -> Callable[[Job], None]:
        """The preparer of ``as4.deliver`` jobs: ``prepare`` sees the message before the job's transaction.

        The message is read in a read-only transaction (on SQLite, without the write lock), so the
        receiving role can do its slow work (validating, rendering, signing its answer) while the
        node's other writers go on; what it keeps is for its hook in :meth:`deliver_handler`, and the
        message read here is kept for the handler too.
        """

        def prepare_job(job: Job) -> None:
            inbound_id = int(job.payload["id"])
            with self.db.session() as session:
                stored, message = self.load_inbound(session, inbound_id)
            if stored.state not in _DELIVERABLE:
                return
            self._keep_prepared(inbound_id, message)
            try:
                prepare(message)
            except BaseException:
                self._take_prepared(inbound_id)  # the job fails: its next attempt reads the message again
                raise

        return prepare_job

    def _keep_prepared(self, inbound_id: int, message: VerifiedMessage) -> None:
        size = sum(len(p.data) for p in message.payloads)
        if size > _PREPARED_BYTES:
            return
        with self._prepared_lock:
            self._forget_prepared(inbound_id)
            while self._prepared and (
                len(self._prepared) >= _PREPARED_KEPT or self._prepared_bytes + size > _PREPARED_BYTES
            ):
                self._forget_prepared(next(iter(self._prepared)))
            self._prepared[inbound_id] = (message, size)
            self._prepared_bytes += size

    def _take_prepared(self, inbound_id: int) -> VerifiedMessage | None:
        with self._prepared_lock:
            return self._forget_prepared(inbound_id)

    def _forget_prepared(self, inbound_id: int) -> VerifiedMessage | None:
        """Drop what is kept for ``inbound_id`` (the lock held); what was kept, if anything."""
        kept = self._prepared.pop(inbound_id, None)
        if kept is None:
            return None
        self._prepared_bytes -= kept[1]
        return kept[0]

    @staticmethod
    def _claim_delivery(session: Session, inbound_id: int, state: InboundState, at: dt.datetime) -> bool:
        """Set the state of a ``received`` message; False when it is not ``received`` (or not kept) any more."""
        params = {"inbound_id": inbound_id, "new_state": state.value, "done_at": at, "error": None, "job": None}
        return _rowcount(session.connection().execute(_INBOUND_CLAIMED, params)) > 0

    @staticmethod
    def _mark_failed(session: Session, stored: StoredInbound, state: InboundState, error: str, job: int) -> None:
        """Mark a message whose delivery failed with the error and its dead delivery job."""
        params = {"inbound_id": stored.id, "new_state": state.value, "done_at": None, "error": error, "job": job}
        session.connection().execute(_INBOUND_DONE, params)

    def inbound_state(self, message_id: str) -> str:
        with self.db.session() as session:
            state = session.execute(select(As4Inbound.state).where(As4Inbound.message_id == message_id)).scalar()
        if state is None:
            raise NotFound(f"no received AS4 message {message_id}")
        return state

    def purge_inbound(self, *, older_than: dt.datetime, limit: int = PURGE_BATCH) -> int:
        """Forget at most ``limit`` received messages that are done (delivered, not for delivery, delivery
        failed) and were received before ``older_than``, with their payloads, in a write transaction of
        its own; how many. A message still waiting for its delivery is never forgotten, nor is one whose
        delivery failed while its delivery job can still run: dead (an operator may requeue it), or
        queued or running again (requeued); once that job is done (it delivered the message, which is then
        ``delivered``, or an operator discarded it) or deleted, the message is forgotten too. Rows another
        transaction holds are skipped (PostgreSQL), not waited for: the next batch finds them."""
        with self._writing() as session:
            return _purge(session, older_than, limit)

    # -- sending ------------------------------------------------------------------------------------

    def submit(self, session: Session, record: Outbound) -> None:
        """Keep a packed outgoing message in the caller's transaction; it is sent when due."""
        session.connection().execute(
            _INSERT_OUTBOUND,
            {
                "message_id": record.message_id,
                "partner": record.partner,
                "leg": record.leg,
                "state": record.state.value,
                "created_at": record.created_at,
                "attempts": record.attempts,
                "next_attempt_at": record.next_attempt_at,
                "content_type": record.content_type,
                "body": record.body,
                "references": references_to_json(record.references),
                "updated_at": record.created_at,
            },
        )

    def outbound(self, message_id: str) -> Outbound:
        with self.db.session() as session:
            row = session.execute(select(As4Outbound).where(As4Outbound.message_id == message_id)).scalar()
            if row is None:
                raise NotFound(f"no outgoing AS4 message {message_id}")
            return _outbound(row)

    def claim_due(self, now: dt.datetime, *, lease_seconds: float, limit: int = 16) -> list[Outbound]:
        """Take the due messages under a lease (a killed sender's messages become due again after it).

        The oldest due come first, and among those due at the same moment the first submitted. The
        lease runs until ``now + lease_seconds`` (what :meth:`release` is given).
        """
        until = now + dt.timedelta(seconds=lease_seconds)
        with self._connection() as conn:
            rows = conn.execute(_CLAIM, {"now": now, "limit": limit, "until": until}).all()
        # RETURNING keeps no order: oldest due first, then in submission order
        return [_outbound(row) for row in sorted(rows, key=lambda row: (row.next_attempt_at, row.id))]

    def release(self, records: Sequence[Outbound], *, until: dt.datetime) -> int:
        """Give back claimed messages no attempt was started for (their lease ``until``): due again at
        once. Returns how many were still held by that claim."""
        if not records:
            return 0
        with self._connection() as conn:
            result = conn.execute(_RELEASE, {"ids": [r.message_id for r in records], "until": until})
        return int(getattr(result, "rowcount", 0) or 0)

    def awaiting_outcome(self, *, limit: int = 50) -> list[Outbound]:
        """Messages handed to another access point (Domibus mode) whose outcome is not known yet.

        They are ``sent`` without a lease: the built-in sender never leaves a message so (an attempt
        ends in another state, and a message being sent holds a lease).
        """
        with self.db.session() as session:
            rows = session.execute(
                select(As4Outbound)
                .where(As4Outbound.state == OutboundState.SENT.value, As4Outbound.locked_until.is_(None))
                .order_by(As4Outbound.first_sent_at)
                .limit(limit)
            ).scalars()
            return [_outbound(row) for row in rows]

    def save(
        self,
        record: Outbound,
        events: Sequence[Any] = (),
        on_event: OutboundEventHook | None = None,
        *,
        lease: dt.datetime | None = None,
    ) -> bool:
        """Write what an attempt came to, and release the lease; returns whether it was written.

        With ``lease`` (the ``locked_until`` its claim set) only while that claim still holds the
        message: once the lease ran out and another sender claimed it, this attempt's outcome (and its
        events) is dropped, so a late sender never overwrites what the other one saved.
        """
        statement = _SAVE if lease is None else _SAVE_HELD
        params = {
            "b_message_id": record.message_id,
            "v_state": record.state.value,
            "v_attempts": record.attempts,
            "v_first_sent_at": record.first_sent_at,
            "v_next_attempt_at": record.next_attempt_at,
            "v_error_code": record.error_code,
            "v_error_detail": record.error_detail[:4000] if record.error_detail else None,
            "v_receipt": record.receipt,
            "v_updated_at": self.clock(),
        }
        if lease is not None:
            params["b_lease"] = lease
        if on_event is None or not events:
            with self._connection() as conn:
                saved = _rowcount(conn.execute(statement, params)) > 0
        else:
            with self._writing() as session:
                saved = _rowcount(session.connection().execute(statement, params)) > 0
                for event in events if saved else ():
                    on_event(session, event)
        if not saved:
            log.warning(
                "AS4 message %s: its lease ran out and another sender took it over; this attempt's outcome "
                "(%s) is not saved",
                record.message_id,
                record.state.value,
            )
        return saved


def _rowcount(result: Any) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


_DONE = (InboundState.DELIVERED.value, InboundState.NOT_DELIVERED.value, InboundState.DELIVERY_FAILED.value)
#: The statuses of a delivery job that can still deliver its message (a dead one once requeued).
_JOB_LIVE = ("queued", "running", "dead")
_JOBS: Table = QueueJob.__table__  # type: ignore[assignment]
#: The purge's batch: done messages past the window (the ``(state, received_at)`` index), but not a
#: ``delivery_failed`` one whose delivery job can still run (looked up by the job's primary key).
_PURGEABLE = (
    select(_I.id)
    .where(
        _I.state.in_([literal_column(f"'{state}'") for state in _DONE]),
        _I.received_at < bindparam("older_than", type_=UtcDateTime()),
        or_(
            _I.state != literal_column(f"'{InboundState.DELIVERY_FAILED.value}'"),
            ~exists().where(
                _JOBS.c.id == _I.delivery_job,
                _JOBS.c.status.in_([literal_column(f"'{status}'") for status in _JOB_LIVE]),
            ),
        ),
    )
    .limit(bindparam("limit", type_=Integer()))
    .with_for_update(skip_locked=True)
)


def _purge(session: Session, older_than: dt.datetime, limit: int) -> int:
    ids = list(session.connection().execute(_PURGEABLE, {"older_than": older_than, "limit": limit}).scalars())
    if not ids:
        return 0
    session.execute(delete(As4InboundPayload).where(As4InboundPayload.inbound_id.in_(ids)))
    return _rowcount(session.execute(delete(As4Inbound).where(As4Inbound.id.in_(ids))))


class InboundPurge:
    """The periodic purge of received messages past the duplicate-detection window, as a loop's tick.

    Each call forgets one batch (at most ``batch``) of the done messages received more than
    ``window_seconds`` ago (:meth:`As4Store.purge_inbound`, a write transaction of its own, so the SQLite
    write lock is held for one batch at a time) and returns how many: a loop that runs it every
    ``[as4] purge_interval_seconds`` runs it again at once while it finds some. Once a run finds no
    more, one INFO line says how many it forgot. Safe in several threads and processes at once.
    """

    def __init__(self, store: As4Store, *, window_seconds: float, batch: int = PURGE_BATCH) -> None:
        self.store = store
        self.window = dt.timedelta(seconds=window_seconds)
        self.batch = batch
        self._run = 0  # forgotten by the batches of the run going on
        self._lock = threading.Lock()

    def __call__(self) -> int:
        purged = self.store.purge_inbound(older_than=self.store.clock() - self.window, limit=self.batch)
        with self._lock:
            self._run += purged
            if purged >= self.batch or not self._run:
                return purged
            total, self._run = self._run, 0
        log.info("AS4: %d received message(s) past the duplicate-detection window purged", total)
        return purged


class Unsent:
    """The messages the sender threads of a process claimed and have not started to send yet.

    :func:`send_due` keeps what it claims here and takes each message out as it starts it; a stopping
    sender calls :meth:`give_back`, which releases the rest at once (due again, for any sender) instead
    of leaving them locked until their lease runs out, while a send in flight finishes.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: dict[str, tuple[Outbound, dt.datetime]] = {}
        self._closed = False

    def hold(self, records: Sequence[Outbound], until: dt.datetime) -> bool:
        """Keep ``records`` (claimed until ``until``); False when giving back has begun (release them)."""
        with self._lock:
            if self._closed:
                return False
            self._held.update((record.message_id, (record, until)) for record in records)
            return True

    def start(self, record: Outbound) -> bool:
        """Take ``record`` out to send it; False when it was given back (do not send it)."""
        with self._lock:
            return self._held.pop(record.message_id, None) is not None

    def forget(self, records: Sequence[Outbound]) -> None:
        """Stop holding ``records`` (a send that failed left them to their lease)."""
        with self._lock:
            for record in records:
                self._held.pop(record.message_id, None)

    def give_back(self, store: As4Store) -> int:
        """Release every message held and hold none from now on; returns how many were released."""
        with self._lock:
            self._closed = True
            held, self._held = list(self._held.values()), {}
        by_lease: dict[dt.datetime, list[Outbound]] = {}
        for record, until in held:
            by_lease.setdefault(until, []).append(record)
        released = sum(store.release(records, until=until) for until, records in by_lease.items())
        if held:
            log.info("AS4 sender stopping: %d claimed message(s) given back unsent", released)
        return released


def send_due(
    store: As4Store,
    codec: msh.Codec,
    sender: HttpSender,
    *,
    now: Callable[[], dt.datetime],
    lease_seconds: float = 120.0,
    limit: int = 16,
    on_event: OutboundEventHook | None = None,
    unsent: Unsent | None = None,
) -> int:
    """Send every due message once; return how many were attempted (run it in a loop).

    With ``unsent``, the messages claimed and not started yet are kept there, so that a stopping
    sender gives them back at once (:meth:`Unsent.give_back`); the one being sent finishes first.
    """
    claimed_at = now()
    until = claimed_at + dt.timedelta(seconds=lease_seconds)
    claimed = store.claim_due(claimed_at, lease_seconds=lease_seconds, limit=limit)
    if unsent is not None and not unsent.hold(claimed, until):
        store.release(claimed, until=until)  # stopping already
        return 0
    try:
        for index, due in enumerate(claimed):
            if unsent is not None and not unsent.start(due):
                return index  # stopping: the rest was given back
            if now() >= until:  # the batch's lease ran out: another sender may have these now
                log.info(
                    "AS4 sender: the lease of %d claimed message(s) ran out before they were sent", len(claimed) - index
                )
                return index
            _send_one(store, codec, sender, due, now=now, on_event=on_event, lease=until)
    finally:
        if unsent is not None:
            unsent.forget(claimed)  # what a failure left unstarted waits for its lease
    return len(claimed)


def _send_one(
    store: As4Store,
    codec: msh.Codec,
    sender: HttpSender,
    due: Outbound,
    *,
    now: Callable[[], dt.datetime],
    on_event: OutboundEventHook | None,
    lease: dt.datetime | None = None,
) -> None:
    """One attempt at one claimed message, and what came of it saved (the lease, ``lease``, released)."""
    try:
        partner = store.pmodes.partner(due.partner)
        leg = next(leg for leg in store.pmodes.legs if leg.name == due.leg)
    except (NotFound, StopIteration):
        updated, events = msh.give_up(due, f"partner {due.partner} or leg {due.leg} is no longer configured")
        store.save(updated, events, on_event, lease=lease)
        return
    problem = partner.sending_problem(now())
    if problem is not None:
        # A certificate of the partner expired (or its new one is not valid yet) since the message was
        # packed: no attempt could be answered with a receipt we trust, so it fails now, not after every retry.
        log.warning("AS4 message %s not sent: %s", due.message_id, problem)
        updated, events = msh.give_up(due, problem)
        store.save(updated, events, on_event, lease=lease)
        return
    mode = store.pmodes.resolve(partner, leg)
    record, request = msh.begin_attempt(due, mode, now())
    try:
        reply = sender.post(request)
    except TransportError as exc:
        updated, events = msh.on_transport_failure(record, mode, exc.message)
    else:
        updated, events = msh.on_reply(record, mode, codec, (reply.content_type, reply.body), now())
    try:
        saved = store.save(updated, events, on_event, lease=lease)
    except OotsError as exc:
        log.error("AS4 message %s: its outcome could not be saved (error id %s)", record.message_id, exc.error_id)
        raise
    if saved:
        log.info("AS4 message %s to %s: %s", record.message_id, record.partner, updated.state.value)
