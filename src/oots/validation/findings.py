"""What a validation produces: findings (rule id, severity, layer, message, location) and a report."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

__all__ = [
    "BLOCKING",
    "MAX_FINDINGS_PER_RULE",
    "Finding",
    "Layer",
    "LayerCounts",
    "Part",
    "Report",
    "Severity",
    "Verdict",
    "cap",
    "closing",
]

#: A report lists at most this many findings of one rule, then one closing finding of that rule saying
#: how many more there were (``Finding.more``). A document with 45,000 failing siblings stays readable
#: and cheap to report.
MAX_FINDINGS_PER_RULE = 100


class Severity(StrEnum):
    """Severity as the rule declares it. FATAL and ERROR make a document invalid."""

    FATAL = "FATAL"
    ERROR = "ERROR"
    WARNING = "WARNING"
    INFO = "INFO"


#: Severities that make a document invalid.
BLOCKING = frozenset({Severity.FATAL, Severity.ERROR})


class Layer(StrEnum):
    """Which check found it: the document kind detection, the XML Schema, Schematron, code lists, the
    provisional structural checks for versions without official rule files here, or the Schematron rules
    of the ebMS header (``EDM-ebMS.sch``)."""

    DOCUMENT = "document"
    XSD = "xsd"
    SCHEMATRON = "schematron"
    CODELIST = "codelist"
    STRUCTURE = "structure"
    EBMS_HEADER = "ebms-header"


@dataclass(frozen=True, slots=True)
class Finding:
    """One broken rule. ``location`` is an XPath to the offending node (``/`` for the document).

    A closing finding of a capped rule (see :func:`cap`) has ``more`` > 0: the number of findings of that
    rule not listed.
    """

    rule: str
    severity: Severity
    layer: Layer
    message: str
    location: str
    more: int = 0

    @property
    def blocking(self) -> bool:
        return self.severity in BLOCKING

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "rule": self.rule,
            "severity": self.severity.value,
            "layer": self.layer.value,
            "message": self.message,
            "location": self.location,
        }
        if self.more:
            data["more"] = self.more
        return data


def closing(rule: str, severity: Severity, layer: Layer, more: int) -> Finding:
    """The finding that ends a capped rule's list: ``… and N more`` of that rule, not listed."""
    return Finding(rule, severity, layer, f"… and {more} more finding(s) of this rule, not listed", "/", more)


def cap(findings: Iterable[Finding], limit: int = MAX_FINDINGS_PER_RULE) -> list[Finding]:
    """The findings with at most ``limit`` per rule id, in their order, each capped rule followed (at the
    end) by one closing finding with the number left out. Closing findings already in ``findings`` (from
    the Schematron layer, which stops writing records at its own cap) are added up."""
    kept: list[Finding] = []
    listed: dict[str, int] = {}
    left_out: dict[str, Finding] = {}
    counts: dict[str, int] = {}
    for finding in findings:
        if finding.more or listed.get(finding.rule, 0) >= limit:
            left_out.setdefault(finding.rule, finding)
            counts[finding.rule] = counts.get(finding.rule, 0) + (finding.more or 1)
            continue
        listed[finding.rule] = listed.get(finding.rule, 0) + 1
        kept.append(finding)
    for rule, first in left_out.items():
        kept.append(closing(rule, first.severity, first.layer, counts[rule]))
    return kept


class LayerCounts(Mapping[str, int]):
    """How many checks ran per layer (``Report.checks_by_layer``): a read-only mapping, in the order the
    layers were given, equal to a ``dict`` with the same items and hashable like the report that holds
    it."""

    __slots__ = ("_counts",)

    def __init__(self, counts: Mapping[str, int] | Iterable[tuple[str, int]] = ()) -> None:
        self._counts: dict[str, int] = dict(counts)

    def __getitem__(self, layer: str) -> int:
        return self._counts[layer]

    def __iter__(self) -> Iterator[str]:
        return iter(self._counts)

    def __len__(self) -> int:
        return len(self._counts)

    def __hash__(self) -> int:
        return hash(frozenset(self._counts.items()))

    def __repr__(self) -> str:
        return f"LayerCounts({self._counts!r})"


class Verdict(StrEnum):
    """What a report says about the document: ``VALID``; ``INVALID`` (a confirmed rule failed: official
    rules, XSD, document kind); ``UNCONFIRMED`` (only provisional rules failed, see :mod:`oots.validation.v2`)."""

    VALID = "VALID"
    INVALID = "INVALID"
    UNCONFIRMED = "UNCONFIRMED"


