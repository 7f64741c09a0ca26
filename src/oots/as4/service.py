"""The built-in access point, composed from the node's settings: PModes, keys, codec, HTTP sender.

:func:`load_access_point` reads the ``[as4]`` settings (PModes, the key files) once; the result is
passed explicitly to what needs it (the ASGI app, the workers, the command line). Clock and
randomness are injectable. :func:`ping` sends the test service to a partner and waits for its receipt,
without the queue (an operator's check that keys, endpoint and trust are right).
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from oots.as4 import msh
from oots.as4.http import HttpSender
from oots.as4.keys import KeyPair, load_key_pair
from oots.as4.model import CollaborationInfo, MessageInfo, Party, PartyId, PartyInfo, Payload, Service, UserMessage
from oots.as4.msh import CoreCodec, Outbound
from oots.as4.pmode import TEST_ACTION, TEST_SERVICE, Partner, PModeSet, pmodes_from_settings
from oots.as4.profile import Random, new_message_id, new_uuid
from oots.errors import ConfigError, TransportError
from oots.settings import As4Settings, Settings

__all__ = ["AccessPoint", "load_access_point", "ping", "send_once", "test_message"]


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
    codec: CoreCodec = field(init=False)

    def __post_init__(self) -> None:
        self.codec = CoreCodec(self.sign, self.decryption, self.random)

    def new_message_id(self) -> str:
        return new_message_id(self.random, self.pmodes.own.party_id.replace(" ", "_") + ".oots")

    def receiver(self, seen: Callable[[str], msh.PriorReceipt | None]) -> msh.Receiver:
        return msh.Receiver(self.pmodes, self.codec, seen, self.new_message_id)


def _key_pair(key: Path | None, cert: Path | None, what: str, password: bytes | None, base: Path) -> KeyPair:
    if key is None or cert is None:
        raise ConfigError(f"as4.{what}_key and as4.{what}_certificate must both be set for the built-in access point")
    return load_key_pair(
        key if key.is_absolute() else base / key, cert if cert.is_absolute() else base / cert, password=password
    )


def load_access_point(
    settings: Settings,
    *,
    base_dir: Path | None = None,
    clock: Callable[[], dt.datetime] = _utcnow,
    random: Random = os.urandom,
) -> AccessPoint:
    """The access point of ``settings`` (reads its PMode, certificate and key files; checks the PModes)."""
    s = settings.as4
    base = base_dir or Path()
    password = s.key_password.get_secret_value().encode() if s.key_password else None
    sign = _key_pair(s.signing_key, s.signing_certificate, "signing", password, base)
    if s.decryption_key is not None:
        decryption = _key_pair(s.decryption_key, s.decryption_certificate, "decryption", password, base)
    else:
        decryption = sign
    pmodes = pmodes_from_settings(s, base_dir=base).check(now=clock())
    sender = HttpSender(
        timeout=s.receipt_timeout_seconds,
        connect_timeout=s.connect_timeout_seconds,
        ca_file=s.tls_ca_file,
        client_certificate=s.tls_client_certificate,
        client_key=s.tls_client_key,
    )
    return AccessPoint(s, pmodes, sign, decryption, sender, clock, random)


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
