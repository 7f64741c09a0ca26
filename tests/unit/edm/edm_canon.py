"""Comparable canonical form of XML for round-trip tests.

Comments and processing instructions dropped, namespace prefixes replaced by namespace URIs (in
element and attribute names and in ``xsi:type`` values), whitespace-only text dropped and text
stripped at both ends. Two documents with equal forms are equal after canonicalisation.
"""

from __future__ import annotations

import io
from typing import Any
from xml.etree.ElementTree import canonicalize

from lxml import etree

XSI_TYPE = "{http://www.w3.org/2001/XMLSchema-instance}type"


def _qname(el: etree._Element, value: str) -> str:
    prefix, _, local = value.rpartition(":")
    uri = el.nsmap.get(prefix or None, "")
    return f"{{{uri}}}{local}"


def canon(el: etree._Element) -> Any:
    attrs = {k: (_qname(el, v) if k == XSI_TYPE else v) for k, v in el.attrib.items()}
    children = [canon(c) for c in el if isinstance(c.tag, str)]
    text = "".join(el.itertext(with_tail=False)) if not children else ""
    if children:
        loose = (el.text or "") + "".join((c.tail or "") for c in el if isinstance(c.tag, str))
        assert not loose.strip(), f"mixed content in {el.tag}"
    return (el.tag, tuple(sorted(attrs.items())), text.strip(), tuple(children))


def canon_bytes(data: bytes) -> Any:
    parser = etree.XMLParser(remove_comments=True, remove_pis=True, resolve_entities=False)
    return canon(etree.fromstring(data, parser))


def diff(a: Any, b: Any, path: str = "") -> str | None:
    """The first difference between two canonical forms, as a readable path; None if equal."""
    if a[0] != b[0]:
        return f"{path}: element {a[0]} != {b[0]}"
    here = f"{path}/{a[0].split('}')[-1]}"
    if a[1] != b[1]:
        return f"{here}: attributes {a[1]} != {b[1]}"
    if a[2] != b[2]:
        return f"{here}: text {a[2]!r} != {b[2]!r}"
    for i, (x, y) in enumerate(zip(a[3], b[3], strict=False)):
        d = diff(x, y, f"{here}[{i}]")
        if d:
            return d
    if len(a[3]) != len(b[3]):
        return f"{here}: {len(a[3])} children != {len(b[3])}: {[c[0] for c in a[3]]} vs {[c[0] for c in b[3]]}"
    return None


def c14n2(data: bytes) -> str:
    """W3C Canonical XML 2.0 with text stripped, prefixes rewritten (also in xsi:type values), no comments."""
    return canonicalize(
        from_file=io.BytesIO(data), strip_text=True, rewrite_prefixes=True, qname_aware_attrs=[XSI_TYPE]
    )
