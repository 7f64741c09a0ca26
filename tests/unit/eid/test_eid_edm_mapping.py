"""The login identity as sdg:Person / sdg:LegalPerson, checked through the EDM codec and its rules."""

from __future__ import annotations

import datetime as dt

import pytest

from oots import edm
from oots.eid import Identity, LegalPerson, LevelOfAssurance, NaturalPerson
from oots.eid.edm_mapping import edm_person, edm_subjects, from_edm_person
from oots.eid.testidp import load_people
from oots.errors import ModelError


def login(key: str, level: LevelOfAssurance = LevelOfAssurance.HIGH) -> Identity:
    item = load_people().find(key)
    assert item is not None
    return Identity(
        item.subject, level, "http://idp.test", "oidc", dt.datetime(2026, 1, 1, tzinfo=dt.UTC), item.representative
    )


def test_natural_person() -> None:
    subject, rep = edm_subjects(login("de-2"))
    assert isinstance(subject, edm.Person)
    assert rep is None
    assert subject.level_of_assurance is edm.LevelOfAssurance.HIGH
    assert subject.identifier == edm.Identifier("DE/DE/L01X00T47", scheme_id="eidas")
    assert (subject.family_name, subject.given_name, subject.birth_name) == ("Schmidt", "Anna-Lena", "Weber")
    assert subject.date_of_birth == dt.date(1988, 12, 1)
    assert subject.gender is edm.Gender.FEMALE
    assert subject.current_address is not None
    assert subject.current_address.admin_unit_level_1 == "DE"
    assert subject.current_address.admin_unit_level_2 == "DE600"
    assert subject.current_address.thoroughfare == "Mönckebergstraße"


def test_company_and_its_representative() -> None:
    subject, rep = edm_subjects(login("nl-company-1", LevelOfAssurance.SUBSTANTIAL))
    assert isinstance(subject, edm.LegalPerson)
    assert subject.legal_name == "De Vries Logistiek B.V."
    assert subject.legal_person_identifier == edm.Identifier("NL/NL/99900707", scheme_id="eidas")
    assert subject.identifiers == (edm.Identifier("NL999000707B01", "VAT"),)
    assert subject.level_of_assurance is edm.LevelOfAssurance.SUBSTANTIAL
    assert rep is not None
    assert rep.family_name == "de Vries"


def test_legal_identifiers_get_their_schemes() -> None:
    company = LegalPerson("FR/FR/1", "ACME", vat_registration="FR123", lei="969500ABCDEF")
    ident = Identity(company, LevelOfAssurance.LOW, "i", "saml", dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    subject, _ = edm_subjects(ident)
    assert isinstance(subject, edm.LegalPerson)
    assert subject.identifiers == (edm.Identifier("FR123", "VAT"), edm.Identifier("969500ABCDEF", "LEI"))


def test_address_without_country_is_left_out() -> None:
    from oots.eid import Address

    person = NaturalPerson("DE/DE/1", "A", "B", dt.date(2000, 1, 1), current_address=Address(full_address="x"))
    assert edm_person(person, LevelOfAssurance.LOW).current_address is None


def test_round_trip_from_edm() -> None:
    item = load_people().find("pl-2")
    assert item is not None
    assert isinstance(item.subject, NaturalPerson)
    assert from_edm_person(edm_person(item.subject, LevelOfAssurance.HIGH)) == item.subject


def test_edm_person_without_identifier() -> None:
    with pytest.raises(ModelError, match="no Identifier"):
        from_edm_person(edm.Person("A", "B", dt.date(2000, 1, 1)))


def test_request_with_the_login_passes_the_codec() -> None:
    subject, rep = edm_subjects(login("es-company-1"))
    agent = edm.Agent(edm.Identifier("0088:123", "urn:cef.eu:names:identifier:EAS:0088"), (edm.Text("ER"),))
    evidence_type = edm.DataServiceEvidenceType(
        identifier="a2d9f6b4-5f0c-4c7e-9f36-2a8e0d1c7b11",
        evidence_type_classification="https://sr.oots.tech.ec.europa.eu/evidencetypeclassifications/ES/0f1c9c3e",
        titles=(edm.Text("Certificate", "EN"),),
        distributed_as=(edm.EvidenceTypeDistribution("application/pdf"),),
    )
    request = edm.evidence_request(
        requester=agent, provider=agent, evidence_type=evidence_type, subject=subject, authorized_representative=rep
    )
    parsed = edm.parse(edm.to_xml(request))
    assert isinstance(parsed, edm.QueryRequest)
    assert parsed.legal_person == subject
    assert parsed.authorized_representative == rep
