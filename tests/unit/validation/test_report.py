"""A report is a value: frozen, hashable, and its ``checks_by_layer`` cannot be changed after the fact
(it used to be a plain dict on an otherwise frozen report)."""

from __future__ import annotations

import copy
import json
import pickle
from dataclasses import FrozenInstanceError, asdict, replace

import pytest

from oots.validation import LayerCounts, Report, Validator


def test_checks_by_layer_is_a_read_only_copy() -> None:
    given = {"xsd": 1, "schematron": 300}
    report = Report("edm-request", "1.0", checks_by_layer=given)
    given["xsd"] = 99  # the caller's dict is not the report's
    assert report.checks_by_layer == {"xsd": 1, "schematron": 300}
    assert isinstance(report.checks_by_layer, LayerCounts)
    with pytest.raises(TypeError):
        report.checks_by_layer["xsd"] = 2  # type: ignore[index]
    with pytest.raises(FrozenInstanceError):
        report.checks_by_layer = {}  # type: ignore[misc]
    assert report.checks == 301


def test_a_report_is_hashable_and_equal_reports_hash_alike() -> None:
    one = Report("edm-request", "1.0", checks_by_layer={"xsd": 1, "codelist": 5})
    same = Report("edm-request", "1.0", checks_by_layer=LayerCounts([("xsd", 1), ("codelist", 5)]))
    other = Report("edm-request", "1.0", checks_by_layer={"xsd": 1, "codelist": 6})
    assert one == same
    assert hash(one) == hash(same)
    assert one != other
    assert len({one, same, other}) == 2
    assert hash(Report("unknown", None)) == hash(Report("unknown", None))  # no layer at all


def test_the_counts_keep_their_order_and_read_like_a_dict() -> None:
    counts = LayerCounts({"xsd": 1, "schematron": 2, "codelist": 3})
    assert list(counts) == ["xsd", "schematron", "codelist"]
    assert list(counts.items()) == [("xsd", 1), ("schematron", 2), ("codelist", 3)]
    assert (counts["schematron"], counts.get("structure"), len(counts), "xsd" in counts) == (2, None, 3, True)
    assert repr(counts) == "LayerCounts({'xsd': 1, 'schematron': 2, 'codelist': 3})"
    assert pickle.loads(pickle.dumps(counts)) == counts
    assert copy.deepcopy(counts) == counts


def test_json_and_copies_of_a_real_report_are_unchanged(validator: Validator, request_sample: bytes) -> None:
    report = validator.validate(request_sample)
    data = report.as_dict()
    assert type(data["checks_by_layer"]) is dict
    assert list(data["checks_by_layer"]) == ["xsd", "schematron", "codelist"]
    assert json.loads(json.dumps(data))["checks_by_layer"] == dict(report.checks_by_layer)
    assert replace(report, found_at="here").checks_by_layer == report.checks_by_layer
    assert asdict(report)["checks_by_layer"] == report.checks_by_layer  # dataclasses can still copy it
    assert pickle.loads(pickle.dumps(report)) == report
    assert hash(report) == hash(validator.validate(request_sample))
