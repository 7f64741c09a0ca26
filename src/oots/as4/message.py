"""Whole AS4 messages: pack a UserMessage with its payloads, receive and verify one, and the signals
that answer it (signed non-repudiation receipts, ebMS errors).

The receive path is a row of named steps: size → MIME split → hardened XML parse → decrypt →
signature and coverage → certificate trust → header → payloads (decompress). Whatever fails raises
a ``RemoteProtocolError``/``SecurityError`` carrying its ``EBMS:*`` code, and nothing is returned.
What is returned holds only what was signed (and decrypted), with the signer's certificate.
"""

from __future__ import annotations

import base64
import dataclasses
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

from cryptography import x509
from lxml import etree

from oots import ns, xmlsafe
from oots.as4 import compression
from oots.as4.envelope import messaging_xml, parse_messaging
from oots.as4.errors import error_for
from oots.as4.keys import KeyPair
from oots.as4.mime import SOAP_XML, Buffer, MimePart, build_related, header_params, split_related, write_message_file
from oots.as4.model import (
    MAX_ID_LENGTH,
    Error,
    MessageInfo,
    PartInfo,
    Payload,
    Property,
    Receipt,
    Reference,
    SignalMessage,
    UserMessage,
)
from oots.as4.profile import Random
from oots.as4.trust import TrustStore
from oots.as4.wss import EDELIVERY_AS4_1_15, SecurityReport, SecuritySuite, open_security, secure_envelope
from oots.errors import LocalProtocolError, OotsError, RemoteProtocolError, SecurityError, XmlError

__all__ = [
    "CHARACTER_SET",
    "COMPRESSION_TYPE",
    "MIME_TYPE",
    "Limits",
    "OutboundMessage",
    "VerifiedSignalMessage",
    "VerifiedUserMessage",
    "certificates_in",
    "check_receipt",
    "error_signal",
    "inspect",
    "pack",
    "pack_signal",
    "receipt_for",
    "receive",
]

