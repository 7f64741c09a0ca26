"""The three Common Services queries: identifiers, parameters, and the RegRep error each mistake gets.

``parse_query(service, params)`` turns the query string of ``GET /rest/search`` into a typed query or
raises :class:`QueryFailure` carrying the ``EB:ERR:*`` / ``DSD:ERR:*`` code to answer with and the
``detail`` naming the parameter. Which code a mistake gets:

============================================  ==============  ===============
mistake                                       EB              DSD
============================================  ==============  ===============
no or unknown ``queryId``                     EB:ERR:0007     DSD:ERR:0004
unknown, repeated or missing parameter,       EB:ERR:0003     DSD:ERR:0003
malformed value, over-long value
``procedure-id`` not in the code list         EB:ERR:0005     —
``country-code`` not an OOTS country          EB:ERR:0006     DSD:ERR:0006
jurisdiction level code wrong / w/o country   EB:ERR:0004     DSD:ERR:0006
malformed ``requirement-id`` URL              EB:ERR:0003     —
bad classification / context id value         —              DSD:ERR:0006
============================================  ==============  ===============

The lookups (requirement or evidence type unknown, empty result, more input needed) are the
catalogue's (:mod:`oots.cs.catalogue`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from oots.errors import RemoteProtocolError

__all__ = [
    "COUNTRY_CODES",
    "DSD_DATA_SERVICES",
    "EB_EVIDENCE_TYPES",
    "EB_REQUIREMENTS",
    "PROCEDURE_CODES",
    "DataServicesQuery",
    "EvidenceTypesQuery",
    "Query",
    "QueryFailure",
    "RequirementsQuery",
    "Service",
    "parse_query",
]

EB_REQUIREMENTS = "urn:fdc:oots:eb:ebxml-regrep:queries:requirements-by-procedure-and-jurisdiction"
EB_EVIDENCE_TYPES = "urn:fdc:oots:eb:ebxml-regrep:queries:evidence-types-by-requirement-and-jurisdiction"
DSD_DATA_SERVICES = "urn:fdc:oots:dsd:ebxml-regrep:queries:dataservices-by-evidencetype-and-jurisdiction"

#: Code list ``Procedures`` (2022-12), Annex II of Regulation 2018/1724.
PROCEDURE_CODES = frozenset(
    "R1 S1 T1 T2 T3 U1 U2 U3 U4 V1 V2 V3 V4 W1 W2 X1 X2 X3 X4 X5 X6".split()  # noqa: SIM905
)
#: Countries taking part in OOTS (EU with ``EL`` for Greece, plus the EEA states).
COUNTRY_CODES = frozenset(
    "AT BE BG CY CZ DE DK EE EL ES FI FR HR HU IE IT LT LU LV MT NL PL PT RO SE SI SK IS LI NO".split()  # noqa: SIM905
)
#: Longest parameter value accepted (identifiers are URLs of ~100 characters).
MAX_VALUE_LENGTH = 512
#: Most parameters accepted in one query.
MAX_PARAMETERS = 32

_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_URL = re.compile(r"^https?://[A-Za-z0-9.-]+(?::[0-9]{1,5})?/[A-Za-z0-9._~%/-]*[A-Za-z0-9._~%-]$")
_COUNTRY = re.compile(r"^[A-Z]{2}$")
_NUTS = re.compile(r"^[A-Z]{2}[A-Z0-9]{1,3}$")
_LAU = re.compile(r"^[A-Za-z0-9_-]{1,20}$")
_TOKEN = re.compile(r"^[A-Za-z0-9._:/@+-]{1,256}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_SPEC = re.compile(r"^[A-Za-z0-9._:/-]{1,128}$")


class Service(StrEnum):
    """Which of the two registries a query is sent to."""

    EB = "eb"
    DSD = "dsd"

    @property
    def unknown_query(self) -> str:
        return "EB:ERR:0007" if self is Service.EB else "DSD:ERR:0004"

    @property
    def bad_parameters(self) -> str:
        return "EB:ERR:0003" if self is Service.EB else "DSD:ERR:0003"


class QueryFailure(RemoteProtocolError):
    """The query cannot be answered: answer with RegRep error ``code`` (``detail`` names the cause)."""

    def __init__(self, code: str, detail: str, message: str | None = None) -> None:
        super().__init__(message or f"{code}: {detail}", code=code)
        self.detail = detail


@dataclass(frozen=True, slots=True)
class RequirementsQuery:
    """EB query 1: the requirements of a procedure in a country (all parameters optional)."""

    procedure_id: str | None = None
    country_code: str | None = None
    jurisdiction_admin_l2: str | None = None
    jurisdiction_admin_l3: str | None = None
    return_incomplete: bool = False
    start_index: int = 0
    max_results: int | None = None

    query_id = EB_REQUIREMENTS
    service = Service.EB


@dataclass(frozen=True, slots=True)
class EvidenceTypesQuery:
    """EB query 2: the evidence type lists that prove a requirement in a country."""

    requirement_id: str
    country_code: str | None = None
    jurisdiction_admin_l2: str | None = None
    jurisdiction_admin_l3: str | None = None
    start_index: int = 0
    max_results: int | None = None

    query_id = EB_EVIDENCE_TYPES
    service = Service.EB


@dataclass(frozen=True, slots=True)
class DataServicesQuery:
    """DSD query: the data services for an evidence type in a country, with the user's extra input."""

    evidence_type_classification: str
    country_code: str
    jurisdiction_admin_l2: str | None = None
    jurisdiction_admin_l3: str | None = None
    jurisdiction_context_id: str | None = None
    evidence_type_id: str | None = None
    specification: str | None = None
    #: ``(classification concept identifier, value)`` pairs the user supplied, sorted.
    classification_values: tuple[tuple[str, str], ...] = ()
    start_index: int = 0
    max_results: int | None = None

    query_id = DSD_DATA_SERVICES
    service = Service.DSD

    def classification_value(self, concept_id: str) -> str | None:
        for key, value in self.classification_values:
            if key == concept_id:
                return value
        return None


