"""Does the ebMS header's ``eb:PayloadInfo`` describe the payloads the message really carries?

ebMS 3 names each payload of a ``UserMessage`` with one ``eb:PartInfo``: ``href="cid:<Content-ID>"`` for a
MIME part, ``href="#<id>"`` for an element of the SOAP Body, no ``href`` for the SOAP Body itself. A
Domibus WS plugin message (and one Domibus pushes to the plugin's backend, whose header elements are
unqualified) names its ``payload`` values the same way, by their ``payloadId`` (``cid:...``), and its
``bodyload`` by a PartInfo without ``href``. The eDelivery AS4 1.15 profile
(``edelivery-as4-1.15-profile.txt``, 1.4.2.3, 1.4.3.1, 1.4.4.6) adds: every PartInfo has a ``MimeType``
part property; a compressed part has ``CompressionType`` ``application/gzip`` (GZIP only), which the
producer never sets and the consumer is never given; the first PartInfo names the leading business
document — in OOTS the RegRep document, declared ``application/x-ebrs+xml`` (the TDD samples, the
Domibus captures).

The findings (layer ``document``, not counted as checks, like the other ``OOTS-MSG-*`` findings):

=============  ========  ==========================================================================
rule           severity  what is wrong
=============  ========  ==========================================================================
OOTS-MSG-004   ERROR     a PartInfo names no payload of the message, or one another PartInfo names;
                         over 1,000 PartInfo elements (only the first 1,000 are read)
OOTS-MSG-005   ERROR     a payload of the message is named by no PartInfo
OOTS-MSG-006   ERROR     a PartInfo has no ``MimeType`` part property
OOTS-MSG-007   ERROR     ``CompressionType`` does not match the part, or is not ``application/gzip``
OOTS-MSG-008   ERROR     the first PartInfo does not name the OOTS document
OOTS-MSG-009   WARNING   the OOTS document is not declared ``application/x-ebrs+xml``
OOTS-MSG-010   INFO      ``cid:`` references not checked: the input is the SOAP envelope alone
=============  ========  ==========================================================================
"""

from __future__ import annotations

import itertools
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass, field
from urllib.parse import unquote

from oots.mediatypes import GZIP, REGREP_MIME_TYPE
from oots.ns import EB
from oots.validation.envelope import MAX_PARTS, Payload, Unwrapped
from oots.validation.findings import Finding, Layer, Severity

__all__ = ["check"]

_GZIP_TYPES = {GZIP, "application/x-gzip"}


@dataclass(slots=True)
class _PartInfo:
    number: int
    href: str | None
    location: str
    properties: dict[str, str]
    names: list[int] = field(default_factory=list)  # the payloads it names (indexes)

    @property
    def label(self) -> str:
        return f"eb:PartInfo[{self.number}]" + (f" (href {self.href})" if self.href else " (no href)")


class _Payloads:
    """The payloads of a message, found by what a PartInfo names them by."""

    def __init__(self, unwrapped: Unwrapped) -> None:
        self.unwrapped = unwrapped
        self.by_ref: dict[str, list[int]] = {}
        self.body: list[int] = []  # the SOAP Body's content, a Domibus bodyload
        for index, payload in enumerate(unwrapped.payloads):
            if payload.source in {"soap-body", "domibus-bodyload"}:
                self.body.append(index)
            if payload.source != "soap-body" and payload.ref is not None:
                self.by_ref.setdefault(payload.ref, []).append(index)


