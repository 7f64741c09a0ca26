"""The node's side of its access point, as the roles see it: send a user message, learn who we are.

Roles never touch PModes, keys or the AS4 store directly: they build an OOTS ``UserMessage`` with
:meth:`As4Gateway.user_message` and :meth:`As4Gateway.submit` it inside their own transaction, so the
message goes out exactly when the state change that caused it commits.

The access point is the built-in one (:class:`oots.as4.service.AccessPoint`) or an existing Domibus
(:class:`oots.as4.domibus_mode.DomibusAccessPoint`, ``[as4] mode = "domibus"``): the roles see no
difference, and the node's worker runs :meth:`As4Gateway.send_due` either way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.orm import Session
from starlette.routing import BaseRoute

from oots.as4 import domibus_mode, profile, service
from oots.as4.certificates import OwnCertificate, own_certificates
from oots.as4.domibus_mode import DomibusAccessPoint
from oots.as4.model import PartyId, Payload, UserMessage
from oots.as4.msh import Outbound
from oots.as4.service import AccessPoint
from oots.as4.store import As4Store, Unsent, send_due
from oots.store.wake import on_commit

__all__ = ["SEND_TOPIC", "As4Gateway"]

#: The :mod:`oots.store.wake` topic fired when a transaction that submitted a message commits.
SEND_TOPIC = "as4.outbound"


@dataclass
class As4Gateway:
    """Sending through the node's access point (built in, or a Domibus)."""

    access_point: AccessPoint | DomibusAccessPoint
    store: As4Store

    @property
    def own_party(self) -> PartyId:
        own = self.access_point.pmodes.own
        return PartyId(own.party_id, own.party_id_type)

    def own_certificates(self) -> list[OwnCertificate]:
        """The node's own certificates (:func:`oots.as4.certificates.own_certificates`) with the key pairs
        the access point loaded; in Domibus mode, which holds the AS4 keys, the TLS client one only."""
        ap = self.access_point
        if isinstance(ap, AccessPoint):
            return own_certificates(ap.settings, sign=ap.sign, decryption=ap.decryption)
        return own_certificates(ap.settings)

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

    def pack(self, message: UserMessage, payloads: Sequence[Payload]) -> Outbound | None:
        """``message`` packed for :meth:`submit`, outside any transaction (signing and encrypting take
        a few milliseconds); None with Domibus, which packs for us."""
        if isinstance(self.access_point, DomibusAccessPoint):
            return None
        return service.pack(self.access_point, message, payloads)

    def submit(
        self, session: Session, message: UserMessage, payloads: Sequence[Payload], *, packed: Outbound | None = None
    ) -> Outbound:
        """Pack ``message`` (unless :meth:`pack` did) and keep it for sending, in the caller's transaction
        (the sender wakes on commit)."""
        on_commit(session, SEND_TOPIC)
        if isinstance(self.access_point, DomibusAccessPoint):
            return domibus_mode.submit(self.access_point, self.store, session, message, payloads)
        return service.submit(self.access_point, self.store, session, message, payloads, packed=packed)

    def send_due(self, limit: int = 16, unsent: Unsent | None = None) -> int:
        """One turn of the sender loop: send (or hand to Domibus) what is due; return how many.

        ``limit`` caps the messages one call claims (several sender threads share a burst); ``unsent``
        keeps those not started yet, for a stopping sender to give back.
        """
        ap = self.access_point
        if isinstance(ap, DomibusAccessPoint):
            return ap.run_due(self.store)
        return send_due(self.store, ap.codec, ap.sender, now=ap.clock, limit=limit, unsent=unsent)

    def routes(self) -> list[BaseRoute]:
        """What the node serves for its access point: ``/as4``, or the Domibus push endpoint."""
        ap = self.access_point
        if isinstance(ap, DomibusAccessPoint):
            return domibus_mode.push_routes(ap, self.store)
        return list(service.create_as4_app(ap, self.store, path="/as4").routes)

    def close(self) -> None:
        ap = self.access_point
        (ap.client if isinstance(ap, DomibusAccessPoint) else ap.sender).close()
