"""The ebMS header's ``eb:PayloadInfo`` against the payloads a message really carries (OOTS-MSG-004 to
-010): real messages (the Domibus captures, the phase4 golden AS4 message, MIME messages built from the
kit's headers and documents) stay clean, and each kind of mismatch gives its finding."""

from __future__ import annotations

import base64
import gzip
import re
import time
from pathlib import Path

import pytest

from clirun import run_cli
from oots.validation import Finding, Report, Severity, Validator, Verdict

REEL = "edm-v2.0-captures/incoming/reel"
PHASE4 = "edelivery/phase4-signed-encrypted-usermessage.as4out"
MESSAGES = "edm-v2.0-captures/reference/messages"
BIRTH = (
    "edm-v1.0/samples/Exchange/4.5.4 - OOTS-EDM XML Examples of the Evidence Exchange/"
    "2 Example for requesting a Birth Certificate - natural person"
)
REQUEST_HEADER = f"{BIRTH}/2.1 Step 1  Evidence Request Header - Birth.xml"
REQUEST = f"{BIRTH}/2.1 Step 1  Evidence Request - Birth - full example.xml"
RESPONSE_HEADER = f"{BIRTH}/2.2 Step 2  Evidence Response Header - Birth.xml"
RESPONSE = f"{BIRTH}/2.2 Step 2  Evidence Response - Birth - full example.xml"
EVIDENCE = f"{BIRTH}/Evidence Samples/BirthEvidence.xml"
V2_CID = "1a2b3c4d-0000-4000-8000-000000000000@oots.eu"  # what France's reference request header names
S12 = "http://www.w3.org/2003/05/soap-envelope"
WSPLUGIN = "http://eu.domibus.wsplugin/"
PAYLOAD_INFO = "/S12:Envelope/S12:Header/eb:Messaging/eb:UserMessage/eb:PayloadInfo"
BOUNDARY = "MIMEBoundary_payloadinfo"
RULES = {f"OOTS-MSG-{n:03d}" for n in range(4, 11)}


def _read(spec_dir: Path, name: str) -> str:
    text = (spec_dir / name).read_text(encoding="utf-8")
    return re.sub(r"^\s*<\?xml[^>]*\?>", "", text)


def _envelope(messaging: str, body: str = "") -> bytes:
    return (
        f'<S12:Envelope xmlns:S12="{S12}"><S12:Header>{messaging}</S12:Header>'
        f"<S12:Body>{body}</S12:Body></S12:Envelope>"
    ).encode()


def _mime(envelope: bytes, *parts: tuple[str | None, str, bytes]) -> bytes:
    """A MIME AS4 message: the envelope, then ``parts`` as (Content-ID or None, content type, content)."""
    out = [
        f'Content-Type: multipart/related; boundary="{BOUNDARY}"; type="application/soap+xml"\r\n\r\n'.encode(),
        f"--{BOUNDARY}\r\nContent-Type: application/soap+xml;charset=UTF-8\r\n\r\n".encode(),
        envelope,
    ]
    for cid, content_type, content in parts:
        head = f"\r\n--{BOUNDARY}\r\nContent-Type: {content_type}\r\n" + (f"Content-ID: <{cid}>\r\n" if cid else "")
        out += [head.encode(), b"Content-Transfer-Encoding: binary\r\n\r\n", content]
    out.append(f"\r\n--{BOUNDARY}--\r\n".encode())
    return b"".join(out)


def _part_info(href: str | None, *properties: tuple[str, str]) -> str:
    props = "".join(f'<eb:Property name="{name}">{value}</eb:Property>' for name, value in properties)
    attribute = f' href="{href}"' if href is not None else ""
    return f"<eb:PartInfo{attribute}><eb:PartProperties>{props}</eb:PartProperties></eb:PartInfo>"


