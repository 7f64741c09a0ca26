"""Provisional v2 checks (filled in below)."""

from __future__ import annotations

from lxml import etree

from oots.validation.detect import Detected
from oots.validation.findings import Finding


def check(root: etree._Element, detected: Detected) -> list[Finding]:
    return []
