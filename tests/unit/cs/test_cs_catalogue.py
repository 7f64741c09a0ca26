"""The demo catalogue and the three searches, including DSD:ERR:0005 and alternatives."""

from __future__ import annotations

from pathlib import Path

import pytest

from cs.cs_helpers import DEMO, DSD, EB1, EB2
from oots.cs.catalogue import Address, Catalogue, Jurisdiction, NeedMoreInput, Publisher
from oots.cs.datafile import load_catalogue, parse_catalogue
from oots.cs.queries import DataServicesQuery, EvidenceTypesQuery, QueryFailure, RequirementsQuery, parse_query
from oots.errors import ConfigError


@pytest.fixture(scope="module")
def demo() -> Catalogue:
    return load_catalogue(DEMO)


def _classification(cat: Catalogue, country: str, title: str) -> str:
    for et in cat.evidence_types:
        if et.country == country and et.titles[0][1] == title:
            return et.classification
    raise AssertionError(title)


def _requirement(cat: Catalogue, name: str) -> str:
    return next(r.id for r in cat.requirements if r.names[0][1] == name)


def test_demo_catalogue_covers_the_brief(demo: Catalogue) -> None:
    countries = {a.publisher.jurisdiction.level1 for d in demo.data_services for a in d.access_services}
    assert countries == {"BE", "FR", "DE", "IT", "ES", "EL", "NL", "PL"}
    parties = {a.id for d in demo.data_services for a in d.access_services}
    assert parties == {f"AP_{cc}_01" for cc in countries}
    assert {p.code for p in demo.procedures} >= {"R1", "S1", "T2", "X1", "V2"}


def test_requirements_by_procedure_and_country(demo: Catalogue) -> None:
    page = demo.find_requirements(RequirementsQuery(procedure_id="R1", country_code="FR"))
    assert [r.names[0][1] for r, _ in page.items] == ["Proof of birth"]
    ((_, procs),) = page.items
    assert [(p.code, p.country) for p in procs] == [("R1", "FR")]


def test_requirements_paging(demo: Catalogue) -> None:
    page = demo.find_requirements(RequirementsQuery(country_code="BE", start_index=1, max_results=2))
    assert page.total == 5
    assert len(page.items) == 2
    assert page.start == 1


def test_requirements_empty_is_eb_err_0001(demo: Catalogue) -> None:
    with pytest.raises(QueryFailure) as info:
        demo.find_requirements(RequirementsQuery(procedure_id="W1", country_code="FR"))
    assert info.value.code == "EB:ERR:0001"


def test_france_has_two_alternative_lists_for_residence(demo: Catalogue) -> None:
    req = _requirement(demo, "Proof of residence")
    _, _, page = demo.find_evidence_types(EvidenceTypesQuery(requirement_id=req, country_code="FR"))
    assert sorted(len(etl.evidence_types) for etl in page.items) == [1, 2]


def test_unknown_requirement_is_eb_err_0002(demo: Catalogue) -> None:
    with pytest.raises(QueryFailure) as info:
        demo.find_evidence_types(EvidenceTypesQuery(requirement_id="https://sr.example/requirements/x"))
    assert info.value.code == "EB:ERR:0002"


def test_no_list_in_country_is_eb_err_0001(demo: Catalogue) -> None:
    req = _requirement(demo, "Proof of tertiary education qualification")
    with pytest.raises(QueryFailure) as info:
        demo.find_evidence_types(EvidenceTypesQuery(requirement_id=req, country_code="DE"))
    assert info.value.code == "EB:ERR:0001"


def test_region_bound_provider_asks_for_the_region(demo: Catalogue) -> None:
    etc = _classification(demo, "DE", "Birth certificate")
    with pytest.raises(NeedMoreInput) as info:
        demo.find_data_services(DataServicesQuery(evidence_type_classification=etc, country_code="DE"))
    more = info.value
    assert more.code == "DSD:ERR:0005"
    assert more.jurisdiction is not None
    assert more.jurisdiction.level == "NUTS1"
    assert more.classifications == ()
    assert more.data_service.access_services == ()
    context = more.jurisdiction.context_id
    page = demo.find_data_services(
        DataServicesQuery(etc, "DE", jurisdiction_admin_l2="DE30", jurisdiction_context_id=context)
    )
    (ds,) = page.items
    assert [a.publisher.names[0][1] for a in ds.access_services] == ["Registry Office Berlin-Mitte"]
    with pytest.raises(QueryFailure) as info2:
        demo.find_data_services(DataServicesQuery(etc, "DE", jurisdiction_admin_l2="DE9"))
    assert info2.value.code == "DSD:ERR:0001"
    with pytest.raises(QueryFailure) as info3:
        demo.find_data_services(
            DataServicesQuery(
                etc, "DE", jurisdiction_admin_l2="DE3", jurisdiction_context_id="0" * 8 + "-0000-0000-0000-" + "0" * 12
            )
        )
    assert info3.value.code == "DSD:ERR:0006"


