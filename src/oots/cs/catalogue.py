"""The catalogue the Evidence Broker and the Data Service Directory answer from, and its searches.

A :class:`Catalogue` is an immutable snapshot: procedures (the EB's reference frameworks),
requirements, evidence types, evidence type lists (alternatives per requirement and country) and
data services (DSD ``DataServiceEvidenceType`` entries with their access services and publishers).
It is loaded from a data file (:mod:`oots.cs.datafile`), from LCM documents (:mod:`oots.cs.lcm`) or
from the database (:mod:`oots.cs.models`), and searched by the three queries here. A search returns
catalogue records or raises :class:`~oots.cs.queries.QueryFailure` with the registry's error code;
:class:`NeedMoreInput` (``DSD:ERR:0005``) says which input the user must still give.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Generic, TypeVar

from oots.cs.queries import DataServicesQuery, EvidenceTypesQuery, QueryFailure, RequirementsQuery
from oots.edm.model import Address  # the catalogue keeps the EDM's own address
from oots.errors import ConfigError

__all__ = [
    "JURISDICTION_LEVELS",
    "AccessService",
    "Address",
    "Catalogue",
    "ClassificationConcept",
    "DataService",
    "Distribution",
    "EvidenceType",
    "EvidenceTypeList",
    "Jurisdiction",
    "JurisdictionDetermination",
    "NeedMoreInput",
    "Page",
    "Procedure",
    "Publisher",
    "Requirement",
    "Texts",
]

T = TypeVar("T")

#: Code list ``JurisdictionLevel``.
JURISDICTION_LEVELS = ("Country", "NUTS1", "NUTS2", "NUTS3", "LAU")

#: A multilingual text: ``(lang, text)`` pairs in the order they are written.
Texts = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class Procedure:
    """A procedure as a country implements it (the EB's ``sdg:ReferenceFramework``)."""

    id: str
    code: str
    country: str
    titles: Texts
    descriptions: Texts = ()


@dataclass(frozen=True, slots=True)
class Requirement:
    """What a procedure needs proven; ``procedures`` are ids of :class:`Procedure`."""

    id: str
    names: Texts
    descriptions: Texts = ()
    procedures: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class EvidenceType:
    """An evidence type of a country, named by its Semantic Repository classification URL."""

    classification: str
    country: str
    titles: Texts
    descriptions: Texts = ()


@dataclass(frozen=True, slots=True)
class EvidenceTypeList:
    """Evidence types that together prove ``requirement`` in ``country`` (lists are alternatives)."""

    id: str
    requirement: str
    country: str
    names: Texts
    evidence_types: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Distribution:
    format: str
    conforms_to: str | None = None
    transformation: str | None = None
    languages: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Jurisdiction:
    level1: str
    level2: str | None = None
    level3: str | None = None


@dataclass(frozen=True, slots=True)
class ClassificationConcept:
    """An evidence provider classification the user may have to answer (``values``: the choices)."""

    id: str
    type: str
    value_expression: str
    descriptions: Texts
    values: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Publisher:
    """The evidence provider behind an access service; ``classification_values`` per concept id."""

    id: str
    scheme: str
    names: Texts
    address: Address
    jurisdiction: Jurisdiction
    classification_values: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def supports(self, concept_id: str, value: str) -> bool:
        """Whether ``value`` is one of the publisher's values for the concept (any value when it gives none)."""
        values = self.values_of(concept_id)
        return values is None or value in values

    def values_of(self, concept_id: str) -> tuple[str, ...] | None:
        for cid, values in self.classification_values:
            if cid == concept_id:
                return values
        return None


@dataclass(frozen=True, slots=True)
class AccessService:
    """An access point that serves the evidence type for a publisher (``id``: its eDelivery party id)."""

    id: str
    scheme: str
    conforms_to: str
    publisher: Publisher


@dataclass(frozen=True, slots=True)
class JurisdictionDetermination:
    context_id: str
    contexts: Texts
    level: str


@dataclass(frozen=True, slots=True)
class DataService:
    """A DSD ``DataServiceEvidenceType``: an evidence type as data services offer it."""

    id: str
    classification: str
    titles: Texts
    descriptions: Texts
    distributions: tuple[Distribution, ...]
    access_services: tuple[AccessService, ...]
    level_of_assurance: str | None = None
    jurisdiction: JurisdictionDetermination | None = None
    classifications: tuple[ClassificationConcept, ...] = ()


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of results and the total count before paging."""

    items: tuple[T, ...]
    total: int
    start: int


class NeedMoreInput(QueryFailure):
    """``DSD:ERR:0005``: the answer depends on input the user must still give."""

    def __init__(
        self,
        data_service: DataService,
        jurisdiction: JurisdictionDetermination | None,
        classifications: tuple[ClassificationConcept, ...],
    ) -> None:
        asked = [
            n
            for n, x in (
                ("JurisdictionDetermination", jurisdiction),
                ("UserRequestedClassificationConcepts", classifications),
            )
            if x
        ]
        super().__init__(
            "DSD:ERR:0005",
            " and ".join(asked),
            "The query requires the included extra attributes to be provided by the user",
        )
        self.data_service = data_service
        self.jurisdiction = jurisdiction
        self.classifications = classifications


def _page(items: list[T], start: int, max_results: int | None) -> Page[T]:
    end = None if max_results is None else start + max_results
    return Page(tuple(items[start:end]), len(items), start)


@dataclass(frozen=True)
class Catalogue:
    """An immutable, indexed snapshot of everything the two registries know."""

    procedures: tuple[Procedure, ...] = ()
    requirements: tuple[Requirement, ...] = ()
    evidence_types: tuple[EvidenceType, ...] = ()
    evidence_type_lists: tuple[EvidenceTypeList, ...] = ()
    data_services: tuple[DataService, ...] = ()
    _procedure: dict[str, Procedure] = field(init=False, repr=False, compare=False)
    _requirement: dict[str, Requirement] = field(init=False, repr=False, compare=False)
    _evidence_type: dict[str, EvidenceType] = field(init=False, repr=False, compare=False)
    _services: dict[str, tuple[DataService, ...]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        problems = []
        procedure = {p.id: p for p in self.procedures}
        requirement = {_canonical(r.id): r for r in self.requirements}
        evidence_type = {_canonical(e.classification): e for e in self.evidence_types}
        for kind, items, index in (
            ("procedure", self.procedures, procedure),
            ("requirement", self.requirements, requirement),
            ("evidence type", self.evidence_types, evidence_type),
        ):
            if len(items) != len(index):
                problems.append(f"a {kind} id is used twice")
        for req in self.requirements:
            problems += [f"requirement {req.id}: unknown procedure {p}" for p in req.procedures if p not in procedure]
        for etl in self.evidence_type_lists:
            if _canonical(etl.requirement) not in requirement:
                problems.append(f"evidence type list {etl.id}: unknown requirement {etl.requirement}")
            problems += [
                f"evidence type list {etl.id}: unknown evidence type {e}"
                for e in etl.evidence_types
                if _canonical(e) not in evidence_type
            ]
        services: dict[str, list[DataService]] = {}
        for ds in self.data_services:
            services.setdefault(_canonical(ds.classification), []).append(ds)
            concept_ids = {c.id for c in ds.classifications}
            for access in ds.access_services:
                for cid, _ in access.publisher.classification_values:
                    if cid not in concept_ids:
                        problems.append(
                            f"data service {ds.id}: publisher {access.publisher.id} classifies by unknown concept {cid}"
                        )
        if problems:
            raise ConfigError(
                f"the catalogue is inconsistent: {'; '.join(problems[:5])}", [("catalogue", p) for p in problems]
            )
        object.__setattr__(self, "_procedure", procedure)
        object.__setattr__(self, "_requirement", requirement)
        object.__setattr__(self, "_evidence_type", evidence_type)
        object.__setattr__(self, "_services", {k: tuple(v) for k, v in services.items()})

    # ---- lookups ---------------------------------------------------------------------------------

    def procedure(self, procedure_id: str) -> Procedure:
        return self._procedure[procedure_id]

    def evidence_type(self, classification: str) -> EvidenceType:
        return self._evidence_type[_canonical(classification)]

    def merged(self, other: Catalogue) -> Catalogue:
        """This catalogue with ``other``'s entries added (an entry with the same id is replaced)."""

        def union(mine: Iterable[T], theirs: Iterable[T], key: str) -> tuple[T, ...]:
            out = {getattr(x, key): x for x in mine}
            out.update({getattr(x, key): x for x in theirs})
            return tuple(out.values())

        return Catalogue(
            procedures=union(self.procedures, other.procedures, "id"),
            requirements=union(self.requirements, other.requirements, "id"),
            evidence_types=union(self.evidence_types, other.evidence_types, "classification"),
            evidence_type_lists=union(self.evidence_type_lists, other.evidence_type_lists, "id"),
            data_services=union(self.data_services, other.data_services, "id"),
        )

    # ---- EB query 1 ------------------------------------------------------------------------------

    def find_requirements(self, query: RequirementsQuery) -> Page[tuple[Requirement, tuple[Procedure, ...]]]:
        """Requirements of the procedure in the country, each with the matching procedures."""

        def matches(p: Procedure) -> bool:
            return (query.procedure_id is None or p.code == query.procedure_id) and (
                query.country_code is None or p.country == query.country_code
            )

        found = []
        for req in self.requirements:
            procs = tuple(self._procedure[p] for p in req.procedures if matches(self._procedure[p]))
            if procs or (query.procedure_id is None and query.country_code is None):
                found.append((req, procs or tuple(self._procedure[p] for p in req.procedures)))
        if not found:
            raise QueryFailure("EB:ERR:0001", "requirements", "The result set is empty")
        return _page(found, query.start_index, query.max_results)

    # ---- EB query 2 ------------------------------------------------------------------------------

    def find_evidence_types(
        self, query: EvidenceTypesQuery
    ) -> tuple[Requirement, tuple[Procedure, ...], Page[EvidenceTypeList]]:
        """The requirement, its procedures and its evidence type lists in the country."""
        req = self._requirement.get(_canonical(query.requirement_id))
        if req is None:
            raise QueryFailure(
                "EB:ERR:0002",
                "requirement-id",
                "The requirement requested, represented by the requirement id, does not exist",
            )
        lists = [
            etl
            for etl in self.evidence_type_lists
            if _canonical(etl.requirement) == _canonical(req.id)
            and (query.country_code is None or etl.country == query.country_code)
        ]
        if not lists:
            raise QueryFailure("EB:ERR:0001", "evidence-types", "The result set is empty")
        procs = tuple(self._procedure[p] for p in req.procedures)
        return req, procs, _page(lists, query.start_index, query.max_results)

    # ---- DSD query -------------------------------------------------------------------------------

    def find_data_services(self, query: DataServicesQuery) -> Page[DataService]:
        """Data services for the evidence type in the country, narrowed by the user's input.

        Raises :class:`NeedMoreInput` when the provider depends on a jurisdiction below country level
        or on a classification the user has not given yet.
        """
        candidates = self._services.get(_canonical(query.evidence_type_classification))
        if not candidates:
            raise QueryFailure(
                "DSD:ERR:0002", "evidence-type-classification", "The Evidence Type requested cannot be found"
            )
        results = []
        for ds in candidates:
            if query.evidence_type_id is not None and ds.id != query.evidence_type_id:
                continue
            services = [
                a
                for a in ds.access_services
                if a.publisher.jurisdiction.level1 == query.country_code
                and (query.specification is None or a.conforms_to == query.specification)
            ]
            if services:
                narrowed = _narrow(ds, services, query)
                if narrowed.access_services:
                    results.append(narrowed)
        if not results:
            raise QueryFailure(
                "DSD:ERR:0001", "DS_NOT_FOUND", "No Data Services were found based on the given parameters"
            )
        return _page(results, query.start_index, query.max_results)


#: The Semantic Repository's domain before and since late 2023; requesters may send either.
_SR_OLD = "https://sr.oots.tech.europa.eu/"
_SR_NEW = "https://sr.oots.tech.ec.europa.eu/"


def _canonical(url: str) -> str:
    return _SR_NEW + url[len(_SR_OLD) :] if url.startswith(_SR_OLD) else url


def _covers(publisher: Jurisdiction, level: str, query: DataServicesQuery) -> bool:
    if level == "LAU":
        return publisher.level3 is not None and publisher.level3 == query.jurisdiction_admin_l3
    wanted = query.jurisdiction_admin_l2 or ""
    have = publisher.level2 or ""
    return bool(have) and (wanted.startswith(have) or have.startswith(wanted))


def _narrow(ds: DataService, services: list[AccessService], query: DataServicesQuery) -> DataService:
    ask_jurisdiction: JurisdictionDetermination | None = None
    jd = ds.jurisdiction
    if jd is not None and jd.level != "Country":
        given = query.jurisdiction_admin_l3 if jd.level == "LAU" else query.jurisdiction_admin_l2
        if query.jurisdiction_context_id is not None and query.jurisdiction_context_id != jd.context_id.lower():
            raise QueryFailure(
                "DSD:ERR:0006",
                "jurisdiction-context-id",
                "jurisdiction-context-id is not the one of this evidence type",
            )
        if given is None:
            if len({a.publisher.jurisdiction for a in services}) > 1:
                ask_jurisdiction = jd
        else:
            services = [a for a in services if _covers(a.publisher.jurisdiction, jd.level, query)]
    ask: list[ClassificationConcept] = []
    for concept in ds.classifications:
        value = query.classification_value(concept.id.lower())
        if value is None:
            offered = {a.publisher.values_of(concept.id) for a in services}
            if len(offered) > 1:
                ask.append(concept)
            continue
        if value not in concept.values:
            raise QueryFailure("DSD:ERR:0006", concept.id, f"{value[:32]!r} is not a value of this classification")
        services = [a for a in services if a.publisher.supports(concept.id, value)]
    if ask_jurisdiction is not None or ask:
        raise NeedMoreInput(replace(ds, access_services=()), ask_jurisdiction, tuple(ask))
    return replace(ds, access_services=tuple(services))
