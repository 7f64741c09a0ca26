"""What the model writes for v1.0 passes the official Schematron rules (through oots.validation)."""

from __future__ import annotations

from pathlib import Path

import pytest
from edm_examples import COMPANY, METADATA, PERSON, PLATFORM, PROVIDER, REQUESTER, request
from edm_samples import SPEC, exchange_v1, registry_v1

from oots import edm
from oots.validation import Validator

V1 = edm.Version.EDM_V1


@pytest.fixture(scope="module")
def validator() -> Validator:
    return Validator()


def _blocking(validator: Validator, data: bytes) -> list[str]:
    report = validator.validate(data)
    return sorted(f"{f.rule}: {f.message}" for f in report.findings if f.blocking)


def _generated() -> dict[str, edm.Document]:
    req = request(V1)
    legal = edm.evidence_request(
        requester=[REQUESTER, PLATFORM],
        provider=PROVIDER,
        evidence_type=req.evidence_request,
        subject=COMPANY,
        authorized_representative=PERSON,
        possibility_for_preview=True,
        preview_location="https://preview.example.de/space/1",
        version=V1,
    )
    docs: dict[str, edm.Document] = {
        "request natural person": req,
        "request legal person, platform, preview": legal,
        "response": edm.evidence_response(
            req, provider=PROVIDER, evidences=[edm.response_evidence(METADATA, "cid:a1@example.de", title="Birth")]
        ),
        "preview required": edm.preview_required(
            req,
            location="https://preview.example.de/space/1",
            error_provider=PROVIDER,
            description=[edm.Text("Please preview", "EN")],
        ),
    }
    jd = edm.JurisdictionDetermination(
        "5ce148b9-5578-4049-aecf-af7bb55714b5", (edm.Text("Place Of Birth", "EN"),), "LAU"
    )
    docs["DSD:ERR:0005"] = edm.additional_input(req.evidence_request, jurisdiction=jd, version=V1)
    docs["EB:ERR:0003"] = edm.common_services_error("EB:ERR:0003", detail="country-code", version=V1)
    for code in sorted(c for c in edm.ERROR_CODES if c.startswith("EDM:") and c != "EDM:ERR:0002"):
        docs[code] = edm.query_error(code, request=req, error_provider=PROVIDER, detail="details")
    return docs


GENERATED = _generated()


@pytest.mark.parametrize("name", list(GENERATED))
def test_generated_v1_passes_the_official_rules(validator: Validator, name: str) -> None:
    assert _blocking(validator, edm.to_xml(GENERATED[name], V1)) == []


def test_v2_documents_written_as_v1_pass_too(validator: Validator) -> None:
    # the same documents built for v2.0 (ec domain, v2 severities) become conformant v1.0 on request
    req = request(edm.Version.EDM_V2)
    err = edm.preview_required(req, location="https://preview.example.de/p", error_provider=PROVIDER)
    for doc in (req, err):
        assert _blocking(validator, edm.to_xml(doc, V1)) == []


SAMPLES = (exchange_v1(SPEC) + registry_v1(SPEC)) if SPEC.is_dir() else []


@pytest.mark.parametrize("path", SAMPLES, ids=[p.name for p in SAMPLES])
def test_codec_adds_no_rule_violation(validator: Validator, path: Path) -> None:
    data = path.read_bytes()
    assert _blocking(validator, edm.to_xml(edm.parse(data))) == _blocking(validator, data)
