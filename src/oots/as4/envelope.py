"""SOAP 1.2 envelopes carrying ``eb:Messaging``: writing the header from the model and reading it back.

Writing produces text (not an lxml tree built in memory) so that what is signed is exactly what is
parsed again; reading takes an ``eb:Messaging`` element from a document that went through
:func:`oots.xmlsafe.parse` and returns model values, or raises ``EBMS:0009`` InvalidHeader.
"""

from __future__ import annotations

import base64
import re
from datetime import UTC, datetime
from typing import Final

from lxml import etree

from oots import ns
from oots.as4.model import (
    CollaborationInfo,
    Error,
    MessageInfo,
    PartInfo,
    Party,
    PartyId,
    PartyInfo,
    Property,
    Receipt,
    Reference,
    Service,
    SignalMessage,
    Transform,
    UserMessage,
)
from oots.errors import LocalProtocolError, OotsError, RemoteProtocolError

__all__ = [
    "attr",
    "carries",
    "format_timestamp",
    "messaging_xml",
    "parse_messaging",
    "parse_timestamp",
    "read_reference",
    "reference_xml",
    "text",
]

_EB: Final = "{" + ns.EB + "}"
_DS: Final = "{" + ns.DS + "}"
_EBBP: Final = "{" + ns.EBBP + "}"
_EC: Final = "{" + ns.EC + "}"
#: The characters XML 1.0 cannot carry that a Python str can (C0 controls but tab, LF, CR; U+FFFE, U+FFFF).
_INVALID_CHARS: Final = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def carries(value: str) -> bool:
    """Whether XML 1.0 can carry ``value`` (no C0 control but tab, LF, CR; no U+FFFE, U+FFFF)."""
    return _INVALID_CHARS.search(value) is None


def _check_chars(value: str) -> None:
    if _INVALID_CHARS.search(value) is not None:
        raise LocalProtocolError("a header value contains a character XML cannot carry")


def text(value: str) -> str:
    """``value`` escaped as XML character data."""
    _check_chars(value)
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\r", "&#xD;")


def attr(value: str) -> str:
    """``value`` escaped for a double-quoted attribute (as exclusive c14n writes it)."""
    _check_chars(value)
    return (
        value.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace('"', "&quot;")
        .replace("\t", "&#x9;")
        .replace("\n", "&#xA;")
        .replace("\r", "&#xD;")
    )