Query = RequirementsQuery | EvidenceTypesQuery | DataServicesQuery

_COMMON = ("queryId", "startIndex", "maxResults", "format", "lang")
_PARAMETERS: dict[str, tuple[str, ...]] = {
    EB_REQUIREMENTS: (
        "procedure-id",
        "country-code",
        "jurisdiction-admin-l2",
        "jurisdiction-admin-l3",
        "return-incomplete",
    ),
    EB_EVIDENCE_TYPES: ("requirement-id", "country-code", "jurisdiction-admin-l2", "jurisdiction-admin-l3"),
    DSD_DATA_SERVICES: (
        "evidence-type-classification",
        "country-code",
        "jurisdiction-admin-l2",
        "jurisdiction-admin-l3",
        "jurisdiction-context-id",
        "evidence-type-id",
        "specification",
    ),
}
_SERVICE_OF = {EB_REQUIREMENTS: Service.EB, EB_EVIDENCE_TYPES: Service.EB, DSD_DATA_SERVICES: Service.DSD}


def _clean(name: str, value: str, service: Service) -> str:
    if len(value) > MAX_VALUE_LENGTH:
        raise QueryFailure(service.bad_parameters, name, f"the value of {name} is longer than {MAX_VALUE_LENGTH}")
    if _CONTROL.search(value):
        raise QueryFailure(service.bad_parameters, name, f"the value of {name} holds control characters")
    value = value.strip()
    if not value:
        raise QueryFailure(service.bad_parameters, name, f"{name} is empty")
    return value


