"""ebMS 3 / AS4 for OOTS: the message model, envelopes, MIME, WS-Security, receipts and errors.

The core (everything here except the ``http``, ``store``, ``domibus``, ``service`` and ``cli``
modules) is sans-I/O: bytes, time, keys and random bytes go in, bytes and values come out.
See ``docs/as4.md``.
"""

from __future__ import annotations

from oots.as4.errors import EbmsError, error_for, lookup
from oots.as4.keys import KeyPair, init_dev_pki, load_key_pair, load_pkcs12
from oots.as4.message import (
    Limits,
    OutboundMessage,
    VerifiedSignalMessage,
    VerifiedUserMessage,
    check_receipt,
    error_signal,
    inspect,
    pack,
    pack_signal,
    receipt_for,
    receive,
)
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
from oots.as4.trust import TrustStore
from oots.as4.wss import EDELIVERY_AS4_1_15, SecuritySuite

__all__ = [
    "EDELIVERY_AS4_1_15",
    "CollaborationInfo",
    "EbmsError",
    "Error",
    "KeyPair",
    "Limits",
    "MessageInfo",
    "OutboundMessage",
    "PartInfo",
    "Party",
    "PartyId",
    "PartyInfo",
    "Payload",
    "Property",
    "Receipt",
    "Reference",
    "SecuritySuite",
    "Service",
    "SignalMessage",
    "Transform",
    "TrustStore",
    "UserMessage",
    "VerifiedSignalMessage",
    "VerifiedUserMessage",
    "check_receipt",
    "error_for",
    "error_signal",
    "init_dev_pki",
    "inspect",
    "load_key_pair",
    "load_pkcs12",
    "lookup",
    "pack",
    "pack_signal",
    "receipt_for",
    "receive",
]
