"""PROVISIONAL structural checks for ``oots-edm:v2.0`` / ``oots-cs:v2.0`` documents.

The official 2.0.x XSD and Schematron files are not available here (point ``--rules`` at them when you
have them: they then replace these checks). Until then, v2.0 documents get the structural checks below,
derived from real v2.0 messages (France's OOTS platform, validated there against the official 2.0.1
Schematrons; the Commission's acceptance Common Services) and the documented 1.0 → 2.0 deltas
(ReturnLocation with PreviewLocation, Procedure as a plain string, ``oots-cs:v2.0`` answers).

The rule ids (``OOTS-V2-*``) are this project's, NOT official ones, and the checks are deliberately
limited to structure: required and allowed slots, their value types, identifiers, the exception's
attributes. No XML Schema is applied.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import NamedTuple

from lxml import etree

from oots.ns import QUERY, RIM, RS, SDG, XSI
from oots.validation.detect import Detected
from oots.validation.findings import MAX_FINDINGS_PER_RULE, Finding, Layer, Severity, closing

__all__ = ["RULES", "RULE_SET", "check", "checks"]

#: The name reports give the provisional checks as their rule set.
RULE_SET = "OOTS-V2 (provisional)"

_UUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
_URN_UUID = re.compile(rf"^urn:uuid:{_UUID}$")
_BARE_UUID = re.compile(rf"^{_UUID}$")
_SUCCESS = "urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Success"
_FAILURE = "urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Failure"

#: Every provisional rule: id -> (severity, text).
RULES: dict[str, tuple[Severity, str]] = {
    "OOTS-V2-GEN-001": (Severity.ERROR, "SpecificationIdentifier MUST be 'oots-edm:v2.0' (or 'oots-cs:v2.0')"),
    "OOTS-V2-GEN-002": (Severity.ERROR, "a required slot is missing or repeated"),
    "OOTS-V2-GEN-003": (Severity.ERROR, "a slot value has the wrong xsi:type"),
    "OOTS-V2-GEN-004": (Severity.ERROR, "a slot that this document kind does not allow"),
    "OOTS-V2-GEN-005": (Severity.INFO, "no provisional v2.0 checks exist for this document kind"),
    "OOTS-V2-REQ-001": (Severity.ERROR, "QueryRequest/@id MUST be urn:uuid: followed by a UUID"),
    "OOTS-V2-REQ-002": (Severity.ERROR, "query:ResponseOption MUST have returnType 'LeafClassWithRepositoryItem'"),
    "OOTS-V2-REQ-003": (Severity.ERROR, "query:Query MUST have queryDefinition 'DocumentQuery'"),
    "OOTS-V2-REQ-004": (Severity.ERROR, "query:Query MUST hold exactly one of NaturalPerson / LegalPerson"),
    "OOTS-V2-REQ-005": (Severity.ERROR, "query:Query MUST hold one EvidenceRequest slot"),
    "OOTS-V2-REQ-006": (Severity.ERROR, "ReturnLocation and PreviewLocation MUST come together"),
    "OOTS-V2-REQ-007": (Severity.ERROR, "EvidenceRequester MUST hold an sdg:Agent classified 'ER'"),
    "OOTS-V2-RESP-001": (Severity.ERROR, "an evidence response MUST have status Success and a urn:uuid requestId"),
    "OOTS-V2-RESP-002": (Severity.ERROR, "EvidenceResponseIdentifier MUST be a UUID"),
    "OOTS-V2-RESP-003": (Severity.ERROR, "each ExtrinsicObject MUST carry EvidenceMetadata (sdg:Evidence)"),
    "OOTS-V2-RESP-004": (
        Severity.ERROR,
        "each ExtrinsicObject MUST reference its evidence (RepositoryItemRef cid:…@…)",
    ),
    "OOTS-V2-RESP-005": (
        Severity.ERROR,
        "an evidence response MUST hold an ExtrinsicObject (maybe in a package), or an empty RegistryObjectList",
    ),
    "OOTS-V2-ERR-001": (Severity.ERROR, "an error response MUST have status Failure and exactly one rs:Exception"),
    "OOTS-V2-ERR-002": (Severity.ERROR, "rs:Exception MUST have xsi:type, code, severity and message"),
    "OOTS-V2-ERR-003": (Severity.ERROR, "rs:Exception MUST carry a Timestamp slot (DateTimeValueType)"),
    "OOTS-V2-ERR-004": (Severity.ERROR, "an error response MUST NOT hold a RegistryObjectList"),
    "OOTS-V2-CS-001": (Severity.ERROR, "a Common Services answer MUST have status Success or Failure"),
    "OOTS-V2-CS-002": (Severity.ERROR, "a failed Common Services answer MUST hold exactly one rs:Exception"),
}

# slot name -> expected SlotValue xsi:type (local name), by kind; None: required, "?" suffix: optional
_REQUEST_SLOTS = {
    "SpecificationIdentifier": "StringValueType",
    "IssueDateTime": "DateTimeValueType",
    "Procedure?": "StringValueType",
    "PreviewLocation?": "StringValueType",
    "ReturnLocation?": "StringValueType",
    "PossibilityForPreview": "BooleanValueType",
    "ExplicitRequestGiven": "BooleanValueType",
    "Requirements?": "CollectionValueType",
    "EvidenceRequester": "CollectionValueType",
    "EvidenceProvider": "AnyValueType",
    "EvidenceProviderClassification?": "CollectionValueType",
}
_QUERY_SLOTS = {
    "NaturalPerson?": "AnyValueType",
    "LegalPerson?": "AnyValueType",
    "AuthorizedRepresentative?": "AnyValueType",
    "EvidenceRequest": "AnyValueType",
}
_RESPONSE_SLOTS = {
    "SpecificationIdentifier": "StringValueType",
    "EvidenceResponseIdentifier": "StringValueType",
    "IssueDateTime": "DateTimeValueType",
    "EvidenceProvider": "CollectionValueType|AnyValueType",
    "EvidenceRequester": "AnyValueType",
    "ResponseAvailableDateTime?": "DateTimeValueType",
}
_ERROR_SLOTS = {
    "SpecificationIdentifier": "StringValueType",
    "EvidenceResponseIdentifier": "StringValueType",
    "ErrorProvider": "AnyValueType|CollectionValueType",
    "EvidenceRequester": "AnyValueType",
}


def _path(node: etree._Element) -> str:
    return str(node.getroottree().getpath(node))


class _Hit(NamedTuple):
    """A broken rule before it becomes a :class:`Finding`: the node's path is only worked out for the
    findings a report lists (it costs as much as the node has preceding siblings)."""

    rule: str
    node: etree._Element
    detail: str

    def finding(self) -> Finding:
        severity, text = RULES[self.rule]
        message = f"{text}: {self.detail}" if self.detail else text
        return Finding(self.rule, severity, Layer.STRUCTURE, f"[provisional] {message}", _path(self.node))


def _finding(rule: str, node: etree._Element, detail: str = "") -> _Hit:
    return _Hit(rule, node, detail)


def _slots(parent: etree._Element) -> list[etree._Element]:
    return list(parent.iterchildren(f"{{{RIM}}}Slot"))


def _value_type(slot: etree._Element) -> str:
    value = slot.find(f"{{{RIM}}}SlotValue")
    if value is None:
        return ""
    return (value.get(f"{{{XSI}}}type") or "").rsplit(":", 1)[-1]


def _check_slots(parent: etree._Element, spec: dict[str, str], closed: bool = True) -> Iterable[_Hit]:
    present: dict[str, list[etree._Element]] = {}
    for slot in _slots(parent):
        present.setdefault(str(slot.get("name")), []).append(slot)
    allowed = {key.rstrip("?") for key in spec}
    for key, types in spec.items():
        name = key.rstrip("?")
        optional = key.endswith("?")
        found = present.get(name, [])
        if len(found) > 1 or (not found and not optional):
            yield _finding("OOTS-V2-GEN-002", parent, f"slot {name!r} found {len(found)} times")
        for slot in found:
            if _value_type(slot) not in types.split("|"):
                yield _finding("OOTS-V2-GEN-003", slot, f"slot {name!r} has {_value_type(slot)!r}, expected {types}")
    if closed:
        for name, slots in present.items():
            if name not in allowed:
                yield _finding("OOTS-V2-GEN-004", slots[0], repr(name))


def _slot(parent: etree._Element, name: str) -> etree._Element | None:
    return next((s for s in _slots(parent) if s.get("name") == name), None)


def _text(slot: etree._Element | None) -> str:
    if slot is None:
        return ""
    value = slot.find(f"{{{RIM}}}SlotValue/{{{RIM}}}Value")
    return (value.text or "").strip() if value is not None else ""


def _request(root: etree._Element) -> Iterable[_Hit]:
    if not _URN_UUID.match(root.get("id") or ""):
        yield _finding("OOTS-V2-REQ-001", root, repr(root.get("id")))
    yield from _check_slots(root, _REQUEST_SLOTS)
    if (_slot(root, "PreviewLocation") is None) != (_slot(root, "ReturnLocation") is None):
        yield _finding("OOTS-V2-REQ-006", root)
    requester = _slot(root, "EvidenceRequester")
    if requester is not None:
        classes = {(c.text or "").strip() for c in requester.iter(f"{{{SDG}}}Classification")}
        if "ER" not in classes:
            yield _finding("OOTS-V2-REQ-007", requester, f"classifications {sorted(classes)}")
    option = root.find(f"{{{QUERY}}}ResponseOption")
    if option is None or option.get("returnType") != "LeafClassWithRepositoryItem":
        yield _finding("OOTS-V2-REQ-002", option if option is not None else root)
    query = root.find(f"{{{QUERY}}}Query")
    if query is None or query.get("queryDefinition") != "DocumentQuery":
        yield _finding("OOTS-V2-REQ-003", query if query is not None else root)
    if query is not None:
        yield from _check_slots(query, _QUERY_SLOTS)
        persons = [s for s in _slots(query) if s.get("name") in {"NaturalPerson", "LegalPerson"}]
        if len(persons) != 1:
            yield _finding("OOTS-V2-REQ-004", query, f"{len(persons)} found")
        if _slot(query, "EvidenceRequest") is None:
            yield _finding("OOTS-V2-REQ-005", query)


def _response(root: etree._Element) -> Iterable[_Hit]:
    if root.get("status") != _SUCCESS or not _URN_UUID.match(root.get("requestId") or ""):
        yield _finding("OOTS-V2-RESP-001", root)
    yield from _check_slots(root, _RESPONSE_SLOTS)
    identifier = _slot(root, "EvidenceResponseIdentifier")
    if identifier is not None and not _BARE_UUID.match(_text(identifier)):
        yield _finding("OOTS-V2-RESP-002", identifier, repr(_text(identifier)))
    # v2.0 may group the evidence (main, translations, annexes) in rim:RegistryPackageType objects
    objects = [
        obj
        for obj in root.iterfind(f".//{{{RIM}}}RegistryObjectList/{{{RIM}}}RegistryObject")
        if (obj.get(f"{{{XSI}}}type") or "").endswith("ExtrinsicObjectType")
    ]
    # An empty rim:RegistryObjectList is how a response says "no evidence" (the user refused every
    # evidence in the preview: the Projectathon's TC08); a response without the list holds nothing.
    if not objects and root.find(f"{{{RIM}}}RegistryObjectList") is None:
        yield _finding("OOTS-V2-RESP-005", root)
    for obj in objects:
        metadata = _slot(obj, "EvidenceMetadata")
        if metadata is None or metadata.find(f"{{{RIM}}}SlotValue/{{{SDG}}}Evidence") is None:
            yield _finding("OOTS-V2-RESP-003", obj)
        ref = obj.find(f"{{{RIM}}}RepositoryItemRef")
        href = ref.get("{http://www.w3.org/1999/xlink}href") if ref is not None else None
        if not href or not href.startswith("cid:") or "@" not in href:
            yield _finding("OOTS-V2-RESP-004", ref if ref is not None else obj, repr(href))


def _error(root: etree._Element) -> Iterable[_Hit]:
    exceptions = root.findall(f"{{{RS}}}Exception")
    if root.get("status") != _FAILURE or len(exceptions) != 1:
        yield _finding("OOTS-V2-ERR-001", root, f"{len(exceptions)} exception(s)")
    if root.find(f"{{{RIM}}}RegistryObjectList") is not None:
        yield _finding("OOTS-V2-ERR-004", root)
    yield from _check_slots(root, _ERROR_SLOTS)
    for exception in exceptions:
        missing = [a for a in (f"{{{XSI}}}type", "code", "severity", "message") if not exception.get(a)]
        if missing:
            yield _finding("OOTS-V2-ERR-002", exception, ", ".join(m.rsplit("}", 1)[-1] for m in missing))
        timestamp = _slot(exception, "Timestamp")
        if timestamp is None or _value_type(timestamp) != "DateTimeValueType":
            yield _finding("OOTS-V2-ERR-003", exception)


def _common_services(root: etree._Element) -> Iterable[_Hit]:
    status = root.get("status")
    if status not in {_SUCCESS, _FAILURE}:
        yield _finding("OOTS-V2-CS-001", root, repr(status))
    if status == _FAILURE and len(root.findall(f"{{{RS}}}Exception")) != 1:
        yield _finding("OOTS-V2-CS-002", root)


_KIND_RULES = {
    "edm-request": "OOTS-V2-REQ-",
    "edm-response": "OOTS-V2-RESP-",
    "edm-error": "OOTS-V2-ERR-",
    **dict.fromkeys(("eb-requirements", "eb-evidence-types", "eb-error", "dsd-response", "dsd-error"), "OOTS-V2-CS-"),
}


def checks(kind: str) -> int:
    """How many provisional rules apply to a document of ``kind`` (the general ones included)."""
    prefix = _KIND_RULES.get(kind)
    if prefix is None:
        return 2  # OOTS-V2-GEN-001 and OOTS-V2-GEN-005
    general = [r for r in RULES if r.startswith("OOTS-V2-GEN-") and r != "OOTS-V2-GEN-005"]
    return len(general) + sum(1 for r in RULES if r.startswith(prefix))


def check(root: etree._Element, detected: Detected) -> list[Finding]:
    """Run the provisional v2.0 checks that fit the document's kind (at most
    :data:`~oots.validation.findings.MAX_FINDINGS_PER_RULE` findings per rule, then a closing one)."""
    findings: list[_Hit] = []
    spec = detected.specification or ""
    expected = "oots-cs:v2.0" if detected.kind.startswith(("eb-", "dsd-")) else "oots-edm:v2.0"
    if spec != expected:
        findings.append(_finding("OOTS-V2-GEN-001", root, f"found {spec!r}, expected {expected!r}"))
    if detected.kind == "edm-request":
        findings.extend(_request(root))
    elif detected.kind == "edm-response":
        findings.extend(_response(root))
    elif detected.kind == "edm-error":
        findings.extend(_error(root))
    elif detected.kind in {"eb-requirements", "eb-evidence-types", "eb-error", "dsd-response", "dsd-error"}:
        findings.extend(_common_services(root))
    else:
        findings.append(_finding("OOTS-V2-GEN-005", root, detected.kind))
    listed: dict[str, int] = {}
    left_out: dict[str, int] = {}
    result: list[Finding] = []
    for hit in findings:
        if listed.get(hit.rule, 0) >= MAX_FINDINGS_PER_RULE:
            left_out[hit.rule] = left_out.get(hit.rule, 0) + 1
            continue
        listed[hit.rule] = listed.get(hit.rule, 0) + 1
        result.append(hit.finding())
    for rule, more in left_out.items():
        result.append(closing(rule, RULES[rule][0], Layer.STRUCTURE, more))
    return result