def _with_payload_info(messaging: str, *part_infos: str) -> str:
    """``messaging`` (an eb:Messaging with the eb: prefix) with its PayloadInfo replaced."""
    payload_info = f"<eb:PayloadInfo>{''.join(part_infos)}</eb:PayloadInfo>" if part_infos else ""
    return re.sub(r"<eb:PayloadInfo>.*</eb:PayloadInfo>", payload_info, messaging, flags=re.DOTALL)


def _v2_header(spec_dir: Path, *part_infos: str) -> str:
    return _with_payload_info(_read(spec_dir, f"{MESSAGES}/requete.entete.xml"), *part_infos)


def _ours(report: Report) -> list[Finding]:
    return [f for f in report.findings if f.rule in RULES]


def _rules(report: Report) -> list[str]:
    return [f.rule for f in _ours(report)]


XML = ("MimeType", "application/x-ebrs+xml")
GZIPPED = ("CompressionType", "application/gzip")


# --- real messages stay clean ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    ["requete.xml", "requete.demarcheInconnue.xml", "reponseAvecPieceJointe.xml", "erreurObjetIntrouvable.xml"],
)
def test_the_domibus_captures_have_no_payload_info_finding(name: str, spec_dir: Path, validator: Validator) -> None:
    report = validator.validate((spec_dir / REEL / name).read_bytes())
    assert report.parts  # their payloads are there, named by payloadId
    assert _ours(report) == []


def test_the_phase4_golden_message_has_no_payload_info_finding(spec_dir: Path, validator: Validator) -> None:
    # its one part is encrypted (and compressed inside): named, with MimeType and CompressionType
    report = validator.validate((spec_dir / PHASE4).read_bytes())
    assert _ours(report) == []


def test_mime_messages_built_from_the_kit_are_clean(spec_dir: Path, validator: Validator) -> None:
    # the TDD v1.0 Birth request: one part, gzip-compressed as its header says
    request = _mime(
        _envelope(_read(spec_dir, REQUEST_HEADER)),
        (
            "9bb1535b-655d-4dd5-a858-559224284a4d@example.oots.eu",
            "application/gzip",
            gzip.compress((spec_dir / REQUEST).read_bytes()),
        ),
    )
    # the Birth response: the RegRep document as it is, the XML evidence gzip-compressed
    response = _mime(
        _envelope(_read(spec_dir, RESPONSE_HEADER)),
        ("attachment100001@example.oots.eu", "application/gzip", gzip.compress((spec_dir / EVIDENCE).read_bytes())),
        (
            "555b3750-048a-402f-b435-a5297059b023@example.oots.eu",
            "application/x-ebrs+xml",
            (spec_dir / RESPONSE).read_bytes(),
        ),
    )
    # France's v2.0 reference request and its header
    v2 = _mime(
        _envelope(_read(spec_dir, f"{MESSAGES}/requete.entete.xml")),
        (V2_CID, "application/x-ebrs+xml", (spec_dir / MESSAGES / "requete.xml").read_bytes()),
    )
    for data in (request, response, v2):
        report = validator.validate(data)
        assert all(part.report is not None or "not an OOTS document" in part.note for part in report.parts)
        assert _ours(report) == []
    assert validator.validate(request).parts[0].report.verdict is Verdict.VALID  # type: ignore[union-attr]


def test_the_envelope_alone_says_its_parts_were_not_checked(spec_dir: Path, validator: Validator) -> None:
    report = validator.validate(_envelope(_read(spec_dir, RESPONSE_HEADER)))
    [note] = _ours(report)
    assert (note.rule, note.severity, note.location) == ("OOTS-MSG-010", Severity.INFO, PAYLOAD_INFO)
    assert note.message.startswith("eb:PayloadInfo names 2 MIME part(s) (cid:555b3750-")
    assert "only the SOAP envelope was given" in note.message


# --- each mismatch ---------------------------------------------------------------------------------------


