"""The receiving side as named steps: parse → decrypt and verify → resolve PMode → deduplicate → store →
receipt → deliver.

Decryption and verification are one step because AS4 signs, then encrypts: the signature covers the
plaintext, so the codec decrypts first and returns nothing unless the signature then holds.

:func:`receive` runs the steps over the request bytes and returns an :class:`Inbound` outcome: the
synchronous answer (a signed receipt or an ebMS error), the record to store and whether to deliver it.
The caller stores the record (and queues the delivery) in one transaction *before* it sends the
answer, so a message acknowledged is a message kept. Duplicates within the detection window are
answered with the receipt stored the first time, and are not stored or delivered again: found by
``Receiver.seen`` before the receipt is signed, or — the HTTP endpoint's way, one transaction per
message instead of two — by the inbox as it stores (:meth:`oots.as4.http.Inbox.accept`). Test-service
messages are answered and never delivered.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from oots.as4.errors import error_for
from oots.as4.model import Error
from oots.as4.msh._codec import Codec, Packed, Parsed, VerifiedMessage
from oots.as4.msh._state import InboundState
from oots.as4.pmode import PModeSet
from oots.errors import NotFound, OotsError, RemoteProtocolError

__all__ = [
    "STEPS",
    "Inbound",
    "InboundRecord",
    "PriorReceipt",
    "Receiver",
    "check_same_sender",
    "error_answer",
    "receive",
]


@dataclass(frozen=True, slots=True)
class PriorReceipt:
    """What the store remembers of a message id already received (for duplicate detection).

    ``partner`` is the name of the partner that sent it (None when the store does not say): a message
    of another partner with the same id is no duplicate, and is refused (:func:`check_same_sender`).
    """

    received_at: dt.datetime
    content_type: str
    receipt: bytes = field(repr=False)
    partner: str | None = None


def check_same_sender(prior: PriorReceipt, message: VerifiedMessage) -> None:
    """A message id kept before from another partner: ``EBMS:0003``. Its receipt (which holds the digests
    of the other partner's payloads) is not given, and the message is not kept."""
    if prior.partner is None or message.pmode is None or prior.partner == message.pmode.partner.name:
        return
    raise RemoteProtocolError(
        f"the message id {message.message_id} is already used by a message from another partner; "
        "send the message with an id of its own",
        code="EBMS:0003",
    )


@dataclass(frozen=True, slots=True)
class InboundRecord:
    """The stored state of one received UserMessage (written before the receipt goes out)."""

    message: VerifiedMessage
    state: InboundState
    received_at: dt.datetime
    deliver: bool
    receipt: Packed


@dataclass(frozen=True, slots=True)
class Inbound:
    """The outcome of one request: the answer to send, and what to store."""

    status: int
    content_type: str
    body: bytes = field(repr=False)
    #: To store (then deliver when ``record.deliver``); None for errors and duplicates.
    record: InboundRecord | None = None
    duplicate_of: PriorReceipt | None = None
    error: Error | None = None
    #: The message id the request carried, when it could be read (for logs).
    message_id: str | None = None


@dataclass(frozen=True, slots=True)
class Receiver:
    """What :func:`receive` works with: our PModes, the codec, and a way to ask the store about ids.

    ``seen(message_id)`` returns the prior receipt when the id was received before, else None; with
    ``seen=None`` the pipeline does not look, and the caller's store detects duplicates as it keeps the
    record (see :func:`oots.as4.http.handle_request`).
    ``new_message_id()`` mints the id of the answer (a receipt or error signal).
    """

    pmodes: PModeSet
    codec: Codec
    seen: Callable[[str], PriorReceipt | None] | None
    new_message_id: Callable[[], str]


@dataclass(slots=True)
class _Ctx:
    content_type: str
    body: bytes
    now: dt.datetime
    parsed: Parsed | None = None
    message: VerifiedMessage | None = None
    prior: PriorReceipt | None = None
    receipt: Packed | None = None
    deliver: bool = True


Step = Callable[[Receiver, _Ctx], None]


def parse(rx: Receiver, ctx: _Ctx) -> None:
    """The first look: size and packaging."""
    ctx.parsed = rx.codec.parse(ctx.content_type, ctx.body)


def decrypt_and_verify(rx: Receiver, ctx: _Ctx) -> None:
    """Decrypt, check the signature, and check the signer is the partner the signed header names."""
    assert ctx.parsed is not None
    ctx.message = rx.codec.verify(ctx.parsed, rx.pmodes, ctx.now)


def resolve_pmode(rx: Receiver, ctx: _Ctx) -> None:
    """Find the PMode from the verified header; the test service is answered and never delivered."""
    assert ctx.message is not None
    um = ctx.message.user_message
    pi, ci = um.party_info, um.collaboration_info
    try:
        pmode = rx.pmodes.resolve_incoming(
            from_party=(pi.from_party.party_id.type or "", pi.from_party.party_id.value),
            to_party=(pi.to_party.party_id.type or "", pi.to_party.party_id.value),
            service=ci.service.value,
            service_type=ci.service.type,
            action=ci.action,
        )
    except NotFound as exc:
        raise RemoteProtocolError(exc.message, code="EBMS:0010") from None
    for prop in pmode.leg.business_info.properties:
        if prop.required and um.property(prop.name) is None:
            raise RemoteProtocolError(f"the message property {prop.name!r} is missing", code="EBMS:0010")
    ctx.message = replace(ctx.message, pmode=pmode)
    ctx.deliver = not pmode.leg.is_test


def deduplicate(rx: Receiver, ctx: _Ctx) -> None:
    """A message id seen before is not stored or delivered again; its first receipt is sent again."""
    assert ctx.message is not None
    assert ctx.message.pmode is not None
    if rx.seen is not None and ctx.message.pmode.reception_awareness.duplicate_detection.enabled:
        ctx.prior = rx.seen(ctx.message.message_id)
        if ctx.prior is not None:
            check_same_sender(ctx.prior, ctx.message)


def store(rx: Receiver, ctx: _Ctx) -> None:
    """Nothing to do here: the record is part of the outcome, and the caller stores it before answering."""


def receipt(rx: Receiver, ctx: _Ctx) -> None:
    """The signed non-repudiation receipt (the stored one for a duplicate)."""
    assert ctx.message is not None
    if ctx.prior is None:
        ctx.receipt = rx.codec.pack_receipt(ctx.message, rx.new_message_id(), ctx.now)


def deliver(rx: Receiver, ctx: _Ctx) -> None:
    """Delivery is queued by the caller with the stored record; here it is only decided (``ctx.deliver``)."""


#: The pipeline, in order. Each step reads and fills the context, or raises an OotsError.
STEPS: tuple[tuple[str, Step], ...] = (
    ("parse", parse),
    ("decrypt_and_verify", decrypt_and_verify),
    ("resolve_pmode", resolve_pmode),
    ("deduplicate", deduplicate),
    ("store", store),
    ("receipt", receipt),
    ("deliver", deliver),
)


def _error_answer(rx: Receiver, ctx: _Ctx, exc: OotsError, now: dt.datetime) -> Inbound:
    message_id = None
    if ctx.message is not None:
        message_id = ctx.message.message_id
    elif ctx.parsed is not None:
        message_id = ctx.parsed.message_id
    return error_answer(rx, exc, message_id, now)


def error_answer(rx: Receiver, exc: OotsError, message_id: str | None, now: dt.datetime) -> Inbound:
    """The signed ebMS error answering ``exc`` (``message_id``: the message it refers to, when known)."""
    error = error_for(exc, ref_to_message_in_error=message_id)
    packed = rx.codec.pack_errors([error], message_id, rx.new_message_id(), now)
    return Inbound(200, packed.content_type, packed.body, error=error, message_id=message_id)


def receive(rx: Receiver, content_type: str, body: bytes, now: dt.datetime) -> Inbound:
    """Run the pipeline over one request and return the answer and what to store."""
    ctx = _Ctx(content_type, body, now)
    try:
        for _name, step in STEPS:
            step(rx, ctx)
    except OotsError as exc:
        return _error_answer(rx, ctx, exc, now)
    assert ctx.message is not None
    if ctx.prior is not None:
        return Inbound(
            200, ctx.prior.content_type, ctx.prior.receipt, duplicate_of=ctx.prior, message_id=ctx.message.message_id
        )
    assert ctx.receipt is not None
    record = InboundRecord(
        message=ctx.message,
        state=InboundState.RECEIVED,
        received_at=now,
        deliver=ctx.deliver,
        receipt=ctx.receipt,
    )
    return Inbound(200, ctx.receipt.content_type, ctx.receipt.body, record=record, message_id=ctx.message.message_id)
