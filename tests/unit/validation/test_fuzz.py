"""Random damage to an official sample never crashes the validator: findings, or a clear XmlError."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from oots.errors import XmlError
from oots.validation import Report, Validator

from .conftest import REQUEST
from .test_samples import SPEC


@settings(max_examples=60, deadline=None)
@given(
    position=st.floats(min_value=0, max_value=1),
    length=st.integers(min_value=0, max_value=40),
    insert=st.binary(max_size=40),
)
def test_damaged_documents(position: float, length: int, insert: bytes, validator: Validator) -> None:
    path = SPEC / REQUEST
    if not path.is_file():
        return
    data = path.read_bytes()
    at = int(position * len(data))
    damaged = data[:at] + insert + data[at + length :]
    report: Report | None = None
    refused = ""
    try:
        report = validator.validate(damaged)
    except XmlError as exc:
        refused = exc.message
    if report is None:
        assert refused
        return
    for finding in report.findings:
        assert finding.rule
        assert finding.location


@settings(max_examples=60, deadline=None)
@given(
    position=st.floats(min_value=0, max_value=1),
    length=st.integers(min_value=0, max_value=40),
    insert=st.binary(max_size=40),
)
def test_damaged_mime_messages(position: float, length: int, insert: bytes, validator: Validator) -> None:
    path = SPEC / "edelivery/phase4-signed-encrypted-usermessage.as4out"
    if not path.is_file():
        return
    data = path.read_bytes()
    at = int(position * len(data))
    damaged = data[:at] + insert + data[at + length :]
    message: Report | None = None
    refused = ""
    try:
        message = validator.validate(damaged)
    except XmlError as exc:
        refused = exc.message
    if message is None:
        assert refused
        return
    report = message
    assert report.kind in {"ebms-header", "soap-envelope", "unknown"}
    for part in report.parts:
        assert part.report is not None or part.note
