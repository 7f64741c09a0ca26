"""A node whose access point is an existing Domibus: the same outbox and inbox as the built-in one.

Sending goes through the node's outbox (``as4_outbound``), as with the built-in access point: a role
submits in its own transaction (:func:`submit` keeps the ``submitMessage`` request of the WS plugin,
made once), and :func:`submit_due` — run by the node's worker — hands due messages to Domibus. Domibus
then signs, encrypts, sends and retries; the message stays ``sent`` until :func:`check_submitted` reads
its outcome with ``getStatus``: ``ACKNOWLEDGED`` (the partner's receipt, kept by Domibus) moves it to
``receipt``, ``SEND_FAILURE`` to ``error`` with the first of ``getMessageErrors``. A Domibus that cannot
be reached is retried on the schedule of the PMode, as a partner would be; a submission Domibus refuses
(a SOAP fault) is given up with its reason.

Receiving: push notifications (:func:`push_routes`) and the polling sweep (:meth:`DomibusAccessPoint.
sweep`) keep each message Domibus verified in ``as4_inbound`` (idempotent on the message id), from
where the ``as4.deliver`` jobs hand it to the roles exactly as for the built-in access point.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import httpx
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.routing import BaseRoute

from oots.as4 import msh
from oots.as4.certificates import tls_notices
from oots.as4.domibus import (
    SOAP_CONTENT_TYPE,
    DomibusClient,
    DomibusError,
    DomibusMessage,
    Notification,
    fetch,
    push_app,
    submit_request,
    sweep,
)
from oots.as4.http import tls_context
from oots.as4.model import Payload, UserMessage
from oots.as4.msh import Outbound, OutboundEvent, OutboundState, outbound_next
from oots.as4.pmode import PModeSet, certificate_notices, pmodes_from_settings, validate
from oots.as4.profile import Random, new_message_id
from oots.as4.store import As4Store
from oots.errors import ConfigError, NotFound, OotsError, TransportError
from oots.settings import As4Settings, Settings

__all__ = [
    "PUSH_PATH",
    "DomibusAccessPoint",
    "check_submitted",
    "load_domibus_access_point",
    "push_routes",
    "submit",
    "submit_due",
]

log = logging.getLogger(__name__)

#: Where a node in Domibus mode takes the WS plugin's push notifications.
PUSH_PATH = "/domibus/push"
#: ``getStatus`` values that end a submitted message.
_ACKNOWLEDGED = frozenset({"ACKNOWLEDGED", "ACKNOWLEDGED_WITH_WARNING"})
_FAILED = frozenset({"SEND_FAILURE"})


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass
class DomibusAccessPoint:
    """What a node in Domibus mode works with: its PModes (partners, legs, retries) and the plugin client."""

    settings: As4Settings
    pmodes: PModeSet
    client: DomibusClient
    clock: Callable[[], dt.datetime] = _utcnow
    random: Random = os.urandom
    #: What the node should be told at start: partners' certificates that are not valid now, its mutual-TLS
    #: client certificate when it ends soon or is not valid.
    warnings: tuple[str, ...] = ()
    _last_sweep: float = field(default=float("-inf"), init=False, repr=False)

    def new_message_id(self) -> str:
        return new_message_id(self.random, self.pmodes.own.party_id.replace(" ", "_") + ".oots")

    def hand_over(self, store: As4Store) -> Callable[[DomibusMessage], None]:
        def keep(message: DomibusMessage) -> None:
            store.accept_domibus(message)

        return keep

    def sweep(self, store: As4Store) -> list[str]:
        """Keep every message Domibus has pending for us (then mark it downloaded); return their ids."""
        return sweep(self.client, self.hand_over(store))

    def run_due(self, store: As4Store) -> int:
        """One turn of the node's sender loop: submit what is due; every ``domibus_poll_seconds`` also read
        the outcome of submitted messages and sweep for received ones. Returns how many were submitted."""
        submitted = submit_due(self, store)
        if time.monotonic() - self._last_sweep >= self.settings.domibus_poll_seconds:
            self._last_sweep = time.monotonic()
            try:
                check_submitted(self, store)
                self.sweep(store)
            except OotsError as exc:
                log.warning("Domibus poll failed (error id %s): %s", exc.error_id, exc.message)
        return submitted


def load_domibus_access_point(
    settings: Settings,
    *,
    base_dir: Path | None = None,
    clock: Callable[[], dt.datetime] = _utcnow,
    random: Random = os.urandom,
    transport: httpx.BaseTransport | None = None,
) -> DomibusAccessPoint:
    """The Domibus access point of ``settings`` (``[as4] mode = "domibus"``): PModes and the plugin client.

    Keys, certificates and partners' endpoints are Domibus' business: the PModes are checked without them.
    Relative file paths are taken from ``base_dir``, the configuration file's folder
    (:meth:`~oots.settings.As4Settings.resolved`).
    """
    s = settings.as4.resolved(base_dir)
    if not s.domibus_url:
        raise ConfigError("as4.domibus_url must be set when as4.mode is 'domibus'", [("as4.domibus_url", "is empty")])
    pmodes = pmodes_from_settings(s)
    problems = [p for p in validate(pmodes, require_certificates=False) if not p.path.endswith(".endpoint")]
    if problems:
        lines = "; ".join(str(p) for p in problems)
        raise ConfigError(
            f"the PModes have {len(problems)} problem(s): {lines}", [(p.path, p.message) for p in problems]
        )
    password = s.domibus_password.get_secret_value() if s.domibus_password else ""
    client = DomibusClient(
        s.domibus_url,
        s.domibus_username,
        password,
        timeout=s.receipt_timeout_seconds,
        transport=transport,
        verify=tls_context(s.tls_ca_file, s.tls_client_certificate, s.tls_client_key),
    )
    now = clock()
    warnings = tuple(tls_notices(s, now, "connections to a Domibus that requires mutual TLS fail"))
    warnings += tuple(str(p) for p in certificate_notices(pmodes, now))
    if s.domibus_push_token is None and not s.domibus_push_from:
        warnings += (
            f"as4: push notifications from Domibus ({PUSH_PATH}) are refused until as4.domibus_push_token or "
            f"as4.domibus_push_from is set; received messages are collected every {s.domibus_poll_seconds:g} s",
        )
    return DomibusAccessPoint(s, pmodes, client, clock, random, warnings)


def submit(
    dap: DomibusAccessPoint, store: As4Store, session: Session, message: UserMessage, payloads: Sequence[Payload]
) -> Outbound:
    """Keep ``message`` for Domibus in the caller's transaction (the ``submitMessage`` request, made once)."""
    to = message.party_info.to_party.party_id
    partner = dap.pmodes.partner(to.value, to.type)
    ci = message.collaboration_info
    leg = dap.pmodes.leg(ci.service.value, ci.action, ci.service.type)
    now = dap.clock()
    record = Outbound(
        message_id=message.message_info.message_id,
        partner=partner.name,
        leg=leg.name,
        state=OutboundState.CREATED,
        created_at=now,
        content_type=SOAP_CONTENT_TYPE,
        body=submit_request(message, payloads),
        next_attempt_at=now,
    )
    store.submit(session, record)
    return record


