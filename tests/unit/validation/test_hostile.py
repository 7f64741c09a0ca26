"""Hostile input gets a clear error or finding: no crash, no network, bounded memory and time."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from oots.cli import main
from oots.errors import XmlError
from oots.validation import Layer, Severity, Validator

XXE = b"""<?xml version="1.0"?>
<!DOCTYPE q [<!ENTITY x SYSTEM "http://127.0.0.1:9/secret">]>
<query:QueryRequest xmlns:query="urn:oasis:names:tc:ebxml-regrep:xsd:query:4.0" id="&x;"/>"""

LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<lolz>&lol3;</lolz>"""

DTD = b'<?xml version="1.0"?><!DOCTYPE a SYSTEM "http://127.0.0.1:9/a.dtd"><a/>'


def _deep(depth: int) -> bytes:
    return b"<a>" * depth + b"</a>" * depth


HOSTILE = {
    "not-xml": b"this is not XML at all",
    "empty": b"",
    "binary": bytes(range(256)) * 4,
    "dtd": DTD,
    "xxe": XXE,
    "entity-expansion": LAUGHS,
    "deep-nesting": _deep(10_000),
    "unclosed": b"<query:QueryRequest xmlns:query='urn:oasis:names:tc:ebxml-regrep:xsd:query:4.0'>",
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_refused_as_xml_error(name: str, validator: Validator) -> None:
    with pytest.raises(XmlError) as info:
        validator.validate(HOSTILE[name])
    assert info.value.exit_code == 2
    assert info.value.message


def test_100_mb_of_text_is_refused_before_parsing(validator: Validator) -> None:
    data = b"<a>" + b"x" * (100 * 1024 * 1024) + b"</a>"
    with pytest.raises(XmlError, match="over the limit"):
        validator.validate(data)


def test_big_text_node_under_the_size_limit_is_refused_by_the_parser() -> None:
    data = b"<a>" + b"x" * (15 * 1024 * 1024) + b"</a>"
    with pytest.raises(XmlError):
        Validator().validate(data)


@pytest.mark.parametrize(
    "data",
    [
        b"<html><body>hello</body></html>",
        b'<QueryRequest xmlns="urn:example:not-regrep"/>',
        b'<rim:Slot xmlns:rim="urn:oasis:names:tc:ebxml-regrep:xsd:rim:4.0" name="x"/>',
    ],
)
def test_wrong_root_element_is_a_fatal_finding(data: bytes, validator: Validator) -> None:
    report = validator.validate(data)
    assert report.kind == "unknown"
    assert not report.valid
    (finding,) = report.findings
    assert finding.rule == "OOTS-DOC-001"
    assert finding.severity is Severity.FATAL
    assert finding.layer is Layer.DOCUMENT


def test_empty_root_of_a_known_kind_is_invalid_not_a_crash(validator: Validator) -> None:
    report = validator.validate(b'<query:QueryRequest xmlns:query="urn:oasis:names:tc:ebxml-regrep:xsd:query:4.0"/>')
    assert report.kind == "edm-request"
    assert not report.valid
    assert {"R-EDM-REQ-S005", "R-EDM-REQ-S009"} <= report.rule_ids(blocking_only=True)


def test_cli_exit_codes_for_hostile_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    files = []
    for name in ("xxe", "deep-nesting", "not-xml"):
        path = tmp_path / f"{name}.xml"
        path.write_bytes(HOSTILE[name])
        files.append(str(path))
    with pytest.raises(SystemExit) as info:
        main(["validate", "--json", *files])
    assert info.value.code == 2
    out = json.loads(capsys.readouterr().out)
    assert [entry["valid"] for entry in out] == [False, False, False]
    assert all(entry["error"] for entry in out)
    wrong = tmp_path / "wrong.xml"
    wrong.write_bytes(b"<html/>")
    with pytest.raises(SystemExit) as info:
        main(["validate", str(wrong)])
    assert info.value.code == 1
    assert "OOTS-DOC-001" in capsys.readouterr().out
