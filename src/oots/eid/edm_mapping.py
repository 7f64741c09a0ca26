"""The logged-in identity as exchange data model objects (``sdg:Person``, ``sdg:LegalPerson``).

An evidence requester puts these in the request's ``NaturalPerson`` / ``LegalPerson`` and
``AuthorizedRepresentative`` slots; an evidence provider builds the same from its preview-space login
to compare with the request. Identifiers get ``schemeID="eidas"``; a legal person's VAT, tax, LEI and
EORI numbers become ``Identifier`` elements with the ``IdentifierSchemes`` codes. An address is only
carried when its country (``AdminUnitLevel1``, which the model requires) is known.
"""

from __future__ import annotations

from oots import edm
from oots.eid.identity import Address, Gender, Identity, LegalPerson, LevelOfAssurance, NaturalPerson, Subject
from oots.errors import ModelError

__all__ = ["edm_address", "edm_legal_person", "edm_level", "edm_person", "edm_subjects", "from_edm_person"]

#: IdentifierSchemes codes for the optional identifiers of a legal person.
_LEGAL_SCHEMES = (("vat_registration", "VAT"), ("tax_reference", "TAX"), ("lei", "LEI"), ("eori", "EORI"))


def edm_level(level: LevelOfAssurance) -> edm.LevelOfAssurance:
    return edm.LevelOfAssurance(level.edm_value)


def edm_address(address: Address | None) -> edm.Address | None:
    if address is None or not address.admin_unit_level1:
        return None
    return edm.Address(
        admin_unit_level_1=address.admin_unit_level1,
        full_address=address.full_address,
        locator_designator=address.locator_designator,
        post_code=address.post_code,
        post_city_name=address.post_city_name,
        thoroughfare=address.thoroughfare,
        admin_unit_level_2=address.admin_unit_level2,
    )


def edm_person(person: NaturalPerson, level: LevelOfAssurance) -> edm.Person:
    """``sdg:Person`` of a natural person logged in at ``level``."""
    return edm.Person(
        level_of_assurance=edm_level(level),
        identifier=edm.Identifier(person.person_identifier, scheme_id="eidas"),
        family_name=person.family_name,
        given_name=person.given_name,
        date_of_birth=person.date_of_birth,
        birth_name=person.birth_name,
        place_of_birth=person.place_of_birth,
        current_address=edm_address(person.current_address),
        gender=None if person.gender is None else edm.Gender(person.gender.value),
    )


def edm_legal_person(company: LegalPerson, level: LevelOfAssurance) -> edm.LegalPerson:
    """``sdg:LegalPerson`` of a legal person whose representative logged in at ``level``."""
    identifiers = tuple(
        edm.Identifier(value, scheme_id=scheme)
        for name, scheme in _LEGAL_SCHEMES
        if (value := getattr(company, name)) is not None
    )
    return edm.LegalPerson(
        level_of_assurance=edm_level(level),
        identifiers=identifiers,
        legal_person_identifier=edm.Identifier(company.legal_person_identifier, scheme_id="eidas"),
        legal_name=company.legal_name,
        registered_address=edm_address(company.registered_address),
    )


def _edm_subject(subject: Subject, level: LevelOfAssurance) -> edm.Person | edm.LegalPerson:
    if isinstance(subject, NaturalPerson):
        return edm_person(subject, level)
    return edm_legal_person(subject, level)


def edm_subjects(identity: Identity) -> tuple[edm.Person | edm.LegalPerson, edm.Person | None]:
    """The request's subject and its ``AuthorizedRepresentative`` (a natural person only: the model
    has no slot for a legal person acting for another, so such a representative is left out)."""
    representative = identity.representative
    return (
        _edm_subject(identity.subject, identity.level),
        edm_person(representative, identity.level) if isinstance(representative, NaturalPerson) else None,
    )


def from_edm_person(person: edm.Person) -> NaturalPerson:
    """A natural person from an ``sdg:Person`` (one that carries its eIDAS identifier)."""
    if person.identifier is None:
        raise ModelError("the sdg:Person carries no Identifier, so it cannot be compared with a login")
    address = person.current_address
    return NaturalPerson(
        person_identifier=person.identifier.value,
        family_name=person.family_name,
        given_name=person.given_name,
        date_of_birth=person.date_of_birth,
        birth_name=person.birth_name,
        place_of_birth=person.place_of_birth,
        current_address=None
        if address is None
        else Address(
            full_address=address.full_address,
            thoroughfare=address.thoroughfare,
            locator_designator=address.locator_designator,
            post_code=address.post_code,
            post_city_name=address.post_city_name,
            admin_unit_level1=address.admin_unit_level_1,
            admin_unit_level2=address.admin_unit_level_2,
        ),
        gender=None if person.gender is None else Gender(person.gender.value),
    )
