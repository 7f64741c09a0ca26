"""The AS4 message service handler, sans-I/O: what happens to each message, not how bytes move.

* :mod:`._state` — the state tables (outgoing: created, sent, receipt, error, waiting to retry,
  failed; incoming: received, delivered, not delivered, delivery failed);
* sending (:func:`create_outbound`, :func:`begin_attempt`, :func:`on_reply`,
  :func:`on_transport_failure`, :func:`give_up`): retries on the PMode's schedule and
  ``EBMS:0301 MissingReceipt`` when none comes;
* receiving (:func:`receive`): the pipeline parse → verify → decrypt → resolve PMode → deduplicate →
  store → receipt → deliver, with duplicate detection and the test service never delivered;
* :class:`Codec`: the wire operations it needs from the AS4 core.

Inputs are bytes, the time and stored state; outputs are bytes, events and new state. The durable
side is :mod:`oots.as4.store`, the transport :mod:`oots.as4.http`.
"""

from __future__ import annotations

from oots.as4.msh._codec import Codec, Packed, Parsed, VerifiedMessage
from oots.as4.msh._core import CoreCodec
from oots.as4.msh._receive import (
    STEPS,
    Inbound,
    InboundRecord,
    PriorReceipt,
    Receiver,
    check_same_sender,
    error_answer,
    receive,
)
from oots.as4.msh._send import (
    ErrorReceived,
    MessageFailed,
    Outbound,
    ReceiptReceived,
    RetryScheduled,
    SendRequest,
    begin_attempt,
    create_outbound,
    give_up,
    on_reply,
    on_transport_failure,
)
from oots.as4.msh._state import (
    INBOUND_TRANSITIONS,
    OUTBOUND_TRANSITIONS,
    InboundEvent,
    InboundState,
    OutboundEvent,
    OutboundState,
    inbound_next,
    is_final,
    outbound_next,
)

__all__ = [
    "INBOUND_TRANSITIONS",
    "OUTBOUND_TRANSITIONS",
    "STEPS",
    "Codec",
    "CoreCodec",
    "ErrorReceived",
    "Inbound",
    "InboundEvent",
    "InboundRecord",
    "InboundState",
    "MessageFailed",
    "Outbound",
    "OutboundEvent",
    "OutboundState",
    "Packed",
    "Parsed",
    "PriorReceipt",
    "ReceiptReceived",
    "Receiver",
    "RetryScheduled",
    "SendRequest",
    "VerifiedMessage",
    "begin_attempt",
    "check_same_sender",
    "create_outbound",
    "error_answer",
    "give_up",
    "inbound_next",
    "is_final",
    "on_reply",
    "on_transport_failure",
    "outbound_next",
    "receive",
]
