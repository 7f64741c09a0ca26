"""The catalogue in the database: save a :class:`~oots.cs.catalogue.Catalogue`, load it back.

``save_catalogue`` replaces what is stored (in the caller's transaction) and bumps the revision;
``load_catalogue`` rebuilds the immutable snapshot the server answers from; ``revision`` lets a
running server notice a change cheaply.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from oots.cs import catalogue as c
from oots.cs.models import (
    AccessServiceRow,
    CatalogueRevision,
    DataServiceRow,
    EvidenceTypeListRow,
    EvidenceTypeRow,
    ProcedureRow,
    RequirementProcedureRow,
    RequirementRow,
)

__all__ = ["load_catalogue", "revision", "save_catalogue"]


def _doc(record: Any, *drop: str) -> dict[str, Any]:
    data = dataclasses.asdict(record)
    for key in drop:
        data.pop(key, None)
    return data


def _texts(value: Any) -> c.Texts:
    return tuple((str(lang), str(text)) for lang, text in value)


def _publisher(d: dict[str, Any]) -> c.Publisher:
    return c.Publisher(
        id=d["id"],
        scheme=d["scheme"],
        names=_texts(d["names"]),
        address=c.Address(**d["address"]),
        jurisdiction=c.Jurisdiction(**d["jurisdiction"]),
        classification_values=tuple((k, tuple(v)) for k, v in d["classification_values"]),
    )


def _data_service(d: dict[str, Any]) -> c.DataService:
    jd = d["jurisdiction"]
    return c.DataService(
        id=d["id"],
        classification=d["classification"],
        titles=_texts(d["titles"]),
        descriptions=_texts(d["descriptions"]),
        distributions=tuple(
            c.Distribution(x["format"], x["conforms_to"], x["transformation"], tuple(x["languages"]))
            for x in d["distributions"]
        ),
        access_services=tuple(
            c.AccessService(a["id"], a["scheme"], a["conforms_to"], _publisher(a["publisher"]))
            for a in d["access_services"]
        ),
        level_of_assurance=d["level_of_assurance"],
        jurisdiction=c.JurisdictionDetermination(jd["context_id"], _texts(jd["contexts"]), jd["level"]) if jd else None,
        classifications=tuple(
            c.ClassificationConcept(
                k["id"], k["type"], k["value_expression"], _texts(k["descriptions"]), tuple(k["values"])
            )
            for k in d["classifications"]
        ),
    )


def revision(session: Session) -> int:
    """The catalogue's revision (0: never saved)."""
    row = session.get(CatalogueRevision, 1)
    return row.revision if row else 0


def save_catalogue(session: Session, catalogue: c.Catalogue) -> int:
    """Replace the stored catalogue with ``catalogue``; return the new revision."""
    for table in (
        AccessServiceRow,
        DataServiceRow,
        EvidenceTypeListRow,
        RequirementProcedureRow,
        RequirementRow,
        EvidenceTypeRow,
        ProcedureRow,
    ):
        session.execute(delete(table))
    session.add_all(
        ProcedureRow(id=p.id, code=p.code, country=p.country, document=_doc(p)) for p in catalogue.procedures
    )
    session.add_all(
        EvidenceTypeRow(classification=e.classification, country=e.country, document=_doc(e))
        for e in catalogue.evidence_types
    )
    session.flush()
    for n, r in enumerate(catalogue.requirements):
        session.add(RequirementRow(id=r.id, position=n, document=_doc(r, "procedures")))
    session.flush()
    for r in catalogue.requirements:
        session.add_all(
            RequirementProcedureRow(requirement_id=r.id, procedure_id=p, position=n) for n, p in enumerate(r.procedures)
        )
    session.add_all(
        EvidenceTypeListRow(id=x.id, requirement_id=x.requirement, country=x.country, position=n, document=_doc(x))
        for n, x in enumerate(catalogue.evidence_type_lists)
    )
    for n, ds in enumerate(catalogue.data_services):
        session.add(DataServiceRow(id=ds.id, classification=ds.classification, position=n, document=_doc(ds)))
    session.flush()
    for ds in catalogue.data_services:
        session.add_all(
            AccessServiceRow(
                data_service_id=ds.id,
                position=n,
                party_id=a.id,
                country=a.publisher.jurisdiction.level1,
                publisher_id=a.publisher.id,
            )
            for n, a in enumerate(ds.access_services)
        )
    row = session.get(CatalogueRevision, 1)
    if row is None:
        row = CatalogueRevision(id=1, revision=0)
        session.add(row)
    row.revision += 1
    session.flush()
    return row.revision


def load_catalogue(session: Session) -> c.Catalogue:
    """The stored catalogue as an immutable snapshot."""
    procedures = [
        c.Procedure(d["id"], d["code"], d["country"], _texts(d["titles"]), _texts(d["descriptions"]))
        for d in session.scalars(select(ProcedureRow.document).order_by(ProcedureRow.id))
    ]
    links: dict[str, list[str]] = {}
    for link in session.scalars(select(RequirementProcedureRow).order_by(RequirementProcedureRow.position)):
        links.setdefault(link.requirement_id, []).append(link.procedure_id)
    requirements = [
        c.Requirement(
            row.id, _texts(row.document["names"]), _texts(row.document["descriptions"]), tuple(links.get(row.id, ()))
        )
        for row in session.scalars(select(RequirementRow).order_by(RequirementRow.position))
    ]
    evidence_types = [
        c.EvidenceType(d["classification"], d["country"], _texts(d["titles"]), _texts(d["descriptions"]))
        for d in session.scalars(select(EvidenceTypeRow.document).order_by(EvidenceTypeRow.classification))
    ]
    lists = [
        c.EvidenceTypeList(d["id"], d["requirement"], d["country"], _texts(d["names"]), tuple(d["evidence_types"]))
        for d in session.scalars(select(EvidenceTypeListRow.document).order_by(EvidenceTypeListRow.position))
    ]
    services = [
        _data_service(d) for d in session.scalars(select(DataServiceRow.document).order_by(DataServiceRow.position))
    ]
    return c.Catalogue(
        procedures=tuple(procedures),
        requirements=tuple(requirements),
        evidence_types=tuple(evidence_types),
        evidence_type_lists=tuple(lists),
        data_services=tuple(services),
    )
