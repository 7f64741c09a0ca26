"""What a validation produces: findings (rule id, severity, layer, message, location) and a report."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

__all__ = ["BLOCKING", "Finding", "Layer", "Report", "Severity"]


class Severity(StrEnum):
    """Severity as the rule declares it. FATAL and ERROR make a document invalid."""

    FATAL = "FATAL"
    ERROR = "ERROR"
    WARNING = "WARNING"
    INFO = "INFO"


#: Severities that make a document invalid.
BLOCKING = frozenset({Severity.FATAL, Severity.ERROR})


class Layer(StrEnum):
    """Which check found it: the document kind detection, the XML Schema, Schematron, code lists or the
    provisional structural checks for versions without official rule files here."""

    DOCUMENT = "document"
    XSD = "xsd"
    SCHEMATRON = "schematron"
    CODELIST = "codelist"
    STRUCTURE = "structure"


@dataclass(frozen=True, slots=True)
class Finding:
    """One broken rule. ``location`` is an XPath to the offending node (``/`` for the document)."""

    rule: str
    severity: Severity
    layer: Layer
    message: str
    location: str

    @property
    def blocking(self) -> bool:
        return self.severity in BLOCKING

    def as_dict(self) -> dict[str, str]:
        return {
            "rule": self.rule,
            "severity": self.severity.value,
            "layer": self.layer.value,
            "message": self.message,
            "location": self.location,
        }


@dataclass(frozen=True, slots=True)
class Report:
    """The result of validating one document.

    ``kind`` is the detected document kind (e.g. ``edm-request``), ``version`` the data model version
    (``1.0``, ``2.0``; ``None`` when it cannot be told), ``rule_sets`` the rule files that ran.
    """

    kind: str
    version: str | None
    findings: tuple[Finding, ...] = ()
    rule_sets: tuple[str, ...] = field(default=())

    @property
    def valid(self) -> bool:
        return not any(f.blocking for f in self.findings)

    def rule_ids(self, *, blocking_only: bool = False) -> set[str]:
        return {f.rule for f in self.findings if f.blocking or not blocking_only}

    def as_dict(self) -> dict[str, Any]:
        return {
            "valid": self.valid,
            "kind": self.kind,
            "version": self.version,
            "findings": [f.as_dict() for f in self.findings],
        }
