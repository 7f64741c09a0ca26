"""Hostile or wrong input gives a clear error from the oots.errors tree, never a crash."""

from __future__ import annotations

import pytest
from edm_examples import request

from oots import edm
from oots.errors import ModelError, XmlError

GOOD = edm.to_xml(request())


def _without(data: bytes, start: bytes, end: bytes) -> bytes:
    i = data.index(start)
    j = data.index(end, i) + len(end)
    return data[:i] + data[j:]


def _slot(name: str) -> tuple[bytes, bytes]:
    return (f'<rim:Slot name="{name}">'.encode(), b"</rim:Slot>")


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty"),
        (b"not xml at all", "not well-formed"),
        (b"<query:QueryRequest", "not well-formed"),
        (b'<!DOCTYPE a [<!ENTITY x "y">]><a>&x;</a>', "DTD"),
        (b"\xff\xfe<a/>", "not well-formed"),
    ],
)
def test_not_xml(data: bytes, reason: str) -> None:
    with pytest.raises(XmlError, match=reason):
        edm.parse(data)


def test_not_bytes() -> None:
    with pytest.raises(XmlError, match="bytes"):
        edm.parse("<a/>")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"<html><body/></html>", "html is not an OOTS"),
        (b'<x:QueryRequest xmlns:x="urn:other"/>', "is not an OOTS"),
        (_without(GOOD, *_slot("SpecificationIdentifier")), "no SpecificationIdentifier slot"),
        (_without(GOOD, *_slot("EvidenceRequester")), "no EvidenceRequester slot"),
        (_without(GOOD, *_slot("IssueDateTime")), "no IssueDateTime slot"),
        (_without(GOOD, *_slot("NaturalPerson")), "exactly one of NaturalPerson and LegalPerson"),
        (_without(GOOD, b"<sdg:FamilyName>", b"</sdg:FamilyName>"), "sdg:Person has no sdg:FamilyName"),
        (GOOD.replace(b' id="urn:uuid:', b' xid="urn:uuid:'), "no id attribute"),
        (GOOD.replace(b"oots-edm:v2.0", b"oots-edm:v7.0"), "is for 'oots-edm:v7.0'"),
        (GOOD.replace(b">1970-03-01<", b">01.03.1970<"), "not a date"),
        (GOOD.replace(b">High<", b">Very high<"), "expected one of Low, Substantial, High"),
        (GOOD.replace(b'name="Procedure"', b'name="Prozedur"'), "unexpected slot 'Prozedur'"),
        (GOOD.replace(b"<sdg:GivenName>", b"<sdg:Nickname>x</sdg:Nickname><sdg:GivenName>"), "unexpected element"),
        (GOOD.replace(b">true<", b">yes<", 1), "not a boolean"),
        (GOOD.replace(b'xsi:type="rim:BooleanValueType"', b'xsi:type="rim:StringValueType"', 1), "must be rim:Boolean"),
        (GOOD.replace(b'xsi:type="rim:BooleanValueType"', b'xsi:type="nope:BooleanValueType"', 1), "not declared"),
        (GOOD.replace(b"2026-11-27T10:00:00.123Z", b"yesterday"), "not an xsd:dateTime"),
    ],
)
def test_wrong_documents(data: bytes, reason: str) -> None:
    with pytest.raises(ModelError, match=reason):
        edm.parse(data)


def test_error_without_code() -> None:
    err = edm.to_xml(edm.query_error("EDM:ERR:0004", request=request()))
    with pytest.raises(ModelError, match="no code"):
        edm.parse(err.replace(b' code="EDM:ERR:0004"', b""))
    with pytest.raises(ModelError, match="unknown error severity"):
        edm.parse(err.replace(b"ErrorSeverityType:Error", b"ErrorSeverityType:Oops"))


def test_response_with_wrong_attachment_reference() -> None:
    from edm_examples import METADATA, PROVIDER

    resp = edm.evidence_response(
        request(), provider=PROVIDER, evidences=[edm.response_evidence(METADATA, "cid:a@example.de")]
    )
    data = edm.to_xml(resp).replace(b"cid:a@example.de", b"http://evil.example/a")
    with pytest.raises(ModelError, match="cid:"):
        edm.parse(data)


def test_deep_nesting_is_refused() -> None:
    data = b"<a>" * 100_000 + b"</a>" * 100_000
    with pytest.raises((XmlError, ModelError)):
        edm.parse(data)
