"""The code-list layer: values checked against the rule set's genericode lists.

The checks are data (``codelists/bindings.json`` in the rule set, see the packaged one): each binding
selects nodes with an XPath 1.0 expression and names the list their value must belong to. They are
project rules (``OOTS-CL-*``), not official ones; the packaged bindings only cover values the official
v1.0 Schematron files leave unchecked, as warnings.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from lxml import etree

from oots.ns import PREFIXES, XSI
from oots.validation.findings import Finding, Layer, Severity
from oots.validation.ruleset import RuleSet
from oots.validation.schematron import RuleSetError

__all__ = ["Binding", "bindings", "check", "check_counted"]

_NS = {**PREFIXES, "xsi": XSI}


@dataclass(frozen=True, slots=True)
class Binding:
    rule: str
    select: etree.XPath
    list: str
    severity: Severity
    message: str
    strip: str = ""
    kinds: frozenset[str] | None = None


_cache: dict[str, tuple[Binding, ...]] = {}


def bindings(ruleset: RuleSet) -> tuple[Binding, ...]:
    """The bindings of a rule set (none when it has no ``codelists/bindings.json``)."""
    key = str(ruleset.directory)
    if key in _cache:
        return _cache[key]
    path = ruleset.directory / "codelists" / "bindings.json"
    found: list[Binding] = []
    if path.is_file():
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            for item in raw["bindings"]:
                found.append(
                    Binding(
                        rule=str(item["rule"]),
                        select=etree.XPath(str(item["select"]), namespaces=_NS),
                        list=str(item["list"]),
                        severity=Severity(str(item.get("severity", "WARNING")).upper()),
                        message=str(item["message"]),
                        strip=str(item.get("strip", "")),
                        kinds=frozenset(item["kinds"]) if item.get("kinds") else None,
                    )
                )
        except (ValueError, KeyError, TypeError, etree.XPathSyntaxError) as exc:
            raise RuleSetError(f"{path} is not a valid code-list binding file: {exc}") from None
    result = tuple(found)
    _cache[key] = result
    return result


def _location(node: object) -> str:
    if isinstance(node, etree._ElementUnicodeResult):
        parent = node.getparent()
        if parent is None:
            return "/"
        name = str(node.attrname)
        if name.startswith("{"):
            uri, local = name[1:].split("}", 1)
            prefix = next((p for p, u in _NS.items() if u == uri), None)
            name = f"{prefix}:{local}" if prefix else local
        return f"{parent.getroottree().getpath(parent)}/@{name}"
    if isinstance(node, etree._Element):
        return str(node.getroottree().getpath(node))
    return "/"


def check(root: etree._Element, ruleset: RuleSet, kind: str) -> list[Finding]:
    """Check ``root`` (a document of ``kind``) against the rule set's code-list bindings."""
    return check_counted(root, ruleset, kind)[0]


def check_counted(root: etree._Element, ruleset: RuleSet, kind: str) -> tuple[list[Finding], int]:
    """:func:`check`, and the number of bindings that applied to the document (the checks run)."""
    active = [b for b in bindings(ruleset) if b.kinds is None or kind in b.kinds]
    if not active:
        return [], 0
    lists = ruleset.codelists
    findings: list[Finding] = []
    for binding in active:
        code_list = lists.get(binding.list)
        if code_list is None:
            raise RuleSetError(f"code list {binding.list!r} named by {binding.rule} is not in {ruleset.directory}")
        result = binding.select(root)
        nodes = result if isinstance(result, list) else [result]
        for node in nodes:
            text = node.text if isinstance(node, etree._Element) else str(node)
            value = (text or "").strip()
            if binding.strip:
                if not value.startswith(binding.strip):
                    continue
                value = value[len(binding.strip) :]
            if value not in code_list.codes:
                findings.append(
                    Finding(
                        binding.rule,
                        binding.severity,
                        Layer.CODELIST,
                        f"{binding.message}: {value!r} (list {code_list.name} {code_list.version})",
                        _location(node),
                    )
                )
    return findings, len(active)
