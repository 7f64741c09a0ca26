"""Codec of the Common Services documents (EB/DSD answers and errors, LCM request and response)."""

from __future__ import annotations

from typing import Any

from lxml import etree

from oots.edm import _regrep as rr
from oots.edm.codes import STATUS_FAILURE, STATUS_SUCCESS, ErrorSeverity, Version
from oots.edm.model import DataServiceEvidenceType, InformationConcept, JurisdictionDetermination
from oots.edm.registry import (
    SLOT_OF,
    Association,
    CommonServicesError,
    CommonServicesResponse,
    RegistryClassification,
    RegistryContent,
    RegistryItem,
    RegistryResponse,
    SubmitObjectsRequest,
)
from oots.errors import ModelError

_CONTENT_OF: dict[str, tuple[str, type[Any]]] = {slot: (tag, cls) for cls, (slot, tag) in SLOT_OF.items()}
_DSD5_SLOTS = ("DataServiceEvidenceType", "JurisdictionDetermination", "UserRequestedClassificationConcepts")
_ASSOCIATION = "rim:AssociationType"


def _int(value: str | None, what: str) -> int | None:
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        raise ModelError(f"{what} is {value!r}, not an integer") from None


# ------------------------------------------------------------------------------------------ registry objects


def _read_object(ro: etree._Element) -> RegistryItem | Association:
    object_id = ro.get("id")
    if not object_id:
        raise ModelError("a rim:RegistryObject has no id")
    kind = ro.get(rr.XSI_TYPE)
    if kind is not None and rr.qname_value(ro, kind) == _ASSOCIATION:
        source, target, atype = ro.get("sourceObject"), ro.get("targetObject"), ro.get("type")
        if not (source and target and atype):
            raise ModelError(f"association {object_id} needs sourceObject, targetObject and type")
        return Association(object_id, source, target, atype)
    found = rr.slots(ro, tuple(_CONTENT_OF), "a registry object")
    if len(found) != 1:
        raise ModelError(f"registry object {object_id} must hold exactly one slot, not {len(found)}")
    ((slot_name, slot),) = found.items()
    tag, cls = _CONTENT_OF[slot_name]
    content: RegistryContent = rr.read_any(slot, cls, tag)
    classification = None
    c = ro.find(rr.RIM + "Classification")
    if c is not None:
        classification = RegistryClassification(
            id=c.get("id") or "", scheme=c.get("classificationScheme") or "", node=c.get("classificationNode") or ""
        )
    return RegistryItem(object_id, content, classification)


def _write_object(parent: etree._Element, obj: RegistryItem | Association, v2: bool | None) -> None:
    ro = etree.SubElement(parent, rr.RIM + "RegistryObject")
    if isinstance(obj, Association):
        ro.set(rr.XSI_TYPE, _ASSOCIATION)
        ro.set("id", obj.id)
        ro.set("sourceObject", obj.source)
        ro.set("targetObject", obj.target)
        ro.set("type", obj.type)
        return
    ro.set("id", obj.id)
    slot_name, tag = SLOT_OF[type(obj.content)]
    rr.write_any(ro, slot_name, tag, obj.content, v2=v2)
    if obj.classification is not None:
        c = etree.SubElement(ro, rr.RIM + "Classification")
        c.set("id", obj.classification.id)
        c.set("classificationScheme", obj.classification.scheme)
        c.set("classificationNode", obj.classification.node)


def _read_objects(root: etree._Element) -> tuple[RegistryItem | Association, ...]:
    rol = root.find(rr.RIM + "RegistryObjectList")
    if rol is None:
        return ()
    return tuple(_read_object(ro) for ro in rol.iterchildren(rr.RIM + "RegistryObject"))


# ----------------------------------------------------------------------------------------- query responses


def looks_like_cs(root: etree._Element) -> bool:
    """A ``QueryResponse`` without SpecificationIdentifier: an EB/DSD answer of the v1.0 profile?"""
    exc = root.find(rr.RS + "Exception")
    if exc is not None:
        return (exc.get("code") or "").startswith(("EB:ERR:", "DSD:ERR:"))
    if root.find(rr.RIM + "Slot") is not None:
        return False
    rol = root.find(rr.RIM + "RegistryObjectList")
    if rol is None:
        return True
    for ro in rol.iterchildren(rr.RIM + "RegistryObject"):
        return any(s.get("name") in _CONTENT_OF for s in ro.iterchildren(rr.RIM + "Slot"))
    return True


def read_query_response(root: etree._Element, version: Version) -> CommonServicesResponse | CommonServicesError:
    status = root.get("status")
    exc = root.find(rr.RS + "Exception")
    if status == STATUS_FAILURE or exc is not None:
        if status != STATUS_FAILURE:
            raise ModelError(f"an error response must have status {STATUS_FAILURE}, not {status!r}")
        if exc is None:
            raise ModelError("the error response has no rs:Exception")
        return _read_cs_error(root, exc, version)
    if status != STATUS_SUCCESS:
        raise ModelError(f"a Common Services answer must have status {STATUS_SUCCESS}, not {status!r}")
    items = []
    for obj in _read_objects(root):
        if isinstance(obj, Association):
            raise ModelError("a Common Services query answer holds no associations")
        items.append(obj)
    return CommonServicesResponse(
        items=tuple(items),
        total_result_count=_int(root.get("totalResultCount"), "totalResultCount"),
        start_index=_int(root.get("startIndex"), "startIndex"),
        request_id=root.get("requestId"),
        specification=version,
    )


