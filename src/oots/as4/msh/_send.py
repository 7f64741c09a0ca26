"""The sending side: one outgoing message through its states, without I/O.

Inputs are the stored :class:`Outbound` record, the time and the bytes that came back; outputs are a
new record, the request to make and events. The caller (``oots.as4.store`` with ``oots.as4.http``)
persists the record and does the HTTP call.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from oots.as4.errors import EbmsError
from oots.as4.model import Error, Payload, Reference, SignalMessage, UserMessage
from oots.as4.msh._codec import Codec
from oots.as4.msh._state import OutboundEvent, OutboundState, outbound_next
from oots.as4.pmode import PMode
from oots.errors import CertificateNotValid, ProtocolError, SecurityError

__all__ = [
    "ErrorReceived",
    "MessageFailed",
    "Outbound",
    "ReceiptReceived",
    "RetryScheduled",
    "SendRequest",
    "begin_attempt",
    "create_outbound",
    "give_up",
    "on_reply",
    "on_transport_failure",
]


@dataclass(frozen=True, slots=True)
class Outbound:
    """The stored state of one outgoing UserMessage."""

    message_id: str
    partner: str
    leg: str
    state: OutboundState
    created_at: dt.datetime
    #: The signed, encrypted message: every attempt sends these same bytes (same MessageId).
    content_type: str
    body: bytes = field(repr=False)
    references: tuple[Reference, ...] = ()
    attempts: int = 0
    first_sent_at: dt.datetime | None = None
    next_attempt_at: dt.datetime | None = None
    error_code: str | None = None
    error_detail: str | None = None
    #: The raw signed receipt, kept as the non-repudiation record.
    receipt: bytes | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class SendRequest:
    """An HTTP POST to make."""

    url: str
    content_type: str
    body: bytes = field(repr=False)
    message_id: str = ""


@dataclass(frozen=True, slots=True)
class ReceiptReceived:
    message_id: str
    receipt: SignalMessage


@dataclass(frozen=True, slots=True)
class ErrorReceived:
    message_id: str
    errors: tuple[Error, ...]


@dataclass(frozen=True, slots=True)
class RetryScheduled:
    message_id: str
    at: dt.datetime
    reason: str


@dataclass(frozen=True, slots=True)
class MessageFailed:
    """The message is given up; ``error`` is what the producer is told (EBMS:0301 MissingReceipt...)."""

    message_id: str
    error: Error


#: Errors that mean "not now" rather than "never": the message is sent again on the schedule.
_RETRYABLE = frozenset({EbmsError.DELIVERY_FAILURE.code, EbmsError.CONNECTION_FAILURE.code})

Event = ReceiptReceived | ErrorReceived | RetryScheduled | MessageFailed


def create_outbound(
    codec: Codec, message: UserMessage, payloads: Sequence[Payload], pmode: PMode, now: dt.datetime
) -> Outbound:
    """Pack ``message`` for ``pmode`` and return its record in state CREATED, due now.

    Raises :class:`CertificateNotValid` (a :class:`SecurityError`) when the partner's certificates are not
    valid at ``now`` (expired, or not yet valid): nothing could be sent to it that it could read and
    answer with a trusted receipt.
    """
    problem = pmode.partner.sending_problem(now)
    if problem is not None:
        raise CertificateNotValid(problem)
    packed = codec.pack_user_message(message, payloads, pmode, now)
    return Outbound(
        message_id=message.message_info.message_id,
        partner=pmode.partner.name,
        leg=pmode.leg.name,
        state=OutboundState.CREATED,
        created_at=now,
        content_type=packed.content_type,
        body=packed.body,
        references=packed.references,
        next_attempt_at=now,
    )


def begin_attempt(record: Outbound, pmode: PMode, now: dt.datetime) -> tuple[Outbound, SendRequest]:
    """Move to SENT and return the request to make (the same bytes on every attempt)."""
    state = outbound_next(record.state, OutboundEvent.SEND)
    updated = replace(
        record,
        state=state,
        attempts=record.attempts + 1,
        first_sent_at=record.first_sent_at or now,
        next_attempt_at=None,
    )
    return updated, SendRequest(pmode.address, record.content_type, record.body, record.message_id)


def _no_receipt(record: Outbound, pmode: PMode, reason: str, code: EbmsError) -> tuple[Outbound, list[Event]]:
    schedule = pmode.reception_awareness.retry
    offset = schedule.next_attempt_after(record.attempts) if pmode.reception_awareness.enabled else None
    assert record.first_sent_at is not None
    if offset is not None:
        at = record.first_sent_at + dt.timedelta(seconds=offset)
        updated = replace(
            record,
            state=outbound_next(record.state, OutboundEvent.NO_RECEIPT),
            next_attempt_at=at,
            error_code=code.code,
            error_detail=reason,
        )
        return updated, [RetryScheduled(record.message_id, at, reason)]
    detail = f"no receipt after {record.attempts} attempt(s); last: {reason}"
    error = EbmsError.MISSING_RECEIPT.to_error(ref_to_message_in_error=record.message_id, detail=detail)
    updated = replace(
        record,
        state=outbound_next(record.state, OutboundEvent.NO_RECEIPT_FINAL),
        next_attempt_at=None,
        error_code=error.error_code,
        error_detail=detail,
    )
    return updated, [MessageFailed(record.message_id, error)]


def on_transport_failure(record: Outbound, pmode: PMode, reason: str) -> tuple[Outbound, list[Event]]:
    """The attempt got no answer (refused, timeout, HTTP error): schedule a retry or fail (EBMS:0301)."""
    return _no_receipt(record, pmode, reason, EbmsError.CONNECTION_FAILURE)


def _receipt_matches(record: Outbound, receipt: SignalMessage) -> str | None:
    if receipt.message_info.ref_to_message_id != record.message_id:
        return f"the receipt refers to {receipt.message_info.ref_to_message_id!r}, not to this message"
    assert receipt.receipt is not None
    if record.references:
        ours = {(r.uri, r.digest_value) for r in record.references}
        theirs = {(r.uri, r.digest_value) for r in receipt.receipt.references}
        if ours != theirs:
            return "the receipt's non-repudiation information does not match what we signed"
    return None


def on_reply(
    record: Outbound, pmode: PMode, codec: Codec, reply: tuple[str, bytes], now: dt.datetime
) -> tuple[Outbound, list[Event]]:
    """The HTTP answer ``(content_type, body)`` of an attempt: a receipt or errors (done), or junk (retry)."""
    content_type, body = reply
    try:
        signal = codec.read_signal(content_type, body, pmode.partner, now)
    except (ProtocolError, SecurityError) as exc:
        return _no_receipt(record, pmode, f"invalid answer: {exc.message}", EbmsError.INVALID_RECEIPT)
    if signal.errors:
        failures = tuple(e for e in signal.errors if e.severity == "failure")
        first = (failures or signal.errors)[0]
        if failures and all(e.error_code in _RETRYABLE for e in failures):
            # The partner could not keep the message for now (its store is down): no receipt, so retry.
            return _no_receipt(
                record,
                pmode,
                f"{first.error_code} from the partner: {first.error_detail or ''}",
                EbmsError.DELIVERY_FAILURE,
            )
        if not failures:
            # Only warnings and no receipt: reception is not acknowledged, so the message is sent again.
            return _no_receipt(
                record, pmode, f"only warnings came back ({first.error_code})", EbmsError.INVALID_RECEIPT
            )
        updated = replace(
            record,
            state=outbound_next(record.state, OutboundEvent.ERROR),
            error_code=first.error_code,
            error_detail=first.error_detail or first.short_description,
        )
        return updated, [ErrorReceived(record.message_id, signal.errors)]
    if signal.receipt is None:
        return _no_receipt(record, pmode, "the answer holds neither a receipt nor errors", EbmsError.INVALID_RECEIPT)
    problem = _receipt_matches(record, signal)
    if problem is not None:
        return _no_receipt(record, pmode, problem, EbmsError.INVALID_RECEIPT)
    updated = replace(
        record,
        state=outbound_next(record.state, OutboundEvent.RECEIPT),
        receipt=body,
        error_code=None,
        error_detail=None,
    )
    return updated, [ReceiptReceived(record.message_id, signal)]


def give_up(record: Outbound, reason: str) -> tuple[Outbound, list[Event]]:
    """Stop trying (an operator, or a fault no retry can mend, such as an unknown partner)."""
    error = EbmsError.OTHER.to_error(ref_to_message_in_error=record.message_id, detail=reason)
    updated = replace(
        record,
        state=outbound_next(record.state, OutboundEvent.GIVE_UP),
        next_attempt_at=None,
        error_code=error.error_code,
        error_detail=reason,
    )
    return updated, [MessageFailed(record.message_id, error)]
