"""Where the requester's evidence requests go: the node's access point (``oots.as4``).

:class:`Outbox` is the one hook between the exchange and the transport: ``submit`` keeps an OOTS
UserMessage in the caller's transaction, so the request exists exactly when the exchange's state
change that calls for it commits. :class:`As4Outbox` is the node's access point (its gateway): the
message is packed (compressed, signed, encrypted) for the partner's PMode — ahead of the transaction
with ``pack``, or by ``submit`` — and stored in ``as4_outbound``; the node's sender loop sends it with
retries.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from sqlalchemy.orm import Session

from oots.as4.model import PartyId, Payload, UserMessage
from oots.as4.msh import Outbound
from oots.node.gateway import As4Gateway

__all__ = ["As4Outbox", "Outbox"]


class Outbox(Protocol):
    """Sends OOTS UserMessages for the requester."""

    #: This node's access point party id (``From`` of every message).
    own_party: PartyId

    def new_message_id(self) -> str: ...

    def pack(self, message: UserMessage, payloads: Sequence[Payload]) -> object | None:
        """``message`` made ready to send ahead of :meth:`submit` (outside a transaction), or None when
        there is nothing to do ahead; raise NotFound for an unknown partner, SecurityError for one whose
        certificate is not valid now."""
        ...

    def submit(
        self, session: Session, message: UserMessage, payloads: Sequence[Payload], *, packed: object | None = None
    ) -> None:
        """Keep ``message`` (``packed`` ahead, if it was) for sending in ``session``'s transaction; raise
        NotFound for an unknown partner, SecurityError for one whose certificate is not valid now."""
        ...


class As4Outbox:
    """The node's access point (``oots.node.gateway.As4Gateway``) as the requester's outbox."""

    def __init__(self, gateway: As4Gateway) -> None:
        self.gateway = gateway
        self.own_party = gateway.own_party

    def new_message_id(self) -> str:
        return self.gateway.access_point.new_message_id()

    def pack(self, message: UserMessage, payloads: Sequence[Payload]) -> Outbound | None:
        return self.gateway.pack(message, payloads)

    def submit(
        self, session: Session, message: UserMessage, payloads: Sequence[Payload], *, packed: object | None = None
    ) -> None:
        self.gateway.submit(session, message, payloads, packed=packed if isinstance(packed, Outbound) else None)
