"""Messages around OOTS documents: a SOAP envelope (an AS4 message's header part, a Domibus WS plugin
message, a message Domibus pushes to its WS plugin's backend) or a whole MIME multipart AS4 message, as
users paste them into the validator.

This module only takes them apart; :class:`~oots.validation.Validator` checks what it finds. From an
envelope it takes the ebMS header (``eb:Messaging`` in the SOAP ``Header``; the push backend's
``Messaging``, read as the ``eb:Messaging`` it stands for) and the payloads that can be reached without
keys: the SOAP ``Body``'s own content, the base64 ``payload`` values of a Domibus WS plugin message, and
the MIME parts (base64 and quoted-printable parts decoded, gzip-compressed ones uncompressed,
never past the size limit). Encrypted and non-XML payloads are named with the reason they were not read.
Every XML parse goes through :mod:`oots.xmlsafe`, and the MIME parsing here is a plain split on the
boundary (no ``email`` package heuristics, no header decoding).
"""

from __future__ import annotations

import base64
import binascii
import itertools
import re
import zlib
from collections.abc import Mapping
from copy import deepcopy
from dataclasses import dataclass, field, replace
from urllib.parse import unquote

from lxml import etree

from oots.errors import XmlError
from oots.mediatypes import GZIP, SOAP_XML
from oots.ns import DOMIBUS_BACKEND, DOMIBUS_WSPLUGIN, EB, PREFIXES, S12, WSU, XENC, XML

__all__ = [
    "ENVELOPES",
    "MAX_PARTS",
    "MAX_PAYLOADS",
    "SOAP11",
    "SOURCES",
    "MimePart",
    "Payload",
    "Unwrapped",
    "is_mime",
    "root_part",
    "split_mime",
    "unwrap",
]

#: SOAP 1.1 (ebMS 3 allows it; AS4 uses SOAP 1.2).
SOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"
#: The envelope elements and the names the report uses for them.
ENVELOPES = {f"{{{S12}}}Envelope": ("S12", S12, "SOAP 1.2"), f"{{{SOAP11}}}Envelope": ("S11", SOAP11, "SOAP 1.1")}
#: A MIME message with more parts than this is refused (an AS4 message has one per payload, plus the envelope).
MAX_PARTS = 1000
#: At most this many payloads of one message are read (and validated); the others are listed as not read.
MAX_PAYLOADS = 20

#: Where a payload was found, as :attr:`Payload.source` says: the SOAP Body's content, a Domibus WS plugin
#: ``payload`` or ``bodyload`` value, or a MIME part of the message.
SOURCES = ("soap-body", "domibus-payload", "domibus-bodyload", "mime-part")

#: The Domibus WS plugin messages that carry a message's payloads (the others only name messages). The
#: plugin's push backend (``BackendService.wsdl``, ``BackendService.xsd``) is given a message Domibus
#: received as ``submitRequest``, with the header part ``Messaging`` (the plugin's subset of the ebMS
#: header, in the backend's namespace; its child elements are unqualified, the schema declaring no
#: ``elementFormDefault``) and the payloads as the plugin's own messages carry them; the backend's other
#: operations are notifications naming messages by id.
_DOMIBUS_CARRIERS = {
    f"{{{DOMIBUS_WSPLUGIN}}}retrieveMessageResponse",
    f"{{{DOMIBUS_WSPLUGIN}}}submitRequest",
    f"{{{DOMIBUS_BACKEND}}}submitRequest",
}
#: Where an ebMS header may be: ``eb:Messaging``, or the push backend's ``Messaging``.
_HEADERS = (f"{{{EB}}}Messaging", f"{{{DOMIBUS_BACKEND}}}Messaging")
_XOP_INCLUDE = "{http://www.w3.org/2004/08/xop/include}Include"
_ID_ATTRIBUTES = (f"{{{WSU}}}Id", f"{{{XML}}}id", "Id", "id")
_GZIP = b"\x1f\x8b"
_HEADER_LINE = re.compile(rb"^[A-Za-z][A-Za-z0-9-]*:[ \t]")
_BOUNDARY = re.compile(rb"""boundary\s*=\s*(?:"([^"\r\n]{1,200})"|([^\s;"]{1,200}))""", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class MimePart:
    """One part of a MIME multipart message: its headers (lower-case names) and its decoded content,
    ``None`` when its transfer encoding cannot be decoded (``note`` says why)."""

    number: int
    headers: dict[str, str]
    content: bytes | None
    note: str = ""

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";", 1)[0].strip().lower()

    @property
    def content_id(self) -> str:
        return self.headers.get("content-id", "").strip().strip("<>")


