"""The SDG metadata objects (namespace ``http://data.europa.eu/p4s``) that EDM slots carry.

Each class is a frozen dataclass named after its ``sdg:`` element or type; fields are in XSD order
(``SDG-GenericMetadataProfile-v1.0.0.xsd``), which is also the order the codec writes. Repeated
elements are tuples. ``_xml_names`` maps a field to its element name where the name is not simply the
field name in CamelCase (plural tuple fields); ``_since_v2`` lists fields only ``oots-edm:v2.0`` has,
which the v1.0 codec leaves out.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum
from typing import ClassVar

from oots.errors import ModelError

__all__ = [
    "AccessService",
    "Address",
    "Agent",
    "AgentClassification",
    "AttributeKeyValuePair",
    "DataServiceEvidenceType",
    "Distribution",
    "Evidence",
    "EvidenceProvider",
    "EvidenceType",
    "EvidenceTypeDistribution",
    "EvidenceTypeList",
    "Gender",
    "Identifier",
    "InformationConcept",
    "IsAbout",
    "Jurisdiction",
    "JurisdictionDetermination",
    "LegalPerson",
    "LevelOfAssurance",
    "Period",
    "Person",
    "ReferenceFramework",
    "Requirement",
    "SupportedValue",
    "Text",
]


class LevelOfAssurance(StrEnum):
    """eIDAS level of assurance (code list ``LevelsOfAssurance``)."""

    LOW = "Low"
    SUBSTANTIAL = "Substantial"
    HIGH = "High"


class Gender(StrEnum):
    """eIDAS gender (``sdg:GenderType``)."""

    MALE = "Male"
    FEMALE = "Female"
    UNSPECIFIED = "Unspecified"


class AgentClassification(StrEnum):
    """Code list ``AgentClassification``: the role an ``sdg:Agent`` plays in a message."""

    EVIDENCE_REQUESTER = "ER"
    INTERMEDIARY_PLATFORM = "IP"
    EVIDENCE_PROVIDER = "EP"
    ERROR_PROVIDER = "ERRP"


@dataclass(frozen=True, slots=True)
class Identifier:
    """``sdg:IdentifierType``: a value with an optional ``schemeID`` (EAS URN, ``eidas``, ...)."""

    value: str
    scheme_id: str | None = None


@dataclass(frozen=True, slots=True)
class Text:
    """``sdg:MultilingualStringType``: a text with an optional ``lang`` attribute (``EN``, ``DE``...)."""

    value: str
    lang: str | None = None


@dataclass(frozen=True, slots=True)
class Address:
    """``sdg:AddressType``; ``admin_unit_level_1`` is the ISO 3166-1 alpha-2 country code."""

    admin_unit_level_1: str
    full_address: str | None = None
    locator_designator: str | None = None
    post_code: str | None = None
    post_city_name: str | None = None
    thoroughfare: str | None = None
    admin_unit_level_2: str | None = None

    _order: ClassVar[tuple[str, ...]] = (
        "full_address",
        "locator_designator",
        "post_code",
        "post_city_name",
        "thoroughfare",
        "admin_unit_level_1",
        "admin_unit_level_2",
    )


@dataclass(frozen=True, slots=True)
class Jurisdiction:
    """``sdg:JurisdictionType``: country, NUTS and LAU codes."""

    admin_unit_level_1: str
    admin_unit_level_2: str | None = None
    admin_unit_level_3: str | None = None


@dataclass(frozen=True, slots=True)
class Agent:
    """``sdg:AgentType``: an evidence requester, provider, intermediary platform or error provider."""

    identifier: Identifier
    names: tuple[Text, ...]
    address: Address | None = None
    jurisdiction: Jurisdiction | None = None
    classification: str | None = None

    _xml_names: ClassVar[dict[str, str]] = {"names": "Name"}


@dataclass(frozen=True, slots=True)
class AttributeKeyValuePair:
    """``sdg:SectorSpecificAttribute``: an eIDAS-style attribute outside the minimum data set."""

    attribute_name: str
    attribute_uri: str
    attribute_value: str

    _xml_names: ClassVar[dict[str, str]] = {"attribute_uri": "AttributeURI"}


@dataclass(frozen=True, slots=True)
class Person:
    """``sdg:PersonType``: the eIDAS minimum data set of a natural person, with its level of assurance."""

    family_name: str
    given_name: str
    date_of_birth: dt.date
    level_of_assurance: LevelOfAssurance | None = None
    identifier: Identifier | None = None
    birth_name: str | None = None
    place_of_birth: str | None = None
    current_address: Address | None = None
    gender: Gender | None = None
    sector_specific_attributes: tuple[AttributeKeyValuePair, ...] = ()

    _order: ClassVar[tuple[str, ...]] = (
        "level_of_assurance",
        "identifier",
        "family_name",
        "given_name",
        "date_of_birth",
        "birth_name",
        "place_of_birth",
        "current_address",
        "gender",
        "sector_specific_attributes",
    )
    _xml_names: ClassVar[dict[str, str]] = {"sector_specific_attributes": "SectorSpecificAttribute"}


@dataclass(frozen=True, slots=True)
class LegalPerson:
    """``sdg:LegalPersonType``: the eIDAS minimum data set of a legal person."""

    legal_name: str
    level_of_assurance: LevelOfAssurance | None = None
    identifiers: tuple[Identifier, ...] = ()
    legal_person_identifier: Identifier | None = None
    registered_address: Address | None = None
    sector_specific_attributes: tuple[AttributeKeyValuePair, ...] = ()

    _order: ClassVar[tuple[str, ...]] = (
        "level_of_assurance",
        "identifiers",
        "legal_person_identifier",
        "legal_name",
        "registered_address",
        "sector_specific_attributes",
    )
    _xml_names: ClassVar[dict[str, str]] = {
        "identifiers": "Identifier",
        "sector_specific_attributes": "SectorSpecificAttribute",
    }


@dataclass(frozen=True, slots=True)
class SupportedValue:
    """``sdg:SupportedValueType``: one kind of values (strings, dates or booleans)."""

    string_values: tuple[str, ...] = ()
    date_values: tuple[dt.date, ...] = ()
    boolean_values: tuple[bool, ...] = ()

    _xml_names: ClassVar[dict[str, str]] = {
        "string_values": "StringValue",
        "date_values": "DateValue",
        "boolean_values": "BooleanValue",
    }

    def __post_init__(self) -> None:
        kinds = sum(1 for values in (self.string_values, self.date_values, self.boolean_values) if values)
        if kinds != 1:
            raise ModelError("sdg:SupportedValue holds exactly one kind of values (strings, dates or booleans)")


@dataclass(frozen=True, slots=True)
class InformationConcept:
    """``sdg:InformationConceptType``: an evidence provider classification concept and its value(s)."""

    identifier: Identifier
    type: str | None = None
    value_expression: str | None = None
    descriptions: tuple[Text, ...] = ()
    supported_value: SupportedValue | None = None

    _xml_names: ClassVar[dict[str, str]] = {"descriptions": "Description"}


@dataclass(frozen=True, slots=True)
class JurisdictionDetermination:
    """``sdg:EvidenceProviderJurisdictionDetermination``: which user attribute decides the provider."""

    jurisdiction_context_id: str
    jurisdiction_contexts: tuple[Text, ...]
    jurisdiction_level: str

    _xml_names: ClassVar[dict[str, str]] = {"jurisdiction_contexts": "JurisdictionContext"}


@dataclass(frozen=True, slots=True)
class EvidenceTypeDistribution:
    """``sdg:DistributedAs``: a format an evidence type is available in (``Language`` only in v2.0)."""

    format: str
    conforms_to: str | None = None
    transformation: str | None = None
    languages: tuple[str, ...] = ()

    _order: ClassVar[tuple[str, ...]] = ("format", "languages", "conforms_to", "transformation")
    _xml_names: ClassVar[dict[str, str]] = {"languages": "Language"}
    _since_v2: ClassVar[frozenset[str]] = frozenset({"languages"})


@dataclass(frozen=True, slots=True)
class EvidenceProvider:
    """``sdg:Publisher`` of an access service: the evidence provider and where it is competent."""

    identifier: Identifier
    names: tuple[Text, ...]
    address: Address
    jurisdiction: Jurisdiction
    classification_concepts: tuple[InformationConcept, ...] = ()

    _xml_names: ClassVar[dict[str, str]] = {"names": "Name", "classification_concepts": "ClassificationConcept"}


@dataclass(frozen=True, slots=True)
class AccessService:
    """``sdg:AccessService`` (``DataServiceType``): the provider's access point and EDM version."""

    identifier: Identifier
    conforms_to: str
    publisher: EvidenceProvider


