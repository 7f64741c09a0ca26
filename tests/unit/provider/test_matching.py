"""Identity matching: zero, one and several matches; identifiers; transliteration; compound names."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from oots.provider.matching import (
    Attribute,
    LegalPersonQuery,
    LegalPersonRecord,
    MatchOutcome,
    MatchRules,
    NameLevel,
    PersonQuery,
    PersonRecord,
    compare_names,
    legal_name_key,
    match_legal_person,
    match_person,
    normalise_identifier,
    normalise_legal_identifier,
)

BORN = dt.date(1984, 2, 29)


def rec(rid: str, family: str, given: str, born: dt.date = BORN, **kw: str) -> PersonRecord:
    return PersonRecord(rid, family, given, born, **kw)


def test_one_exact_match() -> None:
    result = match_person(
        PersonQuery("Dupont", "Marie", BORN), [rec("1", "Dupont", "Marie"), rec("2", "Durand", "Marie")]
    )
    assert result.outcome is MatchOutcome.MATCH
    assert result.record is not None
    assert result.record.record_id == "1"
    assert result.reason == "MATCH:NAMES:family=EXACT,given=EXACT"
    assert result.candidates == 2


def test_no_candidate_at_all() -> None:
    result = match_person(PersonQuery("Dupont", "Marie", BORN), [])
    assert result.outcome is MatchOutcome.NO_MATCH
    assert result.reason == "NO_MATCH:NO_CANDIDATE"
    assert result.record is None


def test_date_of_birth_must_be_equal() -> None:
    result = match_person(PersonQuery("Dupont", "Marie", BORN), [rec("1", "Dupont", "Marie", dt.date(1984, 3, 1))])
    assert result.outcome is MatchOutcome.NO_MATCH
    assert result.reason == "NO_MATCH:DATE_OF_BIRTH"


def test_names_must_agree() -> None:
    result = match_person(PersonQuery("Dupont", "Marie", BORN), [rec("1", "Dupond", "Marie")])
    assert result.reason == "NO_MATCH:NAMES"


def test_two_people_with_same_names_and_birth_date_are_ambiguous() -> None:
    result = match_person(PersonQuery("Rossi", "Marco", BORN), [rec("1", "Rossi", "Marco"), rec("2", "ROSSI", "marco")])
    assert result.outcome is MatchOutcome.AMBIGUOUS
    assert result.reason == "AMBIGUOUS:NAMES:n=2"
    assert result.record is None
    assert set(result.matched) == {"1", "2"}


def test_tie_breaker_place_of_birth_decides() -> None:
    candidates = [
        rec("1", "Rossi", "Marco", place_of_birth="Roma"),
        rec("2", "Rossi", "Marco", place_of_birth="Milano"),
    ]
    result = match_person(PersonQuery("Rossi", "Marco", BORN, place_of_birth="Milano"), candidates)
    assert result.outcome is MatchOutcome.MATCH
    assert result.record is not None
    assert result.record.record_id == "2"
    assert result.reason == "MATCH:TIE_BREAK:place_of_birth"


def test_tie_breaker_gender_and_post_code() -> None:
    candidates = [
        rec("1", "Nowak", "Alex", gender="Male", post_code="00-950"),
        rec("2", "Nowak", "Alex", gender="Female", post_code="31-000"),
    ]
    result = match_person(PersonQuery("Nowak", "Alex", BORN, gender="F"), candidates)
    assert result.record is not None
    assert result.record.record_id == "2"
    result = match_person(PersonQuery("Nowak", "Alex", BORN, post_code="00950"), candidates)
    assert result.record is not None
    assert result.record.record_id == "1"


def test_tie_breakers_that_contradict_every_candidate_leave_it_ambiguous() -> None:
    candidates = [
        rec("1", "Rossi", "Marco", place_of_birth="Roma"),
        rec("2", "Rossi", "Marco", place_of_birth="Milano"),
    ]
    result = match_person(PersonQuery("Rossi", "Marco", BORN, place_of_birth="Napoli"), candidates)
    assert result.outcome is MatchOutcome.AMBIGUOUS
    assert result.reason == "AMBIGUOUS:CONFLICTS:n=2"


def test_tie_breakers_do_not_reject_a_single_candidate_by_default() -> None:
    result = match_person(
        PersonQuery("Rossi", "Marco", BORN, place_of_birth="Napoli"),
        [rec("1", "Rossi", "Marco", place_of_birth="Roma")],
    )
    assert result.is_match
    rules = MatchRules(reject_on_conflict=(Attribute.PLACE_OF_BIRTH,))
    result = match_person(
        PersonQuery("Rossi", "Marco", BORN, place_of_birth="Napoli"),
        [rec("1", "Rossi", "Marco", place_of_birth="Roma")],
        rules,
    )
    assert result.outcome is MatchOutcome.NO_MATCH
    assert result.reason == "NO_MATCH:CONFLICT:place_of_birth"


def test_identifier_exact_match_wins_over_names() -> None:
    candidates = [rec("1", "Smith", "John", identifier="DK/DK/123123123"), rec("2", "Smith", "John")]
    result = match_person(PersonQuery("Smyth", "Jon", BORN, identifier="DK/DE/123123123"), candidates)
    assert result.outcome is MatchOutcome.MATCH
    assert result.record is not None
    assert result.record.record_id == "1"
    assert result.reason == "MATCH:IDENTIFIER"


def test_a_different_identifier_of_the_same_country_is_another_person() -> None:
    candidates = [rec("1", "Smith", "John", identifier="DK/DK/999"), rec("2", "Smith", "John")]
    result = match_person(PersonQuery("Smith", "John", BORN, identifier="DK/DE/123"), candidates)
    assert result.record is not None
    assert result.record.record_id == "2"
    only_other = match_person(PersonQuery("Smith", "John", BORN, identifier="DK/DE/123"), candidates[:1])
    assert only_other.reason == "NO_MATCH:IDENTIFIER_CONFLICT"


def test_identifier_without_fallback() -> None:
    rules = MatchRules(identifier_fallback=False)
    result = match_person(
        PersonQuery("Smith", "John", BORN, identifier="DK/DE/123"), [rec("2", "Smith", "John")], rules
    )
    assert result.reason == "NO_MATCH:IDENTIFIER"


def test_identifier_of_another_country_does_not_conflict() -> None:
    result = match_person(
        PersonQuery("Smith", "John", BORN, identifier="DK/DE/123"), [rec("1", "Smith", "John", identifier="DE/DE/555")]
    )
    assert result.is_match


@pytest.mark.parametrize(
    ("query_family", "query_given", "record_family", "record_given"),
    [
        ("Papadopoulou", "Eleni", "Παπαδοπούλου", "Ελένη"),
        ("PAPADOPOULOU", "ELENI", "Παπαδοπούλου", "Ελένη"),
        ("Chatzigeorgiou", "Ioannis", "Χατζηγεωργίου", "Ιωάννης"),
        ("Hatzigeorgiou", "Ioannis", "Χατζηγεωργίου", "Ιωάννης"),
        ("Shcherbakova", "Yuliya", "Щербакова", "Юлия"),
        ("Shevchenko", "Oleksandr", "Шевченко", "Олександр"),
        ("Ivanova", "Mariya", "Иванова", "Мария"),
        ("Dimitrov", "Georgi", "Димитров", "Георги"),
        ("Müller", "Jürgen", "Mueller", "Juergen"),
        ("Lewandowska", "Małgorzata", "LEWANDOWSKA", "MALGORZATA"),
    ],
)
def test_transliteration_matches(query_family: str, query_given: str, record_family: str, record_given: str) -> None:
    result = match_person(PersonQuery(query_family, query_given, BORN), [rec("1", record_family, record_given)])
    assert result.is_match, result.reason


@pytest.mark.parametrize(
    ("query_family", "record_family", "level"),
    [
        ("García Márquez", "García Márquez", NameLevel.EXACT),
        ("García-Márquez", "García Márquez", NameLevel.EXACT),
        ("Márquez García", "García Márquez", NameLevel.REORDERED),
        ("García", "García Márquez", NameLevel.PARTIAL),
        ("García Márquez", "Márquez", NameLevel.PARTIAL),
        ("van der Berg", "Van Der Berg", NameLevel.EXACT),
        ("Vanderberg", "van der Berg", NameLevel.EXACT),
        ("Berg", "van der Berg", NameLevel.EXACT),
        ("de la Fuente", "Fuente", NameLevel.EXACT),
        ("García Márquez", "García López", NameLevel.NONE),
        ("Schmidt", "Schneider", NameLevel.NONE),
    ],
)
def test_compound_surnames(query_family: str, record_family: str, level: NameLevel) -> None:
    assert compare_names(query_family, record_family) is level


def test_multiple_given_names() -> None:
    assert compare_names("Maria", "Maria Luisa") is NameLevel.PARTIAL
    assert compare_names("Jean-Pierre", "Jean Pierre") is NameLevel.EXACT
    assert compare_names("Pierre Jean", "Jean Pierre") is NameLevel.REORDERED


def test_minimum_levels_are_configurable() -> None:
    strict = MatchRules(min_family_level=NameLevel.EXACT, min_given_level=NameLevel.EXACT)
    candidates = [rec("1", "García Márquez", "María")]
    assert match_person(PersonQuery("García", "María", BORN), candidates).is_match
    assert match_person(PersonQuery("García", "María", BORN), candidates, strict).reason == "NO_MATCH:NAMES"


def test_partial_names_of_two_people_are_ambiguous() -> None:
    candidates = [rec("1", "García Márquez", "María"), rec("2", "García López", "María")]
    result = match_person(PersonQuery("García", "María", BORN), candidates)
    assert result.outcome is MatchOutcome.AMBIGUOUS


def test_swapped_names_only_when_allowed() -> None:
    candidates = [rec("1", "Nagy", "Katalin")]
    query = PersonQuery("Katalin", "Nagy", BORN)
    assert match_person(query, candidates).reason == "NO_MATCH:NAMES"
    assert match_person(query, candidates, MatchRules(allow_swapped_names=True)).is_match


def test_birth_name_as_tie_breaker() -> None:
    candidates = [rec("1", "Schmidt", "Anna", birth_name="Weber"), rec("2", "Schmidt", "Anna", birth_name="Fischer")]
    result = match_person(PersonQuery("Schmidt", "Anna", BORN, birth_name="Fischer"), candidates)
    assert result.record is not None
    assert result.record.record_id == "2"


def test_reason_codes_hold_no_personal_data() -> None:
    candidates = [rec("1", "Papadopoulou", "Eleni", place_of_birth="Athina"), rec("2", "Papadopoulou", "Eleni")]
    query = PersonQuery("Papadopoulou", "Eleni", BORN, place_of_birth="Athina", identifier="EL/BE/77")
    for result in (match_person(query, candidates), match_person(query, candidates[1:]), match_person(query, [])):
        for secret in ("Papadopoulou", "Eleni", "Athina", "77", "1984"):
            assert secret.lower() not in result.reason.lower()


def test_normalise_identifier() -> None:
    assert normalise_identifier("ES/AT/02635542Y") == normalise_identifier("es/de/02635542y") == "ES/02635542Y"
    assert normalise_identifier(" 123.456-7 ") == "1234567"
    assert normalise_legal_identifier("VAT", "BE 0123.456.789") == ("VAT", "0123456789")
    assert normalise_legal_identifier("vat", "0123456789") == ("VAT", "0123456789")


@pytest.mark.timeout(30)  # a guard against hanging: the normalisation takes microseconds
def test_a_long_identifier_with_blanks_is_normalised_in_one_pass() -> None:
    """An identifier comes from the request: a lazy pattern before optional blanks was quadratic (13 s for 64 KB)."""
    assert normalise_identifier("ES/ES/a" + " " * 200_000 + "x\n") == "ES/AX"
    assert normalise_identifier(" es / at / 026.355-42y ") == "ES/02635542Y"


def test_legal_person_by_identifier() -> None:
    companies = [
        LegalPersonRecord("c1", "Acme SA", identifiers=(("VAT", "BE0123456789"),)),
        LegalPersonRecord("c2", "Acme SPRL", identifiers=(("VAT", "BE0999999999"),)),
    ]
    result = match_legal_person(LegalPersonQuery("ACME", identifiers=(("VAT", "0123456789"),)), companies)
    assert result.record is not None
    assert result.record.record_id == "c1"
    assert result.reason == "MATCH:IDENTIFIER"
    eidas = LegalPersonRecord("c3", "Other", legal_person_identifier="BE/BE/0555")
    result = match_legal_person(LegalPersonQuery("X", legal_person_identifier="BE/FR/0555"), [eidas])
    assert result.reason == "MATCH:IDENTIFIER"


def test_legal_person_by_name_and_its_ambiguity() -> None:
    companies = [
        LegalPersonRecord("c1", "Müller & Söhne GmbH", post_code="10115"),
        LegalPersonRecord("c2", "Mueller und Soehne", post_code="80331"),
    ]
    assert legal_name_key("ACME S.A.") == legal_name_key("Acme") == legal_name_key("Acme Sp. z o.o.")
    result = match_legal_person(LegalPersonQuery("MÜLLER & SÖHNE G.m.b.H."), companies)
    assert result.record is not None
    assert result.record.record_id == "c1"
    assert result.reason == "MATCH:LEGAL_NAME"
    same = [LegalPersonRecord("a", "Acme SA", post_code="1000"), LegalPersonRecord("b", "ACME BV", post_code="2000")]
    assert match_legal_person(LegalPersonQuery("Acme"), same).outcome is MatchOutcome.AMBIGUOUS
    result = match_legal_person(LegalPersonQuery("Acme", post_code="2000"), same)
    assert result.record is not None
    assert result.record.record_id == "b"
    strict = MatchRules(legal_name_fallback=False)
    assert match_legal_person(LegalPersonQuery("Acme"), same, strict).reason == "NO_MATCH:NO_IDENTIFIER"
    assert match_legal_person(LegalPersonQuery("Nobody"), same).reason == "NO_MATCH:LEGAL_NAME"


people = st.builds(
    PersonRecord,
    record_id=st.uuids().map(str),
    family_name=st.sampled_from(["Dupont", "Παπαδοπούλου", "Иванова", "García Márquez", "van der Berg", "Nowak"]),
    given_name=st.sampled_from(["Marie", "Ελένη", "Мария", "Ana María", "Jan"]),
    date_of_birth=st.dates(dt.date(1920, 1, 1), dt.date(2020, 12, 31)),
)


@given(people)
def test_a_record_always_matches_its_own_data(person: PersonRecord) -> None:
    query = PersonQuery(person.family_name.upper(), person.given_name.lower(), person.date_of_birth)
    result = match_person(query, [person])
    assert result.is_match
    assert result.reason == "MATCH:NAMES:family=EXACT,given=EXACT"


@given(st.lists(people, max_size=6), people)
def test_outcome_and_record_agree(candidates: list[PersonRecord], target: PersonRecord) -> None:
    query = PersonQuery(target.family_name, target.given_name, target.date_of_birth)
    result = match_person(query, candidates)
    assert (result.record is not None) == (result.outcome is MatchOutcome.MATCH)
    assert result.candidates == len(candidates)
    if result.outcome is MatchOutcome.AMBIGUOUS:
        assert len(result.matched) >= 2
    # the order in which a register returns candidates never changes the outcome
    assert match_person(query, list(reversed(candidates))).outcome is result.outcome
