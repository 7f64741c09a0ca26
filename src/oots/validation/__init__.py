"""Conformance validation of OOTS documents: XML Schema, the official Schematron rules, code lists.

``validate(data)`` returns a :class:`Report` (kind, version, valid, findings); :class:`Validator`
keeps compiled rule sets between calls. See ``docs/validation.md``.
"""

from __future__ import annotations

from oots.validation.detect import KINDS, Detected, detect
from oots.validation.findings import (
    BLOCKING,
    MAX_FINDINGS_PER_RULE,
    Finding,
    Layer,
    LayerCounts,
    Part,
    Report,
    Severity,
    Verdict,
    cap,
)
from oots.validation.ruleset import BUILTIN_V1, CodeList, RuleSet
from oots.validation.schematron import RuleSetError
from oots.validation.validator import Validator, validate

__all__ = [
    "BLOCKING",
    "BUILTIN_V1",
    "KINDS",
    "MAX_FINDINGS_PER_RULE",
    "CodeList",
    "Detected",
    "Finding",
    "Layer",
    "LayerCounts",
    "Part",
    "Report",
    "RuleSet",
    "RuleSetError",
    "Severity",
    "Validator",
    "Verdict",
    "cap",
    "detect",
    "validate",
]
