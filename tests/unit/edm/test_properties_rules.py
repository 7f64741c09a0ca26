"""Property-based: random realistic v1.0 documents pass the official Schematron rules."""

from __future__ import annotations

import pytest
from edm_realistic import error, request, response
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from oots import edm
from oots.validation import Validator

VALIDATOR = Validator()


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(request(), response(), error()))
def test_generated_v1_passes_official_rules(doc: edm.Document) -> None:
    report = VALIDATOR.validate(edm.to_xml(doc, edm.Version.EDM_V1))
    blocking = [f"{f.rule}: {f.message} at {f.location}" for f in report.findings if f.blocking]
    if blocking:
        pytest.fail("\n".join(blocking))
