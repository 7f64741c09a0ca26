"""RegRep 4 building blocks shared by the codecs: slots and their typed values, QNames, date-times."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any, Protocol, TypeVar

from lxml import etree

from oots import ns
from oots.edm import _sdg
from oots.edm.codes import ErrorSeverity
from oots.edm.model import Text
from oots.errors import ModelError

T = TypeVar("T")

Q = "{" + ns.QUERY + "}"
RIM = "{" + ns.RIM + "}"
RS = "{" + ns.RS + "}"
LCM = "{" + ns.LCM + "}"
XSI_TYPE = "{" + ns.XSI + "}type"
XML_LANG = "{" + ns.XML + "}lang"
XLINK = "{" + ns.XLINK + "}"

SET = "urn:oasis:names:tc:ebxml-regrep:CollectionType:Set"

#: Namespaces every document we write declares on its root.
NSMAP: dict[str | None, str] = {
    "query": ns.QUERY,
    "rim": ns.RIM,
    "rs": ns.RS,
    "sdg": ns.SDG,
    "xsi": ns.XSI,
    "xlink": ns.XLINK,
}
_PREFIX_OF = {uri: prefix for prefix, uri in NSMAP.items() if prefix}
_PREFIX_OF[ns.LCM] = "lcm"


def qname_value(el: etree._Element, value: str) -> str:
    """Resolve a QName attribute value (``rim:StringValueType``) to its conventional prefixed form."""
    prefix, _, local = value.rpartition(":")
    tag = el.tag
    if prefix == (el.prefix or "") and isinstance(tag, str) and tag.startswith("{"):
        uri: str | None = tag[1 : tag.index("}")]  # the element's own prefix: no need to build nsmap
    else:
        uri = el.nsmap.get(prefix or None)
    if uri is None:
        raise ModelError(f"the prefix of {value!r} is not declared")
    known = _PREFIX_OF.get(uri)
    if known is None:
        raise ModelError(f"{value!r} is in an unexpected namespace {uri}")
    return f"{known}:{local}"


def name(el: etree._Element) -> str:
    """A readable prefixed name of an element, for error messages."""
    tag = el.tag
    if not isinstance(tag, str):
        return "node"
    if tag.startswith("{"):
        uri, _, local = tag[1:].partition("}")
        return f"{_PREFIX_OF.get(uri, '{' + uri + '}')}:{local}" if uri != ns.SDG else f"sdg:{local}"
    return tag


def elements(el: etree._Element) -> Iterable[etree._Element]:
    """Child elements, without comments and processing instructions."""
    return (child for child in el if isinstance(child.tag, str))


# ----------------------------------------------------------------------------------------------- date-times


def parse_datetime(text: str, where: str) -> dt.datetime:
    value = text.strip()
    try:
        return dt.datetime.fromisoformat(value)
    except ValueError:
        raise ModelError(f"{where} is {value!r}, not an xsd:dateTime") from None


def format_datetime(value: dt.datetime) -> str:
    """xsd:dateTime: milliseconds and ``Z`` for UTC (as the samples write), else the offset."""
    base = f"{value.year:04d}-{value.month:02d}-{value.day:02d}T{value.hour:02d}:{value.minute:02d}:{value.second:02d}"
    micro = value.microsecond
    offset = value.utcoffset()
    if offset == dt.timedelta(0):
        return base + (f".{micro // 1000:03d}Z" if micro % 1000 == 0 else f".{micro:06d}Z")
    frac = "" if micro == 0 else (f".{micro // 1000:03d}" if micro % 1000 == 0 else f".{micro:06d}")
    if offset is None:
        return base + frac
    minutes = int(offset.total_seconds()) // 60
    sign = "+" if minutes >= 0 else "-"
    minutes = abs(minutes)
    return f"{base}{frac}{sign}{minutes // 60:02d}:{minutes % 60:02d}"


# ---------------------------------------------------------------------------------------------------- slots


def slots(el: etree._Element, allowed: Sequence[str], where: str) -> dict[str, etree._Element]:
    """The ``rim:Slot`` children of ``el`` by name; unknown or repeated slots are refused."""
    out: dict[str, etree._Element] = {}
    for child in el.iterchildren(RIM + "Slot"):
        slot_name = child.get("name") or ""
        if slot_name not in allowed:
            raise ModelError(f"{where} has an unexpected slot {slot_name!r}")
        if slot_name in out:
            raise ModelError(f"{where} has the slot {slot_name!r} more than once")
        out[slot_name] = child
    return out


def _value(slot: etree._Element) -> tuple[str, etree._Element]:
    sv = slot.find(RIM + "SlotValue")
    if sv is None:
        raise ModelError(f"slot {slot.get('name')!r} has no rim:SlotValue")
    xsi_type = sv.get(XSI_TYPE)
    if xsi_type is None:
        raise ModelError(f"the rim:SlotValue of slot {slot.get('name')!r} has no xsi:type")
    return qname_value(sv, xsi_type), sv


def _expect(slot: etree._Element, *types: str) -> etree._Element:
    kind, sv = _value(slot)
    if kind not in types:
        raise ModelError(f"slot {slot.get('name')!r} must be {' or '.join(types)}, not {kind}")
    return sv


def _plain(slot: etree._Element, kind: str) -> str:
    sv = _expect(slot, kind)
    value = sv.find(RIM + "Value")
    if value is None:
        raise ModelError(f"slot {slot.get('name')!r} has no rim:Value")
    return value.text or ""


def need(found: dict[str, etree._Element], slot_name: str, where: str) -> etree._Element:
    slot = found.get(slot_name)
    if slot is None:
        raise ModelError(f"{where} has no {slot_name} slot")
    return slot


def read_string(slot: etree._Element) -> str:
    return _plain(slot, "rim:StringValueType")


def read_datetime(slot: etree._Element) -> dt.datetime:
    return parse_datetime(_plain(slot, "rim:DateTimeValueType"), f"slot {slot.get('name')!r}")


def read_bool(slot: etree._Element) -> bool:
    token = _plain(slot, "rim:BooleanValueType").strip()
    if token in ("true", "1"):
        return True
    if token in ("false", "0"):
        return False
    raise ModelError(f"slot {slot.get('name')!r} is {token!r}, not a boolean")


def read_intl(slot: etree._Element) -> tuple[Text, ...]:
    sv = _expect(slot, "rim:InternationalStringValueType")
    value = sv.find(RIM + "Value")
    if value is None:
        raise ModelError(f"slot {slot.get('name')!r} has no rim:Value")
    return tuple(Text(ls.get("value") or "", ls.get(XML_LANG)) for ls in value.iterchildren(RIM + "LocalizedString"))


def read_string_or_intl(slot: etree._Element) -> str:
    """A code sent as StringValueType (v2.0) or as an InternationalString (v1.0)."""
    kind, _ = _value(slot)
    if kind == "rim:InternationalStringValueType":
        texts = read_intl(slot)
        if not texts:
            raise ModelError(f"slot {slot.get('name')!r} has no rim:LocalizedString")
        return texts[0].value
    return read_string(slot)


def _single(parent: etree._Element, slot: etree._Element) -> etree._Element:
    children = list(elements(parent))
    if len(children) != 1:
        raise ModelError(f"slot {slot.get('name')!r} must hold exactly one element, not {len(children)}")
    return children[0]


def read_any(slot: etree._Element, cls: type[T], tag: str) -> T:
    """An ``sdg:`` object held directly (AnyValueType) or as the only element of a collection."""
    kind, sv = _value(slot)
    if kind == "rim:CollectionValueType":
        items = read_collection(slot, cls, tag)
        if len(items) != 1:
            raise ModelError(f"slot {slot.get('name')!r} must hold exactly one {tag}")
        return items[0]
    if kind != "rim:AnyValueType":
        raise ModelError(f"slot {slot.get('name')!r} must be rim:AnyValueType, not {kind}")
    return _read_el(_single(sv, slot), cls, tag)


def _read_el(el: etree._Element, cls: type[T], tag: str) -> T:
    if el.tag != _sdg.tag(tag):
        raise ModelError(f"expected sdg:{tag}, found {name(el)}")
    return _sdg.read(cls, el)


def read_collection(slot: etree._Element, cls: type[T], tag: str) -> tuple[T, ...]:
    """``sdg:`` objects held by a CollectionValueType (a single AnyValueType is accepted too)."""
    kind, sv = _value(slot)
    if kind == "rim:AnyValueType":
        return (_read_el(_single(sv, slot), cls, tag),)
    if kind != "rim:CollectionValueType":
        raise ModelError(f"slot {slot.get('name')!r} must be rim:CollectionValueType, not {kind}")
    out = []
    for element in sv.iterchildren(RIM + "Element"):
        out.append(_read_el(_single(element, slot), cls, tag))
    return tuple(out)


def _slot(parent: etree._Element, slot_name: str, kind: str) -> etree._Element:
    slot = etree.SubElement(parent, RIM + "Slot", name=slot_name)
    sv: etree._Element = etree.SubElement(slot, RIM + "SlotValue")
    sv.set(XSI_TYPE, kind)
    return sv


def write_string(parent: etree._Element, slot_name: str, value: str) -> None:
    etree.SubElement(_slot(parent, slot_name, "rim:StringValueType"), RIM + "Value").text = value


def write_datetime(parent: etree._Element, slot_name: str, value: dt.datetime) -> None:
    etree.SubElement(_slot(parent, slot_name, "rim:DateTimeValueType"), RIM + "Value").text = format_datetime(value)


def write_bool(parent: etree._Element, slot_name: str, value: bool) -> None:
    etree.SubElement(_slot(parent, slot_name, "rim:BooleanValueType"), RIM + "Value").text = (
        "true" if value else "false"
    )


def write_intl(parent: etree._Element, slot_name: str, texts: Sequence[Text]) -> None:
    value = etree.SubElement(_slot(parent, slot_name, "rim:InternationalStringValueType"), RIM + "Value")
    for text in texts:
        ls = etree.SubElement(value, RIM + "LocalizedString")
        if text.lang is not None:
            ls.set(XML_LANG, text.lang)
        ls.set("value", text.value)


def write_any(parent: etree._Element, slot_name: str, tag: str, obj: Any, *, v2: bool | None) -> None:
    _sdg.write(_slot(parent, slot_name, "rim:AnyValueType"), _sdg.tag(tag), obj, v2=v2)


def write_collection(
    parent: etree._Element, slot_name: str, tag: str, objs: Sequence[Any], *, v2: bool, set_type: bool
) -> None:
    sv = _slot(parent, slot_name, "rim:CollectionValueType")
    if set_type:
        sv.set("collectionType", SET)
    for obj in objs:
        element = etree.SubElement(sv, RIM + "Element")
        element.set(XSI_TYPE, "rim:AnyValueType")
        _sdg.write(element, _sdg.tag(tag), obj, v2=v2)


# ----------------------------------------------------------------------------------------- rs:Exception


def read_exception(exc: etree._Element) -> dict[str, Any]:
    """The attributes every ``rs:Exception`` has: ``code``, ``exception_type``, ``message``, ``detail``."""
    code = exc.get("code")
    if not code:
        raise ModelError("the rs:Exception has no code")
    kind = exc.get(XSI_TYPE)
    if not kind:
        raise ModelError("the rs:Exception has no xsi:type")
    return {
        "code": code,
        "exception_type": qname_value(exc, kind),
        "message": exc.get("message"),
        "detail": exc.get("detail"),
    }


def read_severity(exc: etree._Element) -> ErrorSeverity:
    severity = exc.get("severity")
    if not severity:
        raise ModelError("the rs:Exception has no severity")
    return ErrorSeverity.from_urn(severity)


def write_exception(
    parent: etree._Element, *, exception_type: str, severity: str, code: str, message: str | None, detail: str | None
) -> etree._Element:
    """Append an ``rs:Exception`` (``severity`` is the URN) and return it for its slots."""
    exc: etree._Element = etree.SubElement(parent, RS + "Exception")
    exc.set(XSI_TYPE, exception_type)
    exc.set("severity", severity)
    if message is not None:
        exc.set("message", message)
    if detail is not None:
        exc.set("detail", detail)
    exc.set("code", code)
    return exc


class ErrorDocument(Protocol):
    """What an error document gives its ``rs:Exception``."""

    @property
    def exception_type(self) -> str: ...
    @property
    def severity(self) -> ErrorSeverity: ...
    @property
    def code(self) -> str: ...
    @property
    def message(self) -> str | None: ...
    @property
    def detail(self) -> str | None: ...


def write_error_exception(parent: etree._Element, doc: ErrorDocument, *, v2: bool) -> etree._Element:
    """The ``rs:Exception`` of an EDM or Common Services error document."""
    return write_exception(
        parent,
        exception_type=doc.exception_type,
        severity=doc.severity.urn(ec_domain=v2),
        code=doc.code,
        message=doc.message,
        detail=doc.detail,
    )