@dataclass(frozen=True, slots=True)
class Payload:
    """A payload of the message: ``data`` the bytes to validate as XML, ``None`` when it is not read
    (``note`` says why).

    What ``eb:PayloadInfo`` names it by: ``source`` (one of :data:`SOURCES`) and ``ref``, the MIME part's
    Content-ID or the Domibus ``payloadId`` (without ``cid:``), or the ``id`` of the SOAP Body element
    (``None``: it has none). ``compressed`` says whether its content is gzip data (``None``: not known,
    e.g. encrypted), ``seen`` whether its content was read far enough to tell whether it is XML.
    """

    where: str
    content_type: str
    data: bytes | None
    note: str = ""
    source: str = "mime-part"
    ref: str | None = None
    compressed: bool | None = None
    seen: bool = False


@dataclass(frozen=True, slots=True)
class Unwrapped:
    """What an envelope holds: a description of it, the ebMS header and where it was, its payloads, and
    the Body's first element (its path; empty when the Body is empty).

    ``complete`` says whether the input holds the message's payload parts (a whole MIME message, or a
    Domibus WS plugin message carrying its payloads): only then can a ``cid:`` reference of
    ``eb:PayloadInfo`` be checked. ``domibus`` says whether it is a Domibus WS plugin message (payloads
    named by ``payloadId``; also one Domibus pushes to the plugin's backend). ``header`` is always an
    ``eb:Messaging``: the push backend's header is given as a copy in the ebMS namespace, and
    ``header_prefix`` says how the paths of its elements are written (``eb:``; none for the push backend's
    unqualified ones). ``body_ids`` maps each ``id`` in the SOAP Body's payloads to the index (in
    ``payloads``) of the payload that holds it.
    """

    container: str
    header: etree._Element | None
    header_path: str
    payloads: tuple[Payload, ...]
    body: str = ""
    header_misplaced: bool = False
    complete: bool = False
    domibus: bool = False
    header_prefix: str = "eb:"
    body_ids: Mapping[str, int] = field(default_factory=dict, hash=False, compare=False)


def is_mime(data: bytes) -> bool:
    """Whether ``data`` looks like a MIME message (headers or a boundary line first) rather than XML."""
    head = data[:4096].lstrip(b"\xef\xbb\xbf \t\r\n")
    if head.startswith(b"--"):
        return True
    if not _HEADER_LINE.match(head):
        return False
    block = re.split(rb"\r?\n\r?\n", head, maxsplit=1)[0]
    return b"multipart/" in block.lower()


def _headers(block: bytes) -> dict[str, str]:
    headers: dict[str, str] = {}
    last = ""
    for raw in block.split(b"\n"):
        line = raw.rstrip(b"\r").decode("latin-1")
        if line[:1] in {" ", "\t"} and last:  # a folded header line
            headers[last] += " " + line.strip()
            continue
        name, sep, value = line.partition(":")
        if sep and name.strip():
            last = name.strip().lower()
            headers.setdefault(last, value.strip())
    return headers


def _head_and_body(chunk: bytes) -> tuple[bytes, bytes]:
    """A part (or message) split at the blank line after its headers."""
    if chunk.startswith((b"\r\n", b"\n")):  # no headers at all
        return b"", chunk[2 if chunk.startswith(b"\r\n") else 1 :]
    blank = re.search(rb"\r?\n\r?\n", chunk)
    if blank is None:
        return chunk, b""
    return chunk[: blank.start()], chunk[blank.end() :]


def _decode(number: int, headers: dict[str, str], body: bytes) -> MimePart:
    encoding = headers.get("content-transfer-encoding", "binary").strip().lower()
    if encoding in {"binary", "8bit", "7bit", ""}:
        return MimePart(number, headers, body)
    if encoding == "base64":
        try:
            return MimePart(number, headers, base64.b64decode(re.sub(rb"\s+", b"", body), validate=True))
        except (binascii.Error, ValueError):
            return MimePart(number, headers, None, "its base64 content cannot be decoded")
    if encoding == "quoted-printable":  # shorter decoded than encoded; a malformed =XX escape stays as it is
        return MimePart(number, headers, binascii.a2b_qp(body))
    return MimePart(number, headers, None, f"its transfer encoding {encoding!r} is not read here")


