"""The OOTS eDelivery profile: the ebMS header values OOTS mandates, in one place.

Sources: OOTS TDD 4.7 (eDelivery configuration), the eDelivery AS4 1.15 four-corner enhancement and
the Domibus PMode used on the OOTS network (``EDELIVERY-NOTES.md`` §1.2, §1.3). OOTS uses no
``AgreementRef``; both access points play the one gateway role; ``originalSender`` (C1) and
``finalRecipient`` (C4) are message properties with a ``type``; TDD 2.0 adds ``ExchangeId`` and
``SpecificationId``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Final

from oots.as4.model import (
    CollaborationInfo,
    MessageInfo,
    PartInfo,
    Party,
    PartyId,
    PartyInfo,
    Property,
    Service,
    UserMessage,
)
from oots.mediatypes import REGREP_MIME_TYPE

__all__ = [
    "ACTIONS",
    "ACTION_EXCEPTION_RESPONSE",
    "ACTION_EXECUTE_QUERY_REQUEST",
    "ACTION_EXECUTE_QUERY_RESPONSE",
    "EXCHANGE_ID",
    "FINAL_RECIPIENT",
    "GATEWAY_ROLE",
    "ORIGINAL_SENDER",
    "PARTY_ID_TYPE",
    "QUERY_MANAGER",
    "REGREP_MIME_TYPE",
    "SPECIFICATION_ID",
    "SPECIFICATION_ID_V2",
    "TEST_ACTION",
    "TEST_SERVICE",
    "Random",
    "new_message_id",
    "new_uuid",
    "user_message",
]

#: Source of random bytes, passed in by the caller (``os.urandom`` in production).
Random = Callable[[int], bytes]

QUERY_MANAGER: Final = Service("QueryManager", "urn:oasis:names:tc:ebcore:ebrs:ebms:binding:1.0")
ACTION_EXECUTE_QUERY_REQUEST: Final = "ExecuteQueryRequest"
ACTION_EXECUTE_QUERY_RESPONSE: Final = "ExecuteQueryResponse"
ACTION_EXCEPTION_RESPONSE: Final = "ExceptionResponse"
ACTIONS: Final = (ACTION_EXECUTE_QUERY_REQUEST, ACTION_EXECUTE_QUERY_RESPONSE, ACTION_EXCEPTION_RESPONSE)
GATEWAY_ROLE: Final = "http://sdg.europa.eu/edelivery/gateway"
#: The access point party id type of the OOTS test platform and of the Domibus PMode.
PARTY_ID_TYPE: Final = "urn:oasis:names:tc:ebcore:partyid-type:unregistered:oots"

ORIGINAL_SENDER: Final = "originalSender"
FINAL_RECIPIENT: Final = "finalRecipient"
EXCHANGE_ID: Final = "ExchangeId"
SPECIFICATION_ID: Final = "SpecificationId"
SPECIFICATION_ID_V2: Final = "oots-edm:v2.0"

#: The eDelivery test service and action (ebMS 3 Core §5.2.2.9); never delivered to the backend.
TEST_SERVICE: Final = Service("http://docs.oasis-open.org/ebxml-msg/ebms/v3.0/ns/core/200704/service")
TEST_ACTION: Final = "http://docs.oasis-open.org/ebxml-msg/ebms/v3.0/ns/core/200704/test"


def new_uuid(random: Random) -> str:
    """A random (version 4) UUID drawn from ``random``."""
    return str(uuid.UUID(bytes=random(16), version=4))


def new_message_id(random: Random, domain: str) -> str:
    """An ebMS MessageId ``<uuid>@<domain>``."""
    return f"{new_uuid(random)}@{domain}"


def user_message(
    *,
    message_id: str,
    timestamp: datetime,
    from_party: PartyId,
    to_party: PartyId,
    original_sender: PartyId,
    final_recipient: PartyId,
    conversation_id: str,
    action: str = ACTION_EXECUTE_QUERY_REQUEST,
    service: Service = QUERY_MANAGER,
    parts: tuple[PartInfo, ...] = (),
    exchange_id: str | None = None,
    specification_id: str | None = None,
    ref_to_message_id: str | None = None,
) -> UserMessage:
    """An OOTS UserMessage: gateway roles, QueryManager service, the corner properties and, for
    TDD 2.0 (pass ``exchange_id`` and ``specification_id``), ``ExchangeId`` and ``SpecificationId``."""
    properties = [
        Property(ORIGINAL_SENDER, original_sender.value, original_sender.type),
        Property(FINAL_RECIPIENT, final_recipient.value, final_recipient.type),
    ]
    if exchange_id is not None:
        properties.append(Property(EXCHANGE_ID, exchange_id))
    if specification_id is not None:
        properties.append(Property(SPECIFICATION_ID, specification_id))
    return UserMessage(
        message_info=MessageInfo(message_id, timestamp, ref_to_message_id),
        party_info=PartyInfo(Party(from_party, GATEWAY_ROLE), Party(to_party, GATEWAY_ROLE)),
        collaboration_info=CollaborationInfo(service, action, conversation_id),
        message_properties=tuple(properties),
        payload_info=parts,
    )
