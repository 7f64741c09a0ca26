"""Where the requester's evidence requests go: the node's access point (``oots.as4``).

:class:`Outbox` is the one hook between the exchange and the transport: ``submit`` keeps an OOTS
UserMessage in the caller's transaction, so the request exists exactly when the exchange's state
change that calls for it commits. :class:`As4Outbox` is the built-in access point's: the message is
packed (compressed, signed, encrypted) for the partner's PMode and stored in ``as4_outbound``; the
node's sender loop sends it with retries.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from sqlalchemy.orm import Session

from oots.as4 import msh
from oots.as4.model import PartyId, Payload, UserMessage
from oots.as4.service import AccessPoint
from oots.as4.store import As4Store

__all__ = ["As4Outbox", "Outbox"]


class Outbox(Protocol):
    """Sends OOTS UserMessages for the requester."""

    #: This node's access point party id (``From`` of every message).
    own_party: PartyId

    def new_message_id(self) -> str: ...

    def submit(self, session: Session, message: UserMessage, payloads: Sequence[Payload]) -> None:
        """Keep ``message`` for sending in ``session``'s transaction; raise NotFound for an unknown partner."""
        ...


class As4Outbox:
    """The built-in access point as the requester's outbox."""

    def __init__(self, access_point: AccessPoint, store: As4Store) -> None:
        self.access_point = access_point
        self.store = store
        own = access_point.pmodes.own
        self.own_party = PartyId(own.party_id, own.party_id_type)

    def new_message_id(self) -> str:
        return self.access_point.new_message_id()

    def submit(self, session: Session, message: UserMessage, payloads: Sequence[Payload]) -> None:
        ap = self.access_point
        to = message.party_info.to_party.party_id
        partner = ap.pmodes.partner(to.value, to.type)
        ci = message.collaboration_info
        mode = ap.pmodes.resolve(partner, ap.pmodes.leg(ci.service.value, ci.action, ci.service.type))
        record = msh.create_outbound(ap.codec, message, list(payloads), mode, ap.clock())
        self.store.submit(session, record)
