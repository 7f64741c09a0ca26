"""Catalogue results → ``oots.edm`` answer documents → XML, in the version the requester asked for.

The registries' answers are the model's :class:`~oots.edm.CommonServicesResponse` and
:class:`~oots.edm.CommonServicesError`, written by its codec (``oots-edm:v1.0`` for the 1.x API,
``oots-cs:v2.0`` for the 2.0 API). Registry object ids are derived from the catalogue ids (UUID v5),
so the same question always gets the same answer body.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from oots import edm
from oots.cs import catalogue as c
from oots.cs.queries import QueryFailure

__all__ = [
    "V1",
    "V2",
    "data_service_answer",
    "error_answer",
    "evidence_types_answer",
    "requirements_answer",
    "to_data_service",
    "to_requirement",
]

V1 = edm.Version.EDM_V1
V2 = edm.Version.CS_V2

_NS = uuid.UUID("3b0a4f8e-6c1d-4f55-8a57-3f1c5e0d9a21")

#: The Semantic Repository as the network names it since late 2023 (and the v2.0 profile writes it).
SR_CURRENT = "https://sr.oots.tech.ec.europa.eu/"
#: ... and as the v1.0 profile (its rules R-EB-REQ-C001, R-DSD-RESP-C003, C010) spells it.
SR_V1 = "https://sr.oots.tech.europa.eu/"


def sr_url(url: str | None, version: edm.Version) -> str | None:
    """A Semantic Repository URL in the spelling of ``version`` (see :func:`oots.edm.sr_url`)."""
    return None if url is None else edm.sr_url(url, v2=version is not V1)


def _u(url: str, version: edm.Version) -> str:
    out = sr_url(url, version)
    assert out is not None
    return out


def _object_id(*parts: str) -> str:
    return f"urn:uuid:{uuid.uuid5(_NS, '|'.join(parts))}"


def _texts(texts: c.Texts) -> tuple[edm.Text, ...]:
    return tuple(edm.Text(value, lang) for lang, value in texts)


def _reference_framework(p: c.Procedure) -> edm.ReferenceFramework:
    return edm.ReferenceFramework(
        identifier=p.id,
        titles=_texts(p.titles),
        descriptions=_texts(p.descriptions),
        related_to=(edm.ReferenceFramework(identifier=p.code),),
        jurisdiction=edm.Jurisdiction(p.country),
    )


def to_requirement(
    req: c.Requirement,
    procedures: Sequence[c.Procedure],
    lists: Sequence[c.EvidenceTypeList] = (),
    catalogue: c.Catalogue | None = None,
    version: edm.Version = V2,
) -> edm.Requirement:
    """The ``sdg:Requirement`` of an EB answer (with its evidence type lists for query 2)."""
    etls = []
    for etl in lists:
        assert catalogue is not None
        types = []
        for classification in etl.evidence_types:
            et = catalogue.evidence_type(classification)
            types.append(
                edm.EvidenceType(
                    evidence_type_classification=_u(et.classification, version),
                    titles=_texts(et.titles),
                    descriptions=_texts(et.descriptions),
                    jurisdictions=(edm.Jurisdiction(et.country),),
                )
            )
        etls.append(edm.EvidenceTypeList(identifier=etl.id, names=_texts(etl.names), evidence_types=tuple(types)))
    return edm.Requirement(
        identifier=_u(req.id, version),
        names=_texts(req.names),
        descriptions=_texts(req.descriptions),
        reference_frameworks=tuple(_reference_framework(p) for p in procedures),
        evidence_type_lists=tuple(etls),
    )


def _concept(k: c.ClassificationConcept, version: edm.Version, values: Sequence[str] = ()) -> edm.InformationConcept:
    return edm.InformationConcept(
        identifier=edm.Identifier(k.id),
        type=k.type,
        value_expression=sr_url(k.value_expression, version),
        descriptions=_texts(k.descriptions),
        supported_value=edm.SupportedValue(string_values=tuple(values)) if values else None,
    )


def _publisher(
    p: c.Publisher, concepts: dict[str, c.ClassificationConcept], version: edm.Version
) -> edm.EvidenceProvider:
    return edm.EvidenceProvider(
        identifier=edm.Identifier(p.id, p.scheme),
        names=_texts(p.names),
        address=p.address,
        jurisdiction=edm.Jurisdiction(p.jurisdiction.level1, p.jurisdiction.level2, p.jurisdiction.level3),
        classification_concepts=tuple(
            _concept(concepts[cid], version, values) for cid, values in p.classification_values if cid in concepts
        ),
    )


def _determination(jd: c.JurisdictionDetermination) -> edm.JurisdictionDetermination:
    return edm.JurisdictionDetermination(jd.context_id, _texts(jd.contexts), jd.level)


def to_data_service(
    ds: c.DataService, *, reduced: bool = False, version: edm.Version = V2
) -> edm.DataServiceEvidenceType:
    """The ``sdg:DataServiceEvidenceType`` of a DSD answer (``reduced``: the form DSD:ERR:0005 carries)."""
    distributions = tuple(
        edm.EvidenceTypeDistribution(
            d.format, sr_url(d.conforms_to, version), sr_url(d.transformation, version), d.languages
        )
        for d in ds.distributions
    )
    base = edm.DataServiceEvidenceType(
        identifier=ds.id,
        evidence_type_classification=_u(ds.classification, version),
        titles=_texts(ds.titles),
        descriptions=_texts(ds.descriptions),
        distributed_as=distributions,
    )
    if reduced:
        return base
    concepts = {k.id: k for k in ds.classifications}
    return edm.DataServiceEvidenceType(
        identifier=base.identifier,
        evidence_type_classification=base.evidence_type_classification,
        titles=base.titles,
        descriptions=base.descriptions,
        distributed_as=distributions,
        access_services=tuple(
            edm.AccessService(edm.Identifier(a.id, a.scheme), a.conforms_to, _publisher(a.publisher, concepts, version))
            for a in ds.access_services
        ),
        authentication_level_of_assurance=edm.LevelOfAssurance(ds.level_of_assurance)
        if ds.level_of_assurance
        else None,
        jurisdiction_determination=_determination(ds.jurisdiction) if ds.jurisdiction else None,
        evidence_provider_classifications=tuple(_concept(k, version) for k in ds.classifications),
    )


def _response(items: list[edm.RegistryItem], total: int, start: int, version: edm.Version) -> bytes:
    # The 1.x answers carry RegRep's paging attributes (as the official samples do); the Commission's
    # 2.0 answers do not, and neither do ours.
    paged = version is V1
    doc = edm.CommonServicesResponse(
        items=tuple(items),
        total_result_count=total if paged else None,
        start_index=start if paged else None,
        specification=version,
    )
    return edm.to_xml(doc, version)


def requirements_answer(page: c.Page[tuple[c.Requirement, tuple[c.Procedure, ...]]], version: edm.Version) -> bytes:
    items = [
        edm.RegistryItem(_object_id("requirement", r.id), to_requirement(r, procs, version=version))
        for r, procs in page.items
    ]
    return _response(items, page.total, page.start, version)


def evidence_types_answer(
    found: tuple[c.Requirement, tuple[c.Procedure, ...], c.Page[c.EvidenceTypeList]],
    catalogue: c.Catalogue,
    version: edm.Version,
) -> bytes:
    req, procs, page = found
    content = to_requirement(req, procs, page.items, catalogue, version)
    item = edm.RegistryItem(_object_id("evidence-types", req.id, *(e.id for e in page.items)), content)
    return _response([item], page.total, page.start, version)


def data_service_answer(page: c.Page[c.DataService], version: edm.Version) -> bytes:
    items = [
        edm.RegistryItem(
            _object_id("data-service", ds.id, *(a.publisher.id for a in ds.access_services)),
            to_data_service(ds, version=version),
        )
        for ds in page.items
    ]
    return _response(items, page.total, page.start, version)


def error_answer(failure: QueryFailure, version: edm.Version) -> bytes:
    """The RegRep error answer for ``failure`` (``DSD:ERR:0005`` with the slots asking for input)."""
    assert failure.code is not None
    row = edm.error_code(failure.code)
    ask = failure if isinstance(failure, c.NeedMoreInput) else None  # the slots only DSD:ERR:0005 has
    doc = edm.CommonServicesError(
        code=row.code,
        exception_type=row.exception_type,
        severity=row.severity,
        message=row.message,
        detail=failure.detail,
        data_service_evidence_type=to_data_service(ask.data_service, reduced=True, version=version) if ask else None,
        jurisdiction_determination=_determination(ask.jurisdiction) if ask and ask.jurisdiction else None,
        user_requested_classification_concepts=tuple(_concept(k, version) for k in ask.classifications) if ask else (),
        specification=version,
    )
    return edm.to_xml(doc, version)
