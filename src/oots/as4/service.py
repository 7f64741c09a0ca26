"""The built-in access point, composed from the node's settings: PModes, keys, codec, HTTP sender,
the AS4 endpoint and the background loops (sender, purge, deliveries).

:func:`load_access_point` reads the ``[as4]`` settings (PModes, the key files) once; the result is
passed explicitly to what needs it (the ASGI app, the workers, the command line). Clock and
randomness are injectable. :func:`ping` sends the test service to a partner and waits for its receipt,
without the queue (an operator's check that keys, endpoint and trust are right).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TypeVar

from sqlalchemy.orm import Session
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool

from oots.as4 import msh
from oots.as4.certificates import RENEW_WARNING_DAYS, OwnCertificate, own_certificates, own_notice, tls_notices
from oots.as4.domibus import DomibusClient, DomibusMessage, Notification, fetch, push_app, sweep
from oots.as4.http import DEFAULT_PATH, HttpSender, Inbox, as4_app, tls_context
from oots.as4.keys import KeyPair, load_key_pair
from oots.as4.model import CollaborationInfo, MessageInfo, Party, PartyId, PartyInfo, Payload, Service, UserMessage
from oots.as4.msh import CoreCodec, Outbound
from oots.as4.pmode import TEST_ACTION, TEST_SERVICE, Partner, PModeSet, certificate_notices, pmodes_from_settings
from oots.as4.profile import Random, new_message_id, new_uuid
from oots.as4.store import DELIVER_JOB, As4Store, Deliver, InboundPurge, OutboundEventHook, Unsent, send_due
from oots.errors import ConfigError, OotsError, SecurityError, TransportError
from oots.settings import As4Settings, QueueSettings, Settings
from oots.store.loops import Loops
from oots.store.queue import Worker

__all__ = [
    "RENEW_WARNING_DAYS",
    "AccessPoint",
    "Background",
    "DomibusBackground",
    "background",
    "create_as4_app",
    "domibus_background",
    "domibus_client",
    "load_access_point",
    "ping",
    "send_once",
    "submit",
    "test_message",
]

log = logging.getLogger(__name__)
_T = TypeVar("_T")


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass
class AccessPoint:
    """Everything the built-in access point works with, loaded once from the settings."""

    settings: As4Settings
    pmodes: PModeSet
    sign: KeyPair
    decryption: KeyPair
    sender: HttpSender
    clock: Callable[[], dt.datetime] = _utcnow
    random: Random = os.urandom
    #: What the node should be told at start: certificates that are expired (partners', our TLS client one) or
    #: end soon (ours).
    warnings: tuple[str, ...] = ()
    codec: CoreCodec = field(init=False)

    def __post_init__(self) -> None:
        self.codec = CoreCodec(self.sign, self.decryption, self.random)

    def new_message_id(self) -> str:
        return new_message_id(self.random, self.pmodes.own.party_id.replace(" ", "_") + ".oots")

    def receiver(self, seen: Callable[[str], msh.PriorReceipt | None] | None = None) -> msh.Receiver:
        return msh.Receiver(self.pmodes, self.codec, seen, self.new_message_id)


def _key_pair(key: Path | None, cert: Path | None, what: str, password: bytes | None) -> KeyPair:
    if key is None or cert is None:
        missing = f"as4.{what}_key" if key is None else f"as4.{what}_certificate"
        raise ConfigError(
            f"as4.{what}_key and as4.{what}_certificate must both be set for the built-in access point",
            [(missing, "must be set for the built-in access point")],
        )
    return load_key_pair(key, cert, password=password)


def _own_certificate(own: OwnCertificate, now: dt.datetime, warnings: list[str]) -> None:
    """Refuse one of the node's own AS4 certificates that has expired; warn when it ends within
    :data:`RENEW_WARNING_DAYS` days or is not valid yet."""
    cert = own.certificate
    if cert is not None and now > cert.not_valid_after_utc:
        reason = (
            f"{own.described} expired on {cert.not_valid_after_utc:%Y-%m-%d %H:%M} UTC: "
            "configure a new key and certificate"
        )
        raise ConfigError(f"{own.setting}: {reason}", [(own.setting, reason)])
    notice = own_notice(own, now, "partners refuse its messages", "renew it and give the partners the new one")
    if notice is not None:
        warnings.append(notice)


def load_access_point(
    settings: Settings,
    *,
    base_dir: Path | None = None,
    clock: Callable[[], dt.datetime] = _utcnow,
    random: Random = os.urandom,
) -> AccessPoint:
    """The access point of ``settings`` (reads its PMode, certificate and key files; checks the PModes).

    Relative file paths are taken from ``base_dir``, the configuration file's folder
    (:meth:`~oots.settings.As4Settings.resolved`); the access point's ``settings`` hold them so taken.
    """
    s = settings.as4.resolved(base_dir)
    password = s.key_password.get_secret_value().encode() if s.key_password else None
    # Each part is read even when one before it failed, so that every problem is told at once.
    problems: list[tuple[str, str]] = []
    errors: list[ConfigError] = []

    def attempt(path: str, load: Callable[[], _T]) -> _T | None:
        try:
            return load()
        except (ConfigError, SecurityError) as exc:
            if isinstance(exc, ConfigError) and exc.problems:
                problems.extend(exc.problems)
                errors.append(exc)
            else:
                problems.append((path, exc.message))
                errors.append(ConfigError(f"{path}: {exc.message}", [(path, exc.message)]))
            return None

    sign = attempt("as4.signing_key", lambda: _key_pair(s.signing_key, s.signing_certificate, "signing", password))
    decryption = sign
    if s.decryption_key is not None:
        decryption = attempt(
            "as4.decryption_key",
            lambda: _key_pair(s.decryption_key, s.decryption_certificate, "decryption", password),
        )
    now = clock()
    warnings: list[str] = []
    if sign is not None:
        for own in own_certificates(s, sign=sign, decryption=decryption):
            if own.use != "TLS client":  # told below, never refused
                attempt(own.setting, partial(_own_certificate, own, now, warnings))
    pmodes = attempt("as4.partners", lambda: pmodes_from_settings(s).check())
    if len(errors) == 1:
        raise errors[0]
    if errors or sign is None or decryption is None or pmodes is None:
        lines = "; ".join(f"{p}: {r}" for p, r in problems)
        raise ConfigError(f"the [as4] settings have {len(problems)} problem(s): {lines}", problems)
    sender = HttpSender(
        timeout=s.receipt_timeout_seconds,
        connect_timeout=s.connect_timeout_seconds,
        ca_file=s.tls_ca_file,
        client_certificate=s.tls_client_certificate,
        client_key=s.tls_client_key,
    )
    warnings += tls_notices(s, now, "connections to partners' access points that require mutual TLS fail")
    warnings += [str(p) for p in certificate_notices(pmodes, now)]
    return AccessPoint(s, pmodes, sign, decryption, sender, clock, random, tuple(warnings))


def test_message(ap: AccessPoint, partner: Partner) -> UserMessage:
    """A test-service UserMessage to ``partner`` (ebMS 3 §5.2.2.9: answered, never delivered)."""
    own = ap.pmodes.own
    return UserMessage(
        MessageInfo(ap.new_message_id(), ap.clock()),
        PartyInfo(
            Party(PartyId(own.party_id, own.party_id_type), own.role),
            Party(PartyId(partner.party.party_id, partner.party.party_id_type), partner.party.role),
        ),
        CollaborationInfo(Service(TEST_SERVICE), TEST_ACTION, new_uuid(ap.random)),
    )


def send_once(ap: AccessPoint, message: UserMessage, payloads: list[Payload] | None = None) -> Outbound:
    """Pack ``message``, post it once and read the answer; the record tells what came of it (no retries)."""
    to = message.party_info.to_party.party_id
    partner = ap.pmodes.partner(to.value, to.type)
    ci = message.collaboration_info
    mode = ap.pmodes.resolve(partner, ap.pmodes.leg(ci.service.value, ci.action, ci.service.type))
    record = msh.create_outbound(ap.codec, message, payloads or [], mode, ap.clock())
    record, request = msh.begin_attempt(record, mode, ap.clock())
    try:
        reply = ap.sender.post(request)
    except TransportError as exc:
        record, _ = msh.on_transport_failure(record, mode, exc.message)
        return record
    record, _ = msh.on_reply(record, mode, ap.codec, (reply.content_type, reply.body), ap.clock())
    return record


def ping(ap: AccessPoint, partner_name: str) -> Outbound:
    """Send the test service to the partner called ``partner_name`` (its name or party id)."""
    partner = ap.pmodes.partner(partner_name)
    return send_once(ap, test_message(ap, partner))


# -- the running access point: the ASGI app and its background loops ------------------------------------


def create_as4_app(ap: AccessPoint, inbox: Inbox, *, path: str = DEFAULT_PATH) -> Starlette:
    """The AS4 endpoint of ``ap`` keeping received messages in ``inbox`` (an :class:`As4Store`).

    Duplicates are found by ``inbox.accept`` in the storing transaction, not looked up beforehand.
    """
    return as4_app(ap.receiver, inbox, clock=ap.clock, max_bytes=ap.settings.max_message_bytes, path=path)


def pack(ap: AccessPoint, message: UserMessage, payloads: Sequence[Payload]) -> Outbound:
    """``message`` packed (signed, encrypted) for its partner, ready to keep with :func:`submit`."""
    to = message.party_info.to_party.party_id
    partner = ap.pmodes.partner(to.value, to.type)
    ci = message.collaboration_info
    mode = ap.pmodes.resolve(partner, ap.pmodes.leg(ci.service.value, ci.action, ci.service.type))
    return msh.create_outbound(ap.codec, message, payloads, mode, ap.clock())


def submit(
    ap: AccessPoint,
    store: As4Store,
    session: Session,
    message: UserMessage,
    payloads: Sequence[Payload],
    *,
    packed: Outbound | None = None,
) -> Outbound:
    """Pack ``message`` for its partner (unless ``packed`` already is) and keep it for sending, in the
    caller's transaction."""
    record = packed if packed is not None else pack(ap, message, payloads)
    store.submit(session, record)
    return record


