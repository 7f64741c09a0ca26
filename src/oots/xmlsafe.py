"""The one hardened XML parser every part of oots uses.

No DTDs, no entity expansion, no network, a size limit before parsing and libxml2's own limits on
depth and text size (``huge_tree`` stays off). Anything it refuses raises :class:`oots.errors.XmlError`
with a plain reason. Nothing else in the package calls ``lxml.etree.fromstring`` on outside input.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Final

from lxml import etree

from oots.errors import XmlError

__all__ = ["DEFAULT_MAX_BYTES", "HEAD_BYTES", "parse", "parse_head", "parse_tree"]

#: Largest document accepted by default (evidence payloads are separate MIME parts, not XML here).
DEFAULT_MAX_BYTES = 20 * 1024 * 1024


#: How much of a refused document :func:`parse_head` reads.
HEAD_BYTES = 64 * 1024

_BLANKS: Final = b" \t\r\n"


def _doctype_first(head: bytes) -> bool:
    """Whether ``head`` is a prolog (XML declaration, comments, processing instructions and blanks) and
    then a DOCTYPE: refused before parsing.

    A scan in one pass, each construct ending at its first terminator as in XML: a regular expression
    for the same (``(\\s|<\\?.*?\\?>|<!--.*?-->)*``) backtracks exponentially on a run of short
    processing instructions not followed by a DOCTYPE, holding the interpreter for seconds per 100 bytes.
    """
    pos = 3 if head.startswith(b"\xef\xbb\xbf") else 0
    end = len(head)
    while pos < end:
        if head[pos] in _BLANKS:
            pos += 1
        elif head.startswith(b"<?", pos):
            close = head.find(b"?>", pos + 2)
            if close < 0:
                return False
            pos = close + 2
        elif head.startswith(b"<!--", pos):
            close = head.find(b"-->", pos + 4)
            if close < 0:
                return False
            pos = close + 3
        else:
            return head.startswith(b"<!DOCTYPE", pos)
    return False


_local = threading.local()


def _parser() -> etree.XMLParser:
    """One configured parser per thread (lxml parsers must not be shared between threads)."""
    parser: etree.XMLParser | None = getattr(_local, "parser", None)
    if parser is None:
        parser = _local.parser = _new_parser()
    return parser


def _new_parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_blank_text=False,
        collect_ids=False,
    )


def parse_tree(data: bytes | bytearray | memoryview, *, max_bytes: int = DEFAULT_MAX_BYTES) -> etree._ElementTree:
    """Parse ``data`` into an element tree, refusing hostile or oversized input."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise XmlError("XML input must be bytes")
    if len(data) > max_bytes:
        raise XmlError(f"the XML document is {len(data):,} bytes, over the limit of {max_bytes:,}")
    if not bytes(data[:4096]).strip() and not bytes(data).strip():
        raise XmlError("the document is empty")
    head = bytes(data[:65536])
    if b"<!DOCTYPE" in head and _doctype_first(head):  # the find is cheap; the scan only runs when needed
        raise XmlError("XML with a document type declaration (DTD) is refused")
    try:
        root = etree.fromstring(bytes(data), parser=_parser())
    except etree.XMLSyntaxError as exc:
        raise XmlError(f"not well-formed XML: {exc.msg}") from None
    except ValueError as exc:  # e.g. unicode strings with an encoding declaration
        raise XmlError(f"not acceptable XML: {exc}") from None
    tree = root.getroottree()
    docinfo = tree.docinfo
    if docinfo.doctype or docinfo.internalDTD is not None or docinfo.externalDTD is not None:
        raise XmlError("XML with a document type declaration (DTD) is refused")
    for node in root.iter(etree.Entity, etree.ProcessingInstruction):
        if isinstance(node, etree._Entity):
            raise XmlError("XML with entity references is refused")
    return tree


def parse(data: bytes | bytearray | memoryview, *, max_bytes: int = DEFAULT_MAX_BYTES) -> etree._Element:
    """Parse ``data`` and return its root element (see :func:`parse_tree`)."""
    return parse_tree(data, max_bytes=max_bytes).getroot()


def parse_head(data: bytes | bytearray | memoryview, *, head_bytes: int = HEAD_BYTES) -> etree._Element | None:
    """The root element of ``data`` as far as its first ``head_bytes`` bytes make it: its attributes and
    the children that end within them (a child cut off is left out); ``None`` when not even the root's
    start tag can be read.

    For naming a document that :func:`parse` refuses (too large, not well-formed further on): the same
    refusals of DTDs and entities, and nothing after the head is looked at."""
    head = bytes(data[:head_bytes])
    if b"<!DOCTYPE" in head or b"<!ENTITY" in head:
        return None
    parser = etree.XMLPullParser(
        events=("start", "end"),
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        collect_ids=False,
    )
    with contextlib.suppress(etree.XMLSyntaxError):  # the events before the fault are kept
        parser.feed(head)
    root: etree._Element | None = None
    ended: set[etree._Element] = set()
    for event, element in parser.read_events():
        if root is None:
            root = element
        elif event == "end":
            ended.add(element)
    if root is None:
        return None
    for child in list(root):
        if child not in ended or any(isinstance(node, etree._Entity) for node in child.iter(etree.Entity)):
            root.remove(child)
    return root
