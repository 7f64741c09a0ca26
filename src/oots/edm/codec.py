"""XML codecs of the exchange documents: one model, a profile per version.

``parse`` detects the document kind from the root element and the version from the
``SpecificationIdentifier`` slot; ``to_xml`` writes a document in its own version or another one.
Differences between the profiles, all in this module:

- ``Procedure``: v1.0 InternationalString (``xml:lang="EN"``), v2.0 StringValueType;
- ``ReturnLocation`` request slot: v2.0 only;
- collections of agents carry ``collectionType=...:Set`` in v2.0 only;
- response evidences: v1.0 ``ExtrinsicObject`` directly in the list, v2.0 wrapped in a
  ``RegistryPackage`` with a ``rim:Classification`` (``urn:fdc:oots:classification:edm``);
- severity URNs: ``urn:sr.oots.tech.europa.eu:...`` in v1.0, ``urn:sr.oots.tech.ec.europa.eu:...`` in
  v2.0 (both read);
- Semantic Repository URLs (``https://sr.oots.tech[.ec].europa.eu/...``) in ``sdg:`` values are
  written in the domain of the target version (both read); LCM requests carry no version and are
  written as they are unless a version is asked for;
- ``sdg:`` fields marked ``_since_v2`` in :mod:`oots.edm.model` are left out of v1.0.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable
from typing import Any

from lxml import etree

from oots import xmlsafe
from oots.edm import _cs
from oots.edm import _regrep as rr
from oots.edm.codes import STATUS_FAILURE, STATUS_SUCCESS, Version
from oots.edm.documents import (
    EvidenceClassification,
    EvidencePackage,
    QueryError,
    QueryRequest,
    QueryResponse,
    RepositoryItemRef,
    RequestHead,
    ResponseEvidence,
    answerable_request_id,
)
from oots.edm.model import (
    Agent,
    DataServiceEvidenceType,
    Evidence,
    InformationConcept,
    LegalPerson,
    Person,
    Requirement,
    Text,
)
from oots.edm.registry import CommonServicesError, CommonServicesResponse, RegistryResponse, SubmitObjectsRequest
from oots.errors import ModelError

__all__ = ["Document", "parse", "parse_element", "read_request_head", "to_element", "to_xml"]

Document = (
    QueryRequest
    | QueryResponse
    | QueryError
    | CommonServicesResponse
    | CommonServicesError
    | SubmitObjectsRequest
    | RegistryResponse
)

_REQUEST_SLOTS = (
    "SpecificationIdentifier",
    "IssueDateTime",
    "Procedure",
    "PreviewLocation",
    "ReturnLocation",
    "PossibilityForPreview",
    "ExplicitRequestGiven",
    "Requirements",
    "EvidenceRequester",
    "EvidenceProvider",
    "EvidenceProviderClassification",
)
_QUERY_SLOTS = ("NaturalPerson", "LegalPerson", "AuthorizedRepresentative", "EvidenceRequest")
_RESPONSE_SLOTS = (
    "SpecificationIdentifier",
    "EvidenceResponseIdentifier",
    "IssueDateTime",
    "EvidenceProvider",
    "EvidenceRequester",
    "ResponseAvailableDateTime",
)
_ERROR_SLOTS = ("SpecificationIdentifier", "EvidenceResponseIdentifier", "ErrorProvider", "EvidenceRequester")
_EXCEPTION_SLOTS = ("Timestamp", "PreviewLocation", "PreviewDescription", "PreviewMethod")
_EDM_VERSIONS = {Version.EDM_V1.value: Version.EDM_V1, Version.EDM_V2.value: Version.EDM_V2}


def _edm_version(found: dict[str, etree._Element], where: str) -> Version:
    value = rr.read_string(rr.need(found, "SpecificationIdentifier", where)).strip()
    version = _EDM_VERSIONS.get(value)
    if version is None:
        raise ModelError(f"{where} is for {value!r}; supported: {', '.join(_EDM_VERSIONS)}")
    return version


def _opt(found: dict[str, etree._Element], slot_name: str, read: Callable[[etree._Element], Any]) -> Any:
    slot = found.get(slot_name)
    return None if slot is None else read(slot)


# ------------------------------------------------------------------------------------------------- request


def _read_request(root: etree._Element) -> QueryRequest:
    where = "the evidence request"
    request_id = root.get("id")
    if not request_id:
        raise ModelError("the evidence request has no id attribute")
    found = rr.slots(root, _REQUEST_SLOTS, where)
    version = _edm_version(found, where)
    if "ReturnLocation" in found and version is Version.EDM_V1:
        raise ModelError("the ReturnLocation slot does not exist in oots-edm:v1.0")
    query = root.find(rr.Q + "Query")
    if query is None:
        raise ModelError("the evidence request has no query:Query element")
    qfound = rr.slots(query, _QUERY_SLOTS, "the query of the evidence request")
    return QueryRequest(
        id=request_id,
        specification=version,
        language=root.get(rr.XML_LANG),
        issue_date_time=rr.read_datetime(rr.need(found, "IssueDateTime", where)),
        procedure=_opt(found, "Procedure", rr.read_string_or_intl),
        preview_location=_opt(found, "PreviewLocation", rr.read_string),
        return_location=_opt(found, "ReturnLocation", rr.read_string),
        possibility_for_preview=rr.read_bool(rr.need(found, "PossibilityForPreview", where)),
        explicit_request_given=rr.read_bool(rr.need(found, "ExplicitRequestGiven", where)),
        requirements=_opt(found, "Requirements", lambda s: rr.read_collection(s, Requirement, "Requirement")) or (),
        evidence_requester=rr.read_collection(rr.need(found, "EvidenceRequester", where), Agent, "Agent"),
        evidence_provider=rr.read_any(rr.need(found, "EvidenceProvider", where), Agent, "Agent"),
        evidence_provider_classifications=_opt(
            found,
            "EvidenceProviderClassification",
            lambda s: rr.read_collection(s, InformationConcept, "EvidenceProviderClassification"),
        )
        or (),
        natural_person=_opt(qfound, "NaturalPerson", lambda s: rr.read_any(s, Person, "Person")),
        legal_person=_opt(qfound, "LegalPerson", lambda s: rr.read_any(s, LegalPerson, "LegalPerson")),
        authorized_representative=_opt(qfound, "AuthorizedRepresentative", lambda s: rr.read_any(s, Person, "Person")),
        evidence_request=rr.read_any(
            rr.need(qfound, "EvidenceRequest", "the query of the evidence request"),
            DataServiceEvidenceType,
            "DataServiceEvidenceType",
        ),
    )


def read_request_head(root: etree._Element) -> RequestHead | None:
    """The id of the evidence request ``root`` (a whole tree, or as much as :func:`oots.xmlsafe.parse_head`
    read), with its version, evidence requester and evidence provider when their slots can be read;
    ``None`` when ``root`` is not a ``query:QueryRequest`` or its ``@id`` is not a ``urn:uuid:`` (an
    answer must not repeat an id of another form, R-EDM-ERR-S004)."""
    if root.tag != rr.Q + "QueryRequest":
        return None
    request_id = (root.get("id") or "").strip()
    if not answerable_request_id(request_id):
        return None
    found = {slot.get("name") or "": slot for slot in root.iterchildren(rr.RIM + "Slot")}
    version: Version | None = None
    requester: tuple[Agent, ...] = ()
    provider: Agent | None = None
    with contextlib.suppress(ModelError):  # each part is read when it can be
        version = _edm_version(found, "the evidence request")
    with contextlib.suppress(ModelError):
        if "EvidenceRequester" in found:
            requester = rr.read_collection(found["EvidenceRequester"], Agent, "Agent")
    with contextlib.suppress(ModelError):
        if "EvidenceProvider" in found:
            provider = rr.read_any(found["EvidenceProvider"], Agent, "Agent")
    return RequestHead(request_id, version, requester, provider)


def _write_request(doc: QueryRequest, version: Version) -> etree._Element:
    v2 = version is Version.EDM_V2
    root = etree.Element(rr.Q + "QueryRequest", nsmap=rr.NSMAP)
    if doc.language is not None:
        root.set(rr.XML_LANG, doc.language)
    root.set("id", doc.id)
    rr.write_string(root, "SpecificationIdentifier", version.value)
    rr.write_datetime(root, "IssueDateTime", doc.issue_date_time)
    if doc.procedure is not None:
        if v2:
            rr.write_string(root, "Procedure", doc.procedure)
        else:
            rr.write_intl(root, "Procedure", [Text(doc.procedure, "EN")])
    if doc.preview_location is not None:
        rr.write_string(root, "PreviewLocation", doc.preview_location)
    if doc.return_location is not None and v2:
        rr.write_string(root, "ReturnLocation", doc.return_location)
    rr.write_bool(root, "PossibilityForPreview", doc.possibility_for_preview)
    rr.write_bool(root, "ExplicitRequestGiven", doc.explicit_request_given)
    if doc.requirements:
        rr.write_collection(root, "Requirements", "Requirement", doc.requirements, v2=v2, set_type=True)
    rr.write_collection(root, "EvidenceRequester", "Agent", doc.evidence_requester, v2=v2, set_type=v2)
    rr.write_any(root, "EvidenceProvider", "Agent", doc.evidence_provider, v2=v2)
    if doc.evidence_provider_classifications:
        rr.write_collection(
            root,
            "EvidenceProviderClassification",
            "EvidenceProviderClassification",
            doc.evidence_provider_classifications,
            v2=v2,
            set_type=v2,
        )
    etree.SubElement(root, rr.Q + "ResponseOption", returnType="LeafClassWithRepositoryItem")
    query = etree.SubElement(root, rr.Q + "Query", queryDefinition="DocumentQuery")
    if doc.natural_person is not None:
        rr.write_any(query, "NaturalPerson", "Person", doc.natural_person, v2=v2)
    if doc.legal_person is not None:
        rr.write_any(query, "LegalPerson", "LegalPerson", doc.legal_person, v2=v2)
    if doc.authorized_representative is not None:
        rr.write_any(query, "AuthorizedRepresentative", "Person", doc.authorized_representative, v2=v2)
    rr.write_any(query, "EvidenceRequest", "DataServiceEvidenceType", doc.evidence_request, v2=v2)
    return root


# ------------------------------------------------------------------------------------------------ response


def _read_extrinsic(el: etree._Element) -> ResponseEvidence:
    kind = el.get(rr.XSI_TYPE)
    if kind is None or rr.qname_value(el, kind) != "rim:ExtrinsicObjectType":
        raise ModelError("an evidence must be a rim:RegistryObject of type rim:ExtrinsicObjectType")
    evidence_id = el.get("id")
    if not evidence_id:
        raise ModelError("an evidence registry object has no id")
    found = rr.slots(el, ("EvidenceMetadata",), "an evidence registry object")
    metadata = rr.read_any(rr.need(found, "EvidenceMetadata", "an evidence registry object"), Evidence, "Evidence")
    classification = None
    c = el.find(rr.RIM + "Classification")
    if c is not None:
        classification = EvidenceClassification(
            id=c.get("id") or "",
            node=c.get("classificationNode") or "",
            scheme=c.get("classificationScheme") or "",
        )
    ref = el.find(rr.RIM + "RepositoryItemRef")
    if ref is None:
        raise ModelError("an evidence registry object has no rim:RepositoryItemRef")
    href = ref.get(rr.XLINK + "href")
    if not href:
        raise ModelError("the rim:RepositoryItemRef of an evidence has no xlink:href")
    return ResponseEvidence(
        id=evidence_id,
        metadata=metadata,
        attachment=RepositoryItemRef(href, ref.get(rr.XLINK + "title")),
        classification=classification,
    )


def _read_packages(root: etree._Element) -> tuple[EvidencePackage, ...]:
    rol = root.find(rr.RIM + "RegistryObjectList")
    if rol is None:
        raise ModelError("the evidence response has no rim:RegistryObjectList")
    packages = []
    for ro in rol.iterchildren(rr.RIM + "RegistryObject"):
        kind = ro.get(rr.XSI_TYPE)
        if kind is not None and rr.qname_value(ro, kind) == "rim:RegistryPackageType":
            inner = ro.find(rr.RIM + "RegistryObjectList")
            items = () if inner is None else inner.iterchildren(rr.RIM + "RegistryObject")
            packages.append(EvidencePackage(tuple(_read_extrinsic(i) for i in items), ro.get("id")))
        else:
            packages.append(EvidencePackage((_read_extrinsic(ro),)))
    return tuple(packages)


def _read_response(root: etree._Element, found: dict[str, etree._Element], version: Version) -> QueryResponse:
    where = "the evidence response"
    request_id = root.get("requestId")
    if not request_id:
        raise ModelError("the evidence response has no requestId attribute")
    return QueryResponse(
        request_id=request_id,
        specification=version,
        evidence_response_identifier=rr.read_string(rr.need(found, "EvidenceResponseIdentifier", where)),
        issue_date_time=rr.read_datetime(rr.need(found, "IssueDateTime", where)),
        evidence_provider=rr.read_collection(rr.need(found, "EvidenceProvider", where), Agent, "Agent"),
        evidence_requester=rr.read_any(rr.need(found, "EvidenceRequester", where), Agent, "Agent"),
        response_available_date_time=_opt(found, "ResponseAvailableDateTime", rr.read_datetime),
        packages=_read_packages(root),
    )


def _package_id(package: EvidencePackage) -> str:
    if package.id is not None:
        return package.id
    first = package.evidences[0].id if package.evidences else "empty"
    return "urn:uuid:" + str(uuid.uuid5(uuid.NAMESPACE_URL, "oots-package:" + first))


def _write_extrinsic(parent: etree._Element, ev: ResponseEvidence, v2: bool) -> None:
    ro = etree.SubElement(parent, rr.RIM + "RegistryObject")
    ro.set(rr.XSI_TYPE, "rim:ExtrinsicObjectType")
    ro.set("id", ev.id)
    rr.write_any(ro, "EvidenceMetadata", "Evidence", ev.metadata, v2=v2)
    if v2 and ev.classification is not None:
        c = etree.SubElement(ro, rr.RIM + "Classification")
        c.set("id", ev.classification.id)
        c.set("classificationScheme", ev.classification.scheme)
        c.set("classificationNode", ev.classification.node)
    ref = etree.SubElement(ro, rr.RIM + "RepositoryItemRef")
    ref.set(rr.XLINK + "href", ev.attachment.href)
    if ev.attachment.title is not None:
        ref.set(rr.XLINK + "title", ev.attachment.title)


def _write_response(doc: QueryResponse, version: Version) -> etree._Element:
    v2 = version is Version.EDM_V2
    root = etree.Element(rr.Q + "QueryResponse", nsmap=rr.NSMAP)
    root.set("status", STATUS_SUCCESS)
    root.set("requestId", doc.request_id)
    rr.write_string(root, "SpecificationIdentifier", version.value)
    rr.write_string(root, "EvidenceResponseIdentifier", doc.evidence_response_identifier)
    rr.write_datetime(root, "IssueDateTime", doc.issue_date_time)
    rr.write_collection(root, "EvidenceProvider", "Agent", doc.evidence_provider, v2=v2, set_type=v2)
    rr.write_any(root, "EvidenceRequester", "Agent", doc.evidence_requester, v2=v2)
    if doc.response_available_date_time is not None:
        rr.write_datetime(root, "ResponseAvailableDateTime", doc.response_available_date_time)
    rol = etree.SubElement(root, rr.RIM + "RegistryObjectList")
    for package in doc.packages:
        if v2:
            pkg = etree.SubElement(rol, rr.RIM + "RegistryObject")
            pkg.set(rr.XSI_TYPE, "rim:RegistryPackageType")
            pkg.set("id", _package_id(package))
            inner = etree.SubElement(pkg, rr.RIM + "RegistryObjectList")
            for ev in package.evidences:
                _write_extrinsic(inner, ev, v2)
        else:
            for ev in package.evidences:
                _write_extrinsic(rol, ev, v2)
    return root


# --------------------------------------------------------------------------------------------------- error


def _read_error(root: etree._Element, found: dict[str, etree._Element], version: Version) -> QueryError:
    where = "the error response"
    exceptions = list(root.iterchildren(rr.RS + "Exception"))
    if len(exceptions) != 1:
        raise ModelError(f"the error response must hold one rs:Exception, not {len(exceptions)}")
    exc = exceptions[0]
    attributes = rr.read_exception(exc)
    severity = rr.read_severity(exc)
    efound = rr.slots(exc, _EXCEPTION_SLOTS, "the rs:Exception")
    return QueryError(
        request_id=root.get("requestId"),
        specification=version,
        evidence_response_identifier=rr.read_string(rr.need(found, "EvidenceResponseIdentifier", where)),
        error_provider=_opt(found, "ErrorProvider", lambda s: rr.read_any(s, Agent, "Agent")),
        evidence_requester=_opt(found, "EvidenceRequester", lambda s: rr.read_any(s, Agent, "Agent")),
        **attributes,
        severity=severity,
        timestamp=rr.read_datetime(rr.need(efound, "Timestamp", "the rs:Exception")),
        preview_location=_opt(efound, "PreviewLocation", rr.read_string),
        preview_descriptions=_opt(efound, "PreviewDescription", rr.read_intl) or (),
        preview_method=_opt(efound, "PreviewMethod", rr.read_string),
    )


def _write_error(doc: QueryError, version: Version) -> etree._Element:
    v2 = version is Version.EDM_V2
    root = etree.Element(rr.Q + "QueryResponse", nsmap=rr.NSMAP)
    root.set("status", STATUS_FAILURE)
    if doc.request_id is not None:
        root.set("requestId", doc.request_id)
    rr.write_string(root, "SpecificationIdentifier", version.value)
    rr.write_string(root, "EvidenceResponseIdentifier", doc.evidence_response_identifier)
    if doc.error_provider is not None:
        rr.write_any(root, "ErrorProvider", "Agent", doc.error_provider, v2=v2)
    if doc.evidence_requester is not None:
        rr.write_any(root, "EvidenceRequester", "Agent", doc.evidence_requester, v2=v2)
    exc = rr.write_error_exception(root, doc, v2=v2)
    rr.write_datetime(exc, "Timestamp", doc.timestamp)
    if doc.preview_location is not None:
        rr.write_string(exc, "PreviewLocation", doc.preview_location)
    if doc.preview_descriptions:
        rr.write_intl(exc, "PreviewDescription", doc.preview_descriptions)
    if doc.preview_method is not None:
        rr.write_string(exc, "PreviewMethod", doc.preview_method)
    return root


# ------------------------------------------------------------------------------------------------- dispatch


def _read_query_response(root: etree._Element) -> Document:
    spec = next((s for s in root.iterchildren(rr.RIM + "Slot") if s.get("name") == "SpecificationIdentifier"), None)
    if spec is not None:
        if rr.read_string(spec).strip() == Version.CS_V2.value:
            rr.slots(root, ("SpecificationIdentifier",), "a Common Services answer")
            return _cs.read_query_response(root, Version.CS_V2)
    elif _cs.looks_like_cs(root):
        return _cs.read_query_response(root, Version.EDM_V1)
    status = root.get("status")
    failure = status == STATUS_FAILURE or root.find(rr.RS + "Exception") is not None
    allowed = _ERROR_SLOTS if failure else _RESPONSE_SLOTS
    where = "the error response" if failure else "the evidence response"
    found = rr.slots(root, allowed, where)
    version = _edm_version(found, where)
    if failure:
        if status != STATUS_FAILURE:
            raise ModelError(f"an error response must have status {STATUS_FAILURE}, not {status!r}")
        return _read_error(root, found, version)
    if status != STATUS_SUCCESS:
        raise ModelError(f"an evidence response must have status {STATUS_SUCCESS}, not {status!r}")
    return _read_response(root, found, version)


def parse_element(root: etree._Element) -> Document:
    """Map an already parsed (and trusted-parser) root element onto a document."""
    tag = root.tag
    if tag == rr.Q + "QueryRequest":
        return _read_request(root)
    if tag == rr.Q + "QueryResponse":
        return _read_query_response(root)
    if tag == rr.LCM + "SubmitObjectsRequest":
        return _cs.read_submit(root)
    if tag == rr.RS + "RegistryResponse":
        return _cs.read_registry_response(root)
    raise ModelError(
        f"{rr.name(root)} is not an OOTS document (expected query:QueryRequest, query:QueryResponse, "
        "lcm:SubmitObjectsRequest or rs:RegistryResponse)"
    )


def parse(data: bytes) -> Document:
    """Parse an OOTS document (hardened parser), detecting its kind and version.

    Raises :class:`oots.errors.XmlError` for input that is not acceptable XML and
    :class:`oots.errors.ModelError` for XML that is not a document of the model.
    """
    return parse_element(xmlsafe.parse(data))


def _target(doc: Document, version: Version | str | None) -> Version:
    if version is None:
        return doc.specification if not isinstance(doc, SubmitObjectsRequest | RegistryResponse) else Version.EDM_V1
    try:
        target = Version(version)
    except ValueError:
        raise ModelError(f"unknown version {version!r}; known: {', '.join(v.value for v in Version)}") from None
    if isinstance(doc, SubmitObjectsRequest | RegistryResponse):
        return target  # the same in every version
    if isinstance(doc, CommonServicesResponse | CommonServicesError):
        return Version.EDM_V1 if target is Version.EDM_V1 else Version.CS_V2
    if target not in (Version.EDM_V1, Version.EDM_V2):
        raise ModelError(f"a {type(doc).__name__} is written as oots-edm:v1.0 or oots-edm:v2.0, not {target}")
    return target


def to_element(doc: Document, version: Version | str | None = None) -> etree._Element:
    """The document as an lxml element in ``version`` (default: the document's own)."""
    target = _target(doc, version)
    if isinstance(doc, QueryRequest):
        return _write_request(doc, target)
    if isinstance(doc, QueryResponse):
        return _write_response(doc, target)
    if isinstance(doc, QueryError):
        return _write_error(doc, target)
    if isinstance(doc, CommonServicesResponse):
        return _cs.write_response(doc, target)
    if isinstance(doc, CommonServicesError):
        return _cs.write_error(doc, target)
    if isinstance(doc, SubmitObjectsRequest):
        return _cs.write_submit(doc, None if version is None else target is not Version.EDM_V1)
    return _cs.write_registry_response(doc)


def to_xml(doc: Document, version: Version | str | None = None) -> bytes:
    """Serialise ``doc`` as UTF-8 XML in ``version`` (default: the document's own version).

    Raises :class:`oots.errors.ModelError` when a value holds characters XML 1.0 cannot carry.
    """
    try:
        element = to_element(doc, version)
    except ValueError as exc:  # lxml refuses control characters and non-characters in text and attributes
        raise ModelError(f"the document cannot be written as XML: {exc}") from None
    return etree.tostring(element, xml_declaration=True, encoding="UTF-8", pretty_print=True)