def _collect(params: Iterable[tuple[str, str]], service: Service) -> dict[str, str]:
    seen: dict[str, str] = {}
    for count, (name, value) in enumerate(params, start=1):
        if count > MAX_PARAMETERS:
            raise QueryFailure(service.bad_parameters, "query", "the query has too many parameters")
        if len(name) > 128 or not name:
            raise QueryFailure(service.bad_parameters, name[:64] or "query", "a parameter name is malformed")
        if name in seen:
            raise QueryFailure(service.bad_parameters, name, f"the parameter {name} is given twice")
        seen[name] = value
    return seen


def _int(params: dict[str, str], name: str, service: Service) -> int | None:
    if name not in params:
        return None
    value = _clean(name, params[name], service)
    if not value.isdigit() or len(value) > 9:
        raise QueryFailure(service.bad_parameters, name, f"{name} must be a non-negative integer")
    return int(value)


def _country(params: dict[str, str], service: Service, *, required: bool) -> str | None:
    name = "country-code"
    if name not in params:
        if required:
            raise QueryFailure(service.bad_parameters, name, "country-code is missing")
        return None
    value = _clean(name, params[name], service)
    if not _COUNTRY.match(value) or value not in COUNTRY_CODES:
        code = "EB:ERR:0006" if service is Service.EB else "DSD:ERR:0006"
        raise QueryFailure(code, name, f"{value[:16]!r} is not the code of an OOTS country")
    return value


def _jurisdiction(params: dict[str, str], service: Service, country: str | None) -> tuple[str | None, str | None]:
    code = "EB:ERR:0004" if service is Service.EB else "DSD:ERR:0006"
    l2 = params.get("jurisdiction-admin-l2")
    l3 = params.get("jurisdiction-admin-l3")
    if l2 is not None:
        l2 = _clean("jurisdiction-admin-l2", l2, service)
        if country is None or not _NUTS.match(l2) or not l2.startswith(country):
            raise QueryFailure(code, "jurisdiction-admin-l2", "jurisdiction-admin-l2 is not a NUTS code of the country")
    if l3 is not None:
        l3 = _clean("jurisdiction-admin-l3", l3, service)
        if country is None or not _LAU.match(l3):
            raise QueryFailure(code, "jurisdiction-admin-l3", "jurisdiction-admin-l3 is not a LAU code of the country")
    return l2, l3


def _check_names(params: dict[str, str], query_id: str, service: Service, *, uuid_names_allowed: bool) -> None:
    known = set(_PARAMETERS[query_id]) | set(_COMMON)
    for name in params:
        if name in known or (uuid_names_allowed and _UUID.match(name)):
            continue
        shown = name if len(name) <= 64 else name[:64] + "..."
        raise QueryFailure(service.bad_parameters, shown, f"unknown parameter {shown!r} for this query")


def parse_query(service: Service | None, params: Iterable[tuple[str, str]]) -> Query:
    """A typed query from the request's parameters, or :class:`QueryFailure`.

    ``service`` is the registry the request was sent to (``None`` when one endpoint serves both; the
    registry is then the one named by the query id, and an unknown query is the EB's ``EB:ERR:0007``).
    """
    fallback = service or Service.EB
    values = _collect(params, fallback)
    query_id = values.get("queryId")
    if query_id is None:
        raise QueryFailure(fallback.unknown_query, "queryId", "the query has no queryId")
    query_id = query_id.strip()
    owner = _SERVICE_OF.get(query_id)
    if owner is None or (service is not None and owner is not service):
        if service is None and ":dsd:" in query_id[:40]:
            fallback = Service.DSD
        shown = query_id if len(query_id) <= 128 else query_id[:128] + "..."
        raise QueryFailure(fallback.unknown_query, "queryId", f"unknown query {shown!r}")
    service = owner
    _check_names(values, query_id, service, uuid_names_allowed=query_id == DSD_DATA_SERVICES)
    start = _int(values, "startIndex", service) or 0
    max_results = _int(values, "maxResults", service)
    if query_id == EB_REQUIREMENTS:
        return _requirements(values, start, max_results)
    if query_id == EB_EVIDENCE_TYPES:
        return _evidence_types(values, start, max_results)
    return _data_services(values, start, max_results)


