"""The :class:`~oots.as4.msh.Codec` on top of the AS4 core (:mod:`oots.as4.message`).

Keys and randomness are passed in: ``sign`` signs our messages and receipts, ``decryption`` opens the
payloads partners encrypt to us, ``random`` is ``os.urandom`` in production.

Trust is per partner: a message is verified against the trust anchors of the partner its header names
as sender (and that partner's own certificate, pinned); when the partner's signing certificate is
configured the signer must be that certificate, and the signed header must name the same party — a
partner cannot sign messages in another partner's name.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache

from cryptography import x509

from oots.as4 import envelope
from oots.as4 import message as core
from oots.as4.keys import KeyPair
from oots.as4.model import Error, MessageInfo, Payload, SignalMessage, UserMessage
from oots.as4.msh._codec import Packed, Parsed, VerifiedMessage
from oots.as4.pmode import Partner, PMode, PModeSet
from oots.as4.profile import Random
from oots.as4.trust import TrustStore
from oots.errors import LocalProtocolError, NotFound, RemoteProtocolError, SecurityError

__all__ = ["CoreCodec"]

#: Where the id a message claims is looked for (before verification, for error answers only).
_MESSAGE_ID = re.compile(rb"<(?:[A-Za-z0-9_-]+:)?MessageId>([^<]{1,255})</")
_MESSAGE_ID_WINDOW = 64 * 1024


def _check_signer(signer: x509.Certificate, partner: Partner) -> None:
    """With a configured signing certificate, the partner must sign with exactly that one: a CA shared by
    several partners (a national or test PKI) would otherwise let one sign in another's name."""
    expected = partner.signing_certificate
    if expected is not None and signer != expected:
        raise SecurityError(
            f"the message is signed by {signer.subject.rfc4514_string()}, not by partner {partner.name}'s certificate",
            code="EBMS:0101",
        )


def _trust(partner: Partner) -> TrustStore:
    pinned = [c for c in (partner.signing_certificate,) if c is not None]
    return _store((*partner.trust_anchors, *pinned))


@lru_cache(maxsize=64)
def _store(anchors: tuple[x509.Certificate, ...]) -> TrustStore:
    """The trust store of these anchors, kept so that its cache of chains already built serves the next
    message (a new store per message built every CA-issued signer's chain again each time); a signer's
    validity at each message's time is still checked, and PModes reloaded with other anchors get
    another store."""
    return TrustStore.of(anchors)


@dataclass(frozen=True, slots=True)
class CoreCodec:
    """SOAP 1.2 with attachments, WS-Security 1.1.1 (sign then encrypt), NRR receipts — the core's wire."""

    sign: KeyPair
    decryption: KeyPair
    random: Random
    limits: core.Limits = field(default_factory=core.Limits)

    def pack_user_message(
        self, message: UserMessage, payloads: Sequence[Payload], pmode: PMode, now: dt.datetime
    ) -> Packed:
        security = pmode.leg.security
        encrypt_for = pmode.partner.encryption_certificate if security.encrypt else None
        if security.encrypt and encrypt_for is None:
            raise SecurityError(f"partner {pmode.partner.name} has no encryption certificate", code="EBMS:0103")
        out = core.pack(
            message,
            payloads,
            sign=self.sign,
            encrypt_for=encrypt_for,
            random=self.random,
            compress=pmode.leg.payload_service.compression_type is not None,
        )
        return Packed(out.content_type, out.body, out.references)

    def parse(self, content_type: str, body: bytes) -> Parsed:
        """Only the size and the id the message claims (for error answers): the envelope is parsed once,
        by the core, when it is verified."""
        if len(body) > self.limits.max_message_bytes:
            raise RemoteProtocolError(f"the message is {len(body):,} bytes, over the limit", code="EBMS:0004")
        claimed = _MESSAGE_ID.search(body, 0, _MESSAGE_ID_WINDOW)
        message_id = claimed.group(1).decode("utf-8", "replace").strip() if claimed else None
        if message_id is not None and not envelope.carries(message_id):
            message_id = None  # not a real id, and it could not be echoed in the error answer
        return Parsed(message_id or None, (content_type, body))

    def _receive(
        self, handle: object, trust: TrustStore, known: list[x509.Certificate], now: dt.datetime, *, decrypt: bool
    ) -> object:
        assert isinstance(handle, tuple)
        content_type, body = handle
        return core.receive(
            content_type,
            body,
            trust=trust,
            now=now,
            decryption=self.decryption if decrypt else None,
            known_certificates=known,
            require_encryption=decrypt,
            limits=self.limits,
        )

    def verify(self, parsed: Parsed, pmodes: PModeSet, now: dt.datetime) -> VerifiedMessage:
        """Decrypt, verify the signature over the plaintext (sign-then-encrypt), then bind the signer to the
        partner the signed header names: that partner's trust anchors and, when configured, its certificate."""
        anchors = [c for p in pmodes.partners for c in (*p.trust_anchors, p.signing_certificate) if c is not None]
        known = [p.signing_certificate for p in pmodes.partners if p.signing_certificate is not None]
        verified = self._receive(parsed.handle, _store(tuple(anchors)), known, now, decrypt=True)
        if not isinstance(verified, core.VerifiedUserMessage):
            raise RemoteProtocolError("the request carries no UserMessage", code="EBMS:0009")
        sender = verified.user_message.party_info.from_party.party_id
        try:
            partner = pmodes.sender(sender.value, sender.type)
        except NotFound:
            raise RemoteProtocolError(
                f"the sender {sender.value!r} is not a configured partner", code="EBMS:0010"
            ) from None
        _trust(partner).verify(verified.signer, at=now)
        _check_signer(verified.signer, partner)
        return VerifiedMessage(verified.user_message, verified.payloads, verified.signer, verified.references)

    def pack_receipt(self, message: VerifiedMessage, message_id: str, now: dt.datetime) -> Packed:
        if message.signer is None:
            raise LocalProtocolError("a receipt is only given for a message this access point verified")
        verified = core.VerifiedUserMessage(message.user_message, message.payloads, message.signer, message.references)
        signal = core.receipt_for(verified, message_id=message_id, timestamp=now)
        out = core.pack_signal(signal, sign=self.sign, random=self.random)
        return Packed(out.content_type, out.body, out.references)

    def pack_errors(
        self, errors: Sequence[Error], ref_to_message_id: str | None, message_id: str, now: dt.datetime
    ) -> Packed:
        signal = SignalMessage(MessageInfo(message_id, now, ref_to_message_id), errors=tuple(errors))
        out = core.pack_signal(signal, sign=self.sign, random=self.random)
        return Packed(out.content_type, out.body, out.references)

    def read_signal(self, content_type: str, body: bytes, partner: Partner, now: dt.datetime) -> SignalMessage:
        known = [c for c in (partner.signing_certificate,) if c is not None]
        verified = self._receive((content_type, body), _trust(partner), known, now, decrypt=False)
        if not isinstance(verified, core.VerifiedSignalMessage):
            raise RemoteProtocolError("the answer is not a SignalMessage", code="EBMS:0302")
        _check_signer(verified.signer, partner)
        return verified.signal_message
