"""The JSON form: every document survives XML → JSON text → model → XML unchanged."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from edm_examples import request
from edm_samples import SPEC, captured_payloads, cs_v2, exchange_v1, exchange_v2, registry_v1

from oots import edm
from oots.errors import ModelError

ALL = (exchange_v1(SPEC) + exchange_v2(SPEC) + registry_v1(SPEC) + cs_v2(SPEC)) if SPEC.is_dir() else []


@pytest.mark.parametrize("path", ALL, ids=[p.name for p in ALL])
def test_json_round_trip(path: Path) -> None:
    doc = edm.parse(path.read_bytes())
    text = json.dumps(edm.to_json(doc), ensure_ascii=False)
    back = edm.from_json(json.loads(text))
    assert back == doc
    assert edm.to_xml(back) == edm.to_xml(doc)


def test_json_of_real_capture() -> None:
    for data in captured_payloads(SPEC).values():
        try:
            doc = edm.parse(data)
        except ModelError:
            continue
        assert edm.from_json(json.loads(json.dumps(edm.to_json(doc)))) == doc


def test_json_shape_is_plain_and_documented() -> None:
    form = edm.to_json(request())
    assert form["kind"] == "QueryRequest"
    assert form["specification"] == "oots-edm:v2.0"
    assert form["issue_date_time"] == "2026-11-27T10:00:00.123Z"
    assert form["natural_person"]["date_of_birth"] == "1970-03-01"
    assert form["natural_person"]["level_of_assurance"] == "High"
    assert form["evidence_requester"][0]["names"] == [{"value": "Denmark University Portal", "lang": "EN"}]
    assert "legal_person" not in form  # absent fields are left out


def test_hand_written_json_makes_conformant_xml() -> None:
    form = {
        "kind": "QueryRequest",
        "id": "urn:uuid:0b0d1c26-3b57-4d0e-9d3c-5b7f6f0e6c11",
        "specification": "oots-edm:v1.0",
        "issue_date_time": "2026-11-27T10:00:00+01:00",
        "possibility_for_preview": False,
        "explicit_request_given": True,
        "evidence_requester": [
            {
                "identifier": {"value": "DK22233223", "scheme_id": "urn:cef.eu:names:identifier:EAS:0096"},
                "names": [{"value": "Portal", "lang": "EN"}],
                "classification": "ER",
            }
        ],
        "evidence_provider": {
            "identifier": {"value": "DE1", "scheme_id": "urn:cef.eu:names:identifier:EAS:9930"},
            "names": [{"value": "Office", "lang": "EN"}],
        },
        "evidence_request": {
            "identifier": "2af27699-f131-4411-8fdb-9e8cd4e8bded",
            "evidence_type_classification": "https://sr.oots.tech.europa.eu/evidencetypeclassifications/DE/x",
            "titles": [{"value": "Birth certificate", "lang": "EN"}],
            "distributed_as": [{"format": "application/pdf"}],
        },
        "natural_person": {
            "family_name": "Smith",
            "given_name": "John",
            "date_of_birth": "1970-03-01",
            "level_of_assurance": "High",
        },
    }
    from edm_xsd import errors

    xml = edm.to_xml(edm.from_json(form))
    assert errors(xml) == []
    assert b"oots-edm:v1.0" in xml


@pytest.mark.parametrize(
    ("form", "reason"),
    [
        ([], "an object with a 'kind'"),
        ({"kind": "Nope"}, "unknown document kind"),
        ({"kind": "QueryError"}, "QueryError needs"),
        ({**edm.to_json(request()), "colour": "red"}, "colour: unknown field of QueryRequest"),
        (
            {**edm.to_json(request()), "possibility_for_preview": "no"},
            "possibility_for_preview: expected true or false",
        ),
        ({**edm.to_json(request()), "issue_date_time": "soon"}, "not an ISO 8601"),
        ({**edm.to_json(request()), "evidence_requester": {}}, "evidence_requester: expected a list"),
        (
            {**edm.to_json(request()), "natural_person": {**edm.to_json(request())["natural_person"], "gender": "X"}},
            "natural_person.gender: 'X' is not one of Male, Female, Unspecified",
        ),
        ({**edm.to_json(request()), "evidence_provider": None}, "evidence_provider: must not be null"),
        ({**edm.to_json(request()), "specification": "oots-cs:v2.0"}, "oots-edm:v1.0 or oots-edm:v2.0"),
        ({"kind": "CommonServicesResponse", "specification": "oots-edm:v2.0"}, "oots-cs:v2.0"),
    ],
)
def test_bad_json(form: object, reason: str) -> None:
    with pytest.raises(ModelError, match=reason):
        edm.from_json(form)
