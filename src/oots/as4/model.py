"""The ebMS 3 message model: frozen values named after the elements of the ebMS 3 header.

These are plain values, with no XML in them; :mod:`oots.as4.envelope` turns them into SOAP and back.
Names follow the specification so that a reader of ebMS 3 Core (section 5.2) finds the code:
``UserMessage`` holds ``MessageInfo``, ``PartyInfo`` (``From``/``To``, here ``from_party`` and
``to_party``), ``CollaborationInfo``, ``MessageProperties`` and ``PayloadInfo``; ``SignalMessage``
holds a ``Receipt`` or ``Error`` elements. ``AgreementRef`` is deliberately absent: OOTS does not use
it (see ``EDELIVERY-NOTES.md`` §1.2).

``Payload`` is one MIME part as the application sees it (content id, media type, bytes, properties).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from oots.errors import LocalProtocolError

__all__ = [
    "DEFAULT_MPC",
    "MAX_ID_LENGTH",
    "CollaborationInfo",
    "Error",
    "MessageInfo",
    "PartInfo",
    "Party",
    "PartyId",
    "PartyInfo",
    "Payload",
    "Property",
    "Receipt",
    "Reference",
    "Service",
    "SignalMessage",
    "Transform",
    "UserMessage",
]

#: The default message partition channel of ebMS 3 (may be left out on the wire).
DEFAULT_MPC = "http://docs.oasis-open.org/ebxml-msg/ebms/v3.0/ns/core/200704/defaultMPC"


#: The longest message id, payload content id and payload media type accepted (what the access point's
#: tables hold; Domibus keeps message ids of at most 255 characters too).
MAX_ID_LENGTH = 255


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise LocalProtocolError(message, code="EBMS:0009")


@dataclass(frozen=True, slots=True)
class MessageInfo:
    """``eb:MessageInfo``: id, creation time (UTC) and the id of the message this one answers."""

    message_id: str
    timestamp: datetime
    ref_to_message_id: str | None = None

    def __post_init__(self) -> None:
        _require(bool(self.message_id.strip()), "MessageInfo.message_id must not be empty")
        _require(
            "<" not in self.message_id and ">" not in self.message_id,
            "MessageInfo.message_id must not contain angle brackets",
        )
        _require(
            len(self.message_id) <= MAX_ID_LENGTH,
            f"MessageInfo.message_id is {len(self.message_id)} characters long, over the limit of {MAX_ID_LENGTH}",
        )
        _require(self.timestamp.tzinfo is not None, "MessageInfo.timestamp must carry a time zone")


@dataclass(frozen=True, slots=True)
class PartyId:
    """``eb:PartyId`` with its optional ``type`` attribute."""

    value: str
    type: str | None = None

    def __post_init__(self) -> None:
        _require(bool(self.value.strip()), "PartyId must not be empty")


@dataclass(frozen=True, slots=True)
class Party:
    """``eb:From`` or ``eb:To``: the access point's party id and its role."""

    party_id: PartyId
    role: str

    def __post_init__(self) -> None:
        _require(bool(self.role.strip()), "a party's Role must not be empty")


@dataclass(frozen=True, slots=True)
class PartyInfo:
    """``eb:PartyInfo``: ``eb:From`` (the sending access point) and ``eb:To`` (the receiving one)."""

    from_party: Party
    to_party: Party


@dataclass(frozen=True, slots=True)
class Service:
    """``eb:Service`` with its optional ``type`` attribute."""

    value: str
    type: str | None = None

    def __post_init__(self) -> None:
        _require(bool(self.value.strip()), "Service must not be empty")


@dataclass(frozen=True, slots=True)
class CollaborationInfo:
    """``eb:CollaborationInfo`` without ``AgreementRef`` (unused in OOTS)."""

    service: Service
    action: str
    conversation_id: str

    def __post_init__(self) -> None:
        _require(bool(self.action.strip()), "Action must not be empty")
        _require(bool(self.conversation_id.strip()), "ConversationId must not be empty")


@dataclass(frozen=True, slots=True)
class Property:
    """``eb:Property`` (in MessageProperties or PartProperties); ``type`` is the OOTS extension attribute."""

    name: str
    value: str
    type: str | None = None

    def __post_init__(self) -> None:
        _require(bool(self.name.strip()), "a Property must have a name")


def _find(properties: tuple[Property, ...], name: str) -> Property | None:
    for prop in properties:
        if prop.name == name:
            return prop
    return None