@dataclass
class Background:
    """The access point's loops in threads: the sender (due messages), the purge of received messages
    past the duplicate-detection window (:class:`~oots.as4.store.InboundPurge`, every
    ``[as4] purge_interval_seconds`` with ``duplicate_window_seconds`` from ``ap.settings``, as a node's
    workers do) and the queue worker (deliveries)."""

    ap: AccessPoint
    store: As4Store
    worker: Worker
    poll_seconds: float = 0.1
    on_event: OutboundEventHook | None = None
    _loops: Loops = field(init=False)
    _unsent: Unsent = field(init=False, default_factory=Unsent)

    def __post_init__(self) -> None:
        self._loops = Loops(self.worker, worker_name="as4-worker")
        self._loops.every("as4-sender", self._send, poll_seconds=self.poll_seconds)
        self._loops.on_stop(partial(self._unsent.give_back, self.store))
        settings = self.ap.settings
        purge = InboundPurge(self.store, window_seconds=settings.duplicate_window_seconds)
        self._loops.every("as4-inbound-purge", purge, poll_seconds=settings.purge_interval_seconds)

    def _send(self) -> int:
        return send_due(
            self.store,
            self.ap.codec,
            self.ap.sender,
            now=self.ap.clock,
            on_event=self.on_event,
            unsent=self._unsent,
        )

    def start(self, *, worker: bool = True) -> None:
        """Start the sender and purge loops and, unless the node's own workers run the deliveries, the worker."""
        self._loops.start(worker=worker)

    def stop(self, timeout: float = 10.0) -> None:
        self._loops.stop(timeout)