def submit_due(dap: DomibusAccessPoint, store: As4Store, *, lease_seconds: float = 120.0, limit: int = 16) -> int:
    """Hand every due message to Domibus once; return how many were attempted."""
    claimed = store.claim_due(dap.clock(), lease_seconds=lease_seconds, limit=limit)
    for due in claimed:
        try:
            partner = dap.pmodes.partner(due.partner)
            leg = next(leg for leg in dap.pmodes.legs if leg.name == due.leg)
        except (NotFound, StopIteration):
            updated, _ = msh.give_up(due, f"partner {due.partner} or leg {due.leg} is no longer configured")
            store.save(updated)
            continue
        mode = dap.pmodes.resolve(partner, leg)
        record, _request = msh.begin_attempt(due, mode, dap.clock())
        try:
            domibus_id = dap.client.submit_request(record.body)
        except TransportError as exc:
            updated, _ = msh.on_transport_failure(record, mode, f"Domibus: {exc.message}")
        except DomibusError as exc:
            updated, _ = msh.give_up(record, f"Domibus refused the submission ({exc.code}): {exc.message}")
        except OotsError as exc:  # an answer that is no answer: try again on the schedule
            updated, _ = msh.on_transport_failure(record, mode, f"Domibus: {exc.message}")
        else:
            updated = record  # sent: Domibus has it; check_submitted reads what came of it
            if domibus_id != record.message_id:  # the header names our id, so Domibus keeps it
                log.warning("Domibus took AS4 message %s under the id %s", record.message_id, domibus_id)
        store.save(updated)
        log.info("AS4 message %s to %s handed to Domibus: %s", record.message_id, record.partner, updated.state.value)
    return len(claimed)


def check_submitted(dap: DomibusAccessPoint, store: As4Store, *, limit: int = 50) -> int:
    """Read the outcome of submitted messages from Domibus; return how many came to an end."""
    ended = 0
    for record in store.awaiting_outcome(limit=limit):
        status = dap.client.get_status(record.message_id)
        if status in _ACKNOWLEDGED:
            store.save(replace(record, state=outbound_next(record.state, OutboundEvent.RECEIPT)))
        elif status in _FAILED:
            errors = dap.client.get_message_errors(record.message_id)
            code, detail = errors[0] if errors else ("EBMS_0004", "Domibus reports SEND_FAILURE without an error")
            store.save(
                replace(
                    record,
                    state=outbound_next(record.state, OutboundEvent.ERROR),
                    error_code=code.replace("EBMS_", "EBMS:")[:20],
                    error_detail=detail or None,
                )
            )
        else:
            continue
        ended += 1
        log.info("AS4 message %s: Domibus says %s", record.message_id, status)
    return ended


def push_routes(dap: DomibusAccessPoint, store: As4Store, *, path: str = PUSH_PATH) -> list[BaseRoute]:
    """The endpoint to give the WS plugin as push URL: a ``receiveSuccess`` keeps that message at once."""
    keep = dap.hand_over(store)

    async def on_notification(note: Notification) -> None:
        if note.operation == "receiveSuccess":
            for message_id in note.message_ids:
                await run_in_threadpool(fetch, dap.client, message_id, keep)

    s = dap.settings
    token = s.domibus_push_token.get_secret_value() if s.domibus_push_token else None
    return list(push_app(on_notification, path=path, token=token, allow_from=s.domibus_push_from).routes)
