from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from as4_helpers import oots_message_fixture  # noqa: F401 - fixtures
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from oots import ns, xmlsafe
from oots.as4 import envelope, model
from oots.as4.errors import EbmsError
from oots.errors import LocalProtocolError, RemoteProtocolError

T0 = datetime(2026, 11, 27, 12, 0, 0, 123000, tzinfo=UTC)


def _in_envelope(messaging: str) -> etree._Element:
    doc = (
        f'<env:Envelope xmlns:env="{ns.S12}" xmlns:xx="urn:unused"><env:Header>{messaging}</env:Header>'
        "<env:Body/></env:Envelope>"
    ).encode()
    root = xmlsafe.parse(doc)
    found = root.find(f"{{{ns.S12}}}Header/{{{ns.EB}}}Messaging")
    assert found is not None
    return found


def _exc_c14n(el: etree._Element) -> bytes:
    return etree.tostring(el, method="c14n", exclusive=True, with_comments=False)


def _receipt() -> model.SignalMessage:
    ref = model.Reference(
        "#a", "http://www.w3.org/2001/04/xmlenc#sha256", b"\x01" * 32,
        (model.Transform("http://www.w3.org/2001/10/xml-exc-c14n#", ("env", "eb")),),
    )  # fmt: skip
    return model.SignalMessage(model.MessageInfo("r@x", T0, "m@x"), receipt=model.Receipt((ref, ref)))


def test_user_message_is_written_canonically_and_reads_back(oots_message: Callable[..., model.UserMessage]) -> None:
    um = oots_message()
    um = model.UserMessage(
        um.message_info,
        um.party_info,
        um.collaboration_info,
        um.message_properties,
        (model.PartInfo("cid:p@x", (model.Property("MimeType", "application/xml"),)),),
        model.DEFAULT_MPC,
    )
    text = envelope.messaging_xml(um, wsu_id="id-1")
    el = _in_envelope(text)
    assert _exc_c14n(el) == text.encode()
    assert envelope.parse_messaging(el) == um


@pytest.mark.parametrize(
    "signal",
    [
        _receipt(),
        model.SignalMessage(
            model.MessageInfo("e@x", T0, "m@x"),
            errors=(EbmsError.DECOMPRESSION_FAILURE.to_error(ref_to_message_in_error="m@x", detail="too big <&>"),),
        ),
        model.SignalMessage(
            model.MessageInfo("e@x", T0),
            errors=(model.Error("EBMS:0004", "warning", description="d\r\n\t"),),
        ),
    ],
)
def test_signals_are_written_canonically_and_read_back(signal: model.SignalMessage) -> None:
    text = envelope.messaging_xml(signal, wsu_id="id-2")
    el = _in_envelope(text)
    assert _exc_c14n(el) == text.encode()
    assert envelope.parse_messaging(el) == signal


_TEXT = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc"), exclude_characters="\ufffe\uffff")
    | st.sampled_from("\t\n\r&<>\"'"),
    min_size=1,
    max_size=30,
).filter(str.strip)


@settings(max_examples=80, deadline=None)
@given(name=_TEXT, value=_TEXT, type_=st.none() | _TEXT, action=_TEXT)
def test_any_text_is_escaped_canonically(name: str, value: str, type_: str | None, action: str) -> None:
    um = model.UserMessage(
        model.MessageInfo("m@x", T0),
        model.PartyInfo(model.Party(model.PartyId("a"), "r"), model.Party(model.PartyId("b", type_), "r")),
        model.CollaborationInfo(model.Service("s"), action, "c"),
        (model.Property(name, value, type_),),
    )
    text = envelope.messaging_xml(um, wsu_id="id-3")
    el = _in_envelope(text)
    assert _exc_c14n(el) == text.encode()
    back = envelope.parse_messaging(el)
    assert isinstance(back, model.UserMessage)
    assert back.collaboration_info.action == action.strip()
    assert back.message_properties[0].value == value.strip()


@pytest.mark.parametrize("bad", ["\x00", "a\x1fb", "\ufffe"])
def test_characters_xml_cannot_carry_are_refused(bad: str) -> None:
    with pytest.raises(LocalProtocolError):
        envelope.text(bad)


def test_timestamps() -> None:
    assert envelope.format_timestamp(T0) == "2026-11-27T12:00:00.123Z"
    assert envelope.parse_timestamp("2026-01-29T15:39:03.805Z") == datetime(2026, 1, 29, 15, 39, 3, 805000, tzinfo=UTC)
    assert envelope.parse_timestamp("2026-01-29T15:39:03").tzinfo is UTC


_GOOD = (
    "<eb:UserMessage><eb:MessageInfo><eb:Timestamp>2026-01-01T00:00:00Z</eb:Timestamp>"
    "<eb:MessageId>m@x</eb:MessageId></eb:MessageInfo><eb:PartyInfo>"
    "<eb:From><eb:PartyId>a</eb:PartyId><eb:Role>r</eb:Role></eb:From>"
    "<eb:To><eb:PartyId>b</eb:PartyId><eb:Role>r</eb:Role></eb:To></eb:PartyInfo>"
    "<eb:CollaborationInfo><eb:Service>s</eb:Service><eb:Action>a</eb:Action>"
    "<eb:ConversationId>c</eb:ConversationId></eb:CollaborationInfo>{extra}</eb:UserMessage>"
)


def _messaging(inner: str) -> etree._Element:
    return _in_envelope(f'<eb:Messaging xmlns:eb="{ns.EB}">{inner}</eb:Messaging>')


def test_minimal_user_message_parses() -> None:
    um = envelope.parse_messaging(_messaging(_GOOD.format(extra="")))
    assert isinstance(um, model.UserMessage)
    assert um.party_info.to_party.party_id == model.PartyId("b")


@pytest.mark.parametrize(
    "inner",
    [
        "",
        _GOOD.format(extra="") * 2,
        _GOOD.format(extra="").replace("<eb:Action>a</eb:Action>", ""),
        _GOOD.format(extra="").replace(
            "<eb:PartyId>a</eb:PartyId>", "<eb:PartyId>a</eb:PartyId><eb:PartyId>z</eb:PartyId>"
        ),
        _GOOD.format(extra="").replace("2026-01-01T00:00:00Z", "yesterday"),
        _GOOD.format(extra="").replace("<eb:MessageId>m@x</eb:MessageId>", "<eb:MessageId>  </eb:MessageId>"),
        _GOOD.format(extra='<eb:PayloadInfo><eb:PartInfo href="http://x/"/></eb:PayloadInfo>'),
        _GOOD.format(extra='<eb:PayloadInfo><eb:PartInfo href="cid:a"/><eb:PartInfo href="cid:a"/></eb:PayloadInfo>'),
        _GOOD.format(
            extra='<eb:MessageProperties><eb:Property name="a">1</eb:Property>'
            '<eb:Property name="a">2</eb:Property></eb:MessageProperties>'
        ),
    ],
)
def test_bad_headers_are_ebms_0009(inner: str) -> None:
    with pytest.raises(RemoteProtocolError) as info:
        envelope.parse_messaging(_messaging(inner))
    assert info.value.code == "EBMS:0009"