def background(
    ap: AccessPoint,
    store: As4Store,
    deliver: Deliver,
    queue: QueueSettings,
    *,
    on_event: OutboundEventHook | None = None,
) -> Background:
    """The loops of a running access point; ``deliver`` is the application's hook (see ``oots.as4.store``)."""
    worker = Worker(store.db, queue, clock=ap.clock)
    worker.register(DELIVER_JOB, store.deliver_handler(deliver), on_dead=store.delivery_dead())
    return Background(ap, store, worker, on_event=on_event)


# -- Domibus mode: an existing Domibus is the access point ----------------------------------------------


def domibus_client(settings: As4Settings) -> DomibusClient:
    """The client of the Domibus WS plugin named in ``[as4]`` (``mode = "domibus"``)."""
    if not settings.domibus_url:
        raise ConfigError("as4.domibus_url must be set when as4.mode is 'domibus'")
    password = settings.domibus_password.get_secret_value() if settings.domibus_password else ""
    return DomibusClient(
        settings.domibus_url,
        settings.domibus_username,
        password,
        timeout=settings.receipt_timeout_seconds,
        verify=tls_context(settings.tls_ca_file, settings.tls_client_certificate, settings.tls_client_key),
    )


@dataclass
class DomibusBackground:
    """Domibus mode's loops: the polling sweep (behind push notifications) and the delivery worker.

    Messages Domibus received are kept in the node's store (idempotent on the message id) and
    delivered through the same ``as4.deliver`` jobs as the built-in access point's.
    """

    client: DomibusClient
    store: As4Store
    worker: Worker
    poll_seconds: float = 30.0
    _loops: Loops = field(init=False)

    def __post_init__(self) -> None:
        self._loops = Loops(self.worker, worker_name="as4-worker")
        self._loops.every(
            "domibus-sweep", self._sweep, poll_seconds=self.poll_seconds, errors=(OotsError,), failed=_sweep_failed
        )

    def hand_over(self, message: DomibusMessage) -> None:
        self.store.accept_domibus(message)

    def sweep_once(self) -> list[str]:
        return sweep(self.client, self.hand_over)

    def _sweep(self) -> None:  # the sweep waits its poll interval after every round, found or not
        self.sweep_once()

    def push_app(self, *, token: str | None = None, allow_from: Sequence[str] = ()) -> Starlette:
        """The endpoint Domibus' WS plugin pushes to: a ``receiveSuccess`` fetches that message at once.

        ``token`` / ``allow_from``: who may push (see :func:`oots.as4.domibus.push_app`; with neither, nobody).
        """

        async def on_notification(note: Notification) -> None:
            if note.operation == "receiveSuccess":
                for message_id in note.message_ids:
                    await run_in_threadpool(fetch, self.client, message_id, self.hand_over)

        return push_app(on_notification, token=token, allow_from=allow_from)

    def start(self, *, worker: bool = True) -> None:
        """Start the sweep and, unless the node's own workers run the deliveries, the worker."""
        self._loops.start(worker=worker)

    def stop(self, timeout: float = 10.0) -> None:
        self._loops.stop(timeout)


def _sweep_failed(name: str, exc: Exception) -> None:
    assert isinstance(exc, OotsError)
    log.warning("Domibus sweep failed (error id %s): %s", exc.error_id, exc.message)


def domibus_background(
    client: DomibusClient, store: As4Store, deliver: Deliver, queue: QueueSettings, *, poll_seconds: float = 30.0
) -> DomibusBackground:
    worker = Worker(store.db, queue, clock=store.clock)
    worker.register(DELIVER_JOB, store.deliver_handler(deliver), on_dead=store.delivery_dead())
    return DomibusBackground(client, store, worker, poll_seconds)
