"""The documents of the evidence exchange: evidence request, evidence response, error response.

Version-neutral: ``specification`` records the version a document was read in (or is meant for);
the codec of :mod:`oots.edm.codec` writes it in any version, leaving out what the other version has no
slot for.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from oots.edm.codes import ErrorSeverity, Version
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
from oots.errors import ModelError

__all__ = [
    "EvidenceClassification",
    "EvidencePackage",
    "QueryError",
    "QueryRequest",
    "QueryResponse",
    "RepositoryItemRef",
    "RequestHead",
    "ResponseEvidence",
]


#: The form R-EDM-REQ-S004 gives a request id (and R-EDM-ERR-S004 the requestId of its answer).
_REQUEST_ID = re.compile(r"urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE)


def answerable_request_id(value: str) -> bool:
    """Whether an answer may repeat ``value`` as its ``requestId``: a ``urn:uuid:`` (blanks around it
    aside). An error answering a request whose id has another form leaves it out (R-EDM-ERR-S004; the
    requestId may be absent from an ``InvalidRequestExceptionType`` error, R-EDM-ERR-S003)."""
    return _REQUEST_ID.fullmatch(value.strip()) is not None


def _edm_only(version: Version, what: str) -> None:
    if version is not Version.EDM_V1 and version is not Version.EDM_V2:
        raise ModelError(f"{what} is oots-edm:v1.0 or oots-edm:v2.0, not {version}")


@dataclass(frozen=True, slots=True)
class RequestHead:
    """What can be read of an evidence request that cannot be read whole (too large, not well-formed
    or not valid further on): its ``@id`` and, when readable, its version, evidence requester and evidence provider, so
    that an error answering it still names the request (``oots.edm.read_request_head``)."""

    id: str
    specification: Version | None = None
    evidence_requester: tuple[Agent, ...] = ()
    evidence_provider: Agent | None = None


@dataclass(frozen=True, slots=True)
class QueryRequest:
    """The evidence request (``query:QueryRequest``, ebMS action ``ExecuteQueryRequest``)."""

    id: str
    issue_date_time: dt.datetime
    possibility_for_preview: bool
    explicit_request_given: bool
    evidence_requester: tuple[Agent, ...]
    evidence_provider: Agent
    evidence_request: DataServiceEvidenceType
    natural_person: Person | None = None
    legal_person: LegalPerson | None = None
    authorized_representative: Person | None = None
    procedure: str | None = None
    requirements: tuple[Requirement, ...] = ()
    evidence_provider_classifications: tuple[InformationConcept, ...] = ()
    preview_location: str | None = None
    return_location: str | None = None
    language: str | None = None
    specification: Version = Version.EDM_V2

    def __post_init__(self) -> None:
        if (self.natural_person is None) == (self.legal_person is None):
            raise ModelError("an evidence request names exactly one of NaturalPerson and LegalPerson")
        if not self.evidence_requester:
            raise ModelError("an evidence request names at least one EvidenceRequester")
        _edm_only(self.specification, "an evidence request")


@dataclass(frozen=True, slots=True)
class RepositoryItemRef:
    """``rim:RepositoryItemRef``: the MIME part (``cid:...``) carrying the evidence document."""

    href: str
    title: str | None = None

    def __post_init__(self) -> None:
        if not self.href.startswith("cid:") or "@" not in self.href:
            raise ModelError(f"an evidence attachment reference must look like cid:<id>@<domain>, not {self.href!r}")


@dataclass(frozen=True, slots=True)
class EvidenceClassification:
    """``rim:Classification`` of an evidence in a v2.0 package (scheme ``urn:fdc:oots:classification:edm``)."""

    id: str
    node: str
    scheme: str = "urn:fdc:oots:classification:edm"


@dataclass(frozen=True, slots=True)
class ResponseEvidence:
    """One evidence of a response: a ``rim:ExtrinsicObject`` with its metadata and attachment."""

    id: str
    metadata: Evidence
    attachment: RepositoryItemRef
    classification: EvidenceClassification | None = None


@dataclass(frozen=True, slots=True)
class EvidencePackage:
    """v2.0 ``rim:RegistryPackage`` grouping an evidence with its translations and annexes.

    A v1.0 response has no packages: each evidence is read as a package of one with ``id=None``.
    """

    evidences: tuple[ResponseEvidence, ...]
    id: str | None = None


@dataclass(frozen=True, slots=True)
class QueryResponse:
    """The evidence response (``query:QueryResponse`` Success, ebMS action ``ExecuteQueryResponse``)."""

    request_id: str
    evidence_response_identifier: str
    issue_date_time: dt.datetime
    evidence_provider: tuple[Agent, ...]
    evidence_requester: Agent
    packages: tuple[EvidencePackage, ...]
    response_available_date_time: dt.datetime | None = None
    specification: Version = Version.EDM_V2

    def __post_init__(self) -> None:
        _edm_only(self.specification, "an evidence response")

    @property
    def evidences(self) -> tuple[ResponseEvidence, ...]:
        """Every evidence of every package, in order."""
        return tuple(evidence for package in self.packages for evidence in package.evidences)


@dataclass(frozen=True, slots=True)
class QueryError:
    """An error response of the evidence exchange (``QueryResponse`` Failure + ``rs:Exception``).

    ``exception_type`` is the prefixed QName of the code table (``rs:...``, ``query:...``). A
    preview-required error is ``EDM:ERR:0002`` with severity PREVIEW_REQUIRED and a ``preview_location``.
    """

    evidence_response_identifier: str
    code: str
    exception_type: str
    severity: ErrorSeverity
    timestamp: dt.datetime
    error_provider: Agent | None = None
    evidence_requester: Agent | None = None
    request_id: str | None = None
    message: str | None = None
    detail: str | None = None
    preview_location: str | None = None
    preview_descriptions: tuple[Text, ...] = ()
    preview_method: str | None = None
    specification: Version = Version.EDM_V2

    def __post_init__(self) -> None:
        _edm_only(self.specification, "an error response")
        preview = self.severity is ErrorSeverity.PREVIEW_REQUIRED
        if preview and (self.code != "EDM:ERR:0002" or self.preview_location is None):
            raise ModelError("a preview-required error is EDM:ERR:0002 with a PreviewLocation")
        if self.code == "EDM:ERR:0002" and not preview:
            raise ModelError("EDM:ERR:0002 is used only with severity PreviewRequired (R-EDM-ERR-C015)")
        if self.severity is ErrorSeverity.ADDITIONAL_INPUT:
            raise ModelError("severity AdditionalInput belongs to DSD:ERR:0005, not to an evidence exchange error")

    @property
    def preview_required(self) -> bool:
        return self.severity is ErrorSeverity.PREVIEW_REQUIRED
