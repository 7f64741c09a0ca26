"""Tell what an OOTS document is (its kind) and which data model version it claims, from the XML alone.

The kind follows the root element, its status, the exception code and the slots it carries; the version
comes from the ``SpecificationIdentifier`` slot (``oots-edm:v1.0``, ``oots-edm:v2.0``, ``oots-cs:v2.0``).
Documents without that slot (the v1.0 EB, DSD and LCM messages) are taken as v1.0.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from lxml import etree

from oots.ns import EB, LCM, QUERY, RIM, RS, SDG

__all__ = ["EBMS_HEADER", "KINDS", "Detected", "detect"]

#: The kind of an ebMS header (``eb:Messaging``), checked by a rule set's ``EDM-ebMS.sch``.
EBMS_HEADER = "ebms-header"

#: Every document kind and the official Schematron files (stems) that apply to it, structure first.
KINDS: dict[str, tuple[str, ...]] = {
    "edm-request": ("EDM-REQ-S", "EDM-REQ-C"),
    "edm-response": ("EDM-RESP-S", "EDM-RESP-C"),
    "edm-error": ("EDM-ERR-S", "EDM-ERR-C"),
    "eb-requirements": ("EB-REQ-S", "EB-REQ-C"),
    "eb-evidence-types": ("EB-EVI-S", "EB-EVI-C"),
    "eb-error": ("EB-ERR",),
    "dsd-response": ("DSD-RESP-S", "DSD-RESP-C"),
    "dsd-error": ("DSD-ERR-S", "DSD-ERR-C"),
    "eb-submission": ("EB-SUB-S", "EB-SUB-C"),
    "dsd-submission": ("DSD-SUB-S", "DSD-SUB-C"),
    "lcm-success": ("LCM-SUC",),
    "lcm-error": ("LCM-ERR",),
    "ebms-header": ("EDM-ebMS",),
}

_VERSION = re.compile(r"^oots-(?:edm|cs):v(\d+\.\d+)")
_EB_SLOTS = {"EvidenceType", "EvidenceTypeList", "Requirement", "ReferenceFramework"}
_DSD_SLOTS = {"DataServiceEvidenceType", "EvidenceProvider"}


@dataclass(frozen=True, slots=True)
class Detected:
    """``kind`` is one of :data:`KINDS` or ``unknown``; ``root`` the root's ``{ns}name``."""

    kind: str
    version: str | None
    root: str
    specification: str | None


def _slot_value(root: etree._Element, name: str) -> str | None:
    for slot in root.iterchildren(f"{{{RIM}}}Slot"):
        if slot.get("name") == name:
            for value in slot.iter(f"{{{RIM}}}Value"):
                return (value.text or "").strip()
            return ""
    return None


def _slot_names(root: etree._Element) -> set[str]:
    return {str(s.get("name")) for s in root.iter(f"{{{RIM}}}Slot") if s.get("name")}


def _kind(root: etree._Element, spec: str | None) -> str:
    tag = root.tag
    common_services = spec is not None and spec.startswith("oots-cs:")
    if tag == f"{{{QUERY}}}QueryRequest":
        return "edm-request"
    if tag == f"{{{QUERY}}}QueryResponse":
        exception = root.find(f"{{{RS}}}Exception")
        status = root.get("status") or ""
        if exception is not None or status.endswith(":Failure"):
            code = (exception.get("code") if exception is not None else None) or ""
            if code.startswith("EB:"):
                return "eb-error"
            if code.startswith("DSD:"):
                return "dsd-error"
            if code.startswith("EDM:"):
                return "edm-error"
            top = {str(s.get("name")) for s in root.iterchildren(f"{{{RIM}}}Slot")}
            if top & {"SpecificationIdentifier", "ErrorProvider", "EvidenceRequester"}:
                return "edm-error"
            return "dsd-error" if exception is not None and len(exception) else "eb-error"
        names = _slot_names(root)
        top = {str(s.get("name")) for s in root.iterchildren(f"{{{RIM}}}Slot")}
        if "DataServiceEvidenceType" in names:
            return "dsd-response"
        if next(root.iter(f"{{{SDG}}}EvidenceTypeList"), None) is not None:
            return "eb-evidence-types"
        if "Requirement" in names and ("SpecificationIdentifier" not in top or common_services):
            return "eb-requirements"
        return "edm-response"
    if tag == f"{{{LCM}}}SubmitObjectsRequest":
        schemes = {str(c.get("classificationScheme")) for c in root.iter(f"{{{RIM}}}Classification")}
        if "urn:fdc:oots:classification:dsd" in schemes:
            return "dsd-submission"
        if "urn:fdc:oots:classification:eb" in schemes:
            return "eb-submission"
        names = _slot_names(root)
        return "dsd-submission" if names & _DSD_SLOTS and not names & _EB_SLOTS else "eb-submission"
    if tag == f"{{{RS}}}RegistryResponse":
        failed = root.find(f"{{{RS}}}Exception") is not None or (root.get("status") or "").endswith(":Failure")
        return "lcm-error" if failed else "lcm-success"
    return "unknown"


def _specification_property(root: etree._Element) -> str | None:
    for prop in root.iterfind(f"{{{EB}}}UserMessage/{{{EB}}}MessageProperties/{{{EB}}}Property"):
        if prop.get("name") == "SpecificationId":
            return (prop.text or "").strip()
    return None


def detect(root: etree._Element) -> Detected:
    """Detect the kind and version of the document whose root element is ``root``."""
    if root.tag == f"{{{EB}}}Messaging":
        # the ebMS header of an OOTS message; its version is in the SpecificationId message property
        spec = _specification_property(root)
        match = _VERSION.match(spec or "")
        return Detected("ebms-header", match.group(1) if match else None, str(root.tag), spec)
    spec = _slot_value(root, "SpecificationIdentifier")
    kind = _kind(root, spec)
    version: str | None
    if spec is not None:
        match = _VERSION.match(spec)
        version = match.group(1) if match else None
    else:
        version = None if kind == "unknown" else "1.0"
    return Detected(kind, version, str(root.tag), spec)
