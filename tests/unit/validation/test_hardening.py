"""Hostile volumes and characters: findings capped per rule, separator characters in the document,
unreadable result records."""

from __future__ import annotations

from pathlib import Path

from lxml import etree

from oots.validation import MAX_FINDINGS_PER_RULE, Finding, Layer, Severity, Validator, cap
from oots.validation.schematron import MAX_RECORDS, SchematronSource, compile_schematron
from oots.validation.validator import _Executable, _Saxon

from .test_compiler import _schema

V2_RESPONSE = "edm-v2.0-captures/reference/messages/reponse.xml"
BOGUS_SLOT = (
    '<rim:Slot name="Bogus"><rim:SlotValue xsi:type="rim:StringValueType"><rim:Value>x</rim:Value>'
    "</rim:SlotValue></rim:Slot>"
)


def _with_bogus_slots(request_sample: bytes, count: int) -> bytes:
    text = request_sample.decode()
    at = text.index("<query:ResponseOption")
    return (text[:at] + BOGUS_SLOT * count + text[at:]).encode()


def test_schematron_findings_are_capped_per_rule(validator: Validator, request_sample: bytes) -> None:
    report = validator.validate(_with_bogus_slots(request_sample, MAX_FINDINGS_PER_RULE + 250))
    s019 = [f for f in report.findings if f.rule == "R-EDM-REQ-S019"]
    assert len(s019) == MAX_FINDINGS_PER_RULE + 1
    assert [f.more for f in s019[:-1]] == [0] * MAX_FINDINGS_PER_RULE
    assert s019[-1].more == 250
    assert s019[-1].severity == Severity.ERROR
    assert "and 250 more" in s019[-1].message
    assert s019[-1].as_dict()["more"] == 250
    assert not report.valid
    # the listed ones are the first ones, in document order
    assert s019[0].location.startswith("/query:QueryRequest[1]/rim:Slot[")


def test_at_the_cap_nothing_is_left_out(validator: Validator, request_sample: bytes) -> None:
    report = validator.validate(_with_bogus_slots(request_sample, MAX_FINDINGS_PER_RULE))
    s019 = [f for f in report.findings if f.rule == "R-EDM-REQ-S019"]
    assert len(s019) == MAX_FINDINGS_PER_RULE
    assert not any(f.more for f in report.findings)


def test_provisional_findings_are_capped_per_rule(spec_dir: Path, validator: Validator) -> None:
    text = (spec_dir / V2_RESPONSE).read_text()
    at = text.rindex("</rim:RegistryObjectList>")
    extra = '<rim:RegistryObject xsi:type="rim:ExtrinsicObjectType" id="x"/>' * (MAX_FINDINGS_PER_RULE + 7)
    report = validator.validate((text[:at] + extra + text[at:]).encode())
    for rule in ("OOTS-V2-RESP-003", "OOTS-V2-RESP-004"):
        found = [f for f in report.findings if f.rule == rule]
        assert len(found) == MAX_FINDINGS_PER_RULE + 1
        assert found[-1].more == 7
        assert found[-1].layer == Layer.STRUCTURE


def test_cap_adds_up_closing_findings() -> None:
    one = Finding("R-1", Severity.WARNING, Layer.XSD, "m", "/a")
    closing = Finding("R-1", Severity.WARNING, Layer.XSD, "… and 5 more", "/", 5)
    capped = cap([one, one, one, closing, Finding("R-2", Severity.INFO, Layer.XSD, "n", "/b")], limit=2)
    assert [f.rule for f in capped] == ["R-1", "R-1", "R-2", "R-1"]
    assert capped[-1].more == 6
    assert "6 more" in capped[-1].message


SEPARATORS = "\ue01e\ue01f"
ONE_RULE = (
    '<sch:pattern><sch:rule context="e:b"><sch:assert id="R-1" test="false()">m</sch:assert></sch:rule></sch:pattern>'
)


def _executable(body: str) -> _Executable:
    return _Executable(compile_schematron([SchematronSource("T", etree.fromstring(_schema(body)))]))


def test_separator_characters_in_the_document_do_not_corrupt_findings() -> None:
    executable = _executable(
        '<sch:pattern><sch:rule context="e:b"><sch:assert id="R-1" test="false()">n=<sch:value-of select="@n"/>'
        '</sch:assert></sch:rule><sch:rule context="*"><sch:assert id="R-2" test="false()">'
        "<sch:name/></sch:assert></sch:rule></sch:pattern>"
    )
    document = (
        f'<e:a xmlns:e="urn:e"><e:b n="x{SEPARATORS}y"/><e:b n="{SEPARATORS}3{SEPARATORS}"/>'
        f'<f:c xmlns:f="urn:{SEPARATORS}"/></e:a>'
    )
    findings = executable.run(_Saxon.processor().parse_xml(xml_text=document))
    assert [(f.rule, f.message) for f in findings if f.rule == "R-1"] == [
        ("R-1", "n=x\ufffd\ufffdy"),
        ("R-1", "n=\ufffd\ufffd3\ufffd\ufffd"),
    ]
    r2 = [f for f in findings if f.rule == "R-2"]
    assert [f.location for f in r2] == ["/e:a[1]", "/e:a[1]/Q{urn:\ufffd\ufffd}c[1]"]
    assert all(f.rule != "OOTS-SCH-ERROR" for f in findings)


def test_an_unreadable_record_is_a_fatal_finding_not_a_crash() -> None:
    executable = _executable(ONE_RULE)
    findings = executable.findings("0\ue01f/e:b[1]\ue01fm\ue01egarbage\ue01e99\ue01f/x\ue01fm\ue01e")
    assert [(f.rule, f.severity) for f in findings] == [("R-1", Severity.ERROR), ("OOTS-SCH-ERROR", Severity.FATAL)]
    assert "2 result record(s)" in findings[-1].message


def test_characters_xml_1_0_forbids_are_replaced() -> None:
    executable = _executable(ONE_RULE)
    findings = executable.findings("0\ue01f/e:b[1]\ue01fa\x01b\x1fc\ue01e")
    assert findings[0].message == "a\ufffdb\ufffdc"


def test_late_failures_are_listed_up_to_the_cap() -> None:
    # failures only from context node 951 on: the first run writes 50 full records (up to MAX_RECORDS),
    # a second run the 50 more the report lists
    executable = _executable(
        '<sch:pattern><sch:rule context="e:b"><sch:assert id="R-1" test="xs:integer(@i) le 950">m</sch:assert>'
        "</sch:rule></sch:pattern>"
    )
    document = '<e:a xmlns:e="urn:e">' + "".join(f'<e:b i="{i}"/>' for i in range(1, 1501)) + "</e:a>"
    findings = cap(executable.run(_Saxon.processor().parse_xml(xml_text=document)))
    assert MAX_RECORDS == 1000
    assert [f.location for f in findings[:-1]] == [f"/e:a[1]/e:b[{i}]" for i in range(951, 1051)]
    assert findings[-1].more == 450