def check(unwrapped: Unwrapped, oots: Sequence[bool | None]) -> Iterator[Finding]:
    """The findings of ``eb:PayloadInfo`` against the payloads of ``unwrapped``; ``oots`` says, in the same
    order, whether each is an OOTS document (``None``: not known, e.g. encrypted or refused). A
    SignalMessage (a receipt, an error) carries no payload: nothing is checked. One pass over the
    PartInfo elements, findings as they come (the caller caps them per rule)."""
    header = unwrapped.header
    user_message = header.find(f"{{{EB}}}UserMessage") if header is not None else None
    if user_message is None:
        return
    eb = unwrapped.header_prefix
    base = f"{unwrapped.header_path}/{eb}UserMessage/{eb}PayloadInfo"
    index = _Payloads(unwrapped)
    payloads = unwrapped.payloads
    named_by: dict[int, int] = {}
    unchecked: list[str] = []
    first: _PartInfo | None = None
    later_oots: int | None = None  # an OOTS document a PartInfo after the first names
    path = f"{{{EB}}}PayloadInfo/{{{EB}}}PartInfo"
    total = sum(1 for _ in user_message.iterfind(path))
    if total > MAX_PARTS:  # first: the findings of a rule are capped
        yield _error(
            "OOTS-MSG-004",
            f"eb:PayloadInfo has {total:,} PartInfo elements, more than the {MAX_PARTS:,} parts a message can "
            f"have here: only the first {MAX_PARTS:,} were checked",
            base,
        )
    elements = user_message.iterfind(path)
    for number, element in enumerate(itertools.islice(elements, MAX_PARTS), 1):
        info = _PartInfo(
            number,
            element.get("href"),
            f"{base}/{eb}PartInfo[{number}]",
            {
                str(p.get("name")): (p.text or "").strip()
                for p in reversed(element.findall(f"{{{EB}}}PartProperties/{{{EB}}}Property"))
            },
        )
        found = yield from _resolve(info, index)
        if found is None:
            unchecked.append(str(info.href))
        for named in found or ():
            if named in named_by:
                yield _error(
                    "OOTS-MSG-004",
                    f"{info.label} names {payloads[named].where}, which eb:PartInfo[{named_by[named]}] names "
                    "already: each payload is named by one PartInfo",
                    info.location,
                )
                continue
            named_by[named] = info.number
            info.names.append(named)
        yield from _properties(info, payloads, unwrapped.domibus)
        yield from _mime_type(info, payloads, oots)
        if first is None:
            first = info
        elif later_oots is None:
            later_oots = next((i for i in info.names if oots[i]), None)
    yield from _unnamed(payloads, named_by, base)
    if first is not None and first.names and oots[first.names[0]] is False and later_oots is not None:
        yield _error(
            "OOTS-MSG-008",
            f"the first eb:PartInfo names {payloads[first.names[0]].where}, which is not an OOTS document, and a "
            f"later one names the OOTS document {payloads[later_oots].where}: the first PartInfo names the "
            "business document of the message (the eDelivery AS4 profile), in OOTS its RegRep document",
            first.location,
        )
    if unchecked:
        yield Finding(
            "OOTS-MSG-010",
            Severity.INFO,
            Layer.DOCUMENT,
            f"eb:PayloadInfo names {len(unchecked):,} MIME part(s) ({', '.join(unchecked[:3])}"
            f"{', …' if len(unchecked) > 3 else ''}) that this input does not hold: only the SOAP envelope "
            "was given, so whether they are in the message was not checked (validate the whole MIME "
            "message to check it)",
            base,
        )


def _resolve(info: _PartInfo, index: _Payloads) -> Generator[Finding, None, list[int] | None]:
    """The payloads ``info`` names; ``None`` when that cannot be told (a ``cid:`` reference, and no MIME
    parts in the input). A reference that names nothing is an ``OOTS-MSG-004`` finding (and ``[]``)."""
    href = (info.href or "").strip()
    unwrapped = index.unwrapped
    if not href:  # the SOAP Body (a Domibus bodyload)
        if not index.body:
            what = "a Domibus bodyload" if unwrapped.domibus else "the SOAP Body"
            yield _error(
                "OOTS-MSG-004",
                f"{info.label} names {what} (a PartInfo without href does), but the message has no payload "
                "there: a receiving access point refuses the message (EBMS:0007)",
                info.location,
            )
        return index.body
    if href.startswith("cid:"):
        content_id = unquote(href[4:])
        found = index.by_ref.get(content_id) or index.by_ref.get(href[4:])
        if found:
            return found
        if not unwrapped.complete:
            return None
        where = f"no MIME part with Content-ID <{content_id}>"
        if unwrapped.domibus:
            where = "no payload with that payloadId"
        yield _error(
            "OOTS-MSG-004",
            f"{info.label} names a payload, but the message has {where}: a receiving access point refuses "
            "the message (EBMS:0007)",
            info.location,
        )
        return []
    if href.startswith("#"):
        body = unwrapped.body_ids.get(href[1:])
        if body is not None:
            return [body]
        yield _error(
            "OOTS-MSG-004",
            f"{info.label} names an element of the SOAP Body, but no element there has the id {href[1:]!r}",
            info.location,
        )
        return []
    yield _error(
        "OOTS-MSG-004",
        f"{info.label} names neither a MIME part of the message (cid:…) nor the SOAP Body (#id or no href): "
        "the eDelivery AS4 profile does not allow payloads outside the message",
        info.location,
    )
    return []


