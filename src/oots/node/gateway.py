"""The node's side of its access point, as the roles see it: send a user message, learn who we are.

Roles never touch PModes, keys or the AS4 store directly: they build an OOTS ``UserMessage`` with
:meth:`As4Gateway.user_message` and :meth:`As4Gateway.submit` it inside their own transaction, so the
message goes out exactly when the state change that caused it commits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.orm import Session

from oots.as4 import profile, service
from oots.as4.model import PartyId, Payload, UserMessage
from oots.as4.msh import Outbound
from oots.as4.service import AccessPoint
from oots.as4.store import As4Store
from oots.store.wake import on_commit

__all__ = ["SEND_TOPIC", "As4Gateway"]

#: The :mod:`oots.store.wake` topic fired when a transaction that submitted a message commits.
SEND_TOPIC = "as4.outbound"


@dataclass
class As4Gateway:
    """Sending through the node's built-in access point."""

    access_point: AccessPoint
    store: As4Store

    @property
    def own_party(self) -> PartyId:
        own = self.access_point.pmodes.own
        return PartyId(own.party_id, own.party_id_type)

    def user_message(
        self,
        *,
        to_party: PartyId,
        action: str,
        conversation_id: str,
        original_sender: PartyId,
        final_recipient: PartyId,
        ref_to_message_id: str | None = None,
        exchange_id: str | None = None,
        specification_id: str | None = None,
    ) -> UserMessage:
        """An OOTS user message from our access point to ``to_party`` (a fresh message id, now)."""
        return profile.user_message(
            message_id=self.access_point.new_message_id(),
            timestamp=self.access_point.clock(),
            from_party=self.own_party,
            to_party=to_party,
            original_sender=original_sender,
            final_recipient=final_recipient,
            conversation_id=conversation_id,
            action=action,
            exchange_id=exchange_id,
            specification_id=specification_id,
            ref_to_message_id=ref_to_message_id,
        )

    def submit(self, session: Session, message: UserMessage, payloads: Sequence[Payload]) -> Outbound:
        """Pack ``message`` and keep it for sending, in the caller's transaction (the sender wakes on commit)."""
        outbound = service.submit(self.access_point, self.store, session, message, payloads)
        on_commit(session, SEND_TOPIC)
        return outbound
