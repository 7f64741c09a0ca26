"""SOAP with Attachments packaging: a small, binary-safe multipart/related writer and splitter.

The writer lays out what the eDelivery AS4 profile example shows (§1.6)::

    Content-Type: multipart/related; type="application/soap+xml"; boundary="..."; start="<cid>";
        start-info="application/soap+xml"

    --boundary
    Content-Type: application/soap+xml; charset=UTF-8
    Content-Transfer-Encoding: binary
    Content-ID: <cid>

    <env:Envelope ...>
    --boundary
    ...
    --boundary--

The splitter works on bytes with ``bytes.find`` only (no ``email`` package: it is slow and it has
corrupted binary parts), accepts CRLF or bare LF line ends, and refuses anything it cannot read with
``EBMS:0007`` MimeInconsistency. Part bodies are returned as they are on the wire (``binary``,
``8bit``, ``7bit``) or decoded (``base64``).
"""

from __future__ import annotations

import binascii
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final
from urllib.parse import unquote

from oots.errors import LocalProtocolError, RemoteProtocolError
from oots.mediatypes import SOAP_XML

__all__ = [
    "DEFAULT_MAX_PARTS",
    "SOAP_XML",
    "Buffer",
    "MimePart",
    "Related",
    "build_related",
    "content_id_of",
    "header_params",
    "read_message_file",
    "split_related",
    "write_message_file",
]

#: Bytes of a part: ``bytes`` when read with copies, a ``memoryview`` of the message when split
#: with ``zero_copy``, a ``bytearray`` when an encryption output is being written.
Buffer = bytes | bytearray | memoryview
DEFAULT_MAX_PARTS: Final = 100
_MAX_HEADER_BYTES: Final = 16 * 1024
_BOUNDARY_CHARS: Final = re.compile(r"^[0-9A-Za-z'()+_,./:=?\- ]{1,70}$")


def _mime_error(message: str) -> RemoteProtocolError:
    return RemoteProtocolError(message, code="EBMS:0007")


