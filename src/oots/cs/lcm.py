"""Feeding the catalogue with LCM ``SubmitObjectsRequest`` documents (the registries' own input format).

EB submissions carry evidence types, evidence type lists, requirements and reference frameworks tied
by associations (``ContainsEvidence``: list → evidence type, ``FulfillsRequirement``: list →
requirement, ``DerivesFromReferenceFramework``: requirement → framework). DSD submissions carry data
service evidence types and access services (slot ``EvidenceProvider``) tied by ``ServesEvidenceType``
(access service → data service evidence type). The document is parsed by ``oots.edm`` (hardened
parser); a submission that does not hang together raises :class:`~oots.errors.ModelError`.
"""

from __future__ import annotations

from collections import defaultdict

from oots import edm
from oots.cs import catalogue as c
from oots.errors import ModelError

__all__ = ["catalogue_from_lcm", "catalogue_from_submission"]

_ASSOC = "urn:oasis:names:tc:ebxml-regrep:AssociationType:"


def _texts(texts: tuple[edm.Text, ...]) -> c.Texts:
    return tuple(((t.lang or "EN").upper(), t.value) for t in texts)


def _country_of(classification: str, jurisdictions: tuple[edm.Jurisdiction, ...]) -> str:
    if jurisdictions:
        return jurisdictions[0].admin_unit_level_1
    parts = classification.rstrip("/").split("/")
    if len(parts) >= 2 and len(parts[-2]) == 2 and parts[-2].isalpha():
        return parts[-2].upper()
    raise ModelError(f"evidence type {classification} names no country")


def _procedure(rf: edm.ReferenceFramework) -> c.Procedure:
    if not rf.related_to or rf.jurisdiction is None:
        raise ModelError(f"reference framework {rf.identifier} names no procedure code or no jurisdiction")
    return c.Procedure(
        id=rf.identifier,
        code=rf.related_to[0].identifier,
        country=rf.jurisdiction.admin_unit_level_1,
        titles=_texts(rf.titles),
        descriptions=_texts(rf.descriptions),
    )


def _publisher(p: edm.EvidenceProvider) -> c.Publisher:
    a = p.address
    values = []
    for concept in p.classification_concepts:
        supported = concept.supported_value.string_values if concept.supported_value else ()
        values.append((concept.identifier.value.lower(), tuple(supported)))
    return c.Publisher(
        id=p.identifier.value,
        scheme=p.identifier.scheme_id or "",
        names=_texts(p.names),
        address=c.Address(
            admin_unit_level_1=a.admin_unit_level_1,
            full_address=a.full_address,
            locator_designator=a.locator_designator,
            post_code=a.post_code,
            post_city_name=a.post_city_name,
            thoroughfare=a.thoroughfare,
            admin_unit_level_2=a.admin_unit_level_2,
        ),
        jurisdiction=c.Jurisdiction(
            p.jurisdiction.admin_unit_level_1, p.jurisdiction.admin_unit_level_2, p.jurisdiction.admin_unit_level_3
        ),
        classification_values=tuple(values),
    )


def _data_service(dset: edm.DataServiceEvidenceType, served_by: list[edm.AccessService]) -> c.DataService:
    concepts = []
    for k in dset.evidence_provider_classifications:
        allowed: set[str] = set()
        for access in (*dset.access_services, *served_by):
            for pk in access.publisher.classification_concepts:
                if pk.identifier.value.lower() == k.identifier.value.lower() and pk.supported_value:
                    allowed.update(pk.supported_value.string_values)
        concepts.append(
            c.ClassificationConcept(
                id=k.identifier.value.lower(),
                type=k.type or "Codelist",
                value_expression=k.value_expression or "",
                descriptions=_texts(k.descriptions),
                values=tuple(sorted(allowed)),
            )
        )
    jd = dset.jurisdiction_determination
    return c.DataService(
        id=dset.identifier,
        classification=dset.evidence_type_classification,
        titles=_texts(dset.titles),
        descriptions=_texts(dset.descriptions),
        distributions=tuple(
            c.Distribution(d.format, d.conforms_to, d.transformation, d.languages) for d in dset.distributed_as
        ),
        access_services=tuple(
            c.AccessService(a.identifier.value, a.identifier.scheme_id or "", a.conforms_to, _publisher(a.publisher))
            for a in (*dset.access_services, *served_by)
        ),
        level_of_assurance=dset.authentication_level_of_assurance.value
        if dset.authentication_level_of_assurance
        else None,
        jurisdiction=c.JurisdictionDetermination(
            jd.jurisdiction_context_id.lower(), _texts(jd.jurisdiction_contexts), jd.jurisdiction_level
        )
        if jd
        else None,
        classifications=tuple(concepts),
    )