@dataclass(frozen=True, slots=True)
class DataServiceEvidenceType:
    """``sdg:DataServiceEvidenceType``: an evidence type as a data service offers it (DSD; request).

    The XSD wants at least one ``DistributedAs``; the model leaves that check to the validator.
    """

    identifier: str
    evidence_type_classification: str
    titles: tuple[Text, ...]
    distributed_as: tuple[EvidenceTypeDistribution, ...] = ()
    descriptions: tuple[Text, ...] = ()
    access_services: tuple[AccessService, ...] = ()
    authentication_level_of_assurance: LevelOfAssurance | None = None
    jurisdiction_determination: JurisdictionDetermination | None = None
    evidence_provider_classifications: tuple[InformationConcept, ...] = ()

    _order: ClassVar[tuple[str, ...]] = (
        "identifier",
        "evidence_type_classification",
        "titles",
        "descriptions",
        "distributed_as",
        "access_services",
        "authentication_level_of_assurance",
        "jurisdiction_determination",
        "evidence_provider_classifications",
    )

    _xml_names: ClassVar[dict[str, str]] = {
        "titles": "Title",
        "descriptions": "Description",
        "distributed_as": "DistributedAs",
        "access_services": "AccessService",
        "jurisdiction_determination": "EvidenceProviderJurisdictionDetermination",
        "evidence_provider_classifications": "EvidenceProviderClassification",
    }


