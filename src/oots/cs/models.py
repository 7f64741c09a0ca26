"""The catalogue's tables (owner ``cs``, Alembic branch ``cs``).

Each catalogue entry is one row: the columns the queries select on (procedure code, country,
requirement, evidence type classification, access point) plus ``document``, the entry itself in the
JSON form of :mod:`oots.cs.catalogue` records. ``cs_catalogue_revision`` counts changes, so a running
server can tell when to reload its snapshot.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from oots.store.base import Base, JsonValue

__all__ = [
    "AccessServiceRow",
    "CatalogueRevision",
    "DataServiceRow",
    "EvidenceTypeListRow",
    "EvidenceTypeRow",
    "ProcedureRow",
    "RequirementProcedureRow",
    "RequirementRow",
]


class ProcedureRow(Base):
    """A procedure as a country implements it (EB ``ReferenceFramework``)."""

    __tablename__ = "cs_procedures"

    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    code: Mapped[str] = mapped_column(String(16), index=True)
    country: Mapped[str] = mapped_column(String(2), index=True)
    document: Mapped[dict[str, Any]] = mapped_column(JsonValue)


class RequirementRow(Base):
    __tablename__ = "cs_requirements"

    id: Mapped[str] = mapped_column(String(500), primary_key=True)
    position: Mapped[int] = mapped_column(Integer)
    document: Mapped[dict[str, Any]] = mapped_column(JsonValue)


class RequirementProcedureRow(Base):
    """Which procedures need which requirement (in the requirement's order)."""

    __tablename__ = "cs_requirement_procedures"

    requirement_id: Mapped[str] = mapped_column(
        String(500), ForeignKey("cs_requirements.id", ondelete="CASCADE"), primary_key=True
    )
    procedure_id: Mapped[str] = mapped_column(
        String(200), ForeignKey("cs_procedures.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    position: Mapped[int] = mapped_column(Integer)


class EvidenceTypeRow(Base):
    __tablename__ = "cs_evidence_types"

    classification: Mapped[str] = mapped_column(String(500), primary_key=True)
    country: Mapped[str] = mapped_column(String(2), index=True)
    document: Mapped[dict[str, Any]] = mapped_column(JsonValue)


class EvidenceTypeListRow(Base):
    """Evidence types that together prove a requirement in a country; lists are alternatives."""

    __tablename__ = "cs_evidence_type_lists"

    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    requirement_id: Mapped[str] = mapped_column(
        String(500), ForeignKey("cs_requirements.id", ondelete="CASCADE"), index=True
    )
    country: Mapped[str] = mapped_column(String(2), index=True)
    position: Mapped[int] = mapped_column(Integer)
    document: Mapped[dict[str, Any]] = mapped_column(JsonValue)


class DataServiceRow(Base):
    """A DSD ``DataServiceEvidenceType`` with its access services and publishers (``document``)."""

    __tablename__ = "cs_data_services"

    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    classification: Mapped[str] = mapped_column(String(500), index=True)
    position: Mapped[int] = mapped_column(Integer)
    document: Mapped[dict[str, Any]] = mapped_column(JsonValue)


class AccessServiceRow(Base):
    """An access point serving a data service in a country (for lookups by party id or country)."""

    __tablename__ = "cs_access_services"

    data_service_id: Mapped[str] = mapped_column(
        String(200), ForeignKey("cs_data_services.id", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    party_id: Mapped[str] = mapped_column(String(200), index=True)
    country: Mapped[str] = mapped_column(String(2), index=True)
    publisher_id: Mapped[str] = mapped_column(String(200))


class CatalogueRevision(Base):
    """One row: bumped by every catalogue change."""

    __tablename__ = "cs_catalogue_revision"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    revision: Mapped[int] = mapped_column(Integer)
