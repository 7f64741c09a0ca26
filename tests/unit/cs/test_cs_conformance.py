"""Every answer the server gives (1.x API) passes the official v1.0 EB-* and DSD-* Schematron rules."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
from httpx import Client

from cs.cs_helpers import DEMO, DSD, EB1, EB2, app_client
from oots import edm
from oots.cs.catalogue import Catalogue
from oots.cs.datafile import load_catalogue
from oots.cs.server import create_app
from oots.validation import Validator


@pytest.fixture(scope="module")
def demo() -> Catalogue:
    return load_catalogue(DEMO)


@pytest.fixture(scope="module")
def client(demo: Catalogue) -> Client:
    return app_client(create_app(demo))


@pytest.fixture(scope="module")
def validator() -> Validator:
    return Validator()


def _queries(cat: Catalogue) -> list[list[tuple[str, str]]]:
    out: list[list[tuple[str, str]]] = [
        [("queryId", EB1), ("procedure-id", "R1"), ("country-code", "DE")],
        [("queryId", EB1), ("country-code", "IT")],
        [("queryId", EB1), ("procedure-id", "W1")],
        [("queryId", EB1), ("procedure-id", "nope")],
        [("queryId", EB1), ("country-code", "XX")],
        [("queryId", EB1), ("jurisdiction-admin-l2", "DE1")],
        [("queryId", "urn:unknown")],
        [("queryId", EB2)],
        [("queryId", EB2), ("requirement-id", "https://sr.oots.tech.ec.europa.eu/requirements/none")],
        [("queryId", DSD), ("country-code", "DE")],
        [("queryId", DSD), ("evidence-type-classification", "https://sr.example/x"), ("country-code", "DE")],
        [("queryId", DSD), ("evidence-type-classification", "bad"), ("country-code", "DE")],
        [("queryId", "urn:fdc:oots:dsd:ebxml-regrep:queries:unknown")],
    ]
    for req in cat.requirements:
        out.append([("queryId", EB2), ("requirement-id", req.id), ("country-code", "FR")])
    seen = set()
    for et in cat.evidence_types:
        if et.country in seen and et.country not in {"DE", "IT"}:
            continue
        seen.add(et.country)
        out.append(
            [("queryId", DSD), ("evidence-type-classification", et.classification), ("country-code", et.country)]
        )
    de_birth = next(e for e in cat.evidence_types if e.country == "DE" and e.titles[0][1] == "Birth certificate")
    ds = next(d for d in cat.data_services if d.classification == de_birth.classification)
    assert ds.jurisdiction is not None
    out.append(
        [
            ("queryId", DSD),
            ("evidence-type-classification", de_birth.classification),
            ("country-code", "DE"),
            ("jurisdiction-context-id", ds.jurisdiction.context_id),
            ("jurisdiction-admin-l2", "DE3"),
        ]
    )
    out.append([("queryId", DSD), ("evidence-type-classification", de_birth.classification), ("country-code", "PL")])
    return out


def test_every_v1_answer_passes_the_official_rules(client: Client, demo: Catalogue, validator: Validator) -> None:
    kinds = set()
    for params in _queries(demo):
        body = client.get("/rest/search?" + urlencode(params)).content
        report = validator.validate(body)
        assert report.version == "1.0"
        problems = [f for f in report.findings if f.severity.value in ("ERROR", "FATAL")]
        assert report.valid, (params, problems[:3])
        kinds.add(report.kind)
        code = getattr(edm.parse(body), "code", None)
        if code:
            kinds.add(code)
    assert {"eb-requirements", "eb-evidence-types", "eb-error", "dsd-response", "dsd-error"} <= kinds
    assert {
        "EB:ERR:0001",
        "EB:ERR:0002",
        "EB:ERR:0003",
        "EB:ERR:0004",
        "EB:ERR:0005",
        "EB:ERR:0006",
        "EB:ERR:0007",
    } <= kinds
    assert {"DSD:ERR:0001", "DSD:ERR:0002", "DSD:ERR:0003", "DSD:ERR:0004", "DSD:ERR:0005", "DSD:ERR:0006"} <= kinds


def test_v1_answers_use_the_v1_semantic_repository_and_lookups_accept_it(client: Client, demo: Catalogue) -> None:
    doc = edm.parse(
        client.get(
            "/rest/search?" + urlencode([("queryId", EB1), ("procedure-id", "T2"), ("country-code", "NL")])
        ).content
    )
    assert isinstance(doc, edm.CommonServicesResponse)
    old = doc.requirements[0].identifier
    assert old.startswith("https://sr.oots.tech.europa.eu/requirements/")
    again = edm.parse(
        client.get(
            "/rest/search?" + urlencode([("queryId", EB2), ("requirement-id", old), ("country-code", "NL")])
        ).content
    )
    assert isinstance(again, edm.CommonServicesResponse)
    etc = again.requirements[0].evidence_type_lists[0].evidence_types[0].evidence_type_classification
    dsd = edm.parse(
        client.get(
            "/rest/search?"
            + urlencode([("queryId", DSD), ("evidence-type-classification", etc), ("country-code", "NL")])
        ).content
    )
    assert isinstance(dsd, edm.CommonServicesResponse)
    assert (
        dsd.data_service_evidence_types[0]
        .distributed_as[1]
        .conforms_to.startswith(  # type: ignore[union-attr]
            "https://sr.oots.tech.europa.eu/distributions/"
        )
    )


def test_every_catalogue_answer_passes_the_official_rules(
    client: Client, demo: Catalogue, validator: Validator
) -> None:
    """Exhaustive: every procedure code and requirement in every country, every evidence type in every country."""
    countries = sorted({p.country for p in demo.procedures})
    queries: list[list[tuple[str, str]]] = []
    for code in sorted({p.code for p in demo.procedures}):
        queries += [[("queryId", EB1), ("procedure-id", code), ("country-code", cc)] for cc in countries]
    for req in demo.requirements:
        queries += [[("queryId", EB2), ("requirement-id", req.id), ("country-code", cc)] for cc in countries]
    for et in demo.evidence_types:
        for cc in {et.country, "NL"}:
            queries.append(
                [("queryId", DSD), ("evidence-type-classification", et.classification), ("country-code", cc)]
            )
    for params in queries:
        body = client.get("/rest/search?" + urlencode(params)).content
        report = validator.validate(body)
        assert report.valid, (params, [f for f in report.findings if f.severity.value in ("ERROR", "FATAL")][:3])