def split_mime(data: bytes) -> list[MimePart]:
    """The parts of a MIME multipart message: ``data`` starts with its headers (HTTP or MIME, with
    ``Content-Type: multipart/...; boundary=...``) or directly with the first boundary line.
    Raises :class:`~oots.errors.XmlError` when no part can be found or there are over :data:`MAX_PARTS`."""
    body = data.lstrip(b"\xef\xbb\xbf \t\r\n")
    if body.startswith(b"--"):
        boundary = body[2 : body.find(b"\n")].rstrip(b"\r") if b"\n" in body else b""
    else:
        head, body = _head_and_body(body)
        match = _BOUNDARY.search(head)
        if match is None:
            raise XmlError("a MIME message without a multipart boundary: not an AS4 message")
        boundary = match.group(1) or match.group(2)
    if not boundary.strip():
        raise XmlError("a MIME message without a multipart boundary: not an AS4 message")
    delimiter = b"--" + boundary
    position = body.find(delimiter)
    chunks: list[bytes] = []
    while position >= 0 and not body.startswith(delimiter + b"--", position):
        start = body.find(b"\n", position)
        if start < 0:
            break
        following = body.find(b"\n" + delimiter, start)
        chunk = body[start + 1 :] if following < 0 else body[start + 1 : following]
        chunks.append(chunk[:-1] if chunk.endswith(b"\r") else chunk)
        if len(chunks) > MAX_PARTS:
            raise XmlError(f"a MIME message with over {MAX_PARTS:,} parts is refused")
        position = following + 1 if following >= 0 else -1
    if not chunks:
        raise XmlError("a MIME message without any part: not an AS4 message")
    return [_decode(n, *_split_part(chunk)) for n, chunk in enumerate(chunks, 1)]


def _split_part(chunk: bytes) -> tuple[dict[str, str], bytes]:
    head, body = _head_and_body(chunk)
    return _headers(head), body


def root_part(parts: list[MimePart]) -> MimePart:
    """The part holding the SOAP envelope: the first ``application/soap+xml`` (or ``text/xml``) part,
    else the first part."""
    for part in parts:
        if part.content_type in {SOAP_XML, "text/xml"}:
            return part
    return parts[0]


def _ungzip(data: bytes, limit: int) -> bytes:
    """``data`` uncompressed, refused past ``limit`` bytes (a decompression bomb stops there)."""
    inflater = zlib.decompressobj(wbits=31)
    try:
        out = inflater.decompress(data, limit + 1)
    except zlib.error as exc:
        raise XmlError(f"its gzip content cannot be uncompressed: {exc}") from None
    if len(out) > limit:
        raise XmlError(f"uncompressed, it is over the limit of {limit:,} bytes")
    return out


def _looks_like_xml(data: bytes) -> bool:
    return data.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] == b"<"


def _path(element: etree._Element, prefixes: dict[str, str]) -> str:
    steps = []
    node: etree._Element | None = element
    while node is not None:
        qname = etree.QName(node)
        prefix = prefixes.get(qname.namespace or "", "")
        steps.append(f"{prefix}:{qname.localname}" if prefix else qname.localname)
        node = node.getparent()
    return "/" + "/".join(reversed(steps))


def _encrypted_references(envelope: etree._Element) -> set[str]:
    """The ``cid:`` references of WS-Security encrypted data (those parts cannot be read here)."""
    refs = set()
    for ref in envelope.iter(f"{{{XENC}}}CipherReference"):
        uri = ref.get("URI") or ""
        if uri.startswith("cid:"):
            refs.add(uri[4:])
    return refs