@dataclass(frozen=True, slots=True)
class PartInfo:
    """``eb:PartInfo``: the ``href`` (``cid:...``) of a payload part and its ``PartProperties``."""

    href: str
    properties: tuple[Property, ...] = ()

    def __post_init__(self) -> None:
        _require(self.href.startswith("cid:") and len(self.href) > 4, "PartInfo href must be a cid: URI")
        _require(
            len(self.href) - 4 <= MAX_ID_LENGTH,
            f"a PartInfo content id is {len(self.href) - 4} characters long, over the limit of {MAX_ID_LENGTH}",
        )

    @property
    def content_id(self) -> str:
        """The MIME Content-ID the href points at (without ``cid:`` and angle brackets)."""
        return self.href[4:]

    def property(self, name: str) -> Property | None:
        """The part property called ``name``, if present."""
        return _find(self.properties, name)


@dataclass(frozen=True, slots=True)
class UserMessage:
    """``eb:UserMessage``: the business message header (ebMS 3 Core §5.2.2)."""

    message_info: MessageInfo
    party_info: PartyInfo
    collaboration_info: CollaborationInfo
    message_properties: tuple[Property, ...] = ()
    payload_info: tuple[PartInfo, ...] = ()
    mpc: str | None = None

    def __post_init__(self) -> None:
        hrefs = [p.href for p in self.payload_info]
        _require(len(hrefs) == len(set(hrefs)), "two PartInfo elements name the same part")

    def property(self, name: str) -> Property | None:
        """The message property called ``name`` (e.g. ``originalSender``), if present."""
        return _find(self.message_properties, name)

    def part_info(self, content_id: str) -> PartInfo | None:
        """The PartInfo whose href is ``cid:<content_id>``, if present."""
        for part in self.payload_info:
            if part.content_id == content_id:
                return part
        return None


@dataclass(frozen=True, slots=True)
class Transform:
    """A ``ds:Transform`` of a signature reference, with exclusive c14n's inclusive prefixes, if any."""

    algorithm: str
    inclusive_prefixes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Reference:
    """A ``ds:Reference``: what was signed (URI), how (transforms, digest method) and its digest."""

    uri: str
    digest_method: str
    digest_value: bytes
    transforms: tuple[Transform, ...] = ()


@dataclass(frozen=True, slots=True)
class Receipt:
    """``eb:Receipt`` carrying ``ebbp:NonRepudiationInformation``: one entry per signed reference
    of the message it acknowledges (AS4 §5.1.8)."""

    references: tuple[Reference, ...] = ()


@dataclass(frozen=True, slots=True)
class Error:
    """``eb:Error`` (ebMS 3 Core §6.2): one entry of the ebMS error table plus what it refers to."""

    error_code: str
    severity: str
    category: str | None = None
    origin: str | None = None
    short_description: str | None = None
    ref_to_message_in_error: str | None = None
    description: str | None = None
    error_detail: str | None = None

    def __post_init__(self) -> None:
        _require(self.severity in ("failure", "warning"), "Error severity must be failure or warning")
        _require(bool(self.error_code.strip()), "Error code must not be empty")


@dataclass(frozen=True, slots=True)
class SignalMessage:
    """``eb:SignalMessage``: a ``Receipt`` or one or more ``Error`` elements (or, for pull, neither)."""

    message_info: MessageInfo
    receipt: Receipt | None = None
    errors: tuple[Error, ...] = ()

    def __post_init__(self) -> None:
        _require(
            not (self.receipt is not None and self.errors),
            "a SignalMessage carries a Receipt or Errors, not both",
        )


@dataclass(frozen=True, slots=True)
class Payload:
    """One payload MIME part as the application sees it (before compression and encryption).

    ``content_id`` is the bare Content-ID (``part1@example.org``); ``properties`` are the
    PartProperties the application sets (``MimeType`` and, for compressed parts,
    ``CompressionType`` are added by the message handler).
    """

    content_id: str
    mime_type: str
    data: bytes = field(repr=False)
    properties: tuple[Property, ...] = ()

    def __post_init__(self) -> None:
        _require(bool(self.content_id.strip()), "a Payload needs a content id")
        _require(
            not any(c in self.content_id for c in "<> \r\n\t"),
            "a Payload content id must not contain brackets or blanks",
        )
        _require("/" in self.mime_type, "a Payload mime type must look like type/subtype")
        _require(
            len(self.content_id) <= MAX_ID_LENGTH,
            f"a Payload content id is {len(self.content_id)} characters long, over the limit of {MAX_ID_LENGTH}",
        )
        _require(
            len(self.mime_type) <= MAX_ID_LENGTH,
            f"a Payload mime type is {len(self.mime_type)} characters long, over the limit of {MAX_ID_LENGTH}",
        )

    @property
    def href(self) -> str:
        """The ``cid:`` URI PartInfo uses to point at this part."""
        return "cid:" + self.content_id

    def property(self, name: str) -> Property | None:
        """The part property called ``name``, if present."""
        return _find(self.properties, name)