def _properties(info: _PartInfo, payloads: Sequence[Payload], domibus: bool) -> list[Finding]:
    """``MimeType`` and ``CompressionType`` of ``info`` against the payloads it names."""
    findings = []
    mime_type = info.properties.get("MimeType", "")
    named = [payloads[i] for i in info.names]
    # Domibus takes a payload's media type from its contentType when the PartInfo gives none
    if not mime_type and not (domibus and named and all(p.content_type for p in named)):
        findings.append(
            _error(
                "OOTS-MSG-006",
                f"{info.label} has no MimeType part property: the eDelivery AS4 profile requires one, the media "
                "type of the payload before compression (a receiving access point answers EBMS:0009)",
                info.location,
            )
        )
    compression = info.properties.get("CompressionType")
    if compression is not None and domibus:
        findings.append(
            _error(
                "OOTS-MSG-007",
                f"{info.label} of a Domibus WS plugin message has a CompressionType: compression is the access "
                "point's, the eDelivery AS4 profile says a producer must not set it and a consumer is not given it",
                info.location,
            )
        )
    elif compression is not None and compression.lower() != GZIP:
        findings.append(
            _error(
                "OOTS-MSG-007",
                f"{info.label} has CompressionType {compression!r}: AS4 compresses with GZIP only "
                f"({GZIP}); a receiving access point answers EBMS:0303 DecompressionFailure",
                info.location,
            )
        )
    elif compression is not None:
        for payload in named:
            if payload.compressed is False:
                findings.append(
                    _error(
                        "OOTS-MSG-007",
                        f"{info.label} says {payload.where} is gzip-compressed (CompressionType {GZIP}), but its "
                        "content is not gzip data: a receiving access point answers EBMS:0303 DecompressionFailure",
                        info.location,
                    )
                )
    elif not domibus and mime_type and mime_type.split(";", 1)[0].strip().lower() not in _GZIP_TYPES:
        for payload in named:
            if payload.source == "mime-part" and payload.compressed:
                findings.append(
                    _error(
                        "OOTS-MSG-007",
                        f"{payload.where} is gzip data, but {info.label} has no CompressionType {GZIP}: a "
                        f"receiving access point does not uncompress it and delivers gzip bytes as {mime_type}",
                        info.location,
                    )
                )
    return findings


def _unnamed(payloads: Sequence[Payload], named_by: dict[int, int], base: str) -> list[Finding]:
    findings = []
    for index, payload in enumerate(payloads):
        if index in named_by:
            continue
        if payload.source == "soap-body":
            how = "a PartInfo without href names the SOAP Body" + (
                f", one with href #{payload.ref} this element" if payload.ref else ""
            )
        elif payload.ref is None:
            key = "Content-ID" if payload.source == "mime-part" else "payloadId"
            how = f"it has no {key} a PartInfo could name it by"
        else:
            how = f"a PartInfo with href cid:{payload.ref} would name it"
        findings.append(
            _error(
                "OOTS-MSG-005",
                f"the payload {payload.where} is named by no eb:PartInfo of eb:PayloadInfo ({how}): a receiving "
                "access point refuses the message (EBMS:0007)",
                base,
            )
        )
    return findings


def _mime_type(info: _PartInfo, payloads: Sequence[Payload], oots: Sequence[bool | None]) -> Iterator[Finding]:
    """An OOTS document is declared ``application/x-ebrs+xml``."""
    mime_type = info.properties.get("MimeType", "")
    declared = mime_type.split(";", 1)[0].strip().lower()
    for index in info.names:
        if oots[index] and declared and declared != REGREP_MIME_TYPE:
            yield Finding(
                "OOTS-MSG-009",
                Severity.WARNING,
                Layer.DOCUMENT,
                f"the OOTS document {payloads[index].where} is declared with MimeType {mime_type} by "
                f"{info.label}; OOTS messages declare their RegRep document as {REGREP_MIME_TYPE}",
                info.location,
            )


def _error(rule: str, message: str, location: str) -> Finding:
    return Finding(rule, Severity.ERROR, Layer.DOCUMENT, message, location)
