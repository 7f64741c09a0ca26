"""The Evidence Provider role of a node (``[node] roles = ["provider"]``).

It consumes the AS4 action ``ExecuteQueryRequest``: each delivered request is answered by
:class:`oots.provider.intake.Intake` and the answer is submitted to the node's access point in the
same transaction that marks the delivery done and journals the decision (``oots.audit``), so a
request is answered exactly once and the journal never disagrees with what was sent.

The answer goes back over the same conversation: ``RefToMessageId`` = the request's message id, the
same ``ConversationId``, ``originalSender``/``finalRecipient`` swapped, and (TDD 2.0) the same
``ExchangeId`` and ``SpecificationId``; the EDM document answers the request's ``@id``.

With eID configured (``[eid]``), the role also runs the **preview space** (:mod:`oots.provider.previews`,
pages in :mod:`oots.provider.preview_web` under ``/preview``): a request that must be previewed is
answered ``EDM:ERR:0002`` and its second request is held until the user decides or the preview expires
(queue jobs :data:`~oots.provider.previews.ANSWER_JOB` and :data:`~oots.provider.previews.EXPIRE_JOB`);
its periodic work (``provider-preview-purge``, in every worker every
``provider.preview_purge_interval_seconds``, hourly by default) closes any preview still open
``provider.preview_retention_seconds`` after its deadline and deletes the personal data it held.
Without eID, such a request is answered ``EDM:ERR:0007`` as before.

An answer that cannot be sent because the requester's certificate (as this node has it) is expired or
not valid yet is not retried: the queue dead-letters the job at once, and the role journals
``exchange_failed`` (outcome ``answer_not_sent``) and logs the reason at ERROR. Requeued from the admin
area once the certificate is replaced, the job answers the request as usual — for a preview, as long
as its retention has not run out.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session
from starlette.routing import BaseRoute

from oots.as4 import profile
from oots.as4.model import PartyId, Payload, UserMessage
from oots.as4.msh import Outbound
from oots.audit.journal import Event, Journal, Side, load_journal
from oots.audit.models import CONVERSATION_ID_CHARACTERS, EXCHANGE_ID_CHARACTERS
from oots.errors import ConfigError, error_text
from oots.node.gateway import As4Gateway
from oots.node.roles import As4Handler, As4Preparer, NodeContext, Periodic
from oots.provider.config import build_data_services, unavailable_services
from oots.provider.intake import Answer, Intake, PreviewDue, PreviewFollowUp, subject_identifier
from oots.provider.preview import Routing, is_loopback
from oots.provider.previews import (
    ANSWER_JOB,
    ANSWER_NOT_SENT,
    EXPIRE_JOB,
    RETIRED_PURGE_JOB,
    Previews,
)
from oots.store.queue import DeadHook, Handler, retired

__all__ = ["ProviderRole", "create_role"]

log = logging.getLogger(__name__)


def _property(message: UserMessage, name: str) -> PartyId | None:
    prop = message.property(name)
    return None if prop is None else PartyId(prop.value, prop.type)


def _too_long_id(um: UserMessage) -> str | None:
    """The ebMS id of ``um`` longer than the node's database keeps (``ConversationId`` or ``ExchangeId``)."""
    if len(um.collaboration_info.conversation_id) > CONVERSATION_ID_CHARACTERS:
        return f"ConversationId is longer than {CONVERSATION_ID_CHARACTERS} characters"
    exchange = um.property(profile.EXCHANGE_ID)
    if exchange is not None and len(exchange.value) > EXCHANGE_ID_CHARACTERS:
        return f"ExchangeId is longer than {EXCHANGE_ID_CHARACTERS} characters"
    return None


def _request_payload(payloads: Sequence[Payload]) -> bytes:
    for payload in payloads:
        if payload.mime_type in (profile.REGREP_MIME_TYPE, "application/xml", "text/xml"):
            return payload.data
    return payloads[0].data if payloads else b""


#: Prepared answers kept at most (a job whose handler never came is forgotten once this many are kept).
_PREPARED_KEPT = 256