def _read_cs_error(root: etree._Element, exc: etree._Element, version: Version) -> CommonServicesError:
    severity = rr.read_severity(exc)
    found = rr.slots(exc, _DSD5_SLOTS, "the rs:Exception")
    dset = found.get("DataServiceEvidenceType")
    jd = found.get("JurisdictionDetermination")
    concepts = found.get("UserRequestedClassificationConcepts")
    return CommonServicesError(
        **rr.read_exception(exc),
        severity=severity,
        data_service_evidence_type=None
        if dset is None
        else rr.read_any(dset, DataServiceEvidenceType, "DataServiceEvidenceType"),
        jurisdiction_determination=None
        if jd is None
        else rr.read_any(jd, JurisdictionDetermination, "EvidenceProviderJurisdictionDetermination"),
        user_requested_classification_concepts=()
        if concepts is None
        else rr.read_collection(concepts, InformationConcept, "EvidenceProviderClassification"),
        request_id=root.get("requestId"),
        specification=version,
    )


def _query_response_root(status: str, request_id: str | None, version: Version) -> etree._Element:
    root = etree.Element(rr.Q + "QueryResponse", nsmap=rr.NSMAP)
    root.set("status", status)
    if request_id is not None:
        root.set("requestId", request_id)
    if version is Version.CS_V2:
        rr.write_string(root, "SpecificationIdentifier", version.value)
    return root


def write_response(doc: CommonServicesResponse, version: Version) -> etree._Element:
    root = _query_response_root(STATUS_SUCCESS, doc.request_id, version)
    if doc.total_result_count is not None:
        root.set("totalResultCount", str(doc.total_result_count))
    if doc.start_index is not None:
        root.set("startIndex", str(doc.start_index))
    rol = etree.SubElement(root, rr.RIM + "RegistryObjectList")
    for item in doc.items:
        _write_object(rol, item, version is Version.CS_V2)
    return root


def write_error(doc: CommonServicesError, version: Version) -> etree._Element:
    v2 = version is Version.CS_V2
    root = _query_response_root(STATUS_FAILURE, doc.request_id, version)
    exc = rr.write_error_exception(root, doc, v2=v2)
    if doc.data_service_evidence_type is not None:
        rr.write_any(exc, "DataServiceEvidenceType", "DataServiceEvidenceType", doc.data_service_evidence_type, v2=v2)
    if doc.jurisdiction_determination is not None:
        rr.write_any(
            exc,
            "JurisdictionDetermination",
            "EvidenceProviderJurisdictionDetermination",
            doc.jurisdiction_determination,
            v2=v2,
        )
    if doc.user_requested_classification_concepts:
        rr.write_collection(
            exc,
            "UserRequestedClassificationConcepts",
            "EvidenceProviderClassification",
            doc.user_requested_classification_concepts,
            v2=v2,
            set_type=True,
        )
    return root


# ------------------------------------------------------------------------------------------------------ LCM


def read_submit(root: etree._Element) -> SubmitObjectsRequest:
    request_id = root.get("id")
    if not request_id:
        raise ModelError("the lcm:SubmitObjectsRequest has no id attribute")
    if root.find(rr.RIM + "RegistryObjectList") is None:
        raise ModelError("the lcm:SubmitObjectsRequest has no rim:RegistryObjectList")
    return SubmitObjectsRequest(request_id, _read_objects(root))


def write_submit(doc: SubmitObjectsRequest, v2: bool | None) -> etree._Element:
    root = etree.Element(rr.LCM + "SubmitObjectsRequest", nsmap={**rr.NSMAP, "lcm": rr.LCM[1:-1]})
    root.set("id", doc.id)
    rol = etree.SubElement(root, rr.RIM + "RegistryObjectList")
    for obj in doc.objects:
        _write_object(rol, obj, v2)
    return root


def read_registry_response(root: etree._Element) -> RegistryResponse:
    status = root.get("status")
    exc = root.find(rr.RS + "Exception")
    if status == STATUS_SUCCESS and exc is None:
        return RegistryResponse(request_id=root.get("requestId"))
    if status != STATUS_FAILURE or exc is None:
        raise ModelError("a registry response is Success without rs:Exception or Failure with one")
    return RegistryResponse(request_id=root.get("requestId"), **rr.read_exception(exc))


def write_registry_response(doc: RegistryResponse) -> etree._Element:
    root = etree.Element(rr.RS + "RegistryResponse", nsmap=rr.NSMAP)
    root.set("status", STATUS_SUCCESS if doc.success else STATUS_FAILURE)
    if doc.request_id is not None:
        root.set("requestId", doc.request_id)
    if not doc.success:
        rr.write_exception(
            root,
            exception_type=doc.exception_type or "",
            severity=ErrorSeverity.ERROR.urn(ec_domain=False),
            code=doc.code or "",
            message=doc.message,
            detail=doc.detail,
        )
    return root
