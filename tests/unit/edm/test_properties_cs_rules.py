"""Property-based: Evidence Broker and DSD answers built with the constructors from random choices of
the official sample contents pass the official v1.0 Schematron rules."""

from __future__ import annotations

from typing import Any

import pytest
from edm_samples import SPEC, registry_v1
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from oots import edm
from oots.validation import Validator

V1 = edm.Version.EDM_V1
VALIDATOR = Validator()


def _contents(cls: type) -> list[Any]:
    out: list[Any] = []
    for path in registry_v1(SPEC) if SPEC.is_dir() else []:
        doc = edm.parse(path.read_bytes())
        if isinstance(doc, edm.CommonServicesResponse):
            out += [i.content for i in doc.items if isinstance(i.content, cls)]
    return out


def _more_input() -> list[edm.CommonServicesError]:
    out = []
    for path in registry_v1(SPEC) if SPEC.is_dir() else []:
        doc = edm.parse(path.read_bytes())
        if isinstance(doc, edm.CommonServicesError) and doc.code == "DSD:ERR:0005":
            out.append(doc)
    return out


REQUIREMENTS = [r for r in _contents(edm.Requirement) if not r.evidence_type_lists]
WITH_LISTS = [r for r in _contents(edm.Requirement) if r.evidence_type_lists]
DSETS = _contents(edm.DataServiceEvidenceType)
MORE = _more_input()
SETTINGS = settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _unique(items: list[Any]) -> st.SearchStrategy[list[Any]]:
    return st.lists(st.sampled_from(items), min_size=1, max_size=3, unique_by=id)


def _assert_valid(doc: edm.Document) -> None:
    report = VALIDATOR.validate(edm.to_xml(doc, V1))
    blocking = [f"{f.rule}: {f.message}" for f in report.findings if f.blocking]
    if blocking:
        pytest.fail("\n".join(blocking))


def test_sample_contents_found() -> None:
    assert REQUIREMENTS
    assert WITH_LISTS
    assert DSETS
    assert MORE


@SETTINGS
# a DSD answer holds exactly one registry object (R-DSD-RESP-S0015): one evidence type, its access services inside
@given(st.one_of(_unique(REQUIREMENTS), _unique(WITH_LISTS), st.sampled_from(DSETS).map(lambda d: [d])))
def test_answers_pass_official_rules(contents: list[Any]) -> None:
    _assert_valid(edm.common_services_answer(contents, version=V1))


@SETTINGS
@given(st.sampled_from(MORE), st.booleans(), st.booleans())
def test_additional_input_passes_official_rules(sample: edm.CommonServicesError, jd: bool, concepts: bool) -> None:
    jurisdiction = (
        sample.jurisdiction_determination if jd or not sample.user_requested_classification_concepts else None
    )
    classifications = sample.user_requested_classification_concepts if concepts or jurisdiction is None else ()
    if jurisdiction is None and not classifications:
        return
    assert sample.data_service_evidence_type is not None
    doc = edm.additional_input(
        sample.data_service_evidence_type, jurisdiction=jurisdiction, classifications=classifications, version=V1
    )
    _assert_valid(doc)


@SETTINGS
@given(st.sampled_from(sorted(c for c in edm.ERROR_CODES if c.startswith(("EB:", "DSD:")) and c != "DSD:ERR:0005")))
def test_errors_pass_official_rules(code: str) -> None:
    _assert_valid(edm.common_services_error(code, detail="country-code", version=V1))