@dataclass(frozen=True, slots=True)
class _Prepared:
    """What :meth:`ProviderRole.prepare_request` made before the delivery's transaction."""

    result: Answer | PreviewDue | PreviewFollowUp
    reply: UserMessage | None = None  # the answer's message, packed in ``packed``
    packed: Outbound | None = None


class ProviderRole:
    """Answers evidence requests delivered by the node's access point."""

    name = "provider"

    def __init__(self, ctx: NodeContext, intake: Intake, journal: Journal, previews: Previews | None = None) -> None:
        self.ctx = ctx
        self.intake = intake
        self.journal = journal
        self.previews = previews
        self._prepared: dict[str, _Prepared] = {}
        self._prepared_lock = threading.Lock()
        intake.preview = previews is not None
        if previews is not None and previews.allow_http:
            intake.tolerated_rules = frozenset({"R-EDM-REQ-C005"})

    # --- the Role contract -------------------------------------------------------------------------
    def routes(self) -> Sequence[BaseRoute]:
        if self.previews is None:
            return []
        from oots.provider.preview_web import PreviewSpace

        return PreviewSpace(self.ctx, self.previews).routes()

    def job_handlers(self) -> Mapping[str, Handler]:
        left = {RETIRED_PURGE_JOB: retired}  # the purge jobs of an older version (now periodic work)
        if self.previews is None:
            return left
        return {
            ANSWER_JOB: self.previews.answer_job(self.send),
            EXPIRE_JOB: self.previews.expire_job(self.send),
            **left,
        }

    def periodic(self) -> Sequence[Periodic]:
        if self.previews is None:
            return []
        every = self.ctx.settings.provider.preview_purge_interval_seconds
        return [Periodic("provider-preview-purge", self.purge_previews, every_seconds=every)]

    def purge_previews(self) -> int:
        """Close one batch of the previews past their retention (:meth:`Previews.purge`), in a write
        transaction of its own; how many it closed (a full batch has the loop run again at once)."""
        assert self.previews is not None
        with self.ctx.database.session(immediate=True) as session:
            return len(self.previews.purge(session))

    def as4_handlers(self) -> Mapping[str, As4Handler]:
        return {profile.ACTION_EXECUTE_QUERY_REQUEST: self.on_request}

    def as4_preparers(self) -> Mapping[str, As4Preparer]:
        return {profile.ACTION_EXECUTE_QUERY_REQUEST: self.prepare_request}

    def as4_delivery_failed(self) -> Mapping[str, Any]:
        return {profile.ACTION_EXECUTE_QUERY_REQUEST: self.not_answered}

    def job_dead_hooks(self) -> Mapping[str, DeadHook]:
        if self.previews is None:
            return {}
        return {ANSWER_JOB: self.previews.answer_not_sent, EXPIRE_JOB: self.previews.answer_not_sent}

    def unavailable(self) -> dict[str, str]:
        """Data service identifier → why it is unavailable (its register could not be loaded), for
        ``/ready``'s detail and the admin area."""
        return unavailable_services(self.intake.services)

    # --- intake ------------------------------------------------------------------------------------
    @property
    def gateway(self) -> As4Gateway:
        gateway: As4Gateway | None = self.ctx.services.get("as4")
        if gateway is None:
            raise ConfigError("the provider role needs the node's access point ([as4] settings)")
        return gateway

    def routing(self, um: UserMessage) -> Routing:
        """How to answer ``um``: back over the same conversation, senders and recipients swapped."""
        exchange = um.property(profile.EXCHANGE_ID)
        specification = um.property(profile.SPECIFICATION_ID)
        sender = _property(um, profile.ORIGINAL_SENDER)
        recipient = _property(um, profile.FINAL_RECIPIENT)
        own = self.gateway.own_party
        frm = um.party_info.from_party.party_id
        original = recipient or own
        final = sender or frm
        return Routing(
            to_party=(frm.value, frm.type),
            original_sender=(original.value, original.type),
            final_recipient=(final.value, final.type),
            conversation_id=um.collaboration_info.conversation_id,
            ref_to_message_id=um.message_info.message_id,
            exchange_id=exchange.value if exchange is not None else None,
            specification_id=specification.value if specification is not None else None,
        )

    def reply_message(self, routing: Routing, answer: Answer) -> UserMessage:
        """The user message that carries ``answer`` back along ``routing`` (a fresh message id)."""
        return self.gateway.user_message(
            to_party=Routing.party(routing.to_party),
            action=answer.action,
            conversation_id=routing.conversation_id,
            original_sender=Routing.party(routing.original_sender),
            final_recipient=Routing.party(routing.final_recipient),
            ref_to_message_id=routing.ref_to_message_id,
            exchange_id=routing.exchange_id,
            specification_id=routing.specification_id,
        )

    def reply(self, session: Session, routing: Routing, answer: Answer) -> UserMessage:
        """Submit ``answer`` to the access point's outbound queue (in the caller's transaction)."""
        reply = self.reply_message(routing, answer)
        self.gateway.submit(session, reply, answer.payloads)
        return reply

    def send(self, session: Session, routing: Routing, answer: Answer) -> str:
        """The preview jobs' sender: submit ``answer``, return the reply's message id."""
        return self.reply(session, routing, answer).message_info.message_id

    def prepare_request(self, message: Any) -> None:
        """Before the delivery's transaction: the intake's decision (validation, matching, rendering)
        and, for a plain answer, its message packed for sending; kept for :meth:`on_request`."""
        um: UserMessage = message.user_message
        result = self.decide(message)
        prepared = _Prepared(result)
        if isinstance(result, Answer):
            reply = self.reply_message(self.routing(um), result)
            packed = self.gateway.pack(reply, result.payloads)
            if packed is not None:
                prepared = _Prepared(result, reply, packed)
        with self._prepared_lock:
            self._prepared[um.message_info.message_id] = prepared
            while len(self._prepared) > _PREPARED_KEPT:
                del self._prepared[next(iter(self._prepared))]

    def decide(self, message: Any) -> Answer | PreviewDue | PreviewFollowUp:
        """The intake's decision on a delivered request; ``EDM:ERR:0003`` (``INVALID:ID_TOO_LONG``) at once
        for an ebMS ``ConversationId`` or ``ExchangeId`` longer than the journal keeps."""
        um: UserMessage = message.user_message
        payload = _request_payload(message.payloads)
        too_long = _too_long_id(um)
        if too_long is not None:
            return self.intake.refuse(payload, "INVALID:ID_TOO_LONG", f"The request is not acceptable: {too_long}.")
        return self.intake.receive(payload, sent=um.message_info.timestamp)

    def _take_prepared(self, message_id: str) -> _Prepared | None:
        with self._prepared_lock:
            return self._prepared.pop(message_id, None)

    def on_request(self, session: Session, message: Any) -> None:
        """Answer one delivered ``ExecuteQueryRequest`` (an ``oots.as4.msh.VerifiedMessage``)."""
        um: UserMessage = message.user_message
        prepared = self._take_prepared(um.message_info.message_id)
        result = prepared.result if prepared is not None else self.decide(message)
        routing = self.routing(um)
        frm = um.party_info.from_party.party_id
        party = f"{frm.type or ''}|{frm.value}"
        message_id = um.message_info.message_id
        if isinstance(result, PreviewDue):
            assert self.previews is not None
            answer = self.previews.open(session, result, routing, message_id=message_id, party=party)
        elif isinstance(result, PreviewFollowUp):
            assert self.previews is not None
            held = self.previews.follow_up(session, result, routing, message_id=message_id, party=party)
            if held is None:
                self._journal_held(session, um, result)
                return
            answer = held
        else:
            answer = result
        if prepared is not None and prepared.reply is not None and prepared.result is answer:
            reply = prepared.reply
            self.gateway.submit(session, reply, answer.payloads, packed=prepared.packed)
        else:
            reply = self.reply(session, routing, answer)
        # the answer and its journal entries are written together when the delivery's transaction
        # commits; without this, each entry's look-up of the journal head would first flush what is
        # pending (the answer, then the first entry) — three flushes for one commit
        with session.no_autoflush:
            self._journal(session, um, reply, answer)

    def not_answered(self, session: Session, message: Any, exc: BaseException) -> None:
        """The delivery of ``message`` (a request) was dead-lettered: its answer could not be made or sent
        (a requester whose certificate is not valid, an error on every attempt, a worker that died on the
        last one). Journalled as the exchange's failure, logged at ERROR with the cause."""
        um: UserMessage = message.user_message
        exchange = um.property(profile.EXCHANGE_ID)
        conversation = um.collaboration_info.conversation_id
        reason = error_text(exc)
        self.journal.append(
            session,
            side=Side.PROVIDER,
            event=Event.EXCHANGE_FAILED,
            exchange_id=exchange.value if exchange is not None else None,
            conversation_id=conversation,
            message_ids=[um.message_info.message_id],
            outcome=ANSWER_NOT_SENT,
            details={"reason": "AS4:NOT_SENT", "error": reason},
        )
        log.error(
            "provider: request %s (conversation %s) was not answered and its delivery job is dead-lettered; "
            "it stays unanswered until that job is requeued: %s",
            um.message_info.message_id,
            conversation,
            reason,
        )

    def _journal_held(self, session: Session, request: UserMessage, follow: PreviewFollowUp) -> None:
        exchange = request.property(profile.EXCHANGE_ID)
        subject = subject_identifier(follow.request)
        self.journal.append(
            session,
            side=Side.PROVIDER,
            event=Event.REQUEST_RECEIVED,
            exchange_id=exchange.value if exchange is not None else None,
            conversation_id=request.collaboration_info.conversation_id,
            message_ids=[request.message_info.message_id],
            outcome="held",
            details={
                "reason": "PREVIEW:HELD",
                "request_id": follow.request.id,
                "data_service": follow.service.identifier,
            },
            personal={"person_identifier": subject} if subject else None,
            subject=subject,
        )
        log.info("provider: holding %s until the preview is decided", request.message_info.message_id)

    def _journal(self, session: Session, request: UserMessage, reply: UserMessage, answer: Answer) -> None:
        exchange = request.property(profile.EXCHANGE_ID)
        common: dict[str, Any] = {
            "side": Side.PROVIDER,
            "exchange_id": exchange.value if exchange is not None else None,
            "conversation_id": request.collaboration_info.conversation_id,
        }
        details: dict[str, Any] = {"reason": answer.reason}
        if answer.document.request_id is not None:  # also of a request that could not be read whole
            details["request_id"] = answer.document.request_id
        if answer.service is not None:
            details["data_service"] = answer.service.identifier
        if answer.rejected:
            details["code"] = answer.code
        subject = answer.subject_identifier
        personal = {"person_identifier": subject} if subject else None
        self.journal.append(
            session,
            event=Event.REQUEST_RECEIVED,
            message_ids=[request.message_info.message_id],
            outcome="rejected" if answer.rejected else "accepted",
            details=details,
            personal=personal,
            subject=subject,
            **common,
        )
        if answer.reason == "PREVIEW:REQUIRED":
            self.journal.append(
                session,
                event=Event.PREVIEW_REQUIRED,
                message_ids=[request.message_info.message_id, reply.message_info.message_id],
                outcome=answer.code,
                details=details,
                subject=subject,
                **common,
            )
        elif answer.code is None:
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
    journal = load_journal(settings, clock=ctx.clock)
    previews = None
    if settings.eid.issuer or settings.eid.saml_idp_metadata:
        base = settings.node.base_url.rstrip("/")
        if not base.startswith("https://") and not is_loopback(base):
            raise ConfigError(
                "provider: the preview space needs an https node.base_url (plain http only on loopback)",
                [("node.base_url", "https needed for the preview space")],
            )
        previews = Previews(
            intake,
            journal,
            base_url=base,
            timeout=dt.timedelta(seconds=settings.provider.preview_timeout_seconds),
            retention=dt.timedelta(seconds=settings.provider.preview_retention_seconds),
            return_origins=settings.provider.preview_return_origins,
            clock=ctx.clock,
        )
    else:
        log.info("provider: no [eid] login configured, so no preview space (previews are answered EDM:ERR:0007)")
    return ProviderRole(ctx, intake, journal, previews)
