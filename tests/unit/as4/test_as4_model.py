from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest

from oots.as4.model import (
    CollaborationInfo,
    Error,
    MessageInfo,
    PartInfo,
    Party,
    PartyId,
    PartyInfo,
    Payload,
    Property,
    Receipt,
    Service,
    SignalMessage,
    UserMessage,
)
from oots.errors import LocalProtocolError

T0 = datetime(2026, 11, 27, 3, 0, tzinfo=UTC)


def _user_message(parts: tuple[PartInfo, ...] = ()) -> UserMessage:
    return UserMessage(
        message_info=MessageInfo("m1@example.org", T0),
        party_info=PartyInfo(
            Party(PartyId("ap-a", "urn:x"), "http://sdg.europa.eu/edelivery/gateway"),
            Party(PartyId("ap-b", "urn:x"), "http://sdg.europa.eu/edelivery/gateway"),
        ),
        collaboration_info=CollaborationInfo(Service("QueryManager"), "ExecuteQueryRequest", "c-1"),
        message_properties=(Property("originalSender", "s", "urn:t"),),
        payload_info=parts,
    )


def test_values_are_frozen_and_comparable() -> None:
    um = _user_message()
    assert um == _user_message()
    with pytest.raises(dataclasses.FrozenInstanceError):
        um.mpc = "x"  # type: ignore[misc]


def test_property_lookup() -> None:
    um = _user_message((PartInfo("cid:p1@x", (Property("MimeType", "application/xml"),)),))
    prop = um.property("originalSender")
    assert prop is not None
    assert prop.type == "urn:t"
    assert um.property("finalRecipient") is None
    part = um.part_info("p1@x")
    assert part is not None
    assert part.content_id == "p1@x"
    assert part.property("MimeType") == Property("MimeType", "application/xml")


@pytest.mark.parametrize(
    "build",
    [
        lambda: MessageInfo("", T0),
        lambda: MessageInfo("<a@b>", T0),
        lambda: MessageInfo("a@b", datetime(2026, 1, 1)),
        lambda: PartInfo("http://elsewhere/"),
        lambda: Payload("p<1>", "application/xml", b""),
        lambda: Payload("p1", "xml", b""),
        lambda: Error("EBMS:0004", "fatal"),
        lambda: _user_message((PartInfo("cid:a"), PartInfo("cid:a"))),
        lambda: SignalMessage(MessageInfo("s@x", T0), Receipt(), (Error("EBMS:0004", "failure"),)),
    ],
)
def test_invalid_values_are_refused(build: object) -> None:
    with pytest.raises(LocalProtocolError):
        build()  # type: ignore[operator]


def test_payload_href_and_repr_hides_bytes() -> None:
    payload = Payload("p1@x", "application/pdf", b"secret-bytes")
    assert payload.href == "cid:p1@x"
    assert "secret-bytes" not in repr(payload)
