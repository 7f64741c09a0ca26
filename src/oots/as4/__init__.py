"""ebMS 3 / AS4 for OOTS: the message model, envelopes, MIME, WS-Security, receipts and errors.

The core (everything here except the ``http``, ``store``, ``domibus``, ``service`` and ``cli``
modules) is sans-I/O: bytes, time and keys go in, bytes and values come out.
"""

from __future__ import annotations

from oots.as4.errors import EbmsError, error_for
from oots.as4.model import (
    CollaborationInfo,
    Error,
    MessageInfo,
    PartInfo,
    Party,
    PartyId,
    PartyInfo,
    Payload,
    Property,
    Receipt,
    Reference,
    Service,
    SignalMessage,
    Transform,
    UserMessage,
)

__all__ = [
    "CollaborationInfo",
    "EbmsError",
    "Error",
    "MessageInfo",
    "PartInfo",
    "Party",
    "PartyId",
    "PartyInfo",
    "Payload",
    "Property",
    "Receipt",
    "Reference",
    "Service",
    "SignalMessage",
    "Transform",
    "UserMessage",
    "error_for",
]