@dataclass(frozen=True, slots=True)
class Distribution:
    """``sdg:Distribution`` of an evidence in a response: its format, languages and data model."""

    format: str
    languages: tuple[str, ...] = ()
    conforms_to: str | None = None
    transformation: str | None = None

    _xml_names: ClassVar[dict[str, str]] = {"languages": "Language"}


@dataclass(frozen=True, slots=True)
class EvidenceType:
    """``sdg:EvidenceType`` (EB) or ``sdg:IsConformantTo`` (response): an evidence type."""

    evidence_type_classification: str
    titles: tuple[Text, ...]
    descriptions: tuple[Text, ...] = ()
    jurisdictions: tuple[Jurisdiction, ...] = ()
    distributions: tuple[Distribution, ...] = ()

    _xml_names: ClassVar[dict[str, str]] = {
        "titles": "Title",
        "descriptions": "Description",
        "jurisdictions": "Jurisdiction",
        "distributions": "Distribution",
    }


@dataclass(frozen=True, slots=True)
class EvidenceTypeList:
    """``sdg:EvidenceTypeList``: evidence types that together fulfil a requirement (lists are alternatives).

    ``Jurisdiction`` only in v2.0 (seen in the Commission's acceptance Evidence Broker).
    """

    identifier: str
    names: tuple[Text, ...] = ()
    evidence_types: tuple[EvidenceType, ...] = ()
    jurisdictions: tuple[Jurisdiction, ...] = ()

    _xml_names: ClassVar[dict[str, str]] = {
        "names": "Name",
        "evidence_types": "EvidenceType",
        "jurisdictions": "Jurisdiction",
    }
    _since_v2: ClassVar[frozenset[str]] = frozenset({"jurisdictions"})


@dataclass(frozen=True, slots=True)
class ReferenceFramework:
    """``sdg:ReferenceFramework``: the legal basis of a requirement (``RelatedTo`` names the procedure)."""

    identifier: str
    titles: tuple[Text, ...] = ()
    descriptions: tuple[Text, ...] = ()
    related_to: tuple[ReferenceFramework, ...] = ()
    jurisdiction: Jurisdiction | None = None

    _xml_names: ClassVar[dict[str, str]] = {
        "titles": "Title",
        "descriptions": "Description",
        "related_to": "RelatedTo",
    }


@dataclass(frozen=True, slots=True)
class Requirement:
    """``sdg:Requirement``: what a procedure needs proven (``Description`` only in v2.0)."""

    identifier: str
    names: tuple[Text, ...]
    descriptions: tuple[Text, ...] = ()
    reference_frameworks: tuple[ReferenceFramework, ...] = ()
    evidence_type_lists: tuple[EvidenceTypeList, ...] = ()

    _xml_names: ClassVar[dict[str, str]] = {
        "names": "Name",
        "descriptions": "Description",
        "reference_frameworks": "ReferenceFramework",
        "evidence_type_lists": "EvidenceTypeList",
    }
    _since_v2: ClassVar[frozenset[str]] = frozenset({"descriptions"})


@dataclass(frozen=True, slots=True)
class IsAbout:
    """``sdg:IsAbout``: the natural or the legal person an evidence is about (exactly one)."""

    natural_person: Person | None = None
    legal_person: LegalPerson | None = None

    def __post_init__(self) -> None:
        if (self.natural_person is None) == (self.legal_person is None):
            raise ModelError("sdg:IsAbout holds exactly one of sdg:NaturalPerson and sdg:LegalPerson")


@dataclass(frozen=True, slots=True)
class Period:
    """``sdg:ValidityPeriod``."""

    start_date: dt.date
    end_date: dt.date


@dataclass(frozen=True, slots=True)
class Evidence:
    """``sdg:Evidence``: the metadata of one evidence in a response."""

    identifier: str
    is_about: IsAbout
    issuing_authority: Agent
    is_conformant_to: EvidenceType
    issuing_date: dt.date
    distribution: Distribution
    validity_period: Period | None = None
