"""The constructors give complete, XSD-valid documents with safe defaults."""

from __future__ import annotations

import re

import pytest
from edm_examples import COMPANY, METADATA, PERSON, PLATFORM, PROVIDER, REQUESTER, T0, request
from edm_xsd import errors

from oots import edm
from oots.errors import ModelError

URN_UUID = re.compile(r"^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
V1, V2 = edm.Version.EDM_V1, edm.Version.EDM_V2


def _both(doc: edm.Document) -> None:
    """Valid in both versions; a round trip in its own version is the identity."""
    assert edm.parse(edm.to_xml(doc)) == doc
    v1 = edm.to_xml(doc, V1)
    assert errors(v1) == []
    assert edm.parse(v1).specification is V1
    assert b"oots-edm:v1.0" in v1


def test_request_defaults() -> None:
    req = request()
    assert URN_UUID.match(req.id)
    assert req.issue_date_time == T0
    assert req.explicit_request_given is True
    assert req.possibility_for_preview is False
    assert req.evidence_requester[0].classification == "ER"
    assert req.evidence_provider == edm.Agent(PROVIDER.identifier, PROVIDER.names)  # Identifier + Name only
    assert req.natural_person == PERSON
    assert request().id != req.id
    _both(req)


def test_request_with_platform_legal_person_and_preview_location() -> None:
    req = edm.evidence_request(
        requester=[REQUESTER, PLATFORM],
        provider=PROVIDER,
        evidence_type=edm.requested_evidence_type(edm.parse(edm.to_xml(request())).evidence_request),  # type: ignore[union-attr]
        subject=COMPANY,
        authorized_representative=PERSON,
        possibility_for_preview=True,
        preview_location="https://preview.example.de/p/1",
        return_location="https://portal.example.dk/back",
    )
    assert [a.classification for a in req.evidence_requester] == ["ER", "IP"]
    assert req.legal_person == COMPANY
    assert req.natural_person is None
    _both(req)
    # v1.0 has no ReturnLocation slot; v2.0 keeps it
    assert b"ReturnLocation" not in edm.to_xml(req, V1)
    assert edm.parse(edm.to_xml(req, V2)).return_location == "https://portal.example.dk/back"  # type: ignore[union-attr]


def test_now_is_utc_milliseconds() -> None:
    now = edm.now_utc()
    assert now.tzinfo is not None
    assert now.utcoffset().total_seconds() == 0
    assert now.microsecond % 1000 == 0


def test_response() -> None:
    req = request()
    ev = edm.response_evidence(METADATA, "cid:attachment1@example.de", title="BirthCertificate")
    resp = edm.evidence_response(req, provider=PROVIDER, evidences=[ev], issued=T0)
    assert resp.request_id == req.id
    assert resp.evidence_provider[0].classification == "EP"
    assert resp.evidences == (ev,)
    assert ev.classification is not None
    assert ev.classification.node == "MainEvidence"
    _both(resp)
    # v1.0 has no packages and no classification; reading it back gives packages of one without id
    back = edm.parse(edm.to_xml(resp, V1))
    assert isinstance(back, edm.QueryResponse)
    assert back.packages[0].id is None
    assert back.evidences[0].classification is None
    # v1.0 writes Semantic Repository URLs in the v1.0 domain; reading back in v2.0 restores them
    assert back.evidences[0].metadata.is_conformant_to.evidence_type_classification.startswith(
        "https://sr.oots.tech.europa.eu/"
    )
    again = edm.parse(edm.to_xml(back, V2))
    assert isinstance(again, edm.QueryResponse)
    assert again.evidences[0].metadata == METADATA


def test_response_package_of_several() -> None:
    ev1 = edm.response_evidence(METADATA, "cid:a@example.de")
    ev2 = edm.response_evidence(METADATA, "cid:b@example.de", node="Translation")
    resp = edm.evidence_response(
        request(), provider=PROVIDER, evidences=[edm.EvidencePackage((ev1, ev2), "urn:uuid:x")]
    )
    _both(resp)
    assert len(edm.parse(edm.to_xml(resp, V1)).packages) == 2  # type: ignore[union-attr]


@pytest.mark.parametrize("code", sorted(c for c in edm.ERROR_CODES if c.startswith("EDM:") and c != "EDM:ERR:0002"))
def test_every_edm_error_code(code: str) -> None:
    err = edm.query_error(code, request=request(), error_provider=PROVIDER, detail="because", timestamp=T0)
    row = edm.error_code(code)
    assert (err.exception_type, err.message, err.severity) == (row.exception_type, row.message, row.severity)
    assert err.error_provider is not None
    assert err.error_provider.classification == "ERRP"
    _both(err)


def test_preview_required() -> None:
    err = edm.preview_required(
        request(),
        location="https://preview.example.de/space/1",
        error_provider=PROVIDER,
        description=[edm.Text("Please preview", "EN")],
    )
    assert err.preview_required
    assert err.code == "EDM:ERR:0002"
    _both(err)
    assert b"urn:sr.oots.tech.ec.europa.eu:codes:ErrorSeverity:EDMErrorResponse:PreviewRequired" in edm.to_xml(err)
    assert b"urn:sr.oots.tech.europa.eu:codes:ErrorSeverity:EDMErrorResponse:PreviewRequired" in edm.to_xml(err, V1)


def test_constructor_refusals() -> None:
    with pytest.raises(ModelError, match="EDM:ERR"):
        edm.query_error("DSD:ERR:0001")
    with pytest.raises(ModelError, match="preview_required"):
        edm.query_error("EDM:ERR:0002")
    with pytest.raises(ModelError, match="unknown error code"):
        edm.query_error("EDM:ERR:0099")
    with pytest.raises(ModelError, match="https"):
        edm.preview_required(request(), location="http://x", error_provider=PROVIDER)
    with pytest.raises(ModelError, match="cid:"):
        edm.response_evidence(METADATA, "attachment1")
    with pytest.raises(ModelError, match="exactly one"):
        edm.IsAbout()


def test_common_services_constructors() -> None:
    from edm_examples import EVIDENCE_TYPE, REQUIREMENT

    answer = edm.common_services_answer([REQUIREMENT])
    assert answer.requirements == (REQUIREMENT,)
    assert answer.total_result_count == 1
    assert URN_UUID.match(answer.items[0].id)
    assert edm.parse(edm.to_xml(answer)) == answer
    assert errors(edm.to_xml(answer, V1)) == []

    err = edm.common_services_error("EB:ERR:0003", detail="country-code")
    assert err.exception_type == "rs:InvalidRequestExceptionType"
    assert edm.parse(edm.to_xml(err)) == err

    jd = edm.JurisdictionDetermination(
        "5ce148b9-5578-4049-aecf-af7bb55714b5", (edm.Text("Place Of Birth", "EN"),), "LAU"
    )
    more = edm.additional_input(EVIDENCE_TYPE, jurisdiction=jd)
    assert more.severity is edm.ErrorSeverity.ADDITIONAL_INPUT
    assert more.detail == "JurisdictionDetermination"
    assert edm.parse(edm.to_xml(more)) == more
    assert errors(edm.to_xml(more, V1)) == []
    assert b"urn:sr.oots.tech.europa.eu:codes:ErrorSeverity:DSDErrorResponse:AdditionalInput" in edm.to_xml(more, V1)

    with pytest.raises(ModelError, match="additional_input"):
        edm.common_services_error("DSD:ERR:0005")
    with pytest.raises(ModelError, match="jurisdiction determination or classification"):
        edm.additional_input(EVIDENCE_TYPE)
    with pytest.raises(ModelError, match="not an Evidence Broker"):
        edm.common_services_error("EDM:ERR:0004")
