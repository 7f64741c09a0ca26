"""Query parameters of the EB and DSD and the RegRep error each mistake gets."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cs.cs_helpers import DSD, EB1, EB2, SR
from oots.cs.queries import (
    DataServicesQuery,
    EvidenceTypesQuery,
    QueryFailure,
    RequirementsQuery,
    Service,
    parse_query,
)

ETC = f"{SR}/evidencetypeclassifications/DE/0a5f0b4e-5c5e-4a4e-9d55-111111111111"
REQ = f"{SR}/requirements/0a5f0b4e-5c5e-4a4e-9d55-222222222222"


def fail(service: Service | None, params: list[tuple[str, str]]) -> QueryFailure:
    with pytest.raises(QueryFailure) as info:
        parse_query(service, params)
    return info.value


def test_requirements_query() -> None:
    q = parse_query(Service.EB, [("queryId", EB1), ("procedure-id", "T2"), ("country-code", "FR")])
    assert q == RequirementsQuery(procedure_id="T2", country_code="FR")


def test_evidence_types_query() -> None:
    q = parse_query(None, [("queryId", EB2), ("requirement-id", REQ), ("country-code", "EL")])
    assert q == EvidenceTypesQuery(requirement_id=REQ, country_code="EL")


def test_data_services_query_with_user_input() -> None:
    concept = "B07146B6-1468-41a7-a10f-ee2a61429dbc"
    q = parse_query(
        Service.DSD,
        [
            ("queryId", DSD),
            ("evidence-type-classification", ETC),
            ("country-code", "DE"),
            ("jurisdiction-admin-l2", "DE3"),
            ("jurisdiction-context-id", "5CE148B9-5578-4049-aecf-af7bb55714b5"),
            (concept, "ApplicantHasBeenResidentInGermany"),
        ],
    )
    assert isinstance(q, DataServicesQuery)
    assert q.jurisdiction_admin_l2 == "DE3"
    assert q.jurisdiction_context_id == "5ce148b9-5578-4049-aecf-af7bb55714b5"
    assert q.classification_value(concept.lower()) == "ApplicantHasBeenResidentInGermany"


@pytest.mark.parametrize(
    ("service", "params", "code", "detail"),
    [
        (Service.EB, [], "EB:ERR:0007", "queryId"),
        (Service.EB, [("queryId", "urn:nope")], "EB:ERR:0007", "queryId"),
        (Service.DSD, [("queryId", "urn:nope")], "DSD:ERR:0004", "queryId"),
        (Service.EB, [("queryId", DSD)], "EB:ERR:0007", "queryId"),
        (None, [("queryId", "urn:fdc:oots:dsd:ebxml-regrep:queries:other")], "DSD:ERR:0004", "queryId"),
        (Service.EB, [("queryId", EB1), ("procedure-id", "Z9")], "EB:ERR:0005", "procedure-id"),
        (Service.EB, [("queryId", EB1), ("country-code", "XX")], "EB:ERR:0006", "country-code"),
        (Service.EB, [("queryId", EB1), ("country-code", "fr")], "EB:ERR:0006", "country-code"),
        (Service.EB, [("queryId", EB1), ("jurisdiction-admin-l2", "FR1")], "EB:ERR:0004", "jurisdiction-admin-l2"),
        (
            Service.EB,
            [("queryId", EB1), ("country-code", "FR"), ("jurisdiction-admin-l2", "DE1")],
            "EB:ERR:0004",
            "jurisdiction-admin-l2",
        ),
        (Service.EB, [("queryId", EB1), ("colour", "red")], "EB:ERR:0003", "colour"),
        (Service.EB, [("queryId", EB1), ("country-code", "FR"), ("country-code", "DE")], "EB:ERR:0003", "country-code"),
        (Service.EB, [("queryId", EB1), ("return-incomplete", "maybe")], "EB:ERR:0003", "return-incomplete"),
        (Service.EB, [("queryId", EB1), ("startIndex", "-1")], "EB:ERR:0003", "startIndex"),
        (Service.EB, [("queryId", EB2)], "EB:ERR:0003", "requirement-id"),
        (Service.EB, [("queryId", EB2), ("requirement-id", "' OR 1=1 --")], "EB:ERR:0003", "requirement-id"),
        (Service.EB, [("queryId", EB2), ("requirement-id", REQ + "x" * 600)], "EB:ERR:0003", "requirement-id"),
        (Service.EB, [("queryId", EB2), ("requirement-id", "  ")], "EB:ERR:0003", "requirement-id"),
        (Service.DSD, [("queryId", DSD), ("country-code", "DE")], "DSD:ERR:0003", "evidence-type-classification"),
        (Service.DSD, [("queryId", DSD), ("evidence-type-classification", ETC)], "DSD:ERR:0003", "country-code"),
        (
            Service.DSD,
            [("queryId", DSD), ("evidence-type-classification", "<script>"), ("country-code", "DE")],
            "DSD:ERR:0006",
            "evidence-type-classification",
        ),
        (
            Service.DSD,
            [("queryId", DSD), ("evidence-type-classification", ETC), ("country-code", "ZZ")],
            "DSD:ERR:0006",
            "country-code",
        ),
        (
            Service.DSD,
            [
                ("queryId", DSD),
                ("evidence-type-classification", ETC),
                ("country-code", "DE"),
                ("jurisdiction-context-id", "not-a-uuid"),
            ],
            "DSD:ERR:0006",
            "jurisdiction-context-id",
        ),
        (
            Service.DSD,
            [
                ("queryId", DSD),
                ("evidence-type-classification", ETC),
                ("country-code", "DE"),
                ("jurisdiction-admin-l2", "FR1"),
            ],
            "DSD:ERR:0006",
            "jurisdiction-admin-l2",
        ),
        (
            Service.DSD,
            [
                ("queryId", DSD),
                ("evidence-type-classification", ETC),
                ("country-code", "DE"),
                ("0a5f0b4e-5c5e-4a4e-9d55-111111111111", "a\x00b"),
            ],
            "DSD:ERR:0003",
            "0a5f0b4e-5c5e-4a4e-9d55-111111111111",
        ),
        (
            Service.DSD,
            [("queryId", DSD), ("evidence-type-classification", ETC), ("country-code", "DE"), ("x" * 300, "1")],
            "DSD:ERR:0003",
            "x" * 64,
        ),
    ],
)
def test_mistakes_get_their_error(
    service: Service | None, params: list[tuple[str, str]], code: str, detail: str
) -> None:
    failure = fail(service, params)
    assert (failure.code, failure.detail) == (code, detail)


def test_too_many_parameters() -> None:
    params = [("queryId", DSD)] + [(f"0a5f0b4e-5c5e-4a4e-9d55-{i:012d}", "v") for i in range(40)]
    assert fail(Service.DSD, params).code == "DSD:ERR:0003"


@given(st.lists(st.tuples(st.text(max_size=40), st.text(max_size=80)), max_size=8))
def test_any_input_is_a_query_or_a_regrep_error(params: list[tuple[str, str]]) -> None:
    for query_id in (EB1, EB2, DSD):
        code = None
        try:
            parse_query(None, [("queryId", query_id), *params])
        except QueryFailure as failure:
            code = failure.code
        assert code is None or code.split(":ERR:")[0] in {"EB", "DSD"}