MIME_TYPE: Final = "MimeType"
COMPRESSION_TYPE: Final = "CompressionType"
CHARACTER_SET: Final = "CharacterSet"
_XML_ENCODING: Final = re.compile(rb"""^(?:\xef\xbb\xbf)?<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")


@dataclass(frozen=True, slots=True)
class Limits:
    """Sizes a receiver accepts; anything larger is refused before it is processed further."""

    max_message_bytes: int = 128 * 1024 * 1024
    max_envelope_bytes: int = 2 * 1024 * 1024
    max_parts: int = 100
    #: Largest size one payload part may decompress to.
    max_decompressed_bytes: int = compression.DEFAULT_MAX_DECOMPRESSED
    #: Largest size all payloads of one message may come to together, once decompressed.
    max_decompressed_total_bytes: int = compression.DEFAULT_MAX_DECOMPRESSED_TOTAL


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    """A packed message: the HTTP Content-Type and body, its id and the references we signed
    (a receipt for it must echo them)."""

    content_type: str
    body: bytes = field(repr=False)
    message_id: str
    references: tuple[Reference, ...]

    def to_file(self) -> bytes:
        """The raw message as a file: MIME headers, a blank line, the body."""
        return write_message_file(self.content_type, self.body)


@dataclass(frozen=True, slots=True)
class VerifiedUserMessage:
    """A UserMessage whose signature, coverage and signer held; payloads decrypted and decompressed."""

    user_message: UserMessage
    payloads: tuple[Payload, ...]
    signer: x509.Certificate
    references: tuple[Reference, ...]


@dataclass(frozen=True, slots=True)
class VerifiedSignalMessage:
    """A signed SignalMessage (receipt or errors) whose signature and signer held."""

    signal_message: SignalMessage
    signer: x509.Certificate
    references: tuple[Reference, ...]


# ----------------------------------------------------------------------------------------- pack


def _character_set(mime_type: str, data: bytes) -> str | None:
    media = mime_type.split(";", 1)[0].strip().lower()
    if not (media.endswith("/xml") or media.endswith("+xml")):
        return None
    found = _XML_ENCODING.match(data[:200])
    return found.group(1).decode("ascii").lower() if found else "utf-8"


def _hex_id(random: Random) -> str:
    return random(16).hex()


def pack(
    message: UserMessage,
    payloads: Sequence[Payload],
    *,
    sign: KeyPair,
    encrypt_for: x509.Certificate | None,
    random: Random,
    compress: bool = True,
    suite: SecuritySuite = EDELIVERY_AS4_1_15,
) -> OutboundMessage:
    """Compress (gzip), sign and encrypt ``payloads`` under ``message`` and serialise the whole.

    The PayloadInfo of ``message`` is replaced by one PartInfo per payload, in order, with
    ``MimeType``, ``CharacterSet`` (XML) and ``CompressionType`` added to the payload's own properties.
    """
    seen: set[str] = set()
    part_infos: list[PartInfo] = []
    wire: list[tuple[str, str, bytes]] = []
    for payload in payloads:
        if payload.content_id in seen:
            raise LocalProtocolError(f"two payloads have the content id {payload.content_id}")
        seen.add(payload.content_id)
        if payload.property(COMPRESSION_TYPE) is not None:
            raise LocalProtocolError("CompressionType is set by the message handler, not by the producer")
        props = [p for p in payload.properties if p.name not in (MIME_TYPE, CHARACTER_SET)]
        props.append(Property(MIME_TYPE, payload.mime_type))
        charset = payload.property(CHARACTER_SET)
        found_charset = charset.value if charset is not None else _character_set(payload.mime_type, payload.data)
        if found_charset is not None:
            props.append(Property(CHARACTER_SET, found_charset))
        if compress:
            props.append(Property(COMPRESSION_TYPE, compression.GZIP))
            wire.append((payload.content_id, compression.GZIP, compression.compress(payload.data)))
        else:
            wire.append((payload.content_id, payload.mime_type, payload.data))
        part_infos.append(PartInfo(payload.href, tuple(props)))
    message = dataclasses.replace(message, payload_info=tuple(part_infos))
    return _pack(message, wire, sign=sign, encrypt_for=encrypt_for, random=random, suite=suite)


def pack_signal(
    signal: SignalMessage, *, sign: KeyPair, random: Random, suite: SecuritySuite = EDELIVERY_AS4_1_15
) -> OutboundMessage:
    """Sign and serialise a SignalMessage (a receipt or errors) as a SOAP message with attachments."""
    return _pack(signal, [], sign=sign, encrypt_for=None, random=random, suite=suite)


def _pack(
    message: UserMessage | SignalMessage,
    wire: Sequence[tuple[str, str, bytes]],
    *,
    sign: KeyPair,
    encrypt_for: x509.Certificate | None,
    random: Random,
    suite: SecuritySuite,
) -> OutboundMessage:
    messaging_id = f"msg-{_hex_id(random)}"
    secured = secure_envelope(
        messaging_xml(message, wsu_id=messaging_id),
        wire,
        sign=sign,
        encrypt_for=encrypt_for,
        random=random,
        messaging_id=messaging_id,
        suite=suite,
    )
    soap_cid = f"soap-{_hex_id(random)}@oots"
    parts = [
        MimePart(
            (
                ("content-type", f"{SOAP_XML}; charset=UTF-8"),
                ("content-transfer-encoding", "binary"),
                ("content-id", f"<{soap_cid}>"),
            ),
            secured.envelope,
        )
    ]
    for part in secured.parts:
        parts.append(
            MimePart(
                (
                    ("content-type", part.content_type),
                    ("content-transfer-encoding", "binary"),
                    ("content-id", f"<{part.content_id}>"),
                ),
                part.data,
            )
        )
    content_type, body = build_related(parts, boundary=f"MIMEBoundary_{random(24).hex()}")
    return OutboundMessage(content_type, body, message.message_info.message_id, secured.references)


# -------------------------------------------------------------------------------------- receive


def _split(content_type: str, body: bytes, limits: Limits) -> tuple[bytes, dict[str, tuple[str, Buffer]]]:
    """Step 1-2: size and MIME. Returns the envelope bytes and the attachments by content id."""
    if len(body) > limits.max_message_bytes:
        raise RemoteProtocolError(
            f"the message is {len(body):,} bytes, over the limit of {limits.max_message_bytes:,}", code="EBMS:0004"
        )
    if content_type.partition(";")[0].strip().lower() == SOAP_XML:
        header_params(content_type)  # its parameters must still be well-formed (EBMS:0007)
        return body, {}
    # split_related reads the Content-Type itself: parsed once
    related = split_related(content_type, body, max_parts=limits.max_parts, zero_copy=True)
    attachments: dict[str, tuple[str, Buffer]] = {}
    for part in related.attachments:
        cid = part.content_id
        if not cid:
            raise RemoteProtocolError("a MIME part has no Content-ID", code="EBMS:0007")
        attachments[cid] = (part.content_type, part.body)  # a view of ``body``: no copy
    return bytes(related.root.body), attachments


def _parse_envelope(data: bytes, limits: Limits) -> etree._Element:
    """Step 3: the hardened parser; anything it refuses is an invalid header."""
    try:
        return xmlsafe.parse(data, max_bytes=limits.max_envelope_bytes)
    except XmlError as exc:
        raise RemoteProtocolError(f"the SOAP envelope is not acceptable XML: {exc.message}", code="EBMS:0009") from None


def _require_holds(report: SecurityReport) -> x509.Certificate:
    """Step 5: every reference verified, everything covered, the signature value good."""
    if report.undecrypted:
        raise SecurityError("the message has encrypted parts and no decryption key is configured", code="EBMS:0102")
    if not report.signature_valid or report.signer is None:
        raise SecurityError("the signature value does not verify", code="EBMS:0101")
    for check in report.checks:
        if check.status != "ok":
            raise SecurityError(f"signature reference {check.uri}: {check.detail}", code="EBMS:0101")
    for code, sentence in report.problems:
        raise SecurityError(sentence, code=code)
    return report.signer


def _body_is_empty(root: etree._Element) -> None:
    body = next(root.iterchildren("{" + ns.S12 + "}Body"), None)
    if body is not None and (len(body) or (body.text or "").strip()):
        raise RemoteProtocolError("the SOAP Body must be empty in AS4 (payloads go in MIME parts)", code="EBMS:0008")


def _over_total(limits: Limits) -> RemoteProtocolError:
    return RemoteProtocolError(
        f"the payloads of the message come to more than {limits.max_decompressed_total_bytes:,} bytes "
        "once decompressed, over the limit for one message; send the documents in several messages",
        code="EBMS:0303",
    )


def _payloads(um: UserMessage, report: SecurityReport, limits: Limits, require_encryption: bool) -> tuple[Payload, ...]:
    """Step 7: each PartInfo's part, decompressed; every part named by exactly one PartInfo."""
    named = {p.content_id for p in um.payload_info}
    for cid in report.parts:
        if cid not in named:
            raise RemoteProtocolError(f"the MIME part {cid} is not named in PayloadInfo", code="EBMS:0007")
    payloads: list[Payload] = []
    budget = limits.max_decompressed_total_bytes
    for info in um.payload_info:
        found = report.parts.get(info.content_id)
        if found is None:
            raise RemoteProtocolError(f"the payload part {info.content_id} is missing", code="EBMS:0007")
        if require_encryption and info.content_id not in report.encrypted:
            raise SecurityError(f"the payload part {info.content_id} is not encrypted", code="EBMS:0103")
        declared = info.property(MIME_TYPE)
        if declared is None or not declared.value.strip():
            raise RemoteProtocolError(
                f"the PartInfo of part {info.content_id} has no MimeType property, which the eDelivery AS4 "
                "profile requires",
                code="EBMS:0009",
            )
        if len(declared.value) > MAX_ID_LENGTH:
            raise RemoteProtocolError(
                f"the MimeType of part {info.content_id} is {len(declared.value)} characters long, "
                f"over the limit of {MAX_ID_LENGTH}",
                code="EBMS:0009",
            )
        wire = found[1]  # its media type on the wire is not signed: the signed MimeType is used
        data = bytes(wire)  # the one copy of a clear part (decrypted parts are bytes already)
        compressed = info.property(COMPRESSION_TYPE)
        if compressed is not None:
            if compressed.value != compression.GZIP:
                raise RemoteProtocolError(f"CompressionType {compressed.value} is not supported", code="EBMS:0303")
            if budget < limits.max_decompressed_bytes:
                data = compression.decompress(data, max_size=budget, over=_over_total(limits))
            else:
                data = compression.decompress(data, max_size=limits.max_decompressed_bytes)
        if len(data) > budget:
            raise _over_total(limits)
        budget -= len(data)
        props = tuple(p for p in info.properties if p.name != COMPRESSION_TYPE)
        try:
            payloads.append(Payload(info.content_id, declared.value, data, props))
        except LocalProtocolError as exc:
            raise RemoteProtocolError(exc.message, code="EBMS:0003") from None
    return tuple(payloads)


def receive(
    content_type: str,
    body: bytes,
    *,
    trust: TrustStore,
    now: datetime,
    decryption: KeyPair | None = None,
    known_certificates: Sequence[x509.Certificate] = (),
    require_encryption: bool = False,
    limits: Limits = Limits(),
    suite: SecuritySuite = EDELIVERY_AS4_1_15,
) -> VerifiedUserMessage | VerifiedSignalMessage:
    """Verify an incoming AS4 message and return only what was signed (and decrypted).

    ``now`` is the time certificates must be valid at. Raises ``RemoteProtocolError`` or
    ``SecurityError`` with the ``EBMS:*`` code to answer with; :func:`error_signal` builds that answer.
    """
    envelope, attachments = _split(content_type, body, limits)
    root = _parse_envelope(envelope, limits)
    report = open_security(root, attachments, decryption=decryption, known_certificates=known_certificates, suite=suite)
    signer = _require_holds(report)
    trust.verify(signer, at=now)
    _body_is_empty(root)
    message = parse_messaging(report.messaging)
    if isinstance(message, SignalMessage):
        if report.parts:
            raise RemoteProtocolError("a SignalMessage must not carry payload parts", code="EBMS:0007")
        return VerifiedSignalMessage(message, signer, report.references)
    payloads = _payloads(message, report, limits, require_encryption)
    return VerifiedUserMessage(message, payloads, signer, report.references)


def inspect(
    content_type: str,
    body: bytes,
    *,
    decryption: KeyPair | None = None,
    known_certificates: Sequence[x509.Certificate] = (),
    limits: Limits = Limits(),
) -> tuple[SecurityReport, UserMessage | SignalMessage]:
    """Split, parse, decrypt and check an AS4 message without deciding: the report of every reference
    and the header as read from the signed ``eb:Messaging`` (for diagnostics; never deliver from this)."""
    envelope, attachments = _split(content_type, body, limits)
    root = _parse_envelope(envelope, limits)
    report = open_security(root, attachments, decryption=decryption, known_certificates=known_certificates)
    return report, parse_messaging(report.messaging)


def certificates_in(content_type: str, body: bytes, *, limits: Limits = Limits()) -> list[x509.Certificate]:
    """The X.509 certificates carried as BinarySecurityTokens in a message (unverified; for tools)."""
    envelope, _ = _split(content_type, body, limits)
    root = _parse_envelope(envelope, limits)
    certs = []
    for bst in root.iter("{" + ns.WSSE + "}BinarySecurityToken"):
        try:
            certs.append(x509.load_der_x509_certificate(base64.b64decode("".join((bst.text or "").split()))))
        except ValueError:
            continue
    return certs


# -------------------------------------------------------------------------------------- signals


def receipt_for(verified: VerifiedUserMessage, *, message_id: str, timestamp: datetime) -> SignalMessage:
    """The non-repudiation receipt for ``verified``: one ``MessagePartNRInformation`` per reference it signed."""
    return SignalMessage(
        MessageInfo(message_id, timestamp, verified.user_message.message_info.message_id),
        receipt=Receipt(verified.references),
    )


def error_signal(
    exc: OotsError, *, message_id: str, timestamp: datetime, ref_to_message_id: str | None = None
) -> SignalMessage:
    """The ``eb:Error`` signal answering ``exc`` (its EBMS code from the one table)."""
    error: Error = error_for(exc, ref_to_message_in_error=ref_to_message_id)
    return SignalMessage(MessageInfo(message_id, timestamp, ref_to_message_id), errors=(error,))


def check_receipt(verified: VerifiedSignalMessage, sent: OutboundMessage) -> Receipt:
    """Check that a verified signal is a receipt for ``sent`` echoing exactly the references we signed.

    Raises ``RemoteProtocolError(EBMS:0302)`` InvalidReceipt otherwise.
    """
    signal = verified.signal_message
    if signal.receipt is None:
        raise RemoteProtocolError("the answer is not a receipt", code="EBMS:0302")
    if signal.message_info.ref_to_message_id != sent.message_id:
        raise RemoteProtocolError("the receipt refers to another message", code="EBMS:0302")
    if set(signal.receipt.references) != set(sent.references) or len(signal.receipt.references) != len(sent.references):
        raise RemoteProtocolError("the receipt does not echo the references we signed", code="EBMS:0302")
    return signal.receipt