@dataclass(frozen=True, slots=True)
class MimePart:
    """One body part: its headers (names lower-cased, in order) and its decoded content.

    Parts read from the wire hold ``bytes``; a part being written may hold a ``bytearray`` (an
    encryption output), which is copied once, into the message."""

    headers: tuple[tuple[str, str], ...]
    body: Buffer = field(repr=False)

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (case-insensitive), if present."""
        wanted = name.lower()
        for key, value in self.headers:
            if key == wanted:
                return value
        return None

    @property
    def content_type(self) -> str:
        """The bare media type (lower case, without parameters); ``text/plain`` when absent (RFC 2045)."""
        value = self.header("content-type")
        if value is None:
            return "text/plain"
        return value.split(";", 1)[0].strip().lower()

    @property
    def content_id(self) -> str | None:
        """The Content-ID without angle brackets, if present."""
        value = self.header("content-id")
        return None if value is None else content_id_of(value)


@dataclass(frozen=True, slots=True)
class Related:
    """A split multipart/related message: the root (SOAP) part and the other parts in order."""

    root: MimePart
    attachments: tuple[MimePart, ...]

    def attachment(self, content_id: str) -> MimePart | None:
        """The attachment whose Content-ID is ``content_id``."""
        for part in self.attachments:
            if part.content_id == content_id:
                return part
        return None


def content_id_of(value: str) -> str:
    """``<a@b>``, ``a@b`` or ``cid:a%40b`` → ``a@b``."""
    value = value.strip()
    if value.lower().startswith("cid:"):
        value = unquote(value[4:])
    if value.startswith("<") and value.endswith(">"):
        value = value[1:-1]
    return value.strip()


#: One ``; name=value`` (quoted or not). Possessive throughout (Python 3.11+): nothing is given back, so a
#: value that fails (a stray quote after thousands of blanks) costs one pass, not the cubic backtracking of
#: a lazy value followed by optional blanks; an unquoted value keeps its trailing blanks, stripped below.
_PARAM: Final = re.compile(r'\s*+;\s*+([^\s=;]++)\s*+=\s*+(?:"((?:[^"\\]|\\.)*+)"|([^;"]*+))\s*+(?=;|$)', re.DOTALL)
_QUOTED_PAIR: Final = re.compile(r"\\(.)", re.DOTALL)


def header_params(value: str) -> tuple[str, dict[str, str]]:
    """Split a structured header (``type/sub; a="x"; b=y``) into its value and parameters (names lower-cased)."""
    head, sep, rest = value.partition(";")
    params: dict[str, str] = {}
    rest = (sep + rest).rstrip().rstrip(";")
    pos = 0
    while pos < len(rest):
        found = _PARAM.match(rest, pos)
        if found is None:
            raise _mime_error(f"a header parameter is malformed: {rest[pos : pos + 60]!r}")
        name, quoted, plain = found.groups()
        params[name.lower()] = _QUOTED_PAIR.sub(r"\1", quoted) if quoted is not None else plain.strip()
        pos = found.end()
    return head.strip().lower(), params


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def build_related(parts: Sequence[MimePart], *, boundary: str) -> tuple[str, bytes]:
    """Serialise ``parts`` (the first is the SOAP envelope with a Content-ID) as multipart/related.

    Returns the Content-Type header value and the body. Every part is ``binary``: its bytes are
    written unchanged. ``boundary`` should be random; a boundary found inside a part is refused.
    """
    if not parts:
        raise LocalProtocolError("a multipart/related message needs at least the SOAP part")
    if not _BOUNDARY_CHARS.match(boundary) or boundary.endswith(" "):
        raise LocalProtocolError(f"not a valid MIME boundary: {boundary!r}")
    start = parts[0].content_id
    if not start:
        raise LocalProtocolError("the SOAP part needs a Content-ID")
    delimiter = b"--" + boundary.encode("ascii")
    chunks: list[Buffer] = []
    for part in parts:
        if delimiter in part.body:
            raise LocalProtocolError("the MIME boundary occurs inside a part; draw another one")
        head = "".join(f"{_header_name(k)}: {v}\r\n" for k, v in part.headers)
        chunks += (delimiter + b"\r\n" + head.encode("ascii") + b"\r\n", part.body, b"\r\n")
    chunks.append(delimiter + b"--\r\n")  # one join: a large part is copied once
    content_type = (
        f'multipart/related; type="{SOAP_XML}"; boundary={_quote(boundary)}; start="<{start}>"; start-info="{SOAP_XML}"'
    )
    return content_type, b"".join(chunks)


_CANONICAL_NAMES: Final = {
    "content-type": "Content-Type",
    "content-id": "Content-ID",
    "content-transfer-encoding": "Content-Transfer-Encoding",
    "content-description": "Content-Description",
    "mime-version": "MIME-Version",
}


def _header_name(name: str) -> str:
    return _CANONICAL_NAMES.get(name.lower(), name)


def _parse_headers(block: bytes) -> tuple[tuple[str, str], ...]:
    try:
        text = block.decode("ascii")
    except UnicodeDecodeError:
        raise _mime_error("a MIME header is not ASCII") from None
    headers: list[tuple[str, str]] = []
    for line in text.replace("\r\n", "\n").split("\n"):
        if not line:
            continue
        if line[0] in " \t":
            if not headers:
                raise _mime_error("a MIME header block starts with a continuation line")
            name, value = headers[-1]
            headers[-1] = (name, value + " " + line.strip())
            continue
        name, sep, value = line.partition(":")
        if not sep or not name.strip() or " " in name.strip():
            raise _mime_error(f"not a MIME header line: {line[:60]!r}")
        headers.append((name.strip().lower(), value.strip()))
    return tuple(headers)


def _split_head(data: bytes, what: str) -> tuple[bytes, bytes]:
    """Split ``data`` at its first empty line into header block and body."""
    crlf = data.find(b"\r\n\r\n")
    lf = data.find(b"\n\n")
    if crlf >= 0 and (lf < 0 or crlf < lf):
        head, body = data[:crlf], data[crlf + 4 :]
    elif lf >= 0:
        head, body = data[:lf], data[lf + 2 :]
    elif not data.strip():
        raise _mime_error(f"{what} is empty")
    else:
        raise _mime_error(f"{what} has no blank line after its headers")
    if len(head) > _MAX_HEADER_BYTES:
        raise _mime_error(f"the headers of {what} are longer than {_MAX_HEADER_BYTES:,} bytes")
    return head, body


def _part(body: bytes, view: memoryview | None, start: int, end: int) -> tuple[tuple[tuple[str, str], ...], Buffer]:
    """The headers and content of the part at ``body[start:end]``: the content is a slice of ``view``
    when given (no copy), else a copy."""
    source: Buffer = body if view is None else view
    if body.startswith(b"\r\n", start) or body.startswith(b"\n", start):  # a part without headers
        return (), source[start + (2 if body.startswith(b"\r\n", start) else 1) : end]
    limit = min(end, start + _MAX_HEADER_BYTES + 4)
    crlf = body.find(b"\r\n\r\n", start, limit)
    lf = body.find(b"\n\n", start, crlf if crlf >= 0 else limit)
    if crlf >= 0 and (lf < 0 or crlf < lf):
        head_end, content_start = crlf, crlf + 4
    elif lf >= 0:
        head_end, content_start = lf, lf + 2
    elif end - start > _MAX_HEADER_BYTES:
        raise _mime_error(f"the headers of a MIME part are longer than {_MAX_HEADER_BYTES:,} bytes")
    else:
        raise _mime_error("a MIME part has no blank line after its headers")
    return _parse_headers(body[start:head_end]), source[content_start:end]


def _decode(part_headers: tuple[tuple[str, str], ...], body: Buffer) -> Buffer:
    encoding = "binary"
    for key, value in part_headers:
        if key == "content-transfer-encoding":
            encoding = value.strip().lower()
            break
    if encoding in ("binary", "8bit", "7bit"):
        return body
    if encoding == "base64":
        try:
            return binascii.a2b_base64(body)
        except binascii.Error:
            raise _mime_error("a base64 MIME part is not valid base64") from None
    raise _mime_error(f"the content transfer encoding {encoding!r} is not supported")


def split_related(
    content_type: str, body: bytes, *, max_parts: int = DEFAULT_MAX_PARTS, zero_copy: bool = False
) -> Related:
    """Split a multipart/related body; the root is the part named by ``start`` (else the first).

    With ``zero_copy`` the part bodies are ``memoryview`` slices of ``body`` (no copy of large parts);
    otherwise they are ``bytes``."""
    view = memoryview(body) if zero_copy else None
    media, params = header_params(content_type)
    if media != "multipart/related":
        raise _mime_error(f"expected multipart/related, got {media or 'no content type'}")
    boundary = params.get("boundary")
    if not boundary or len(boundary) > 70:
        raise _mime_error("the multipart/related content type has no usable boundary")
    delimiter = b"--" + boundary.encode("ascii", "replace")
    # The first delimiter is at the very start or at the start of a line.
    pos = 0 if body.startswith(delimiter) else body.find(b"\n" + delimiter)
    if pos < 0:
        raise _mime_error("the MIME boundary does not occur in the body")
    if pos:
        pos += 1
    line_delimiter = b"\n" + delimiter
    raw_parts: list[tuple[tuple[tuple[str, str], ...], Buffer]] = []
    closed = False
    while True:
        after = pos + len(delimiter)
        if body.startswith(b"--", after):
            closed = True
            break
        eol = body.find(b"\n", after)
        if eol < 0 or body[after:eol].strip(b" \t\r"):
            raise _mime_error("a MIME boundary line is malformed")
        start = eol + 1
        nxt = body.find(line_delimiter, start)
        if nxt < 0:
            break
        end = nxt - 1 if nxt > start and body[nxt - 1 : nxt] == b"\r" else nxt
        raw_parts.append(_part(body, view, start, end))
        if len(raw_parts) > max_parts:
            raise _mime_error(f"the message has more than {max_parts} MIME parts")
        pos = nxt + 1
    if not closed:
        raise _mime_error("the multipart body is truncated (no closing boundary)")
    if not raw_parts:
        raise _mime_error("the multipart body has no parts")
    parts = [MimePart(headers, _decode(headers, content)) for headers, content in raw_parts]
    start_param = params.get("start")
    root_index = 0
    if start_param:
        wanted = content_id_of(start_param)
        matches = [i for i, p in enumerate(parts) if p.content_id == wanted]
        if len(matches) != 1:
            raise _mime_error("the start parameter does not name exactly one MIME part")
        root_index = matches[0]
    ids = [p.content_id for p in parts if p.content_id]
    if len(ids) != len(set(ids)):
        raise _mime_error("two MIME parts have the same Content-ID")
    root = parts[root_index]
    if root.content_type != SOAP_XML:
        raise _mime_error(f"the root MIME part is {root.content_type}, not {SOAP_XML}")
    return Related(root, tuple(p for i, p in enumerate(parts) if i != root_index))


def write_message_file(content_type: str, body: bytes, *, headers: Sequence[tuple[str, str]] = ()) -> bytes:
    """A raw message as a file: MIME headers, a blank line, the body (the phase4 ``.as4out`` layout)."""
    lines = [f"{name}: {value}" for name, value in headers]
    lines += ["MIME-Version: 1.0", f"Content-Type: {content_type}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii") + body


def read_message_file(data: bytes) -> tuple[dict[str, str], bytes]:
    """Split a raw message file into its headers (names lower-cased) and body."""
    head, body = _split_head(data, "the message file")
    headers = dict(_parse_headers(head))
    if "content-type" not in headers:
        raise _mime_error("the message file has no Content-Type header")
    return headers, body
