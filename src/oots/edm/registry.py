"""Common Services documents: Evidence Broker and Data Service Directory answers, their errors, and
the LCM ``SubmitObjectsRequest`` that feeds the registries (with its ``RegistryResponse``).

The EB answers both of its queries with registry objects holding a ``Requirement`` slot (query 2
nests the ``EvidenceTypeList``s in the requirement); the DSD answers with ``DataServiceEvidenceType``
slots. An LCM submission carries requirements, evidence types, evidence type lists, reference
frameworks, data service evidence types and access services (slot ``EvidenceProvider``), plus the
associations between them.
"""

from __future__ import annotations

from dataclasses import dataclass

from oots.edm.codes import ErrorSeverity, Version
from oots.edm.model import (
    AccessService,
    DataServiceEvidenceType,
    EvidenceType,
    EvidenceTypeList,
    InformationConcept,
    JurisdictionDetermination,
    ReferenceFramework,
    Requirement,
)
from oots.errors import ModelError

__all__ = [
    "Association",
    "CommonServicesError",
    "CommonServicesResponse",
    "RegistryClassification",
    "RegistryContent",
    "RegistryItem",
    "RegistryResponse",
    "SubmitObjectsRequest",
]

#: What a registry object of the Common Services can hold.
RegistryContent = (
    Requirement | EvidenceType | EvidenceTypeList | ReferenceFramework | DataServiceEvidenceType | AccessService
)

#: Slot name and ``sdg:`` element of each kind of registry content.
SLOT_OF: dict[type, tuple[str, str]] = {
    Requirement: ("Requirement", "Requirement"),
    EvidenceType: ("EvidenceType", "EvidenceType"),
    EvidenceTypeList: ("EvidenceTypeList", "EvidenceTypeList"),
    ReferenceFramework: ("ReferenceFramework", "ReferenceFramework"),
    DataServiceEvidenceType: ("DataServiceEvidenceType", "DataServiceEvidenceType"),
    AccessService: ("EvidenceProvider", "AccessService"),
}


def _cs_only(version: Version) -> None:
    if version is Version.EDM_V2:
        raise ModelError("a Common Services document is oots-cs:v2.0 (or the v1.0 profile), not oots-edm:v2.0")


@dataclass(frozen=True, slots=True)
class RegistryClassification:
    """``rim:Classification`` of a registry object (``urn:fdc:oots:classification:eb|dsd``)."""

    id: str
    scheme: str
    node: str


@dataclass(frozen=True, slots=True)
class RegistryItem:
    """A ``rim:RegistryObject`` holding one ``sdg:`` object in its slot."""

    id: str
    content: RegistryContent
    classification: RegistryClassification | None = None


@dataclass(frozen=True, slots=True)
class Association:
    """A ``rim:AssociationType`` registry object (``...:AssociationType:ContainsEvidence`` and so on)."""

    id: str
    source: str
    target: str
    type: str


@dataclass(frozen=True, slots=True)
class CommonServicesResponse:
    """A successful EB or DSD answer (``query:QueryResponse`` Success).

    ``specification`` is ``oots-cs:v2.0`` for the v2.0 Common Services (which add that slot) and
    ``oots-edm:v1.0`` for the v1.0 profile, whose answers carry no version.
    """

    items: tuple[RegistryItem, ...] = ()
    total_result_count: int | None = None
    start_index: int | None = None
    request_id: str | None = None
    specification: Version = Version.CS_V2

    def __post_init__(self) -> None:
        _cs_only(self.specification)

    @property
    def requirements(self) -> tuple[Requirement, ...]:
        """The requirements of an Evidence Broker answer."""
        return tuple(i.content for i in self.items if isinstance(i.content, Requirement))

    @property
    def data_service_evidence_types(self) -> tuple[DataServiceEvidenceType, ...]:
        """The data service evidence types of a Data Service Directory answer."""
        return tuple(i.content for i in self.items if isinstance(i.content, DataServiceEvidenceType))


@dataclass(frozen=True, slots=True)
class CommonServicesError:
    """An EB or DSD error (``EB:ERR:*``, ``DSD:ERR:*``; ``QueryResponse`` Failure).

    ``DSD:ERR:0005`` (severity AdditionalInput) asks for more user input: it carries the reduced
    ``data_service_evidence_type`` and a ``jurisdiction_determination`` and/or
    ``user_requested_classification_concepts``; every other error has none of them.
    """

    code: str
    exception_type: str
    severity: ErrorSeverity = ErrorSeverity.ERROR
    message: str | None = None
    detail: str | None = None
    data_service_evidence_type: DataServiceEvidenceType | None = None
    jurisdiction_determination: JurisdictionDetermination | None = None
    user_requested_classification_concepts: tuple[InformationConcept, ...] = ()
    request_id: str | None = None
    specification: Version = Version.CS_V2

    def __post_init__(self) -> None:
        _cs_only(self.specification)
        if not self.code.startswith(("EB:ERR:", "DSD:ERR:")):
            raise ModelError(f"{self.code} is not an Evidence Broker or Data Service Directory error")
        additional = self.severity is ErrorSeverity.ADDITIONAL_INPUT
        if additional != (self.code == "DSD:ERR:0005"):
            raise ModelError("severity AdditionalInput goes with DSD:ERR:0005 and only with it")
        has_slots = (
            self.data_service_evidence_type is not None
            or self.jurisdiction_determination is not None
            or bool(self.user_requested_classification_concepts)
        )
        if has_slots and not additional:
            raise ModelError(f"{self.code} carries no slots; only DSD:ERR:0005 asks for additional input")
        if additional and self.data_service_evidence_type is None:
            raise ModelError("DSD:ERR:0005 carries the DataServiceEvidenceType it needs more input for")
        if self.severity is ErrorSeverity.PREVIEW_REQUIRED:
            raise ModelError("severity PreviewRequired belongs to EDM:ERR:0002")


@dataclass(frozen=True, slots=True)
class SubmitObjectsRequest:
    """An LCM ``lcm:SubmitObjectsRequest``: registry objects and associations, in document order."""

    id: str
    objects: tuple[RegistryItem | Association, ...]

    @property
    def items(self) -> tuple[RegistryItem, ...]:
        return tuple(o for o in self.objects if isinstance(o, RegistryItem))

    @property
    def associations(self) -> tuple[Association, ...]:
        return tuple(o for o in self.objects if isinstance(o, Association))


@dataclass(frozen=True, slots=True)
class RegistryResponse:
    """The registry's answer to an LCM request (``rs:RegistryResponse``), ``LCM:ERR:*`` on failure."""

    request_id: str | None = None
    code: str | None = None
    exception_type: str | None = None
    message: str | None = None
    detail: str | None = None

    def __post_init__(self) -> None:
        if (self.code is None) != (self.exception_type is None):
            raise ModelError("a failed registry response has both an error code and an exception type")

    @property
    def success(self) -> bool:
        return self.code is None