def _part_info(header: etree._Element | None) -> dict[str, str]:
    """``cid`` -> the payload's ``MimeType`` (and ``+gzip`` when compressed) from the ebMS PayloadInfo."""
    info: dict[str, str] = {}
    if header is None:
        return info
    for part in itertools.islice(header.iter(f"{{{EB}}}PartInfo"), MAX_PARTS):
        href = part.get("href") or ""
        props = {p.get("name"): (p.text or "").strip() for p in part.iter(f"{{{EB}}}Property")}
        mime = props.get("MimeType", "")
        if props.get("CompressionType", "").lower() == GZIP:
            mime += "+gzip"
        info[href[4:] if href.startswith("cid:") else href] = mime
    return info


class _Reader:
    """Reads payloads within the message's budget: at most :data:`MAX_PAYLOADS` are read, and all of
    them together (uncompressed, decoded) at most ``limit`` bytes, so a message of many small gzip bombs
    costs no more than one."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.left = limit
        self.read = 0

    def payload(self, named: Payload, data: bytes, *, encrypted: bool = False) -> Payload:
        """``named`` (a payload with no data yet: where, content type, source, ref) with ``data`` read."""
        if encrypted:
            return replace(named, note="encrypted (WS-Security): cannot be read without the recipient's key")
        compressed = data[:2] == _GZIP
        named = replace(named, compressed=compressed)
        if self.read >= MAX_PAYLOADS:
            return replace(named, note=f"not read: only the first {MAX_PAYLOADS} payloads are")
        self.read += 1
        if compressed:
            try:
                data = _ungzip(data, self.left)
            except XmlError as exc:
                return replace(named, note=f"not read: {exc.message} (all payloads together)")
        if len(data) > self.left:
            return replace(named, note=f"not read: the payloads together are over {self.limit:,} bytes")
        self.left -= len(data)
        if not _looks_like_xml(data):
            return replace(named, note="not XML (a binary or encrypted payload, e.g. the evidence itself)", seen=True)
        return replace(named, data=data, seen=True)


def unwrap(root: etree._Element, attachments: list[MimePart] | None = None, *, limit: int) -> Unwrapped:
    """Take the SOAP envelope ``root`` apart: its ebMS header and its payloads (the Body's content, the
    Domibus ``payload`` values, and ``attachments``: the other MIME parts of the message)."""
    short, soap, name = ENVELOPES[str(root.tag)]
    prefixes = {uri: prefix for prefix, uri in PREFIXES.items()} | {
        soap: short,
        DOMIBUS_WSPLUGIN: "wsplugin",
        DOMIBUS_BACKEND: "backend",
    }
    found, misplaced = _find_header(root, soap)
    header_path = _path(found, prefixes) if found is not None else ""
    pushed = found is not None and found.tag == f"{{{DOMIBUS_BACKEND}}}Messaging"
    header = _as_ebms(found) if found is not None and pushed else found
    encrypted = _encrypted_references(root)
    described = _part_info(header)
    reader = _Reader(limit)
    payloads: list[Payload] = []
    body_ids: dict[str, int] = {}
    domibus = False
    attached = {part.content_id: part for part in attachments or () if part.content_id}
    included: set[str] = set()  # MIME parts that are the value of a Domibus payload (MTOM/XOP)
    body = root.find(f"{{{soap}}}Body")
    for child in body if body is not None else ():
        if not isinstance(child.tag, str) or child is found:
            continue
        if child.tag.startswith((f"{{{DOMIBUS_WSPLUGIN}}}", f"{{{DOMIBUS_BACKEND}}}")):
            domibus = domibus or child.tag in _DOMIBUS_CARRIERS
            payloads.extend(_domibus_payloads(child, prefixes, reader, attached, included))
            continue
        for element in child.iter():
            for attribute in _ID_ATTRIBUTES:
                if element.get(attribute):
                    body_ids.setdefault(str(element.get(attribute)), len(payloads))
        ref = next((str(child.get(a)) for a in _ID_ATTRIBUTES if child.get(a)), None)
        named = Payload(_path(child, prefixes), "application/xml", None, source="soap-body", ref=ref)
        if child.tag.startswith(f"{{{XENC}}}"):
            payloads.append(replace(named, content_type="", note="encrypted (WS-Security) SOAP Body"))
        else:
            payloads.append(reader.payload(named, etree.tostring(child, encoding="utf-8")))
    for part in attachments or ():
        if part.content_id in included:
            continue
        where = f"MIME part {part.number}" + (f" (cid:{part.content_id})" if part.content_id else "")
        content_type = part.content_type
        declared = described.get(part.content_id)
        if declared:
            content_type = f"{content_type}; ebMS MimeType {declared}"
        named = Payload(where, content_type, None, source="mime-part", ref=part.content_id or None)
        if part.content is None:
            payloads.append(replace(named, note=part.note))
        else:
            payloads.append(reader.payload(named, part.content, encrypted=part.content_id in encrypted))
    first = next((c for c in body if isinstance(c.tag, str)), None) if body is not None else None
    body_path = _path(first, prefixes) if first is not None else ""
    return Unwrapped(
        f"a {name} envelope",
        header,
        header_path,
        tuple(payloads),
        body_path,
        misplaced,
        complete=attachments is not None or domibus,
        domibus=domibus,
        header_prefix="" if pushed else "eb:",
        body_ids=body_ids,
    )


def _find_header(root: etree._Element, soap: str) -> tuple[etree._Element | None, bool]:
    """The ebMS header of the envelope ``root`` (one of :data:`_HEADERS`), and whether it is misplaced:
    not a block of the SOAP Header, but elsewhere in the envelope (still the header to check; its path
    says where)."""
    for tag in _HEADERS:
        header = next(root.iterfind(f"{{{soap}}}Header/{tag}"), None)
        if header is not None:
            return header, False
    for tag in _HEADERS:
        header = next(root.iter(tag), None)
        if header is not None:
            return header, True
    return None, False


def _as_ebms(messaging: etree._Element) -> etree._Element:
    """The push backend's ``Messaging`` as the ``eb:Messaging`` it stands for: a copy with it and its
    unqualified descendants in the ebMS namespace (attributes stay as they are, unqualified in both), so
    the header is read and checked as any ebMS header."""
    copy = deepcopy(messaging)  # its own tree: the envelope is not changed
    for element in copy.iter():
        if isinstance(element.tag, str) and (element is copy or etree.QName(element).namespace is None):
            element.tag = f"{{{EB}}}{etree.QName(element).localname}"
    etree.cleanup_namespaces(copy, top_nsmap={"eb": EB})
    return copy


def _domibus_payloads(
    message: etree._Element,
    prefixes: dict[str, str],
    reader: _Reader,
    attached: dict[str, MimePart],
    included: set[str],
) -> list[Payload]:
    """The ``payload`` / ``bodyload`` values of a Domibus WS plugin message (``retrieveMessageResponse``,
    ``submitRequest``, the push backend's ``submitRequest``): base64 text, or with MTOM an ``xop:Include``
    of a MIME part of ``attached`` (whose Content-ID is added to ``included``: that part is this value,
    not a payload of its own)."""
    found = []
    for item in message:
        if not isinstance(item.tag, str) or etree.QName(item).localname not in {"payload", "bodyload"}:
            continue
        payload_id = (item.get("payloadId") or "").strip()
        where = f"{_path(item, prefixes)}" + (f" ({payload_id})" if payload_id else "")
        source = f"domibus-{etree.QName(item).localname}"
        ref = payload_id[4:] if payload_id.startswith("cid:") else payload_id
        # the push backend's payload also has a mimeType (BackendService.xsd)
        content_type = item.get("contentType") or item.get("mimeType") or ""
        named = Payload(where, content_type, None, source=source, ref=ref or None)
        value = item.find("value")
        include = value.find(_XOP_INCLUDE) if value is not None else None
        if include is not None:
            href = (include.get("href") or "").strip()
            part = attached.get(unquote(href[4:]) if href.startswith("cid:") else href)
            if part is None:
                found.append(replace(named, note=f"its value is a MIME part ({href}) that this input does not hold"))
                continue
            included.add(part.content_id)
            if part.content is None:
                found.append(replace(named, note=part.note))
            else:
                found.append(reader.payload(named, part.content))
            continue
        text = "".join(value.itertext()) if value is not None else ""
        if len(text) > reader.left * 4 // 3 + 4:
            found.append(replace(named, note=f"not read: over the limit of {reader.limit:,} bytes"))
            continue
        try:
            data = base64.b64decode(re.sub(r"\s+", "", text), validate=True)
        except (binascii.Error, ValueError):
            found.append(replace(named, note="its base64 value cannot be decoded"))
            continue
        found.append(reader.payload(named, data))
    return found