def test_a_part_info_naming_a_missing_mime_part(spec_dir: Path, validator: Validator) -> None:
    header = _v2_header(
        spec_dir, _part_info(f"cid:{V2_CID}", XML), _part_info("cid:gone@oots.eu", ("MimeType", "application/pdf"))
    )
    data = _mime(
        _envelope(header), (V2_CID, "application/x-ebrs+xml", (spec_dir / MESSAGES / "requete.xml").read_bytes())
    )
    report = validator.validate(data)
    [missing] = _ours(report)
    assert (missing.rule, missing.severity) == ("OOTS-MSG-004", Severity.ERROR)
    assert missing.location == f"{PAYLOAD_INFO}/eb:PartInfo[2]"
    assert missing.message == (
        "eb:PartInfo[2] (href cid:gone@oots.eu) names a payload, but the message has no MIME part with Content-ID "
        "<gone@oots.eu>: a receiving access point refuses the message (EBMS:0007)"
    )
    assert report.verdict is Verdict.INVALID


def test_mime_parts_named_by_no_part_info(spec_dir: Path, validator: Validator) -> None:
    v2 = (spec_dir / MESSAGES / "requete.xml").read_bytes()
    data = _mime(
        _envelope(_v2_header(spec_dir, _part_info(f"cid:{V2_CID}", XML))),
        (V2_CID, "application/x-ebrs+xml", v2),
        ("extra@oots.eu", "application/pdf", b"%PDF-1.4"),
        (None, "text/plain", b"no content id"),
    )
    unnamed = _ours(validator.validate(data))
    assert [f.rule for f in unnamed] == ["OOTS-MSG-005", "OOTS-MSG-005"]
    assert unnamed[0].message == (
        "the payload MIME part 3 (cid:extra@oots.eu) is named by no eb:PartInfo of eb:PayloadInfo (a PartInfo "
        "with href cid:extra@oots.eu would name it): a receiving access point refuses the message (EBMS:0007)"
    )
    assert "MIME part 4 is named by no eb:PartInfo" in unnamed[1].message
    assert "it has no Content-ID a PartInfo could name it by" in unnamed[1].message
    assert unnamed[0].location == PAYLOAD_INFO
    # a message without any PayloadInfo names none of its parts
    bare = _mime(_envelope(_v2_header(spec_dir)), (V2_CID, "application/x-ebrs+xml", v2))
    assert _rules(validator.validate(bare)) == ["OOTS-MSG-005"]


def test_duplicate_and_foreign_references(spec_dir: Path, validator: Validator) -> None:
    header = _v2_header(
        spec_dir,
        _part_info(f"cid:{V2_CID}", XML),
        _part_info(f"cid:{V2_CID}", XML),
        _part_info("https://example.org/evidence.pdf", ("MimeType", "application/pdf")),
    )
    data = _mime(
        _envelope(header), (V2_CID, "application/x-ebrs+xml", (spec_dir / MESSAGES / "requete.xml").read_bytes())
    )
    twice, foreign = _ours(validator.validate(data))
    assert (twice.rule, twice.location) == ("OOTS-MSG-004", f"{PAYLOAD_INFO}/eb:PartInfo[2]")
    assert "which eb:PartInfo[1] names already: each payload is named by one PartInfo" in twice.message
    assert (foreign.rule, foreign.location) == ("OOTS-MSG-004", f"{PAYLOAD_INFO}/eb:PartInfo[3]")
    assert "does not allow payloads outside the message" in foreign.message


def test_a_missing_mime_type(spec_dir: Path, validator: Validator) -> None:
    header = _v2_header(spec_dir, _part_info(f"cid:{V2_CID}", ("PayloadName", "request.xml")))
    data = _mime(
        _envelope(header), (V2_CID, "application/x-ebrs+xml", (spec_dir / MESSAGES / "requete.xml").read_bytes())
    )
    [finding] = _ours(validator.validate(data))
    assert (finding.rule, finding.severity) == ("OOTS-MSG-006", Severity.ERROR)
    assert finding.message.startswith(f"eb:PartInfo[1] (href cid:{V2_CID}) has no MimeType part property")
    # the envelope alone: MimeType is still checked, only the part's presence is not
    assert _rules(validator.validate(_envelope(header))) == ["OOTS-MSG-006", "OOTS-MSG-010"]


