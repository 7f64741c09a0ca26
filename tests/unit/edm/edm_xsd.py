"""The official v1.0 XSDs (RegRep 4 + SDG profile), loaded with lxml from the specification kit."""

from __future__ import annotations

import functools
from pathlib import Path

from edm_samples import SPEC
from lxml import etree

_IMPORTS = (
    ("http://www.w3.org/XML/1998/namespace", "xml/xml.xsd"),
    ("http://www.w3.org/1999/xlink", "xml/xlink.xsd"),
    ("http://www.w3.org/2005/08/addressing", "xml/ws-addr.xsd"),
    ("urn:oasis:names:tc:ebxml-regrep:xsd:rim:4.0", "regrep4/rim.xsd"),
    ("urn:oasis:names:tc:ebxml-regrep:xsd:rs:4.0", "regrep4/rs.xsd"),
    ("urn:oasis:names:tc:ebxml-regrep:xsd:query:4.0", "regrep4/query.xsd"),
    ("urn:oasis:names:tc:ebxml-regrep:xsd:lcm:4.0", "regrep4/lcm.xsd"),
    ("http://data.europa.eu/p4s", "sdg/SDG-GenericMetadataProfile-v1.0.0.xsd"),
)


@functools.cache
def schema(xsd_dir: Path = SPEC / "edm-v1.0" / "xsd") -> etree.XMLSchema:
    """One schema holding every namespace; the sdg profile's remote imports are already satisfied."""
    imports = "".join(
        f'<xs:import namespace="{uri}" schemaLocation="{(xsd_dir / rel).as_uri()}"/>' for uri, rel in _IMPORTS
    )
    driver = f'<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema">{imports}</xs:schema>'
    parser = etree.XMLParser(no_network=True, resolve_entities=False)
    return etree.XMLSchema(etree.fromstring(driver.encode(), parser))


def errors(data: bytes) -> list[str]:
    """XSD errors of ``data`` (empty when valid)."""
    s = schema()
    doc = etree.fromstring(data)
    if s.validate(doc):
        return []
    return [f"{e.line}: {e.message}" for e in s.error_log]
