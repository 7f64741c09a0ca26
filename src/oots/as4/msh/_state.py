"""Every rule of a message's life, in one table per direction (as h11 keeps its rules in ``_state.py``).

Outgoing (a UserMessage we send)::

    CREATED ──send──▶ SENT ──receipt──▶ RECEIPT                 (done: a valid signed receipt came back)
                       │  ──error────▶ ERROR                    (done: the partner answered an ebMS error)
                       │  ──no_receipt─▶ WAITING_TO_RETRY ──send──▶ SENT ...
                       └──no_receipt_final─▶ FAILED             (done: EBMS:0301 MissingReceipt)
    CREATED / WAITING_TO_RETRY ──give_up──▶ FAILED              (an operator or a permanent fault stops it)

``no_receipt`` covers every attempt that did not end with a receipt or an ebMS error: connection
refused, timeout, an HTTP error status, an answer that is not a valid receipt. Whether it is
``no_receipt`` or ``no_receipt_final`` is decided by the PMode's retry schedule
(:meth:`oots.as4.pmode.RetrySchedule.next_attempt_after`).

Incoming (a UserMessage we received)::

    RECEIVED ──deliver──▶ DELIVERED          (the application has it; exactly once)
    RECEIVED ──not_for_delivery──▶ NOT_DELIVERED   (the test service: answered, never delivered)
    RECEIVED ──delivery_failed──▶ DELIVERY_FAILED  (the application kept refusing it, or could not
                                                    answer it: its delivery job is dead)
    DELIVERY_FAILED ──deliver──▶ DELIVERED   (an operator requeued the dead delivery job)

A message is stored as RECEIVED before its receipt is sent; a duplicate changes nothing.
"""

from __future__ import annotations

from enum import StrEnum

from oots.errors import LocalProtocolError

__all__ = [
    "INBOUND_TRANSITIONS",
    "OUTBOUND_TRANSITIONS",
    "InboundEvent",
    "InboundState",
    "OutboundEvent",
    "OutboundState",
    "inbound_next",
    "is_final",
    "outbound_next",
]


class OutboundState(StrEnum):
    CREATED = "created"
    SENT = "sent"
    RECEIPT = "receipt"
    ERROR = "error"
    WAITING_TO_RETRY = "waiting_to_retry"
    FAILED = "failed"


class OutboundEvent(StrEnum):
    SEND = "send"
    RECEIPT = "receipt"
    ERROR = "error"
    NO_RECEIPT = "no_receipt"
    NO_RECEIPT_FINAL = "no_receipt_final"
    GIVE_UP = "give_up"


class InboundState(StrEnum):
    RECEIVED = "received"
    DELIVERED = "delivered"
    NOT_DELIVERED = "not_delivered"
    DELIVERY_FAILED = "delivery_failed"


class InboundEvent(StrEnum):
    DELIVER = "deliver"
    NOT_FOR_DELIVERY = "not_for_delivery"
    DELIVERY_FAILED = "delivery_failed"


_O = OutboundState
_OE = OutboundEvent
#: The whole outgoing life: (state, event) -> next state. Anything not listed is a bug of the caller.
OUTBOUND_TRANSITIONS: dict[tuple[OutboundState, OutboundEvent], OutboundState] = {
    (_O.CREATED, _OE.SEND): _O.SENT,
    (_O.CREATED, _OE.GIVE_UP): _O.FAILED,
    (_O.SENT, _OE.RECEIPT): _O.RECEIPT,
    (_O.SENT, _OE.ERROR): _O.ERROR,
    (_O.SENT, _OE.NO_RECEIPT): _O.WAITING_TO_RETRY,
    (_O.SENT, _OE.NO_RECEIPT_FINAL): _O.FAILED,
    (_O.WAITING_TO_RETRY, _OE.SEND): _O.SENT,
    (_O.WAITING_TO_RETRY, _OE.GIVE_UP): _O.FAILED,
}

_I = InboundState
_IE = InboundEvent
INBOUND_TRANSITIONS: dict[tuple[InboundState, InboundEvent], InboundState] = {
    (_I.RECEIVED, _IE.DELIVER): _I.DELIVERED,
    (_I.RECEIVED, _IE.NOT_FOR_DELIVERY): _I.NOT_DELIVERED,
    (_I.RECEIVED, _IE.DELIVERY_FAILED): _I.DELIVERY_FAILED,
    (_I.DELIVERY_FAILED, _IE.DELIVER): _I.DELIVERED,
}

_FINAL = frozenset({_O.RECEIPT, _O.ERROR, _O.FAILED, _I.DELIVERED, _I.NOT_DELIVERED})


def outbound_next(state: OutboundState, event: OutboundEvent) -> OutboundState:
    """The state after ``event``; :class:`LocalProtocolError` when the table has no such move."""
    try:
        return OUTBOUND_TRANSITIONS[(state, event)]
    except KeyError:
        raise LocalProtocolError(f"an outgoing message in state {state} cannot take event {event}") from None


def inbound_next(state: InboundState, event: InboundEvent) -> InboundState:
    """The state after ``event``; :class:`LocalProtocolError` when the table has no such move."""
    try:
        return INBOUND_TRANSITIONS[(state, event)]
    except KeyError:
        raise LocalProtocolError(f"an incoming message in state {state} cannot take event {event}") from None


def is_final(state: OutboundState | InboundState) -> bool:
    """True when nothing more will happen to a message in ``state``."""
    return state in _FINAL