@pytest.mark.parametrize(
    ("compression", "content", "expected"),
    [
        (None, "gzip", "is gzip data, but eb:PartInfo[1] (href cid:"),
        (GZIPPED, "plain", "is gzip-compressed (CompressionType application/gzip), but its content is not gzip"),
        (("CompressionType", "application/x-compress"), "gzip", "AS4 compresses with GZIP only"),
    ],
)
def test_compression_that_does_not_match_the_part(
    compression: tuple[str, str] | None, content: str, expected: str, spec_dir: Path, validator: Validator
) -> None:
    v2 = (spec_dir / MESSAGES / "requete.xml").read_bytes()
    properties = [XML] + ([compression] if compression else [])
    data = _mime(
        _envelope(_v2_header(spec_dir, _part_info(f"cid:{V2_CID}", *properties))),
        (V2_CID, "application/gzip", gzip.compress(v2) if content == "gzip" else v2),
    )
    report = validator.validate(data)
    [finding] = _ours(report)
    assert (finding.rule, finding.severity) == ("OOTS-MSG-007", Severity.ERROR)
    assert expected in finding.message
    assert report.parts[0].report is not None  # the document itself is still checked


def test_a_gzip_evidence_declared_as_gzip_needs_no_compression_type(spec_dir: Path, validator: Validator) -> None:
    header = _v2_header(
        spec_dir, _part_info(f"cid:{V2_CID}", XML), _part_info("cid:archive@oots.eu", ("MimeType", "application/gzip"))
    )
    data = _mime(
        _envelope(header),
        (V2_CID, "application/x-ebrs+xml", (spec_dir / MESSAGES / "requete.xml").read_bytes()),
        ("archive@oots.eu", "application/gzip", gzip.compress(b"an archive, the evidence itself")),
    )
    assert _ours(validator.validate(data)) == []


def test_the_first_part_info_names_the_oots_document(spec_dir: Path, validator: Validator) -> None:
    header = _with_payload_info(
        _read(spec_dir, RESPONSE_HEADER),
        _part_info("cid:evidence@oots.eu", ("MimeType", "application/xml")),
        _part_info("cid:response@oots.eu", ("MimeType", "application/xml")),
    )
    data = _mime(
        _envelope(header),
        ("response@oots.eu", "application/x-ebrs+xml", (spec_dir / RESPONSE).read_bytes()),
        ("evidence@oots.eu", "application/xml", (spec_dir / EVIDENCE).read_bytes()),
    )
    report = validator.validate(data)
    first, mime_type = sorted(_ours(report), key=lambda f: f.rule)
    assert (first.rule, first.severity, first.location) == (
        "OOTS-MSG-008",
        Severity.ERROR,
        f"{PAYLOAD_INFO}/eb:PartInfo[1]",
    )
    assert first.message.startswith(
        "the first eb:PartInfo names MIME part 3 (cid:evidence@oots.eu), which is not an OOTS document, and a "
        "later one names the OOTS document MIME part 2 (cid:response@oots.eu)"
    )
    assert (mime_type.rule, mime_type.severity) == ("OOTS-MSG-009", Severity.WARNING)
    assert "declared with MimeType application/xml by eb:PartInfo[2]" in mime_type.message
    assert "as application/x-ebrs+xml" in mime_type.message


