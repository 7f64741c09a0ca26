"""Property-based: for random valid models of every document kind, in both versions,
model → XML → model and model → JSON → model are the identity, and v1.0 XML is XSD-valid."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from edm_samples import exchange_v1
from edm_strategies import document
from edm_xsd import errors
from hypothesis import HealthCheck, given, settings

from oots import edm

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _identity(doc: Any) -> bytes:
    xml = edm.to_xml(doc)
    assert edm.parse(xml) == doc
    assert edm.from_json(json.loads(json.dumps(edm.to_json(doc)))) == doc
    return xml


@SETTINGS
@given(document(v2=False))
def test_v1_round_trip_and_xsd(doc: Any) -> None:
    xml = _identity(doc)
    assert errors(xml) == []


@SETTINGS
@given(document(v2=True))
def test_v2_round_trip(doc: Any) -> None:
    _identity(doc)


@SETTINGS
@given(document(v2=True))
def test_v2_models_written_as_v1_are_xsd_valid(doc: Any) -> None:
    xml = edm.to_xml(doc, edm.Version.EDM_V1)
    assert errors(xml) == []
    assert type(edm.parse(xml)) is type(doc)


def test_text_xml_cannot_carry_is_a_model_error(spec_dir: Path) -> None:
    import dataclasses

    import oots.edm
    from oots.edm import QueryRequest
    from oots.errors import ModelError

    path = next(p for p in exchange_v1(spec_dir) if "Evidence Request - Birth - full" in p.name)
    doc = oots.edm.parse(path.read_bytes())
    assert isinstance(doc, QueryRequest)
    with pytest.raises(ModelError, match="cannot be written as XML"):
        oots.edm.to_xml(dataclasses.replace(doc, id="urn:uuid:\uffff"))
