"""The EB/DSD server: answers of both API versions, signatures, errors, hostile queries."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
from httpx import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cs.cs_helpers import DEMO, DSD, EB1, EB2, Capture, app_client
from oots import edm, xmlsafe
from oots.cs.catalogue import Catalogue
from oots.cs.datafile import load_catalogue
from oots.cs.jades import verify_answer
from oots.cs.keys import CsPki
from oots.cs.server import create_app
from oots.cs.trust import TrustStore

V2 = {"Accept-Version": "oots-cs:v2.0"}


@pytest.fixture(scope="module")
def demo() -> Catalogue:
    return load_catalogue(DEMO)


@pytest.fixture(scope="module")
def client(demo: Catalogue, pki: CsPki) -> Client:
    return app_client(create_app(demo, pki.signer()))


def _etc(cat: Catalogue, country: str, title: str) -> str:
    return next(e.classification for e in cat.evidence_types if e.country == country and e.titles[0][1] == title)


def _get(
    client: Client, params: list[tuple[str, str]], headers: dict[str, str] | None = None, path: str = "/rest/search"
) -> edm.Document:
    reply = client.get(f"{path}?{urlencode(params)}", headers=headers or {})
    assert reply.status_code == 200
    assert reply.headers["content-type"] == "application/x-ebrs+xml"
    return edm.parse(reply.content)


def test_health(client: Client) -> None:
    reply = client.get("/health")
    assert reply.json()["status"] == "ok"
    assert reply.json()["catalogue"]["data_services"] == 42


def test_requirements_in_both_versions(client: Client) -> None:
    params = [("queryId", EB1), ("procedure-id", "S1"), ("country-code", "FR")]
    v1 = _get(client, params)
    v2 = _get(client, params, V2)
    assert isinstance(v1, edm.CommonServicesResponse)
    assert isinstance(v2, edm.CommonServicesResponse)
    assert v1.specification is edm.Version.EDM_V1
    assert v2.specification is edm.Version.CS_V2
    assert [r.names[0].value for r in v2.requirements] == ["Proof of residence"]
    assert v2.requirements[0].reference_frameworks[0].related_to[0].identifier == "S1"


def test_v2_answers_are_signed_and_v1_are_not(client: Client, pki: CsPki) -> None:
    url = "/rest/search?" + urlencode([("queryId", EB1), ("country-code", "PL")])
    signed = client.get(url, headers=V2)
    verified = verify_answer(signed.content, signed.headers, TrustStore((pki.root,)))
    assert verified.signer == pki.chain[0]
    assert "oots-response-sig" not in client.get(url).headers


def test_evidence_types_alternatives(client: Client, demo: Catalogue) -> None:
    req = next(r.id for r in demo.requirements if r.names[0][1] == "Proof of residence")
    doc = _get(client, [("queryId", EB2), ("requirement-id", req), ("country-code", "FR")], V2)
    assert isinstance(doc, edm.CommonServicesResponse)
    (requirement,) = doc.requirements
    assert sorted(len(etl.evidence_types) for etl in requirement.evidence_type_lists) == [1, 2]


def test_data_services_and_additional_input(client: Client, demo: Catalogue) -> None:
    etc = _etc(demo, "DE", "Birth certificate")
    base = [("queryId", DSD), ("evidence-type-classification", etc), ("country-code", "DE")]
    first = _get(client, base, V2, path="/dsd/rest/search")
    assert isinstance(first, edm.CommonServicesError)
    assert first.code == "DSD:ERR:0005"
    assert first.severity is edm.ErrorSeverity.ADDITIONAL_INPUT
    jd = first.jurisdiction_determination
    assert jd is not None
    assert jd.jurisdiction_level == "NUTS1"
    second = _get(
        client, [*base, ("jurisdiction-context-id", jd.jurisdiction_context_id), ("jurisdiction-admin-l2", "DE2")], V2
    )
    assert isinstance(second, edm.CommonServicesResponse)
    (dset,) = second.data_service_evidence_types
    assert [a.publisher.names[0].value for a in dset.access_services] == ["Registry Office Munich"]
    assert dset.access_services[0].identifier == edm.Identifier(
        "AP_DE_01", "urn:oasis:names:tc:ebcore:partyid-type:unregistered:oots"
    )


def test_classification_question(client: Client, demo: Catalogue) -> None:
    etc = _etc(demo, "IT", "Degree certificate")
    base = [("queryId", DSD), ("evidence-type-classification", etc), ("country-code", "IT")]
    first = _get(client, base)
    assert isinstance(first, edm.CommonServicesError)
    (concept,) = first.user_requested_classification_concepts
    second = _get(client, [*base, (concept.identifier.value, "University")])
    assert isinstance(second, edm.CommonServicesResponse)
    assert second.data_service_evidence_types[0].access_services[0].publisher.identifier.value == "m_univ-ans"


@pytest.mark.parametrize(
    ("path", "query", "code"),
    [
        ("/rest/search", "", "EB:ERR:0007"),
        ("/eb/rest/search", "queryId=" + DSD, "EB:ERR:0007"),
        ("/dsd/rest/search", "queryId=urn:x", "DSD:ERR:0004"),
        ("/rest/search", urlencode([("queryId", EB1), ("procedure-id", "R1'; DROP TABLE x;--")]), "EB:ERR:0005"),
        (
            "/rest/search",
            urlencode([("queryId", EB2), ("requirement-id", "https://sr.example/requirements/none")]),
            "EB:ERR:0002",
        ),
        ("/rest/search", urlencode([("queryId", EB1), ("procedure-id", "W2")]), "EB:ERR:0001"),
        ("/rest/search", urlencode([("queryId", DSD), ("country-code", "DE")]), "DSD:ERR:0003"),
        (
            "/rest/search",
            urlencode(
                [("queryId", DSD), ("country-code", "DE"), ("evidence-type-classification", "https://x.example/y")]
            ),
            "DSD:ERR:0002",
        ),
        ("/rest/search", "queryId=" + EB1 + "&x=" + "A" * 20000, "EB:ERR:0003"),
        ("/dsd/rest/search", "queryId=" + DSD + "&%ff%fe=%00", "DSD:ERR:0003"),
    ],
)
def test_errors(client: Client, path: str, query: str, code: str) -> None:
    for headers in ({}, V2):
        reply = client.get(f"{path}?{query}", headers=headers)
        assert reply.status_code == 200
        doc = edm.parse(reply.content)
        assert isinstance(doc, edm.CommonServicesError)
        assert doc.code == code


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(
        st.tuples(
            st.sampled_from(
                [
                    "queryId",
                    "country-code",
                    "procedure-id",
                    "requirement-id",
                    "evidence-type-classification",
                    "jurisdiction-admin-l2",
                    "jurisdiction-context-id",
                    "x",
                    "0a5f0b4e-5c5e-4a4e-9d55-111111111111",
                ]
            ),
            st.one_of(st.sampled_from([EB1, EB2, DSD, "DE", "R1"]), st.text(max_size=60)),
        ),
        max_size=6,
    )
)
def test_hostile_queries_never_fail(client: Client, params: list[tuple[str, str]]) -> None:
    reply = client.get("/rest/search?" + urlencode(params), headers=V2)
    assert reply.status_code == 200
    assert isinstance(edm.parse(reply.content), edm.CommonServicesResponse | edm.CommonServicesError)


def _skeleton(xml: bytes) -> list[str]:
    """Element and slot names with value types, the way the captures are shaped (no texts)."""
    root = xmlsafe.parse(xml)
    out = [f"@{name}" for name in sorted(root.attrib)]
    for el in root.iter():
        if not isinstance(el.tag, str):
            continue
        name = el.tag.split("}")[1]
        if name == "Slot":
            name += ":" + el.get("name", "")
        if name == "SlotValue":
            name += ":" + (el.get("{http://www.w3.org/2001/XMLSchema-instance}type") or "")
        out.append(name)
    return out


def test_v2_answers_have_the_shape_of_the_captures(client: Client, captures: list[Capture], demo: Catalogue) -> None:
    by_name = {c.name: c for c in captures}
    ours = client.get(
        "/rest/search?" + urlencode([("queryId", EB1), ("procedure-id", "R1"), ("country-code", "FR")]), headers=V2
    ).content
    theirs = by_name["eb_requirements_fr"].body
    assert _skeleton(ours)[:8] == _skeleton(theirs)[:8]
    assert set(_skeleton(ours)) == set(_skeleton(theirs))
    req = next(r.id for r in demo.requirements if r.names[0][1] == "Proof of residence")
    eb2 = client.get(
        "/rest/search?" + urlencode([("queryId", EB2), ("requirement-id", req), ("country-code", "FR")]), headers=V2
    )
    assert set(_skeleton(eb2.content)) == set(_skeleton(by_name["eb_evidence_types_fr"].body))
    assert _skeleton(eb2.content)[:9] == _skeleton(by_name["eb_evidence_types_fr"].body)[:9]
    etc = _etc(demo, "FR", "Birth certificate")
    none = client.get(
        "/rest/search?" + urlencode([("queryId", DSD), ("evidence-type-classification", etc), ("country-code", "BE")]),
        headers=V2,
    ).content
    assert _skeleton(none) == _skeleton(by_name["dsd_aucun_service_fr"].body)
    ours_err = edm.parse(none)
    theirs_err = edm.parse(by_name["dsd_aucun_service_fr"].body)
    assert isinstance(ours_err, edm.CommonServicesError)
    assert isinstance(theirs_err, edm.CommonServicesError)
    assert (ours_err.code, ours_err.exception_type, ours_err.severity, ours_err.detail) == (
        theirs_err.code,
        theirs_err.exception_type,
        theirs_err.severity,
        theirs_err.detail,
    )


def test_official_eb_and_dsd_samples_parse_into_the_model(spec_dir) -> None:  # type: ignore[no-untyped-def]
    samples = spec_dir / "edm-v1.0" / "samples"
    files = sorted((samples / "EB" / "Complete XML examples (EB)").glob("*.xml")) + sorted(
        (samples / "DSD" / "Complete XML examples (DSD)").glob("*.xml")
    )
    assert len(files) == 19
    for path in files:
        doc = edm.parse(path.read_bytes())
        assert isinstance(doc, edm.CommonServicesResponse | edm.CommonServicesError), path.name
