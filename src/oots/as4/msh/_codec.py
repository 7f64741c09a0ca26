"""What the message handler needs from the AS4 core: the wire codec, as one small protocol.

The handler decides *what* happens to a message (states, retries, duplicates, which answer); the
codec does the bytes (SOAP envelope, MIME, WS-Security, receipts). Keeping the two apart lets the
handler run behind our own access point and be tested to the byte, and lets the security suite change
(eDelivery AS4 2.0) without touching the state table.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from cryptography import x509

from oots.as4.model import Error, Payload, Reference, SignalMessage, UserMessage
from oots.as4.pmode import Partner, PMode, PModeSet

__all__ = ["Codec", "Packed", "Parsed", "VerifiedMessage"]


@dataclass(frozen=True, slots=True)
class Packed:
    """A message ready for the wire: the HTTP ``Content-Type`` and body, and what our signature covered."""

    content_type: str
    body: bytes = field(repr=False)
    #: The ``ds:Reference`` values of our signature (a receipt must echo them: non-repudiation).
    references: tuple[Reference, ...] = ()


@dataclass(frozen=True, slots=True)
class Parsed:
    """A received message before verification: nothing in it is trusted.

    ``message_id`` is the id the message claims, used only to refer to it in an error answer;
    ``handle`` is the codec's own form of the message, passed back to :meth:`Codec.verify`.
    """

    message_id: str | None
    handle: object = field(repr=False)


@dataclass(frozen=True, slots=True)
class VerifiedMessage:
    """A received UserMessage after verification and decryption: only what was signed, with its provenance.

    This is all the application ever sees of an incoming message ("verify, then use").
    """

    user_message: UserMessage
    payloads: tuple[Payload, ...]
    #: The certificate that signed the message (chained to the partner's trust anchors); None when
    #: another access point verified it (``via="domibus"``).
    signer: x509.Certificate | None
    #: The signature's references, echoed in our non-repudiation receipt.
    references: tuple[Reference, ...]
    pmode: PMode | None = None
    #: Who verified it: ``as4`` (this access point) or ``domibus`` (a Domibus in front of the node).
    via: str = "as4"

    @property
    def message_id(self) -> str:
        return self.user_message.message_info.message_id


class Codec(Protocol):
    """The wire operations of the AS4 core the handler calls (see ``oots.as4.msh.core_codec``)."""

    def pack_user_message(
        self, message: UserMessage, payloads: Sequence[Payload], pmode: PMode, now: dt.datetime
    ) -> Packed:
        """Compress, sign and encrypt per ``pmode`` and serialise as SOAP with attachments."""
        ...

    def parse(self, content_type: str, body: bytes) -> Parsed:
        """The first look at a request: size and packaging (raises ``RemoteProtocolError`` with an EBMS code)."""
        ...

    def verify(self, parsed: Parsed, pmodes: PModeSet, now: dt.datetime) -> VerifiedMessage:
        """Decrypt and decompress the payloads with our key, check the signature over the plaintext,
        and check that the signer is the partner the signed header names as sender, trusted at ``now``
        (raises ``SecurityError``; ``RemoteProtocolError`` EBMS:0010 for a sender that is no partner).

        With sign-then-encrypt the signature covers the plaintext, so decryption comes first and the
        two are one step: nothing decrypted is returned unless the signature holds.
        """
        ...

    def pack_receipt(self, message: VerifiedMessage, message_id: str, now: dt.datetime) -> Packed:
        """A signed non-repudiation receipt for ``message``."""
        ...

    def pack_errors(
        self, errors: Sequence[Error], ref_to_message_id: str | None, message_id: str, now: dt.datetime
    ) -> Packed:
        """A SignalMessage carrying ``errors``."""
        ...

    def read_signal(self, content_type: str, body: bytes, partner: Partner, now: dt.datetime) -> SignalMessage:
        """Parse and verify a synchronous answer (receipt or errors) signed by ``partner``."""
        ...
