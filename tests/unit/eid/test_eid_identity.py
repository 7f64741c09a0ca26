"""The typed identity, its two wire vocabularies and the sealed cookies."""

from __future__ import annotations

import base64
import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from oots.eid import Address, Gender, Identity, LegalPerson, LevelOfAssurance, NaturalPerson
from oots.eid.attributes import (
    EIDAS_NATURAL,
    claims_to_subjects,
    eidas_attributes_to_subjects,
    identity_to_claims,
    subjects_to_eidas_attributes,
)
from oots.eid.session import Sealer, identity_from_json, identity_to_json
from oots.errors import ModelError, RemoteProtocolError

L = LevelOfAssurance
ADDRESS = Address(
    full_address="Rue de la Loi 16, 1000 Brussels",
    thoroughfare="Rue de la Loi",
    locator_designator="16",
    post_code="1000",
    post_city_name="Brussels",
    admin_unit_level1="BE",
    admin_unit_level2="BE10",
)
PERSON = NaturalPerson(
    "BE/BE/85031412345",
    "Peeters",
    "Lucas",
    dt.date(1985, 3, 14),
    birth_name="Claes",
    place_of_birth="Antwerpen",
    current_address=ADDRESS,
    gender=Gender.MALE,
)
COMPANY = LegalPerson(
    "BE/BE/0403170701", "Brouwerij Peeters NV", registered_address=ADDRESS, lei="5493001KJTIIGC8Y1R12"
)


def test_levels_are_ordered() -> None:
    assert L.HIGH.satisfies(L.SUBSTANTIAL)
    assert L.SUBSTANTIAL.satisfies(L.SUBSTANTIAL)
    assert not L.LOW.satisfies(L.SUBSTANTIAL)
    assert L.SUBSTANTIAL.uri == "http://eidas.europa.eu/LoA/substantial"
    assert L.HIGH.edm_value == "High"


@pytest.mark.parametrize("text", ["http://eidas.europa.eu/LoA/high", "High", "high", " HIGH "])
def test_level_parse(text: str) -> None:
    assert L.parse(text) is L.HIGH


def test_level_parse_refuses_other_words() -> None:
    with pytest.raises(ModelError, match="not an eIDAS level"):
        L.parse("http://eidas.europa.eu/LoA/NotNotified/high")


@pytest.mark.parametrize("bad", ["BE12345", "be/BE/1", "BE/BE/", "BE/BE/with space", "BEL/BE/1"])
def test_person_identifier_must_have_the_eidas_form(bad: str) -> None:
    with pytest.raises(ModelError, match="CC/CC/identifier"):
        NaturalPerson(bad, "A", "B", dt.date(2000, 1, 1))


def test_names_are_required() -> None:
    with pytest.raises(ModelError, match="family name"):
        NaturalPerson("BE/BE/1", " ", "B", dt.date(2000, 1, 1))


def identity(subject: NaturalPerson | LegalPerson, rep: NaturalPerson | None = None) -> Identity:
    return Identity(subject, L.SUBSTANTIAL, "http://idp.test", "oidc", dt.datetime(2026, 1, 1, tzinfo=dt.UTC), rep)


def test_claims_round_trip_person() -> None:
    claims = identity_to_claims(identity(PERSON))
    assert claims["acr"] == L.SUBSTANTIAL.uri
    assert claims["birthdate"] == "1985-03-14"
    assert claims["address"]["postal_code"] == "1000"
    assert claims_to_subjects(claims) == (PERSON, None)


def test_claims_round_trip_company_with_representative() -> None:
    claims = identity_to_claims(identity(COMPANY, PERSON))
    assert claims["representative"]["person_identifier"] == PERSON.person_identifier
    assert claims_to_subjects(claims) == (COMPANY, PERSON)


def test_claims_missing_family_name() -> None:
    claims = identity_to_claims(identity(PERSON))
    del claims["family_name"]
    with pytest.raises(RemoteProtocolError, match="family_name is missing"):
        claims_to_subjects(claims)


def test_eidas_attributes_round_trip() -> None:
    attrs = subjects_to_eidas_attributes(COMPANY, PERSON)
    assert attrs[EIDAS_NATURAL + "representative/CurrentFamilyName"] == ["Peeters"]
    assert eidas_attributes_to_subjects(attrs) == (COMPANY, PERSON)
    attrs = subjects_to_eidas_attributes(PERSON)
    address = base64.b64decode(attrs[EIDAS_NATURAL + "CurrentAddress"][0])
    assert b"<eidas-natural:PostCode" in address or b"PostCode>1000<" in address
    assert eidas_attributes_to_subjects(attrs) == (PERSON, None)


def test_eidas_attribute_with_two_values_is_refused() -> None:
    attrs = subjects_to_eidas_attributes(PERSON)
    attrs[EIDAS_NATURAL + "CurrentFamilyName"] = ["A", "B"]
    with pytest.raises(RemoteProtocolError, match="2 values"):
        eidas_attributes_to_subjects(attrs)


def test_eidas_address_with_a_dtd_is_refused() -> None:
    attrs = subjects_to_eidas_attributes(PERSON)
    attrs[EIDAS_NATURAL + "CurrentAddress"] = [base64.b64encode(b"<!DOCTYPE x><x/>").decode()]
    with pytest.raises(RemoteProtocolError, match="CurrentAddress"):
        eidas_attributes_to_subjects(attrs)


def test_assertion_without_identifier_is_refused() -> None:
    with pytest.raises(RemoteProtocolError, match="neither a PersonIdentifier"):
        eidas_attributes_to_subjects({EIDAS_NATURAL + "CurrentFamilyName": ["X"]})


names = st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=30).filter(str.strip)


@given(family=names, given_name=names, day=st.dates(dt.date(1900, 1, 1), dt.date(2025, 12, 31)), place=names)
def test_any_person_survives_both_vocabularies_and_the_cookie(
    family: str, given_name: str, day: dt.date, place: str
) -> None:
    person = NaturalPerson("FR/DE/X1", family, given_name, day, place_of_birth=place, current_address=ADDRESS)
    assert claims_to_subjects(identity_to_claims(identity(person)))[0] == person
    assert eidas_attributes_to_subjects(subjects_to_eidas_attributes(person))[0] == person
    assert identity_from_json(identity_to_json(identity(person))) == identity(person)


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def test_sealed_values_open_only_for_their_purpose_and_lifetime() -> None:
    clock = Clock()
    flow = Sealer(b"0123456789abcdef0123", "flow", clock=clock)
    session = Sealer(b"0123456789abcdef0123", "session", clock=clock)
    token = flow.seal({"state": "s"})
    assert flow.open(token, 60) == {"state": "s"}
    assert session.open(token, 60) is None  # another purpose, another key
    assert flow.open(token[:-2] + "AA", 60) is None  # tampered
    assert flow.open("garbage", 60) is None
    clock.now += 61
    assert flow.open(token, 60) is None  # too old


def test_short_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="16 bytes"):
        Sealer(b"short", "flow")