def test_a_wrong_mime_type_alone_is_a_warning(spec_dir: Path, tmp_path: Path) -> None:
    header = _v2_header(spec_dir, _part_info(f"cid:{V2_CID}", ("MimeType", "application/xml")))
    data = _mime(_envelope(header), (V2_CID, "application/xml", (spec_dir / MESSAGES / "requete.xml").read_bytes()))
    rules = tmp_path / "rules"
    (rules / "sch").mkdir(parents=True)
    (rules / "sch" / "EDM-ebMS.sch").write_text(
        '<sch:schema xmlns:sch="http://purl.oclc.org/dsdl/schematron" queryBinding="xslt2"><sch:pattern>'
        '<sch:rule context="/"><sch:assert test="true()">never</sch:assert></sch:rule></sch:pattern></sch:schema>'
    )
    report = Validator(rules).validate(data)
    assert _rules(report) == ["OOTS-MSG-009"]
    assert report.rule_ids(blocking_only=True) == set()  # a warning does not make the header invalid


# --- the SOAP Body and the Domibus WS plugin forms -------------------------------------------------------


def test_a_body_payload_is_named_without_href_or_by_its_id(spec_dir: Path, validator: Validator) -> None:
    tc01 = _read(spec_dir, "edm-v1.0/samples/projectathon-testdata/TC01_Request.xml")
    with_id = tc01.replace("<query:QueryRequest ", '<query:QueryRequest Id="payload-1" ', 1)
    for part_info, body in [(_part_info(None, XML), tc01), (_part_info("#payload-1", XML), with_id)]:
        report = validator.validate(_envelope(_v2_header(spec_dir, part_info), body))
        assert report.parts[0].report is not None
        assert _ours(report) == []
    unnamed = _ours(validator.validate(_envelope(_v2_header(spec_dir, _part_info("#other", XML)), with_id)))
    assert [f.rule for f in unnamed] == ["OOTS-MSG-004", "OOTS-MSG-005"]
    assert "no element there has the id 'other'" in unnamed[0].message
    assert "a PartInfo without href names the SOAP Body, one with href #payload-1 this element" in unnamed[1].message
    empty = _ours(validator.validate(_envelope(_v2_header(spec_dir, _part_info(None, XML)))))
    assert [f.rule for f in empty] == ["OOTS-MSG-004"]
    assert (
        "names the SOAP Body (a PartInfo without href does), but the message has no payload there" in empty[0].message
    )


def test_domibus_payloads_are_named_by_payload_id(spec_dir: Path, validator: Validator) -> None:
    capture = (spec_dir / REEL / "requete.xml").read_text(encoding="utf-8")
    payload_id = re.search(r'payloadId="([^"]+)"', capture)
    assert payload_id is not None
    renamed = capture.replace(f'payloadId="{payload_id.group(1)}"', 'payloadId="cid:other@oots.eu"')
    missing, unnamed = _ours(validator.validate(renamed.encode()))
    assert missing.rule == "OOTS-MSG-004"
    assert "but the message has no payload with that payloadId" in missing.message
    assert unnamed.rule == "OOTS-MSG-005"
    assert "wsplugin:retrieveMessageResponse/payload (cid:other@oots.eu) is named by no eb:PartInfo" in unnamed.message
    # without "cid:" in payloadId Domibus still means the same part
    bare = capture.replace(f'payloadId="{payload_id.group(1)}"', f'payloadId="{payload_id.group(1)[4:]}"')
    assert _ours(validator.validate(bare.encode())) == []


def test_domibus_mime_type_may_come_from_content_type(spec_dir: Path, validator: Validator) -> None:
    capture = (spec_dir / REEL / "requete.xml").read_text(encoding="utf-8")
    no_mime_type = re.sub(r"<ns5:PartProperties>.*?</ns5:PartProperties>", "", capture)
    assert no_mime_type != capture
    assert _ours(validator.validate(no_mime_type.encode())) == []
    neither = no_mime_type.replace(' contentType="application/x-ebrs+xml"', "")
    assert _rules(validator.validate(neither.encode())) == ["OOTS-MSG-006"]
    compressed = capture.replace(
        "</ns5:PartProperties>",
        '<ns5:Property name="CompressionType">application/gzip</ns5:Property></ns5:PartProperties>',
    )
    [finding] = _ours(validator.validate(compressed.encode()))
    assert finding.rule == "OOTS-MSG-007"
    assert "a producer must not set it and a consumer is not given it" in finding.message