def catalogue_from_submission(request: edm.SubmitObjectsRequest) -> c.Catalogue:
    """The catalogue entries an LCM submission carries."""
    by_id = {item.id: item.content for item in request.items}
    links: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for assoc in request.associations:
        kind = assoc.type.removeprefix(_ASSOC)
        if assoc.source not in by_id or assoc.target not in by_id:
            raise ModelError(f"association {assoc.id} points at an object the submission does not hold")
        links[kind].append((assoc.source, assoc.target))

    def targets(kind: str, source: str) -> list[object]:
        return [by_id[t] for s, t in links[kind] if s == source]

    procedures, requirements, evidence_types, lists, services = [], [], [], [], []
    served: dict[str, list[edm.AccessService]] = defaultdict(list)
    for source, target in links["ServesEvidenceType"]:
        access = by_id[source]
        if not isinstance(access, edm.AccessService):
            raise ModelError(f"ServesEvidenceType from {source}, which is not an access service")
        served[target].append(access)
    for object_id, content in by_id.items():
        if isinstance(content, edm.ReferenceFramework):
            procedures.append(_procedure(content))
        elif isinstance(content, edm.Requirement):
            frameworks = [
                t for t in targets("DerivesFromReferenceFramework", object_id) if isinstance(t, edm.ReferenceFramework)
            ]
            procedures.extend(_procedure(rf) for rf in content.reference_frameworks)
            requirements.append(
                c.Requirement(
                    id=content.identifier,
                    names=_texts(content.names),
                    descriptions=_texts(content.descriptions),
                    procedures=tuple(rf.identifier for rf in (*content.reference_frameworks, *frameworks)),
                )
            )
        elif isinstance(content, edm.EvidenceType):
            evidence_types.append(
                c.EvidenceType(
                    classification=content.evidence_type_classification,
                    country=_country_of(content.evidence_type_classification, content.jurisdictions),
                    titles=_texts(content.titles),
                    descriptions=_texts(content.descriptions),
                )
            )
        elif isinstance(content, edm.EvidenceTypeList):
            members = [t for t in targets("ContainsEvidence", object_id) if isinstance(t, edm.EvidenceType)]
            members += list(content.evidence_types)
            fulfils = [t for t in targets("FulfillsRequirement", object_id) if isinstance(t, edm.Requirement)]
            if len(fulfils) != 1 or not members:
                raise ModelError(
                    f"evidence type list {content.identifier} needs one requirement and its evidence types"
                )
            country = _country_of(members[0].evidence_type_classification, members[0].jurisdictions)
            lists.append(
                c.EvidenceTypeList(
                    id=content.identifier,
                    requirement=fulfils[0].identifier,
                    country=country,
                    names=_texts(content.names),
                    evidence_types=tuple(m.evidence_type_classification for m in members),
                )
            )
        elif isinstance(content, edm.DataServiceEvidenceType):
            services.append(_data_service(content, served.get(object_id, [])))
    unique_procedures = {p.id: p for p in procedures}
    return c.Catalogue(
        procedures=tuple(unique_procedures.values()),
        requirements=tuple(requirements),
        evidence_types=tuple(evidence_types),
        evidence_type_lists=tuple(lists),
        data_services=tuple(services),
    )


def catalogue_from_lcm(data: bytes) -> c.Catalogue:
    """The catalogue entries of an LCM ``SubmitObjectsRequest`` document (bytes)."""
    document = edm.parse(data)
    if not isinstance(document, edm.SubmitObjectsRequest):
        raise ModelError(f"expected an LCM SubmitObjectsRequest, got a {type(document).__name__}")
    return catalogue_from_submission(document)
