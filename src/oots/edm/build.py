"""Convenient constructors for what the roles build, with safe defaults.

Fresh ``urn:uuid:`` ids, timestamps passed in or now (UTC, whole milliseconds), agent classifications
set for the role they play, and agents cut down to what each slot allows (only Identifier and Name
where the rules say so).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from collections.abc import Sequence

from oots.edm.codes import PREVIEW_REQUIRED, ErrorCode, ErrorSeverity, Version, error_code
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
    AgentClassification,
    DataServiceEvidenceType,
    Evidence,
    EvidenceTypeDistribution,
    InformationConcept,
    JurisdictionDetermination,
    LegalPerson,
    Person,
    Requirement,
    Text,
)
from oots.edm.registry import CommonServicesError, CommonServicesResponse, RegistryContent, RegistryItem
from oots.errors import ModelError

__all__ = [
    "additional_input",
    "common_services_answer",
    "common_services_error",
    "evidence_request",
    "evidence_response",
    "new_urn_uuid",
    "new_uuid",
    "now_utc",
    "preview_required",
    "query_error",
    "requested_evidence_type",
    "response_evidence",
]


def new_uuid() -> str:
    """A fresh random RFC 4122 UUID (bare, as EvidenceResponseIdentifier and sdg Identifiers use)."""
    return str(uuid.uuid4())


def new_urn_uuid() -> str:
    """A fresh ``urn:uuid:`` id (QueryRequest/@id, RegistryObject/@id)."""
    return "urn:uuid:" + new_uuid()


def now_utc() -> dt.datetime:
    """Now, in UTC, to whole milliseconds (what xsd:dateTime values in OOTS messages carry)."""
    now = dt.datetime.now(dt.UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def _as(agent: Agent, role: AgentClassification) -> Agent:
    return agent if agent.classification is not None else dataclasses.replace(agent, classification=role.value)


def _bare(agent: Agent) -> Agent:
    """Only Identifier and Name (EvidenceProvider in a request, EvidenceRequester in a response)."""
    return Agent(identifier=agent.identifier, names=agent.names)


def requested_evidence_type(
    offered: DataServiceEvidenceType, distribution: EvidenceTypeDistribution | None = None
) -> DataServiceEvidenceType:
    """The evidence type as a request carries it, from the DSD's answer: the chosen distribution only.

    ``distribution`` defaults to the first one the DSD offers; access services, jurisdiction
    determination and classifications are dropped (R-EDM-REQ-S045).
    """
    chosen = distribution or (offered.distributed_as[0] if offered.distributed_as else None)
    if chosen is None:
        raise ModelError("the data service evidence type offers no distribution to request")
    return DataServiceEvidenceType(
        identifier=offered.identifier,
        evidence_type_classification=offered.evidence_type_classification,
        titles=offered.titles,
        descriptions=offered.descriptions,
        distributed_as=(chosen,),
    )


def evidence_request(
    *,
    requester: Agent | Sequence[Agent],
    provider: Agent,
    evidence_type: DataServiceEvidenceType,
    subject: Person | LegalPerson,
    procedure: str | None = None,
    requirements: Sequence[Requirement] = (),
    possibility_for_preview: bool = False,
    explicit_request_given: bool = True,
    authorized_representative: Person | None = None,
    classifications: Sequence[InformationConcept] = (),
    preview_location: str | None = None,
    return_location: str | None = None,
    language: str | None = None,
    version: Version = Version.EDM_V2,
    issued: dt.datetime | None = None,
    request_id: str | None = None,
) -> QueryRequest:
    """An evidence request for ``subject`` (a natural or legal person) and one evidence type.

    A single requester agent is classified ``ER``; in a sequence, unclassified agents after the
    first are taken as intermediary platforms (``IP``).
    """
    agents = [requester] if isinstance(requester, Agent) else list(requester)
    if not agents:
        raise ModelError("an evidence request needs an evidence requester")
    requesters = (
        _as(agents[0], AgentClassification.EVIDENCE_REQUESTER),
        *tuple(_as(a, AgentClassification.INTERMEDIARY_PLATFORM) for a in agents[1:]),
    )
    return QueryRequest(
        id=request_id or new_urn_uuid(),
        specification=version,
        language=language,
        issue_date_time=issued or now_utc(),
        procedure=procedure,
        preview_location=preview_location,
        return_location=return_location,
        possibility_for_preview=possibility_for_preview,
        explicit_request_given=explicit_request_given,
        requirements=tuple(requirements),
        evidence_requester=requesters,
        evidence_provider=_bare(provider),
        evidence_provider_classifications=tuple(classifications),
        natural_person=subject if isinstance(subject, Person) else None,
        legal_person=subject if isinstance(subject, LegalPerson) else None,
        authorized_representative=authorized_representative,
        evidence_request=evidence_type,
    )


def response_evidence(
    metadata: Evidence,
    attachment: str,
    *,
    title: str | None = None,
    node: str | None = "MainEvidence",
    evidence_id: str | None = None,
) -> ResponseEvidence:
    """One evidence of a response: its metadata and the ``cid:`` of the MIME part carrying it.

    ``node`` classifies it in a v2.0 package (``MainEvidence``, ...); None for no classification.
    """
    return ResponseEvidence(
        id=evidence_id or new_urn_uuid(),
        metadata=metadata,
        attachment=RepositoryItemRef(attachment, title),
        classification=None if node is None else EvidenceClassification(new_urn_uuid(), node),
    )


def evidence_response(
    request: QueryRequest,
    *,
    provider: Agent | Sequence[Agent],
    evidences: Sequence[ResponseEvidence | EvidencePackage],
    issued: dt.datetime | None = None,
    response_available: dt.datetime | None = None,
    version: Version | None = None,
) -> QueryResponse:
    """The response to ``request`` with ``evidences`` (each evidence alone, or packages of several)."""
    providers = [provider] if isinstance(provider, Agent) else list(provider)
    packages = tuple(
        item if isinstance(item, EvidencePackage) else EvidencePackage((item,), new_urn_uuid()) for item in evidences
    )
    return QueryResponse(
        request_id=request.id,
        specification=version or request.specification,
        evidence_response_identifier=new_uuid(),
        issue_date_time=issued or now_utc(),
        evidence_provider=tuple(_as(p, AgentClassification.EVIDENCE_PROVIDER) for p in providers),
        evidence_requester=_bare(request.evidence_requester[0]),
        response_available_date_time=response_available,
        packages=packages,
    )


def query_error(
    code: str,
    *,
    request: QueryRequest | RequestHead | None = None,
    error_provider: Agent | None = None,
    detail: str | None = None,
    message: str | None = None,
    timestamp: dt.datetime | None = None,
    version: Version | None = None,
) -> QueryError:
    """An error response of ``code`` (``EDM:ERR:0001`` ... ``0008``), type and message from the table.

    Answering ``request`` copies its id and evidence requester and keeps its version; a
    :class:`~oots.edm.RequestHead` (a request that could not be read whole) gives what it has. An id
    that is not a ``urn:uuid:`` is not repeated (R-EDM-ERR-S004): the error has no ``requestId``, as
    an ``EDM:ERR:0003`` may (R-EDM-ERR-S003).
    """
    if not code.startswith("EDM:ERR:"):
        raise ModelError(f"{code} is not an evidence exchange error (EDM:ERR:*)")
    row = error_code(code)
    if code == PREVIEW_REQUIRED.code:
        raise ModelError("EDM:ERR:0002 is the preview-required error: build it with preview_required()")
    return _error(
        row,
        request=request,
        error_provider=error_provider,
        detail=detail,
        message=message,
        timestamp=timestamp,
        version=version,
    )


def _error(
    row: ErrorCode,
    *,
    request: QueryRequest | RequestHead | None,
    error_provider: Agent | None,
    detail: str | None,
    message: str | None = None,
    timestamp: dt.datetime | None,
    version: Version | None = None,
    severity: ErrorSeverity = ErrorSeverity.ERROR,
    preview_location: str | None = None,
    preview_method: str | None = None,
    preview_descriptions: tuple[Text, ...] = (),
) -> QueryError:
    return QueryError(
        request_id=request.id if request is not None and answerable_request_id(request.id) else None,
        specification=version or (request.specification if request is not None else None) or Version.EDM_V2,
        evidence_response_identifier=new_uuid(),
        error_provider=None if error_provider is None else _as(error_provider, AgentClassification.ERROR_PROVIDER),
        evidence_requester=(
            _bare(request.evidence_requester[0]) if request is not None and request.evidence_requester else None
        ),
        code=row.code,
        exception_type=row.exception_type,
        severity=severity,
        message=message or row.message,
        detail=detail,
        timestamp=timestamp or now_utc(),
        preview_location=preview_location,
        preview_method=preview_method,
        preview_descriptions=preview_descriptions,
    )


def preview_required(
    request: QueryRequest,
    *,
    location: str,
    error_provider: Agent,
    method: str = "GET",
    description: Sequence[Text] = (),
    detail: str | None = None,
    timestamp: dt.datetime | None = None,
    allow_http: bool = False,
) -> QueryError:
    """``EDM:ERR:0002`` PreviewRequired: send the user to ``location`` (https) to preview the evidence.

    ``allow_http`` lets a local demo network on loopback use a plain-http location; such an error breaks
    rule R-EDM-ERR-C019 and must never leave a real network."""
    if not location.startswith("https://") and not (allow_http and location.startswith("http://")):
        raise ModelError("a PreviewLocation must start with https://")
    if method not in ("GET", "POST"):
        raise ModelError("a PreviewMethod is GET or POST")
    return _error(
        PREVIEW_REQUIRED,
        request=request,
        error_provider=error_provider,
        detail=detail,
        timestamp=timestamp,
        severity=ErrorSeverity.PREVIEW_REQUIRED,
        preview_location=location,
        preview_method=method,
        preview_descriptions=tuple(description),
    )


def common_services_answer(
    contents: Sequence[RegistryContent], *, version: Version = Version.CS_V2
) -> CommonServicesResponse:
    """An Evidence Broker or DSD answer holding ``contents`` (requirements or data service evidence
    types), each in a registry object with a fresh ``urn:uuid:`` id; counts set to match.

    A DSD answer holds one data service evidence type (R-DSD-RESP-S0015), its access services inside.
    """
    return CommonServicesResponse(
        items=tuple(RegistryItem(new_urn_uuid(), content) for content in contents),
        total_result_count=len(contents),
        start_index=0,
        specification=version,
    )


def common_services_error(
    code: str, *, detail: str | None = None, message: str | None = None, version: Version = Version.CS_V2
) -> CommonServicesError:
    """An ``EB:ERR:*`` or ``DSD:ERR:*`` error; type and message from the table (``detail`` names the
    parameter at fault, e.g. ``country-code``). ``DSD:ERR:0005`` is built with :func:`additional_input`."""
    row = error_code(code)
    if code == "DSD:ERR:0005":
        raise ModelError("DSD:ERR:0005 asks for additional input: build it with additional_input()")
    return CommonServicesError(
        code=row.code,
        exception_type=row.exception_type,
        severity=row.severity,
        message=message or row.message,
        detail=detail,
        specification=version,
    )


def additional_input(
    evidence_type: DataServiceEvidenceType,
    *,
    jurisdiction: JurisdictionDetermination | None = None,
    classifications: Sequence[InformationConcept] = (),
    version: Version = Version.CS_V2,
) -> CommonServicesError:
    """``DSD:ERR:0005``: the DSD needs the user's jurisdiction and/or classification answers before it
    can name a data service (R-DSD-RESP-S022: at least one of the two)."""
    if jurisdiction is None and not classifications:
        raise ModelError("DSD:ERR:0005 asks for a jurisdiction determination or classification concepts")
    row = error_code("DSD:ERR:0005")
    parts = [
        name
        for name, given in (
            ("JurisdictionDetermination", jurisdiction),
            ("UserRequestedClassificationConcepts", classifications),
        )
        if given
    ]
    return CommonServicesError(
        code=row.code,
        exception_type=row.exception_type,
        severity=row.severity,
        message=row.message,
        detail=" and ".join(parts),
        data_service_evidence_type=evidence_type,
        jurisdiction_determination=jurisdiction,
        user_requested_classification_concepts=tuple(classifications),
        specification=version,
    )