def test_a_domibus_message_with_mtom_reads_its_payload_from_the_mime_part(spec_dir: Path, validator: Validator) -> None:
    capture = (spec_dir / REEL / "requete.xml").read_text(encoding="utf-8")
    value = re.search(r"<value>([^<]+)</value>", capture)
    assert value is not None
    document = base64.b64decode(value.group(1))
    xop = capture.replace(
        value.group(0),
        '<value><xop:Include xmlns:xop="http://www.w3.org/2004/08/xop/include" href="cid:value-1%40mtom"/></value>',
    )
    data = _mime(xop.encode(), ("value-1@mtom", "application/octet-stream", document))
    report = validator.validate(data)
    [part] = report.parts  # the MIME part is the payload's value, not a payload of its own
    assert part.where.startswith("/S12:Envelope/S12:Body/wsplugin:retrieveMessageResponse/payload (cid:")
    assert part.report is not None
    assert part.report.kind == "edm-request"
    assert _ours(report) == []
    [lost] = validator.validate(xop.encode()).parts
    assert lost.note == "its value is a MIME part (cid:value-1%40mtom) that this input does not hold"


def test_a_signal_message_is_not_checked(validator: Validator) -> None:
    receipt = (
        '<eb:Messaging xmlns:eb="http://docs.oasis-open.org/ebxml-msg/ebms/v3.0/ns/core/200704/"><eb:SignalMessage>'
        "<eb:MessageInfo><eb:Timestamp>2026-01-01T00:00:00Z</eb:Timestamp><eb:MessageId>r@x</eb:MessageId>"
        "<eb:RefToMessageId>m@x</eb:RefToMessageId></eb:MessageInfo><eb:Receipt/></eb:SignalMessage></eb:Messaging>"
    )
    assert _ours(validator.validate(_envelope(receipt))) == []


def test_the_cli_prints_the_mismatch(spec_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    message = tmp_path / "message.mime"
    message.write_bytes(
        _mime(
            _envelope(_v2_header(spec_dir, _part_info("cid:gone@oots.eu", XML))),
            (V2_CID, "application/x-ebrs+xml", (spec_dir / MESSAGES / "requete.xml").read_bytes()),
        )
    )
    code, out, _ = run_cli(capsys, "validate", str(message))
    assert code == 1
    assert (
        f"  ERROR   OOTS-MSG-004 [document] {PAYLOAD_INFO}/eb:PartInfo[1]: eb:PartInfo[1] (href cid:gone@oots.eu)"
        in out
    )
    assert f"  ERROR   OOTS-MSG-005 [document] {PAYLOAD_INFO}: the payload MIME part 2 (cid:{V2_CID})" in out


def test_a_header_of_very_many_part_infos_is_checked_up_to_the_part_limit(spec_dir: Path, validator: Validator) -> None:
    many = "".join(f'<eb:PartInfo href="cid:p{n}@x"/>' for n in range(50_000))
    data = _mime(_envelope(_v2_header(spec_dir, many)), ("p1@x", "text/plain", b"hello"))
    started = time.process_time()
    report = validator.validate(data)
    assert time.process_time() - started < 10  # about 0.05 s: 1,000 PartInfo elements are read, not 50,000
    findings = _ours(report)
    assert findings[0].rule == "OOTS-MSG-004"
    assert findings[0].message == (
        "eb:PayloadInfo has 50,000 PartInfo elements, more than the 1,000 parts a message can have here: only the "
        "first 1,000 were checked"
    )
    assert len(findings) == 2 * 101  # per rule (004, 006): 100 listed and one "… and N more"
    assert [f.more for f in findings if f.more] == [900, 900]