@dataclass(frozen=True, slots=True)
class Part:
    """A payload of a message (an AS4 MIME part, a Domibus ``payload``, the SOAP Body's content) and what
    was done with it: ``report`` is its validation, ``None`` when it was not checked (``note`` says why)."""

    where: str
    content_type: str
    report: Report | None = None
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "where": self.where,
            "content_type": self.content_type,
            "checked": self.report is not None,
        }
        if self.note:
            data["note"] = self.note
        if self.report is not None:
            data["report"] = self.report.as_dict()
        return data


@dataclass(frozen=True, slots=True)
class Report:
    """The result of validating one document.

    ``kind`` is the detected document kind (e.g. ``edm-request``), ``version`` the data model version
    (``1.0``, ``2.0``; ``None`` when it cannot be told), ``rule_sets`` the rule set and files that ran
    (the rule set first), ``checks`` how many checks were run in all and ``checks_by_layer`` how many per
    layer, a read-only :class:`LayerCounts` (any mapping given is copied into one): ``xsd``: 1 when the
    document was validated against the XML Schema; ``schematron`` and ``ebms-header``: the Schematron
    assertions of the kind; ``codelist``: the code-list bindings of the kind; ``structure``: the
    provisional rules. ``provisional`` says whether they were the provisional v2.0
    checks rather than official rules, ``checked`` whether there were rules for the document at all
    (without them it is neither valid nor invalid).

    A message (a SOAP envelope, an AS4 MIME message) is reported as its ebMS header: ``found_at`` says
    where the header was found, and ``parts`` holds its payloads, each checked or not and why. The
    verdict is the worst of the header's and the checked payloads'.
    """

    kind: str
    version: str | None
    findings: tuple[Finding, ...] = ()
    rule_sets: tuple[str, ...] = field(default=())
    checks: int = 0
    provisional: bool = False
    checked: bool = True
    checks_by_layer: Mapping[str, int] = field(default_factory=LayerCounts)
    found_at: str | None = None
    parts: tuple[Part, ...] = ()

    def __post_init__(self) -> None:
        # a copy the caller cannot change afterwards (any mapping is accepted, e.g. a dict)
        object.__setattr__(self, "checks_by_layer", LayerCounts(self.checks_by_layer))
        total = sum(self.checks_by_layer.values())
        if self.checks_by_layer and self.checks not in (0, total):
            raise ValueError(f"checks {self.checks} is not the sum of checks_by_layer {self.checks_by_layer}")
        object.__setattr__(self, "checks", total or self.checks)

    @property
    def valid(self) -> bool:
        """Rules ran and gave no blocking finding at all (provisional ones included), here and in every
        checked payload."""
        own = self.checked and not any(f.blocking for f in self.findings)
        return own and all(p.report.valid for p in self.parts if p.report is not None)

    @property
    def invalid(self) -> bool:
        """A confirmed rule failed: a blocking finding that is not from the provisional checks (here or
        in a checked payload)."""
        own = any(f.blocking and f.layer is not Layer.STRUCTURE for f in self.findings)
        return own or any(p.report.invalid for p in self.parts if p.report is not None)

    @property
    def verdict(self) -> Verdict:
        if self.valid:
            return Verdict.VALID
        return Verdict.INVALID if self.invalid else Verdict.UNCONFIRMED

    @property
    def rule_set(self) -> str | None:
        """The name of the rule set that ran (``None``: none, the document kind was not recognised)."""
        return self.rule_sets[0] if self.rule_sets else None

    def rule_ids(self, *, blocking_only: bool = False) -> set[str]:
        return {f.rule for f in self.findings if f.blocking or not blocking_only}

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "valid": self.valid,
            "invalid": self.invalid,
            "verdict": self.verdict.value,
            "kind": self.kind,
            "version": self.version,
            "rule_set": self.rule_set,
            "checks": self.checks,
            "checks_by_layer": dict(self.checks_by_layer),
            "provisional": self.provisional,
            "findings": [f.as_dict() for f in self.findings],
        }
        if self.found_at is not None:
            data["found_at"] = self.found_at
        if self.parts:
            data["parts"] = [p.as_dict() for p in self.parts]
        return data