def _requirements(values: dict[str, str], start: int, max_results: int | None) -> RequirementsQuery:
    service = Service.EB
    procedure = values.get("procedure-id")
    if procedure is not None:
        procedure = _clean("procedure-id", procedure, service)
        if procedure not in PROCEDURE_CODES:
            raise QueryFailure("EB:ERR:0005", "procedure-id", f"{procedure[:16]!r} is not a procedure code")
    country = _country(values, service, required=False)
    l2, l3 = _jurisdiction(values, service, country)
    incomplete = values.get("return-incomplete")
    if incomplete is not None and _clean("return-incomplete", incomplete, service) not in ("true", "false"):
        raise QueryFailure(service.bad_parameters, "return-incomplete", "return-incomplete must be true or false")
    return RequirementsQuery(
        procedure_id=procedure,
        country_code=country,
        jurisdiction_admin_l2=l2,
        jurisdiction_admin_l3=l3,
        return_incomplete=incomplete == "true",
        start_index=start,
        max_results=max_results,
    )


def _evidence_types(values: dict[str, str], start: int, max_results: int | None) -> EvidenceTypesQuery:
    service = Service.EB
    if "requirement-id" not in values:
        raise QueryFailure(service.bad_parameters, "requirement-id", "requirement-id is missing")
    requirement = _clean("requirement-id", values["requirement-id"], service)
    if not _URL.match(requirement):
        raise QueryFailure(service.bad_parameters, "requirement-id", "requirement-id is not a requirement URL")
    country = _country(values, service, required=False)
    l2, l3 = _jurisdiction(values, service, country)
    return EvidenceTypesQuery(
        requirement_id=requirement,
        country_code=country,
        jurisdiction_admin_l2=l2,
        jurisdiction_admin_l3=l3,
        start_index=start,
        max_results=max_results,
    )


def _data_services(values: dict[str, str], start: int, max_results: int | None) -> DataServicesQuery:
    service = Service.DSD
    name = "evidence-type-classification"
    if name not in values:
        raise QueryFailure(service.bad_parameters, name, f"{name} is missing")
    classification = _clean(name, values[name], service)
    if not _URL.match(classification):
        raise QueryFailure("DSD:ERR:0006", name, f"{name} is not an evidence type classification URL")
    country = _country(values, service, required=True)
    l2, l3 = _jurisdiction(values, service, country)
    context = values.get("jurisdiction-context-id")
    if context is not None:
        context = _clean("jurisdiction-context-id", context, service)
        if not _UUID.match(context):
            raise QueryFailure("DSD:ERR:0006", "jurisdiction-context-id", "jurisdiction-context-id is not a UUID")
    type_id = values.get("evidence-type-id")
    if type_id is not None:
        type_id = _clean("evidence-type-id", type_id, service)
        if not _TOKEN.match(type_id):
            raise QueryFailure("DSD:ERR:0006", "evidence-type-id", "evidence-type-id is malformed")
    spec = values.get("specification")
    if spec is not None:
        spec = _clean("specification", spec, service)
        if not _SPEC.match(spec):
            raise QueryFailure("DSD:ERR:0006", "specification", "specification is malformed")
    chosen = []
    for key, value in values.items():
        if _UUID.match(key):
            cleaned = _clean(key, value, service)
            if not _TOKEN.match(cleaned):
                raise QueryFailure("DSD:ERR:0006", key, "a classification value is malformed")
            chosen.append((key.lower(), cleaned))
    return DataServicesQuery(
        evidence_type_classification=classification,
        country_code=country or "",
        jurisdiction_admin_l2=l2,
        jurisdiction_admin_l3=l3,
        jurisdiction_context_id=context.lower() if context else None,
        evidence_type_id=type_id,
        specification=spec,
        classification_values=tuple(sorted(chosen)),
        start_index=start,
        max_results=max_results,
    )
