"""``Validator.validate_document``: the report of ``validate`` and the parsed document, for one parse."""

from __future__ import annotations

import pytest

from oots import edm
from oots.errors import XmlError
from oots.validation import Validator


def test_the_report_is_that_of_validate_and_the_root_is_the_document(
    validator: Validator, request_sample: bytes
) -> None:
    report, root = validator.validate_document(request_sample)
    assert report == validator.validate(request_sample)
    assert report.kind == "edm-request"
    assert edm.parse_element(root) == edm.parse(request_sample)


def test_a_broken_document_gives_its_findings_and_its_tree(validator: Validator, request_sample: bytes) -> None:
    broken = request_sample.replace(b'id="', b'idx="', 1)
    report, root = validator.validate_document(broken)
    assert report == validator.validate(broken)
    assert not report.valid
    assert root.tag.endswith("QueryRequest")


def test_what_is_not_xml_raises_as_validate_does(validator: Validator) -> None:
    with pytest.raises(XmlError):
        validator.validate_document(b"<not xml")
