"""The catalogue's data file: a readable TOML document (format described in docs/common-services.md).

Top-level arrays of tables, each entry named by its identifier::

    [[procedure]]          id, code (Procedures code list), country, title, description
    [[requirement]]        id (SR URL), name, description, procedures (procedure ids)
    [[evidence_type]]      classification (SR URL), country, title, description
    [[evidence_type_list]] id, requirement, country, name, evidence_types (classifications)
    [[publisher]]          id, scheme, name, address, jurisdiction, classification
    [[data_service]]       id, evidence_type, level_of_assurance, distributions,
                           jurisdiction_determination, [[data_service.classification]],
                           [[data_service.access_service]] (id, scheme, conforms_to, publisher)

Texts are tables of language → text (``title = { EN = "Birth certificate", FR = "Acte de naissance" }``).
Unknown keys are refused with their path, like the node's settings.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from oots.cs import catalogue as c
from oots.errors import ConfigError
from oots.settings import describe_problems, read_toml

__all__ = ["load_catalogue", "parse_catalogue"]

_COUNTRY = r"^[A-Z]{2}$"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Procedure(_Model):
    id: str = Field(min_length=1)
    code: str = Field(min_length=1)
    country: str = Field(pattern=_COUNTRY)
    title: dict[str, str] = Field(min_length=1)
    description: dict[str, str] = {}


class _Requirement(_Model):
    id: str = Field(pattern=r"^https?://")
    name: dict[str, str] = Field(min_length=1)
    description: dict[str, str] = {}
    procedures: list[str] = []


class _EvidenceType(_Model):
    classification: str = Field(pattern=r"^https?://")
    country: str = Field(pattern=_COUNTRY)
    title: dict[str, str] = Field(min_length=1)
    description: dict[str, str] = {}


class _EvidenceTypeList(_Model):
    id: str = Field(min_length=1)
    requirement: str
    country: str = Field(pattern=_COUNTRY)
    name: dict[str, str] = {}
    evidence_types: list[str] = Field(min_length=1)


class _Address(_Model):
    full_address: str | None = None
    locator_designator: str | None = None
    post_code: str | None = None
    post_city_name: str | None = None
    thoroughfare: str | None = None
    admin_unit_level_1: str = Field(pattern=_COUNTRY)
    admin_unit_level_2: str | None = None


class _Jurisdiction(_Model):
    level1: str = Field(pattern=_COUNTRY)
    level2: str | None = None
    level3: str | None = None


class _Publisher(_Model):
    id: str = Field(min_length=1)
    scheme: str = Field(min_length=1)
    name: dict[str, str] = Field(min_length=1)
    address: _Address
    jurisdiction: _Jurisdiction
    classification: dict[str, list[str]] = {}


class _Distribution(_Model):
    format: str = Field(min_length=1)
    conforms_to: str | None = None
    transformation: str | None = None
    languages: list[str] = []


class _JurisdictionDetermination(_Model):
    context_id: str = Field(min_length=1)
    context: dict[str, str] = Field(min_length=1)
    level: str = Field(pattern=r"^(Country|NUTS1|NUTS2|NUTS3|LAU)$")


class _Classification(_Model):
    id: str = Field(min_length=1)
    type: str = "Codelist"
    value_expression: str
    description: dict[str, str] = {}
    values: list[str] = Field(min_length=1)


class _AccessService(_Model):
    id: str = Field(min_length=1)
    scheme: str = Field(min_length=1)
    conforms_to: str = "oots-edm:v1.0"
    publisher: str


class _DataService(_Model):
    id: str = Field(min_length=1)
    evidence_type: str
    title: dict[str, str] = {}
    description: dict[str, str] = {}
    level_of_assurance: str | None = Field(None, pattern=r"^(Low|Substantial|High)$")
    distributions: list[_Distribution] = Field(min_length=1)
    jurisdiction_determination: _JurisdictionDetermination | None = None
    classification: list[_Classification] = []
    access_service: list[_AccessService] = Field(min_length=1)


class _File(_Model):
    procedure: list[_Procedure] = []
    requirement: list[_Requirement] = []
    evidence_type: list[_EvidenceType] = []
    evidence_type_list: list[_EvidenceTypeList] = []
    publisher: list[_Publisher] = []
    data_service: list[_DataService] = []


def _texts(d: dict[str, str]) -> c.Texts:
    return tuple((lang.upper(), text) for lang, text in d.items())


def _publisher(p: _Publisher) -> c.Publisher:
    return c.Publisher(
        id=p.id,
        scheme=p.scheme,
        names=_texts(p.name),
        address=c.Address(**p.address.model_dump()),
        jurisdiction=c.Jurisdiction(**p.jurisdiction.model_dump()),
        classification_values=tuple((k.lower(), tuple(v)) for k, v in p.classification.items()),
    )


def _build(f: _File, source: str) -> c.Catalogue:
    publishers = {p.id: _publisher(p) for p in f.publisher}
    types = {e.classification: e for e in f.evidence_type}
    services = []
    problems: list[tuple[str, str]] = []
    for i, ds in enumerate(f.data_service):
        et = types.get(ds.evidence_type)
        if et is None:
            problems.append((f"data_service.{i}.evidence_type", f"unknown evidence type {ds.evidence_type}"))
            continue
        access = []
        for j, a in enumerate(ds.access_service):
            if a.publisher not in publishers:
                problems.append((f"data_service.{i}.access_service.{j}.publisher", f"unknown publisher {a.publisher}"))
                continue
            access.append(c.AccessService(a.id, a.scheme, a.conforms_to, publishers[a.publisher]))
        jd = ds.jurisdiction_determination
        services.append(
            c.DataService(
                id=ds.id,
                classification=ds.evidence_type,
                titles=_texts(ds.title) or _texts(et.title),
                descriptions=_texts(ds.description) or _texts(et.description),
                distributions=tuple(
                    c.Distribution(d.format, d.conforms_to, d.transformation, tuple(d.languages))
                    for d in ds.distributions
                ),
                access_services=tuple(access),
                level_of_assurance=ds.level_of_assurance,
                jurisdiction=c.JurisdictionDetermination(jd.context_id.lower(), _texts(jd.context), jd.level)
                if jd
                else None,
                classifications=tuple(
                    c.ClassificationConcept(
                        k.id.lower(), k.type, k.value_expression, _texts(k.description), tuple(k.values)
                    )
                    for k in ds.classification
                ),
            )
        )
    if problems:
        raise ConfigError(f"{source} has {len(problems)} problem(s): {problems[0][0]}: {problems[0][1]}", problems)
    return c.Catalogue(
        procedures=tuple(
            c.Procedure(p.id, p.code, p.country, _texts(p.title), _texts(p.description)) for p in f.procedure
        ),
        requirements=tuple(
            c.Requirement(r.id, _texts(r.name), _texts(r.description), tuple(r.procedures)) for r in f.requirement
        ),
        evidence_types=tuple(
            c.EvidenceType(e.classification, e.country, _texts(e.title), _texts(e.description)) for e in f.evidence_type
        ),
        evidence_type_lists=tuple(
            c.EvidenceTypeList(x.id, x.requirement, x.country, _texts(x.name), tuple(x.evidence_types))
            for x in f.evidence_type_list
        ),
        data_services=tuple(services),
    )


def parse_catalogue(data: dict[str, Any], *, source: str = "the catalogue") -> c.Catalogue:
    """A catalogue from the parsed TOML document ``data``; :class:`ConfigError` names every problem."""
    try:
        model = _File.model_validate(data)
    except ValidationError as exc:
        raise describe_problems(exc, source, shown=5) from None
    return _build(model, source)


def load_catalogue(path: str | Path) -> c.Catalogue:
    """Read a catalogue data file (TOML)."""
    return parse_catalogue(read_toml(path, "catalogue file"), source=str(path))