def format_timestamp(moment: datetime) -> str:
    """xs:dateTime in UTC with milliseconds and ``Z``."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_timestamp(value: str) -> datetime:
    """An xs:dateTime; one without a zone is read as UTC (ebMS 3 Core §5.2.2.1)."""
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise _header_error(f"Timestamp {value[:40]!r} is not an xs:dateTime") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _typed(tag: str, value: str, type_: str | None) -> str:
    type_attr = "" if type_ is None else f' type="{attr(type_)}"'
    return f"<eb:{tag}{type_attr}>{text(value)}</eb:{tag}>"


def _property(prop: Property) -> str:
    type_attr = "" if prop.type is None else f' type="{attr(prop.type)}"'
    return f'<eb:Property name="{attr(prop.name)}"{type_attr}>{text(prop.value)}</eb:Property>'


def _message_info(info: MessageInfo) -> str:
    ref = ""
    if info.ref_to_message_id is not None:
        ref = f"<eb:RefToMessageId>{text(info.ref_to_message_id)}</eb:RefToMessageId>"
    return (
        f"<eb:MessageInfo><eb:Timestamp>{format_timestamp(info.timestamp)}</eb:Timestamp>"
        f"<eb:MessageId>{text(info.message_id)}</eb:MessageId>{ref}</eb:MessageInfo>"
    )


def _party(tag: str, party: Party) -> str:
    return (
        f"<eb:{tag}>{_typed('PartyId', party.party_id.value, party.party_id.type)}"
        f"<eb:Role>{text(party.role)}</eb:Role></eb:{tag}>"
    )


def _user_message(um: UserMessage) -> str:
    collab = um.collaboration_info
    out = [
        "<eb:UserMessage>" if um.mpc is None else f'<eb:UserMessage mpc="{attr(um.mpc)}">',
        _message_info(um.message_info),
        "<eb:PartyInfo>",
        _party("From", um.party_info.from_party),
        _party("To", um.party_info.to_party),
        "</eb:PartyInfo><eb:CollaborationInfo>",
        _typed("Service", collab.service.value, collab.service.type),
        f"<eb:Action>{text(collab.action)}</eb:Action>",
        f"<eb:ConversationId>{text(collab.conversation_id)}</eb:ConversationId>",
        "</eb:CollaborationInfo>",
    ]
    if um.message_properties:
        out.append("<eb:MessageProperties>")
        out.extend(_property(p) for p in um.message_properties)
        out.append("</eb:MessageProperties>")
    if um.payload_info:
        out.append("<eb:PayloadInfo>")
        for part in um.payload_info:
            out.append(f'<eb:PartInfo href="{attr(part.href)}">')
            if part.properties:
                out.append("<eb:PartProperties>")
                out.extend(_property(p) for p in part.properties)
                out.append("</eb:PartProperties>")
            out.append("</eb:PartInfo>")
        out.append("</eb:PayloadInfo>")
    out.append("</eb:UserMessage>")
    return "".join(out)


def reference_xml(ref: Reference, *, declare: bool = True) -> str:
    """A ``ds:Reference`` element for a model :class:`Reference`, in canonical form; ``declare``
    puts ``xmlns:ds`` on it (for use outside a ``ds:SignedInfo``)."""
    transforms = []
    for t in ref.transforms:
        if t.inclusive_prefixes:
            prefixes = attr(" ".join(t.inclusive_prefixes))
            transforms.append(
                f'<ds:Transform Algorithm="{attr(t.algorithm)}"><ec:InclusiveNamespaces '
                f'xmlns:ec="{ns.EC}" PrefixList="{prefixes}"></ec:InclusiveNamespaces></ds:Transform>'
            )
        else:
            transforms.append(f'<ds:Transform Algorithm="{attr(t.algorithm)}"></ds:Transform>')
    block = f"<ds:Transforms>{''.join(transforms)}</ds:Transforms>" if transforms else ""
    xmlns = f' xmlns:ds="{ns.DS}"' if declare else ""
    return (
        f'<ds:Reference{xmlns} URI="{attr(ref.uri)}">{block}'
        f'<ds:DigestMethod Algorithm="{attr(ref.digest_method)}"></ds:DigestMethod>'
        f"<ds:DigestValue>{base64.b64encode(ref.digest_value).decode('ascii')}</ds:DigestValue></ds:Reference>"
    )


def _signal_message(signal: SignalMessage) -> str:
    out = ["<eb:SignalMessage>", _message_info(signal.message_info)]
    if signal.receipt is not None:
        out.append(f'<eb:Receipt><ebbp:NonRepudiationInformation xmlns:ebbp="{ns.EBBP}">')
        for ref in signal.receipt.references:
            out.append(f"<ebbp:MessagePartNRInformation>{reference_xml(ref)}</ebbp:MessagePartNRInformation>")
        out.append("</ebbp:NonRepudiationInformation></eb:Receipt>")
    for err in signal.errors:
        attrs = []
        for name, value in (  # in canonical (sorted) order
            ("category", err.category),
            ("errorCode", err.error_code),
            ("origin", err.origin),
            ("refToMessageInError", err.ref_to_message_in_error),
            ("severity", err.severity),
            ("shortDescription", err.short_description),
        ):
            if value is not None:
                attrs.append(f'{name}="{attr(value)}"')
        out.append(f"<eb:Error {' '.join(attrs)}>")
        if err.description is not None:
            out.append(f'<eb:Description xml:lang="en">{text(err.description)}</eb:Description>')
        if err.error_detail is not None:
            out.append(f"<eb:ErrorDetail>{text(err.error_detail)}</eb:ErrorDetail>")
        out.append("</eb:Error>")
    out.append("</eb:SignalMessage>")
    return "".join(out)


def messaging_xml(message: UserMessage | SignalMessage, *, wsu_id: str) -> str:
    """``eb:Messaging`` for ``message`` with ``wsu:Id``, written in its exclusive-c14n form.

    What this returns is byte for byte the exclusive canonical form of the element wherever it is
    placed in a SOAP 1.2 envelope, so its digest is the SHA-256 of these bytes (checked in tests
    against lxml's canonicaliser)."""
    body = _user_message(message) if isinstance(message, UserMessage) else _signal_message(message)
    return (
        f'<eb:Messaging xmlns:eb="{ns.EB}" xmlns:env="{ns.S12}" xmlns:wsu="{ns.WSU}" '
        f'wsu:Id="{attr(wsu_id)}" env:mustUnderstand="true">{body}</eb:Messaging>'
    )


# ---------------------------------------------------------------------------------------- reading


def _header_error(message: str) -> RemoteProtocolError:
    return RemoteProtocolError(message, code="EBMS:0009")


def _children(el: etree._Element, tag: str) -> list[etree._Element]:
    return list(el.iterchildren(tag))


def _one(el: etree._Element, tag: str, *, required: bool = True) -> etree._Element | None:
    found = _children(el, tag)
    if len(found) > 1:
        raise _header_error(f"{_local(el)} has {len(found)} {_local_name(tag)} elements, expected one")
    if not found:
        if required:
            raise _header_error(f"{_local(el)} has no {_local_name(tag)}")
        return None
    return found[0]


def _req(el: etree._Element, tag: str) -> etree._Element:
    found = _one(el, tag)
    assert found is not None
    return found


def _local_name(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _local(el: etree._Element) -> str:
    return "eb:" + _local_name(str(el.tag))


def _text(el: etree._Element, *, allow_empty: bool = False) -> str:
    if len(el):
        raise _header_error(f"{_local(el)} must hold text only")
    value = (el.text or "").strip()
    if not value and not allow_empty:
        raise _header_error(f"{_local(el)} is empty")
    return value


def _opt_attr(el: etree._Element, name: str) -> str | None:
    value = el.get(name)
    return None if value is None else str(value)


def _read_message_info(el: etree._Element) -> MessageInfo:
    info = _req(el, _EB + "MessageInfo")
    ref = _one(info, _EB + "RefToMessageId", required=False)
    return MessageInfo(
        _text(_req(info, _EB + "MessageId")),
        parse_timestamp(_text(_req(info, _EB + "Timestamp"))),
        None if ref is None else _text(ref),
    )


def _read_party(el: etree._Element) -> Party:
    ids = _children(el, _EB + "PartyId")
    if len(ids) != 1:
        raise _header_error(f"{_local(el)} has {len(ids)} PartyId elements; the AS4 profile allows exactly one")
    return Party(PartyId(_text(ids[0]), _opt_attr(ids[0], "type")), _text(_req(el, _EB + "Role")))


def _read_properties(el: etree._Element | None) -> tuple[Property, ...]:
    if el is None:
        return ()
    props = []
    for child in el:
        if child.tag != _EB + "Property":
            raise _header_error(f"unexpected element {_local_name(str(child.tag))} among properties")
        name = child.get("name")
        if not name:
            raise _header_error("a Property has no name")
        props.append(Property(str(name), _text(child, allow_empty=True), _opt_attr(child, "type")))
    names = [p.name for p in props]
    if len(names) != len(set(names)):
        raise _header_error("a property name occurs twice")
    return tuple(props)


def _read_user_message(el: etree._Element) -> UserMessage:
    party_info = _req(el, _EB + "PartyInfo")
    collab = _req(el, _EB + "CollaborationInfo")
    service = _req(collab, _EB + "Service")
    payload_info = _one(el, _EB + "PayloadInfo", required=False)
    parts: list[PartInfo] = []
    if payload_info is not None:
        for part in payload_info:
            if part.tag != _EB + "PartInfo":
                raise _header_error(f"unexpected element {_local_name(str(part.tag))} in PayloadInfo")
            href = part.get("href")
            if href is None or not str(href).startswith("cid:"):
                raise _header_error("a PartInfo does not point at a MIME part (href cid:...)")
            props = _one(part, _EB + "PartProperties", required=False)
            parts.append(PartInfo(str(href), _read_properties(props)))
    return UserMessage(
        message_info=_read_message_info(el),
        party_info=PartyInfo(_read_party(_req(party_info, _EB + "From")), _read_party(_req(party_info, _EB + "To"))),
        collaboration_info=CollaborationInfo(
            Service(_text(service), _opt_attr(service, "type")),
            _text(_req(collab, _EB + "Action")),
            _text(_req(collab, _EB + "ConversationId")),
        ),
        message_properties=_read_properties(_one(el, _EB + "MessageProperties", required=False)),
        payload_info=tuple(parts),
        mpc=_opt_attr(el, "mpc"),
    )


def read_reference(el: etree._Element) -> Reference:
    """A ``ds:Reference`` element as a model :class:`Reference` (no checking of what it points at)."""
    transforms: list[Transform] = []
    block = _one(el, _DS + "Transforms", required=False)
    if block is not None:
        for t in block:
            if t.tag != _DS + "Transform" or not t.get("Algorithm"):
                raise _header_error("a ds:Transform is malformed")
            prefixes: tuple[str, ...] = ()
            inc = _one(t, _EC + "InclusiveNamespaces", required=False)
            if inc is not None:
                prefixes = tuple(str(inc.get("PrefixList") or "").split())
            transforms.append(Transform(str(t.get("Algorithm")), prefixes))
    method = _req(el, _DS + "DigestMethod").get("Algorithm")
    value = _req(el, _DS + "DigestValue").text or ""
    try:
        digest = base64.b64decode("".join(value.split()), validate=True)
    except ValueError:
        raise _header_error("a DigestValue is not base64") from None
    uri = el.get("URI")
    if uri is None or method is None:
        raise _header_error("a ds:Reference lacks its URI or DigestMethod")
    return Reference(str(uri), str(method), digest, tuple(transforms))


def _read_signal(el: etree._Element) -> SignalMessage:
    info = _read_message_info(el)
    receipt_el = _one(el, _EB + "Receipt", required=False)
    receipt: Receipt | None = None
    if receipt_el is not None:
        refs: list[Reference] = []
        for nri in receipt_el.iter(_EBBP + "NonRepudiationInformation"):
            for part in nri.iter(_EBBP + "MessagePartNRInformation"):
                for ref in part.iter(_DS + "Reference"):
                    refs.append(read_reference(ref))
        receipt = Receipt(tuple(refs))
    errors: list[Error] = []
    for err in _children(el, _EB + "Error"):
        code, severity = err.get("errorCode"), err.get("severity")
        if not code or severity not in ("failure", "warning"):
            raise _header_error("an eb:Error lacks errorCode or a valid severity")
        desc = _one(err, _EB + "Description", required=False)
        detail = _one(err, _EB + "ErrorDetail", required=False)
        errors.append(
            Error(
                error_code=str(code),
                severity=str(severity),
                category=_opt_attr(err, "category"),
                origin=_opt_attr(err, "origin"),
                short_description=_opt_attr(err, "shortDescription"),
                ref_to_message_in_error=_opt_attr(err, "refToMessageInError"),
                description=None if desc is None else (desc.text or ""),
                error_detail=None if detail is None else (detail.text or ""),
            )
        )
    if receipt is not None and errors:
        raise _header_error("a SignalMessage carries both a Receipt and Errors")
    return SignalMessage(info, receipt, tuple(errors))


def parse_messaging(messaging: etree._Element) -> UserMessage | SignalMessage:
    """The one UserMessage or SignalMessage inside ``eb:Messaging``; ``EBMS:0009`` if it is not one."""
    if messaging.tag != _EB + "Messaging":
        raise _header_error("not an eb:Messaging element")
    users = _children(messaging, _EB + "UserMessage")
    signals = _children(messaging, _EB + "SignalMessage")
    if len(users) + len(signals) != 1:
        raise _header_error(
            f"eb:Messaging holds {len(users)} UserMessage and {len(signals)} SignalMessage elements; "
            "exactly one message is supported"
        )
    try:
        return _read_user_message(users[0]) if users else _read_signal(signals[0])
    except LocalProtocolError as exc:  # a model invariant broken by the peer's values
        raise _header_error(exc.message) from None
    except OotsError:
        raise
