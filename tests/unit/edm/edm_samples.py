"""Where the complete official samples and the shipped v2.0 messages are in the specification kit."""

from __future__ import annotations

import base64
import os
import re
from pathlib import Path

from lxml import etree

#: The specification kit, as the ``spec_dir`` fixture finds it (not imported from conftest: other
#: test packages have a conftest module of their own).
SPEC = Path(os.environ.get("OOTS_TEST_SPEC_DIR", Path(__file__).resolve().parents[4] / "shared" / "spec"))

EXCHANGE = "edm-v1.0/samples/Exchange/4.5.4 - OOTS-EDM XML Examples of the Evidence Exchange"


def exchange_v1(spec: Path) -> list[Path]:
    """Complete v1.0 evidence exchange documents: official examples and Projectathon test data."""
    found = [
        p
        for p in sorted((spec / EXCHANGE).rglob("*.xml"))
        if "Header" not in p.name and "header" not in p.name and "Evidence Samples" not in str(p)
    ]
    return found + sorted((spec / "edm-v1.0/samples/projectathon-testdata").glob("*.xml"))


def registry_v1(spec: Path) -> list[Path]:
    """Complete v1.0 Evidence Broker, DSD and LCM documents."""
    out: list[Path] = []
    for folder in ("EB/Complete XML examples (EB)", "DSD/Complete XML examples (DSD)", "LCM/Complete XML Examples"):
        out += sorted((spec / "edm-v1.0/samples" / folder).rglob("*.xml"))
    return out


def cs_v2(spec: Path) -> list[Path]:
    """Real answers of the Commission's acceptance Evidence Broker and Data Service Directory."""
    return sorted((spec / "common-services/acceptance-captures").glob("*.xml"))


def exchange_v2(spec: Path) -> list[Path]:
    """The v2.0 reference messages (the ``.entete`` files are ebMS headers, not EDM documents)."""
    return sorted(p for p in (spec / "edm-v2.0-captures/reference/messages").glob("*.xml") if ".entete" not in p.name)


def captured_payloads(spec: Path) -> dict[str, bytes]:
    """RegRep payloads inside the Domibus WS-plugin captures (base64 ``<value>`` of ebrs parts)."""
    out: dict[str, bytes] = {}
    for path in sorted((spec / "edm-v2.0-captures/incoming").rglob("*.xml")):
        root = etree.parse(str(path)).getroot()
        for i, value in enumerate(root.iter("value")):
            text = re.sub(r"\s+", "", value.text or "")
            if not text:
                continue
            data = base64.b64decode(text)
            if data.lstrip().startswith(b"<"):
                out[f"{path.relative_to(spec / 'edm-v2.0-captures/incoming')}#{i}"] = data
    return out
