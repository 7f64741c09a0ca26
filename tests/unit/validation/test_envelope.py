"""Messages around OOTS documents: a SOAP envelope or a MIME multipart AS4 message is checked as its ebMS
header (found where it is), with each reachable OOTS payload validated and every other payload named as
not checked, with the reason."""

from __future__ import annotations

import base64
import binascii
import gzip
import json
import re
from dataclasses import replace
from pathlib import Path
from typing import NamedTuple

import pytest
from lxml import etree

from clirun import run_cli
from oots.errors import XmlError
from oots.validation import Finding, Layer, Part, Report, Severity, Validator, Verdict
from oots.validation.envelope import is_mime, split_mime

REEL = "edm-v2.0-captures/incoming/reel"
PHASE4 = "edelivery/phase4-signed-encrypted-usermessage.as4out"
HEADER = "edm-v2.0-captures/reference/messages/requete.entete.xml"
V2_REQUEST = "edm-v2.0-captures/reference/messages/requete.xml"
TC01 = "edm-v1.0/samples/projectathon-testdata/TC01_Request.xml"
TAX = (
    "edm-v1.0/samples/Exchange/4.5.4 - OOTS-EDM XML Examples of the Evidence Exchange/4 Example for requesting an "
    "Extract of a Commercial Register/4.1 Step 1  Evidence Request  - Tax - full example.xml"
)
S12 = "http://www.w3.org/2003/05/soap-envelope"
HEADER_PATH = "/S12:Envelope/S12:Header/eb:Messaging"
BOUNDARY = "MIMEBoundary_oots_test"
REGREP = "application/x-ebrs+xml"
#: The findings of ``eb:PayloadInfo`` against the payloads (``oots.validation.payloadinfo``).
PAYLOAD_INFO_RULES = {f"OOTS-MSG-{n:03d}" for n in range(4, 11)}

LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<lolz>&lol3;</lolz>"""
XXE = b"""<?xml version="1.0"?>
<!DOCTYPE q [<!ENTITY x SYSTEM "file:///etc/passwd">]>
<query:QueryRequest xmlns:query="urn:oasis:names:tc:ebxml-regrep:xsd:query:4.0" id="&x;"/>"""


class _Payload(NamedTuple):
    """A MIME part of a synthetic AS4 message, named in its ebMS header as a conformant sender names it."""

    cid: str
    content_type: str  # the Content-Type of the MIME part
    content: bytes  # as carried: gzip data when ``compressed``, encoded as ``encoding`` says
    encoding: str = "binary"
    mime_type: str = ""  # what its PartInfo declares as MimeType; ``content_type`` when not given
    compressed: bool = False  # AS4 compression: its PartInfo says CompressionType application/gzip


def _part_info(href: str | None, mime_type: str, *, compressed: bool = False, eb: str = "eb:") -> str:
    """An ``eb:PartInfo`` naming ``href`` (``None``: the SOAP Body) as a payload of type ``mime_type``
    (``eb``: the prefix of its elements; none in the Domibus push backend's header)."""
    props = f'<{eb}Property name="MimeType">{mime_type}</{eb}Property>'
    if compressed:
        props += f'<{eb}Property name="CompressionType">application/gzip</{eb}Property>'
    attribute = f' href="{href}"' if href is not None else ""
    return f"<{eb}PartInfo{attribute}><{eb}PartProperties>{props}</{eb}PartProperties></{eb}PartInfo>"


def _named(payload: _Payload) -> str:
    return _part_info(f"cid:{payload.cid}", payload.mime_type or payload.content_type, compressed=payload.compressed)


def _envelope(spec_dir: Path, body: str = "", *part_infos: str) -> bytes:
    """A SOAP 1.2 envelope around the real ebMS header of France's reference request, its PayloadInfo
    naming the payloads as ``part_infos`` do (none: no PayloadInfo)."""
    messaging = (spec_dir / HEADER).read_text(encoding="utf-8")
    messaging = messaging.split("?>", 1)[1] if messaging.lstrip().startswith("<?xml") else messaging
    payload_info = f"<eb:PayloadInfo>{''.join(part_infos)}</eb:PayloadInfo>" if part_infos else ""
    messaging = re.sub(r"<eb:PayloadInfo>.*</eb:PayloadInfo>", payload_info, messaging, flags=re.DOTALL)
    return (
        f'<S12:Envelope xmlns:S12="{S12}"><S12:Header>{messaging}</S12:Header>'
        f"<S12:Body>{body}</S12:Body></S12:Envelope>"
    ).encode()


def _mime(envelope: bytes, *parts: _Payload) -> bytes:
    """A MIME multipart/related AS4 message (HTTP headers first, CRLF lines): ``envelope``, then ``parts``."""
    out = [
        f'Content-Type: multipart/related; boundary="{BOUNDARY}"; type="application/soap+xml"\r\n\r\n'.encode(),
        f"--{BOUNDARY}\r\nContent-Type: application/soap+xml;charset=UTF-8\r\n\r\n".encode(),
        envelope,
    ]
    for part in parts:
        head = f"\r\n--{BOUNDARY}\r\nContent-Type: {part.content_type}\r\nContent-ID: <{part.cid}>\r\n"
        out += [head.encode(), f"Content-Transfer-Encoding: {part.encoding}\r\n\r\n".encode(), part.content]
    out.append(f"\r\n--{BOUNDARY}--\r\n".encode())
    return b"".join(out)


def _message(spec_dir: Path, *parts: _Payload) -> bytes:
    """A MIME AS4 message carrying ``parts``, its header naming each of them (in that order)."""
    return _mime(_envelope(spec_dir, "", *map(_named, parts)), *parts)


def _payload_info_findings(report: Report) -> list[Finding]:
    """The ``eb:PayloadInfo`` findings of ``report``: none for a message that names its payloads right."""
    return [f for f in report.findings if f.rule in PAYLOAD_INFO_RULES]


def test_a_domibus_capture_is_checked_as_its_header_and_its_payload(spec_dir: Path, validator: Validator) -> None:
    report = validator.validate((spec_dir / REEL / "requete.xml").read_bytes())
    assert (report.kind, report.version) == ("ebms-header", "2.0")
    assert report.found_at == f"{HEADER_PATH}, inside a SOAP 1.2 envelope"
    # no EDM-ebMS.sch in the packaged rules: the header is said unchecked, so the message is UNCONFIRMED
    assert [f.rule for f in report.findings] == ["OOTS-EBMS-000"]
    assert report.verdict is Verdict.UNCONFIRMED
    [part] = report.parts
    assert part.where.startswith("/S12:Envelope/S12:Body/wsplugin:retrieveMessageResponse/payload (cid:")
    assert part.content_type == "application/x-ebrs+xml"
    assert part.report is not None
    assert (part.report.kind, part.report.version, part.report.verdict) == ("edm-request", "2.0", Verdict.VALID)
    assert report.checks_by_layer == part.report.checks_by_layer  # the header ran none
    assert report.checks == part.report.checks > 0


def test_a_pdf_payload_is_named_as_not_checked(spec_dir: Path, validator: Validator) -> None:
    report = validator.validate((spec_dir / REEL / "reponseAvecPieceJointe.xml").read_bytes())
    response, pdf = report.parts
    assert response.report is not None
    assert response.report.kind == "edm-response"
    assert (pdf.content_type, pdf.report) == ("application/pdf", None)
    assert "not XML" in pdf.note


@pytest.mark.parametrize("name", ["soumissionMessage.xml", "listeMessagesEnAttente.xml"])
def test_an_envelope_without_ebms_header_gets_a_clear_finding(
    name: str, spec_dir: Path, validator: Validator, capsys: pytest.CaptureFixture[str]
) -> None:
    report = validator.validate((spec_dir / REEL / name).read_bytes())
    assert report.kind == "soap-envelope"
    [finding] = report.findings
    assert (finding.rule, finding.severity, finding.layer) == ("OOTS-MSG-001", Severity.FATAL, Layer.DOCUMENT)
    assert "without an ebMS header (eb:Messaging" in finding.message
    assert "wsplugin:" in finding.message  # what its Body holds instead
    code, out, _ = run_cli(capsys, "validate", str(spec_dir / REEL / name))
    assert code == 1
    assert ": INVALID (soap-envelope, version unknown; no rules, 0 checks), 1 finding(s)" in out


def test_the_phase4_golden_message_header_is_found_in_its_mime_envelope(
    spec_dir: Path, validator: Validator, capsys: pytest.CaptureFixture[str]
) -> None:
    data = (spec_dir / PHASE4).read_bytes()
    assert is_mime(data)
    report = validator.validate(data)
    assert report.kind == "ebms-header"
    assert report.version is None  # a Peppol message: no OOTS SpecificationId property
    assert report.found_at == f"{HEADER_PATH}, inside a SOAP 1.2 envelope (MIME part 1, application/soap+xml)"
    [attachment] = report.parts
    assert attachment.where.startswith("MIME part 2 (cid:phase4-att-")
    assert attachment.report is None
    assert attachment.note.startswith("encrypted (WS-Security)")
    code, out, _ = run_cli(capsys, "validate", str(spec_dir / PHASE4))
    assert code == 3
    assert f"found at {HEADER_PATH}, inside a SOAP 1.2 envelope (MIME part 1" in out
    assert "not checked — encrypted (WS-Security)" in out


EBMS_SERVICE = """<sch:schema xmlns:sch="http://purl.oclc.org/dsdl/schematron" queryBinding="xslt2">
  <sch:ns prefix="eb" uri="http://docs.oasis-open.org/ebxml-msg/ebms/v3.0/ns/core/200704/"/>
  <sch:pattern>
    <sch:rule context="eb:UserMessage/eb:CollaborationInfo">
      <sch:assert id="R-EBMS-T001" test="eb:Service = 'QueryManager'">Service MUST be QueryManager</sch:assert>
    </sch:rule>
  </sch:pattern>
</sch:schema>"""


def test_with_ebms_rules_the_header_in_an_envelope_is_checked(
    spec_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rules = tmp_path / "ebms-rules"
    (rules / "sch").mkdir(parents=True)
    (rules / "sch" / "EDM-ebMS.sch").write_text(EBMS_SERVICE)
    code, out, _ = run_cli(capsys, "validate", "--json", "--rules", str(rules), str(spec_dir / PHASE4))
    assert code == 1  # phase4's Peppol service is not QueryManager
    entry = json.loads(out)[0]
    assert entry["checks_by_layer"] == {"ebms-header": 1}
    assert [(f["rule"], f["layer"]) for f in entry["findings"]] == [("R-EBMS-T001", "ebms-header")]
    assert entry["found_at"].startswith(HEADER_PATH)
    domibus = tmp_path / "domibus.xml"
    domibus.write_bytes((spec_dir / REEL / "erreurObjetIntrouvable.xml").read_bytes())
    code, out, _ = run_cli(capsys, "validate", "--json", "--rules", str(rules), str(domibus))
    entry = json.loads(out)[0]
    assert entry["checks_by_layer"]["ebms-header"] == 1
    assert not [f for f in entry["findings"] if f["layer"] == "ebms-header"]


def test_a_mime_message_with_edm_parts_checks_each(spec_dir: Path, validator: Validator) -> None:
    v2 = (spec_dir / V2_REQUEST).read_bytes()
    tc01 = (spec_dir / TC01).read_bytes()
    data = _message(
        spec_dir,
        _Payload("v2@oots", "application/octet-stream", gzip.compress(v2), mime_type=REGREP, compressed=True),
        _Payload("v1@oots", REGREP, tc01),
        _Payload("evidence@oots", "application/xml", b"<birth xmlns='urn:example'><name>A</name></birth>"),
    )
    report = validator.validate(data)
    assert report.kind == "ebms-header"
    assert _payload_info_findings(report) == []
    assert report.found_at == f"{HEADER_PATH}, inside a SOAP 1.2 envelope (MIME part 1, application/soap+xml)"
    v2_part, v1_part, evidence = report.parts
    assert v2_part.where == "MIME part 2 (cid:v2@oots)"
    assert v2_part.report is not None
    assert v2_part.report.kind == "edm-request"
    assert v2_part.report.provisional
    assert v1_part.report is not None
    assert v1_part.report.valid
    assert set(v1_part.report.checks_by_layer) == {"xsd", "schematron", "codelist"}
    assert evidence.report is None
    assert "not an OOTS document" in evidence.note
    # the message's count is the header's and both payloads'
    assert report.checks == v2_part.report.checks + v1_part.report.checks
    assert report.checks_by_layer["structure"] == v2_part.report.checks
    assert report.checks_by_layer["schematron"] == v1_part.report.checks_by_layer["schematron"]


def test_an_invalid_payload_makes_the_message_invalid(
    spec_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    message = tmp_path / "message.mime"
    message.write_bytes(_message(spec_dir, _Payload("tax@oots", REGREP, (spec_dir / TAX).read_bytes())))
    code, out, _ = run_cli(capsys, "validate", "--json", str(message))
    assert code == 1
    entry = json.loads(out)[0]
    assert entry["verdict"] == "INVALID"
    assert [f["rule"] for f in entry["findings"] if f["rule"] in PAYLOAD_INFO_RULES] == []
    [part] = entry["parts"]
    assert part["checked"] is True
    assert "R-EDM-REQ-C067" in {f["rule"] for f in part["report"]["findings"]}
    code, out, _ = run_cli(capsys, "validate", str(message))
    line = f"  part MIME part 2 (cid:tax@oots) ({REGREP}; ebMS MimeType {REGREP}): INVALID (edm-request, v1.0;"
    assert line in out
    assert "    ERROR   R-EDM-REQ-C067 [schematron]" in out


def test_an_edm_document_in_the_soap_body_is_checked(spec_dir: Path, validator: Validator) -> None:
    tc01 = (spec_dir / TC01).read_text(encoding="utf-8").split("?>", 1)[1]
    report = validator.validate(_envelope(spec_dir, tc01, _part_info(None, REGREP)))  # no href: the SOAP Body
    assert _payload_info_findings(report) == []
    [part] = report.parts
    assert part.where == "/S12:Envelope/S12:Body/query:QueryRequest"
    assert part.report is not None
    assert (part.report.kind, part.report.verdict) == ("edm-request", Verdict.VALID)


@pytest.mark.parametrize("hostile", [LAUGHS, XXE], ids=["entity-expansion", "xxe"])
def test_a_hostile_payload_is_refused_as_a_finding(hostile: bytes, spec_dir: Path, validator: Validator) -> None:
    as_part = _message(spec_dir, _Payload("bad@oots", REGREP, hostile))
    domibus = _envelope(
        spec_dir,
        '<w:retrieveMessageResponse xmlns:w="http://eu.domibus.wsplugin/"><payload payloadId="cid:bad" '
        f'contentType="application/x-ebrs+xml"><value>{base64.b64encode(hostile).decode()}</value></payload>'
        "</w:retrieveMessageResponse>",
        _part_info("cid:bad", REGREP),  # a Domibus payload is named by its payloadId
    )
    for data in (as_part, domibus):
        report = validator.validate(data)
        assert _payload_info_findings(report) == []
        refused = [f for f in report.findings if f.rule == "OOTS-MSG-002"]
        assert len(refused) == 1
        assert refused[0].severity is Severity.FATAL
        assert "refused" in refused[0].message
        assert report.verdict is Verdict.INVALID
        assert report.parts[0].report is None
        assert "lol" not in refused[0].message
        assert "root:" not in refused[0].message


@pytest.mark.parametrize("hostile", [LAUGHS, XXE], ids=["entity-expansion", "xxe"])
def test_a_hostile_envelope_is_refused_as_today(hostile: bytes, validator: Validator) -> None:
    with pytest.raises(XmlError):
        validator.validate(_mime(hostile))


def test_a_gzip_bomb_part_is_not_uncompressed_past_the_limit(spec_dir: Path) -> None:
    validator = Validator(max_bytes=2 * 1024 * 1024)
    bomb = gzip.compress(b"<a>" + b" " * (50 * 1024 * 1024) + b"</a>")  # 50 MiB in about 50 KiB
    payload = _Payload("bomb@oots", "application/octet-stream", bomb, mime_type="application/xml", compressed=True)
    report = validator.validate(_message(spec_dir, payload))
    assert _payload_info_findings(report) == []
    [part] = report.parts
    assert part.report is None
    assert "over the limit of 2,097,152 bytes" in part.note


def test_a_message_over_the_size_limit_is_refused(spec_dir: Path) -> None:
    validator = Validator(max_bytes=100_000)
    big = _message(spec_dir, _Payload("big@oots", "application/octet-stream", b"x" * 200_000))
    with pytest.raises(XmlError, match="over the limit"):
        validator.validate(big)


def test_mime_without_boundary_or_parts_is_unusable(validator: Validator) -> None:
    with pytest.raises(XmlError, match="boundary"):
        validator.validate(b"Content-Type: multipart/related\r\n\r\nnothing")
    with pytest.raises(XmlError, match="without any part"):
        validator.validate(b'Content-Type: multipart/related; boundary="b"\r\n\r\nno delimiter here')


def test_mime_parts_split_with_lf_lines_and_a_bare_boundary_start(spec_dir: Path) -> None:
    data = _message(spec_dir, _Payload("x@oots", "text/plain", b"hello")).replace(b"\r\n", b"\n")
    body = data.split(b"\n\n", 1)[1]
    for message in (data, body):
        soap, text = split_mime(message)
        assert soap.content_type == "application/soap+xml"
        assert soap.content is not None
        assert soap.content.startswith(b"<S12:Envelope")
        assert (text.content_id, text.content) == ("x@oots", b"hello")


def test_validate_document_takes_documents_only(spec_dir: Path, validator: Validator) -> None:
    # the provider's intake maps the root onto the model: a message there is refused, not taken apart
    report, root = validator.validate_document((spec_dir / REEL / "requete.xml").read_bytes())
    assert (report.kind, [f.rule for f in report.findings]) == ("unknown", ["OOTS-DOC-001"])
    assert root.tag == f"{{{S12}}}Envelope"
    with pytest.raises(XmlError):
        validator.validate_document((spec_dir / PHASE4).read_bytes())


def test_a_message_verdict_is_the_worst_of_header_and_payloads() -> None:
    error = Finding("R-X", Severity.ERROR, Layer.SCHEMATRON, "broken", "/")
    provisional = Finding("OOTS-V2-X", Severity.ERROR, Layer.STRUCTURE, "broken", "/")
    valid = Report("edm-request", "1.0", checks_by_layer={"schematron": 2})
    header = Report("ebms-header", "2.0", checks_by_layer={"ebms-header": 1})
    assert _with_parts(header, Part("p", "x", valid)).verdict is Verdict.VALID
    assert _with_parts(header, Part("p", "x", Report("edm-request", "1.0", (error,)))).verdict is Verdict.INVALID
    unconfirmed = Report("edm-request", "2.0", (provisional,), provisional=True)
    assert _with_parts(header, Part("p", "x", unconfirmed)).verdict is Verdict.UNCONFIRMED
    assert _with_parts(header, Part("p", "x", None, "encrypted")).verdict is Verdict.VALID
    unchecked = Report("ebms-header", "2.0", checked=False)
    assert _with_parts(unchecked, Part("p", "x", valid)).verdict is Verdict.UNCONFIRMED
    assert hash(_with_parts(header, Part("p", "x", valid)))  # a report stays hashable
    with pytest.raises(ValueError, match="not the sum"):
        Report("edm-request", "1.0", checks=3, checks_by_layer={"xsd": 1})


def _with_parts(report: Report, *parts: Part) -> Report:
    return replace(report, parts=parts, checks=0)


def test_a_soap_11_envelope_and_a_misplaced_header_are_said_where(spec_dir: Path, validator: Validator) -> None:
    soap11 = _envelope(spec_dir).replace(S12.encode(), b"http://schemas.xmlsoap.org/soap/envelope/")
    report = validator.validate(soap11.replace(b"S12:", b"S11:").replace(b"xmlns:S12", b"xmlns:S11"))
    assert report.found_at == "/S11:Envelope/S11:Header/eb:Messaging, inside a SOAP 1.1 envelope"
    assert _payload_info_findings(report) == []  # it carries no payload and names none
    text = _envelope(spec_dir).decode()
    header = text[text.index("<S12:Header>") + len("<S12:Header>") : text.index("</S12:Header>")]
    misplaced = text.replace(header, "").replace("<S12:Body>", f"<S12:Body>{header}")
    report = validator.validate(misplaced.encode())
    assert report.kind == "ebms-header"
    assert report.found_at == "/S12:Envelope/S12:Body/eb:Messaging, inside a SOAP 1.2 envelope"
    assert "OOTS-MSG-003" in report.rule_ids(blocking_only=True)
    assert report.parts == ()  # the misplaced header is not taken for a payload
    assert _payload_info_findings(report) == []


def test_many_gzip_bombs_cost_no_more_than_one(spec_dir: Path) -> None:
    validator = Validator(max_bytes=4 * 1024 * 1024)
    bomb = gzip.compress(b" " * (3 * 1024 * 1024))  # 3 MiB in a few KiB: under the limit alone, not together
    parts = [
        _Payload(f"bomb{n}@oots", "application/octet-stream", bomb, mime_type="text/plain", compressed=True)
        for n in range(30)
    ]
    report = validator.validate(_message(spec_dir, *parts))
    assert _payload_info_findings(report) == []  # named, though not all read
    notes = [part.note for part in report.parts]
    assert len(notes) == 30
    assert notes[0].startswith("not XML")  # the first one is read (blanks): 3 of the 4 MiB
    assert all("all payloads together" in note for note in notes[1:20])
    assert all(note == "not read: only the first 20 payloads are" for note in notes[20:])


def test_many_documents_in_the_body_are_read_up_to_twenty(spec_dir: Path, validator: Validator) -> None:
    tc01 = (spec_dir / TC01).read_text(encoding="utf-8").split("?>", 1)[1]
    report = validator.validate(_envelope(spec_dir, tc01 * 25, _part_info(None, REGREP)))
    assert _payload_info_findings(report) == []  # a PartInfo without href names the whole SOAP Body
    assert sum(part.report is not None for part in report.parts) == 20
    assert [part.note for part in report.parts[20:]] == ["not read: only the first 20 payloads are"] * 5


def test_a_mime_message_without_envelope_checks_its_root_part(spec_dir: Path, validator: Validator) -> None:
    tc01 = (spec_dir / TC01).read_bytes()
    data = _mime(tc01, _Payload("x@oots", "application/pdf", b"%PDF-1.4"))
    report = validator.validate(data.replace(b"application/soap+xml", b"application/x-ebrs+xml"))
    assert (report.kind, report.verdict) == ("edm-request", Verdict.VALID)
    assert report.found_at == "MIME part 1, application/x-ebrs+xml"
    assert [(p.where, p.note) for p in report.parts] == [("MIME part 2", "not read: the message has no SOAP envelope")]


def _qp(data: bytes) -> bytes:
    """``data`` quoted-printable encoded as binary (its line breaks as =0D=0A), soft line breaks CRLF."""
    return binascii.b2a_qp(data, istext=False).replace(b"\n", b"\r\n")


def test_quoted_printable_and_base64_parts_are_decoded_and_checked(spec_dir: Path, validator: Validator) -> None:
    tc01 = (spec_dir / TC01).read_bytes()
    v2 = (spec_dir / V2_REQUEST).read_bytes()
    encoded = _qp(tc01)
    assert b"=\r\n" in encoded  # soft line breaks: the decoder joins them
    data = _message(
        spec_dir,
        _Payload("qp@oots", REGREP, encoded, "quoted-printable"),
        _Payload("b64@oots", REGREP, base64.encodebytes(v2), "Base64"),
        _Payload(
            "qpzip@oots", "application/gzip", _qp(gzip.compress(tc01)), "Quoted-Printable", REGREP, compressed=True
        ),
        _Payload("bad@oots", REGREP, b"not base64 at all!", "base64"),
        _Payload("x@oots", REGREP, b"<a/>", "x-uuencode"),
    )
    report = validator.validate(data)
    assert _payload_info_findings(report) == []
    qp, b64, qpzip, bad, other = report.parts
    assert qp.report is not None
    assert (qp.report.kind, qp.report.verdict) == ("edm-request", Verdict.VALID)
    assert b64.report is not None
    assert (b64.report.kind, b64.report.version) == ("edm-request", "2.0")
    assert qpzip.report is not None  # decoded, then uncompressed
    assert qpzip.report.verdict is Verdict.VALID
    assert (bad.report, bad.note) == (None, "its base64 content cannot be decoded")
    assert (other.report, other.note) == (None, "its transfer encoding 'x-uuencode' is not read here")


def test_a_quoted_printable_envelope_part_is_decoded(spec_dir: Path, validator: Validator) -> None:
    data = _mime(_envelope(spec_dir)).replace(
        b"Content-Type: application/soap+xml;charset=UTF-8\r\n",
        b"Content-Type: application/soap+xml;charset=UTF-8\r\nContent-Transfer-Encoding: quoted-printable\r\n",
    )
    encoded = data.replace(_envelope(spec_dir), _qp(_envelope(spec_dir)))
    assert encoded != data
    report = validator.validate(encoded)
    assert _payload_info_findings(report) == []  # it carries no payload and names none
    assert report.kind == "ebms-header"
    assert report.found_at == f"{HEADER_PATH}, inside a SOAP 1.2 envelope (MIME part 1, application/soap+xml)"


def test_quoted_printable_parts_count_decoded_within_the_payload_budget(spec_dir: Path) -> None:
    validator = Validator(max_bytes=4 * 1024 * 1024)
    bomb = _qp(gzip.compress(b" " * (3 * 1024 * 1024)))  # decoded, then uncompressed: 3 of the 4 MiB
    parts = [
        _Payload(f"bomb{n}@oots", "application/gzip", bomb, "quoted-printable", mime_type="text/plain", compressed=True)
        for n in range(3)
    ]
    report = validator.validate(_message(spec_dir, *parts))
    assert _payload_info_findings(report) == []
    notes = [part.note for part in report.parts]
    assert notes[0].startswith("not XML")
    assert all("all payloads together" in note for note in notes[1:])
    assert all("over the limit of" in note for note in notes[1:])


# --- a message Domibus pushes to its WS plugin's backend (BackendService.wsdl) -------------------------------

#: The target namespace of the push backend's WSDL and schema.
BACKEND = "eu.domibus"
BACKEND_XSD = "domibus-ws-plugin/backend_push/BackendService.xsd"
BACKEND_HEADER = "/S12:Envelope/S12:Header/backend:Messaging"
GATEWAY = "http://sdg.europa.eu/edelivery/gateway"
PARTY_TYPE = "urn:oasis:names:tc:ebcore:partyid-type:unregistered:oots"


def _backend_messaging(*part_infos: str, service: str = "QueryManager") -> str:
    """The header part of the backend's ``submitRequest`` (``tns:Messaging``): the ebMS header subset of the
    WS plugin in the backend's namespace, its elements unqualified (BackendService.xsd declares no
    ``elementFormDefault``); no PayloadInfo when ``part_infos`` is empty (it holds at least one PartInfo)."""
    payload_info = f"<PayloadInfo>{''.join(part_infos)}</PayloadInfo>" if part_infos else ""
    return (
        f'<b:Messaging xmlns:b="{BACKEND}"><UserMessage>'
        "<MessageInfo><Timestamp>2026-08-06T10:00:00Z</Timestamp><MessageId>push-1@oots.eu</MessageId></MessageInfo>"
        f'<PartyInfo><From><PartyId type="{PARTY_TYPE}">AP_FR_01</PartyId><Role>{GATEWAY}</Role></From>'
        f'<To><PartyId type="{PARTY_TYPE}">AP_DE_01</PartyId><Role>{GATEWAY}</Role></To></PartyInfo>'
        f'<CollaborationInfo><Service type="urn:oasis:names:tc:ebcore:ebrs:ebms:binding:1.0">{service}</Service>'
        "<Action>ExecuteQueryRequest</Action><ConversationId>push-conversation-1</ConversationId></CollaborationInfo>"
        '<MessageProperties><Property name="originalSender" type="urn:cef.eu:names:identifier:EAS:0009">'
        '00000000000002</Property><Property name="finalRecipient" type="urn:cef.eu:names:identifier:EAS:9930">'
        'DE73524311</Property><Property name="SpecificationId">oots-edm:v2.0</Property></MessageProperties>'
        f"{payload_info}</UserMessage></b:Messaging>"
    )


def _backend_payload(name: str, content: bytes, payload_id: str | None = None, **attributes: str) -> str:
    """A ``payload`` or ``bodyload`` (``name``) of the backend's ``submitRequest``: its content as base64."""
    given = ({"payloadId": payload_id} if payload_id else {}) | attributes
    attrs = "".join(f' {key}="{value}"' for key, value in given.items())
    return f"<{name}{attrs}><value>{base64.b64encode(content).decode()}</value></{name}>"


def _backend_call(spec_dir: Path, operation: str, content: str, header: str = "") -> bytes:
    """A SOAP 1.2 call of the backend's ``operation`` (its header part, if any, in the SOAP Header), both
    parts checked against BackendService.xsd first: the test messages are what the WSDL says."""
    schema = etree.XMLSchema(etree.parse(spec_dir / BACKEND_XSD))
    body = f'<b:{operation} xmlns:b="{BACKEND}">{content}</b:{operation}>'
    for part in (header, body) if header else (body,):
        schema.assertValid(etree.fromstring(part.encode()))
    envelope = f'<S12:Envelope xmlns:S12="{S12}"><S12:Header>{header}</S12:Header><S12:Body>{body}</S12:Body>'
    return f"{envelope}</S12:Envelope>".encode()


def test_a_message_pushed_to_the_domibus_backend_is_checked_as_its_header_and_its_payloads(
    spec_dir: Path, validator: Validator, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    header = _backend_messaging(
        _part_info("cid:request@oots.eu", REGREP, eb=""), _part_info("cid:evidence@oots.eu", "application/pdf", eb="")
    )
    payloads = _backend_payload(
        "payload", (spec_dir / V2_REQUEST).read_bytes(), "cid:request@oots.eu", contentType=REGREP
    )
    payloads += _backend_payload("payload", b"%PDF-1.4", "cid:evidence@oots.eu", mimeType="application/pdf")
    report = validator.validate(_backend_call(spec_dir, "submitRequest", payloads, header))
    assert (report.kind, report.version) == ("ebms-header", "2.0")  # its SpecificationId property
    assert report.found_at == f"{BACKEND_HEADER}, inside a SOAP 1.2 envelope"
    assert [f.rule for f in report.findings] == ["OOTS-EBMS-000"]  # no header rules packaged: UNCONFIRMED
    request, evidence = report.parts
    assert request.where == "/S12:Envelope/S12:Body/backend:submitRequest/payload (cid:request@oots.eu)"
    assert request.report is not None
    assert (request.report.kind, request.report.version) == ("edm-request", "2.0")
    assert evidence.content_type == "application/pdf"  # the backend's payload may give it as mimeType
    assert (evidence.report, evidence.note.startswith("not XML")) == (None, True)
    message = tmp_path / "pushed.xml"
    message.write_bytes(_backend_call(spec_dir, "submitRequest", payloads, header))
    code, out, _ = run_cli(capsys, "validate", str(message))
    assert code == 3
    assert f"found at {BACKEND_HEADER}, inside a SOAP 1.2 envelope" in out


def test_a_pushed_messages_payload_info_is_checked_as_a_domibus_plugin_messages(
    spec_dir: Path, validator: Validator
) -> None:
    request = (spec_dir / V2_REQUEST).read_bytes()
    in_body = _backend_payload("bodyload", request, contentType=REGREP)  # named by a PartInfo without href
    clean = validator.validate(
        _backend_call(spec_dir, "submitRequest", in_body, _backend_messaging(_part_info(None, REGREP, eb="")))
    )
    assert _payload_info_findings(clean) == []
    assert clean.parts[0].report is not None
    payload = _backend_payload("payload", request, "cid:request@oots.eu", contentType=REGREP)
    elsewhere = _backend_messaging(_part_info("cid:other@oots.eu", REGREP, eb=""))
    missing, unnamed = _payload_info_findings(
        validator.validate(_backend_call(spec_dir, "submitRequest", payload, elsewhere))
    )
    assert missing.rule == "OOTS-MSG-004"
    assert missing.location == f"{BACKEND_HEADER}/UserMessage/PayloadInfo/PartInfo[1]"  # its elements unqualified
    assert "but the message has no payload with that payloadId" in missing.message
    assert unnamed.rule == "OOTS-MSG-005"
    assert "backend:submitRequest/payload (cid:request@oots.eu) is named by no eb:PartInfo" in unnamed.message
    compressed = _backend_messaging(_part_info("cid:request@oots.eu", REGREP, compressed=True, eb=""))
    [finding] = _payload_info_findings(
        validator.validate(_backend_call(spec_dir, "submitRequest", payload, compressed))
    )
    assert finding.rule == "OOTS-MSG-007"
    assert "of a Domibus WS plugin message has a CompressionType" in finding.message


def test_with_ebms_rules_a_pushed_header_is_checked_as_an_ebms_header(spec_dir: Path, tmp_path: Path) -> None:
    rules = tmp_path / "ebms-rules"
    (rules / "sch").mkdir(parents=True)
    (rules / "sch" / "EDM-ebMS.sch").write_text(EBMS_SERVICE)
    validator = Validator(rules)
    payload = _backend_payload(
        "payload", (spec_dir / V2_REQUEST).read_bytes(), "cid:request@oots.eu", contentType=REGREP
    )
    named = _part_info("cid:request@oots.eu", REGREP, eb="")
    for service, expected in (("QueryManager", []), ("OtherService", ["R-EBMS-T001"])):
        report = validator.validate(
            _backend_call(spec_dir, "submitRequest", payload, _backend_messaging(named, service=service))
        )
        assert report.checks_by_layer["ebms-header"] == 1  # its elements read as the eb: ones they stand for
        assert [f.rule for f in report.findings if f.layer is Layer.EBMS_HEADER] == expected


def test_a_backend_notification_is_an_envelope_without_ebms_header(spec_dir: Path, validator: Validator) -> None:
    for operation, content in (
        ("sendSuccess", "<messageID>push-1@oots.eu</messageID>"),
        ("messageStatusChange", "<messageID>push-1@oots.eu</messageID><messageStatus>ACKNOWLEDGED</messageStatus>"),
    ):
        report = validator.validate(_backend_call(spec_dir, operation, content))
        assert (report.kind, report.parts) == ("soap-envelope", ())  # it names a message, carries none
        [finding] = report.findings
        assert finding.rule == "OOTS-MSG-001"
        assert f"its Body holds /S12:Envelope/S12:Body/backend:{operation}" in finding.message
