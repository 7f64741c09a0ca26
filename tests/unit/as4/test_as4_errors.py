from __future__ import annotations

import re

import pytest

from oots.as4.errors import Category, EbmsError, Origin, Severity, error_for, lookup
from oots.errors import ModelError, RemoteProtocolError, SecurityError


def test_one_row_per_code_and_well_formed() -> None:
    codes = [row.code for row in EbmsError]
    assert len(codes) == len(set(codes)) == 19
    for row in EbmsError:
        assert re.fullmatch(r"EBMS:\d{4}", row.code)
        assert row.short_description
        assert " " not in row.short_description


@pytest.mark.parametrize(
    ("code", "short", "severity", "category", "origin"),
    [
        ("EBMS:0001", "ValueNotRecognized", Severity.FAILURE, Category.CONTENT, Origin.EBMS),
        ("EBMS:0002", "FeatureNotSupported", Severity.WARNING, Category.CONTENT, Origin.EBMS),
        ("EBMS:0006", "EmptyMessagePartitionChannel", Severity.WARNING, Category.COMMUNICATION, Origin.EBMS),
        ("EBMS:0007", "MimeInconsistency", Severity.FAILURE, Category.UNPACKAGING, Origin.EBMS),
        ("EBMS:0101", "FailedAuthentication", Severity.FAILURE, Category.PROCESSING, Origin.SECURITY),
        ("EBMS:0102", "FailedDecryption", Severity.FAILURE, Category.PROCESSING, Origin.SECURITY),
        ("EBMS:0202", "DeliveryFailure", Severity.FAILURE, Category.COMMUNICATION, Origin.RELIABILITY),
        ("EBMS:0303", "DecompressionFailure", Severity.FAILURE, Category.COMMUNICATION, Origin.EBMS),
    ],
)
def test_rows_match_the_specifications(
    code: str, short: str, severity: Severity, category: Category, origin: Origin
) -> None:
    row = lookup(code)
    assert (row.short_description, row.severity, row.category, row.origin) == (
        short,
        severity,
        category,
        origin,
    )


def test_unknown_code() -> None:
    with pytest.raises(KeyError):
        lookup("EBMS:9999")


def test_error_for_uses_the_exception_code() -> None:
    err = error_for(RemoteProtocolError("bad gzip", code="EBMS:0303"), ref_to_message_in_error="m@x")
    assert err.error_code == "EBMS:0303"
    assert err.short_description == "DecompressionFailure"
    assert err.severity == "failure"
    assert err.category == "Communication"
    assert err.ref_to_message_in_error == "m@x"
    assert err.error_detail == "bad gzip"


def test_error_for_defaults() -> None:
    assert error_for(SecurityError("no")).error_code == "EBMS:0101"
    assert error_for(SecurityError("no", code="EBMS:0102")).error_code == "EBMS:0102"
    assert error_for(ModelError("x")).error_code == "EBMS:0004"
    assert error_for(RemoteProtocolError("x", code="EDM:ERR:0003")).error_code == "EBMS:0004"