def test_classification_question(demo: Catalogue) -> None:
    etc = _classification(demo, "IT", "Degree certificate")
    with pytest.raises(NeedMoreInput) as info:
        demo.find_data_services(DataServicesQuery(etc, "IT"))
    (concept,) = info.value.classifications
    assert concept.values == ("University", "AFAM")
    page = demo.find_data_services(DataServicesQuery(etc, "IT", classification_values=((concept.id, "AFAM"),)))
    assert [a.publisher.id for a in page.items[0].access_services] == ["m_univ-afam"]
    with pytest.raises(QueryFailure) as info2:
        demo.find_data_services(DataServicesQuery(etc, "IT", classification_values=((concept.id, "School"),)))
    assert info2.value.code == "DSD:ERR:0006"


def test_dsd_errors_0001_and_0002(demo: Catalogue) -> None:
    etc = _classification(demo, "NL", "Diploma extract")
    assert demo.find_data_services(DataServicesQuery(etc, "NL")).total == 1
    with pytest.raises(QueryFailure) as info:
        demo.find_data_services(DataServicesQuery(etc, "PL"))
    assert info.value.code == "DSD:ERR:0001"
    with pytest.raises(QueryFailure) as info:
        demo.find_data_services(DataServicesQuery(etc + "0", "NL"))
    assert info.value.code == "DSD:ERR:0002"


def test_parsed_queries_search(demo: Catalogue) -> None:
    q = parse_query(None, [("queryId", EB1), ("procedure-id", "V2"), ("country-code", "NL")])
    assert isinstance(q, RequirementsQuery)
    assert demo.find_requirements(q).total == 1
    req = demo.find_requirements(q).items[0][0].id
    q2 = parse_query(None, [("queryId", EB2), ("requirement-id", req), ("country-code", "NL")])
    assert isinstance(q2, EvidenceTypesQuery)
    etl = demo.find_evidence_types(q2)[2].items[0]
    q3 = parse_query(
        None, [("queryId", DSD), ("evidence-type-classification", etl.evidence_types[0]), ("country-code", "NL")]
    )
    assert isinstance(q3, DataServicesQuery)
    assert demo.find_data_services(q3).items[0].access_services[0].id == "AP_NL_01"


def test_data_file_problems_are_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        parse_catalogue({"procedure": [{"id": "p", "code": "R1", "country": "FR", "title": {"EN": "x"}, "colour": 1}]})
    assert ("procedure.0.colour", "unknown key") in info.value.problems
    with pytest.raises(ConfigError, match="unknown procedure"):
        parse_catalogue({"requirement": [{"id": "https://x/r", "name": {"EN": "r"}, "procedures": ["nope"]}]})
    bad = tmp_path / "bad.toml"
    bad.write_text("[[procedure]\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_catalogue(bad)


@pytest.mark.parametrize(
    ("procedure", "country", "requirement", "publisher"),
    [
        # Germany's admission to tertiary education asks for the Abitur, the register's diploma
        ("T2", "DE", "Proof of higher education entrance qualification", "09-KM-Zeugnisse-32"),
        ("V2", "EL", "Proof of vehicle registration", "090166270"),
    ],
)
def test_procedure_to_access_point(
    demo: Catalogue, procedure: str, country: str, requirement: str, publisher: str
) -> None:
    page = demo.find_requirements(RequirementsQuery(procedure_id=procedure, country_code=country))
    assert [r.names[0][1] for r, _ in page.items] == [requirement]
    ((req, _),) = page.items
    _, _, lists = demo.find_evidence_types(EvidenceTypesQuery(requirement_id=req.id, country_code=country))
    ((classification,),) = [etl.evidence_types for etl in lists.items]
    (ds,) = demo.find_data_services(DataServicesQuery(classification, country)).items
    assert [(a.id, a.publisher.id) for a in ds.access_services] == [(f"AP_{country}_01", publisher)]


def test_a_publisher_supports_its_values_and_any_value_of_a_concept_it_does_not_classify() -> None:
    publisher = Publisher("p", "scheme", (("EN", "P"),), Address("DE"), Jurisdiction("DE"), (("c1", ("a", "b")),))
    assert publisher.values_of("c1") == ("a", "b")
    assert publisher.supports("c1", "a")
    assert not publisher.supports("c1", "z")
    assert publisher.values_of("c2") is None
    assert publisher.supports("c2", "anything")
