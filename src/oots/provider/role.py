"""The Evidence Provider role of a node (``[node] roles = ["provider"]``).

It consumes the AS4 action ``ExecuteQueryRequest``: each delivered request is answered by
:class:`oots.provider.intake.Intake` and the answer is submitted to the node's access point in the
same transaction that marks the delivery done and journals the decision (``oots.audit``), so a
request is answered exactly once and the journal never disagrees with what was sent.

The answer goes back over the same conversation: ``RefToMessageId`` = the request's message id, the
same ``ConversationId``, ``originalSender``/``finalRecipient`` swapped, and (TDD 2.0) the same
``ExchangeId`` and ``SpecificationId``; the EDM document answers the request's ``@id``.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy.orm import Session
from starlette.routing import BaseRoute

from oots.as4 import profile
from oots.as4.model import PartyId, Payload, UserMessage
from oots.audit.journal import Event, Journal, Side, load_journal
from oots.errors import ConfigError
from oots.node.gateway import As4Gateway
from oots.node.roles import As4Handler, NodeContext
from oots.provider.config import build_data_services
from oots.provider.intake import Answer, Intake
from oots.store.queue import Handler

__all__ = ["ProviderRole", "create_role"]

log = logging.getLogger(__name__)


def _property(message: UserMessage, name: str) -> PartyId | None:
    prop = message.property(name)
    return None if prop is None else PartyId(prop.value, prop.type)


def _request_payload(payloads: Sequence[Payload]) -> bytes:
    for payload in payloads:
        if payload.mime_type in (profile.REGREP_MIME_TYPE, "application/xml", "text/xml"):
            return payload.data
    return payloads[0].data if payloads else b""


class ProviderRole:
    """Answers evidence requests delivered by the node's access point."""

    name = "provider"

    def __init__(self, ctx: NodeContext, intake: Intake, journal: Journal) -> None:
        self.ctx = ctx
        self.intake = intake
        self.journal = journal

    # --- the Role contract -------------------------------------------------------------------------
    def routes(self) -> Sequence[BaseRoute]:
        return []

    def job_handlers(self) -> Mapping[str, Handler]:
        return {}

    def as4_handlers(self) -> Mapping[str, As4Handler]:
        return {profile.ACTION_EXECUTE_QUERY_REQUEST: self.on_request}

    # --- intake ------------------------------------------------------------------------------------
    @property
    def gateway(self) -> As4Gateway:
        gateway: As4Gateway | None = self.ctx.services.get("as4")
        if gateway is None:
            raise ConfigError("the provider role needs the node's access point ([as4] settings)")
        return gateway

    def on_request(self, session: Session, message: Any) -> None:
        """Answer one delivered ``ExecuteQueryRequest`` (an ``oots.as4.msh.VerifiedMessage``)."""
        um: UserMessage = message.user_message
        answer = self.intake.answer(_request_payload(message.payloads), sent=um.message_info.timestamp)
        exchange = um.property(profile.EXCHANGE_ID)
        specification = um.property(profile.SPECIFICATION_ID)
        sender = _property(um, profile.ORIGINAL_SENDER)
        recipient = _property(um, profile.FINAL_RECIPIENT)
        own = self.gateway.own_party
        reply = self.gateway.user_message(
            to_party=um.party_info.from_party.party_id,
            action=answer.action,
            conversation_id=um.collaboration_info.conversation_id,
            original_sender=recipient or own,
            final_recipient=sender or um.party_info.from_party.party_id,
            ref_to_message_id=um.message_info.message_id,
            exchange_id=exchange.value if exchange is not None else None,
            specification_id=specification.value if specification is not None else None,
        )
        self.gateway.submit(session, reply, answer.payloads)
        self._journal(session, um, reply, answer)

    def _journal(self, session: Session, request: UserMessage, reply: UserMessage, answer: Answer) -> None:
        exchange = request.property(profile.EXCHANGE_ID)
        common: dict[str, Any] = {
            "side": Side.PROVIDER,
            "exchange_id": exchange.value if exchange is not None else None,
            "conversation_id": request.collaboration_info.conversation_id,
        }
        details: dict[str, Any] = {"reason": answer.reason}
        if answer.request is not None:
            details["request_id"] = answer.request.id
        if answer.service is not None:
            details["data_service"] = answer.service.identifier
        subject = answer.subject_identifier
        personal = {"person_identifier": subject} if subject else None
        self.journal.append(
            session,
            event=Event.REQUEST_RECEIVED,
            message_ids=[request.message_info.message_id],
            outcome="accepted" if answer.request is not None else "rejected",
            details=details,
            personal=personal,
            subject=subject,
            **common,
        )
        if answer.code is None:
            self.journal.append(
                session,
                event=Event.EVIDENCE_SENT,
                message_ids=[request.message_info.message_id, reply.message_info.message_id],
                outcome="evidence",
                details={**details, "evidences": list(answer.evidence_ids)},
                subject=subject,
                **common,
            )
        else:
            self.journal.append(
                session,
                event=Event.ERROR_SENT,
                message_ids=[request.message_info.message_id, reply.message_info.message_id],
                outcome=answer.code,
                details=details,
                subject=subject,
                **common,
            )
        log.info(
            "provider: answered %s with %s (%s)",
            request.message_info.message_id,
            answer.code or "evidence",
            answer.reason,
        )


def create_role(ctx: NodeContext) -> ProviderRole:
    """The provider role of a node, from its ``[provider]`` settings."""
    settings = ctx.settings
    services = build_data_services(settings)
    if not services:
        raise ConfigError("provider: the node offers no data service (set provider.samples or data_services)")
    intake = Intake(
        services,
        deadline=dt.timedelta(seconds=settings.provider.answer_deadline_seconds),
        max_request_bytes=settings.provider.max_request_bytes,
        content_domain=re.sub(r"[^a-z0-9.-]", "", settings.node.name.lower()) + ".oots",
        clock=ctx.clock,
    )
    return ProviderRole(ctx, intake, load_journal(settings, clock=ctx.clock))
