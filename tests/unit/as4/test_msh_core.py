# ruff: noqa: F811  (fixtures are imported from msh_doubles / msh_world and used as arguments)
"""The message handler over the real AS4 core: signed, encrypted messages and NRR receipts."""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import os

import pytest
from msh_world import (
    NOW,
    MemoryInbox,
    dev_pki,  # noqa: F401 - fixture
    receiver,
    side,
    user_message,
)

from oots.as4 import msh, trust
from oots.as4 import pmode as pm
from oots.as4.model import (
    CollaborationInfo,
    Party,
    PartyId,
    PartyInfo,
    Payload,
    Service,
)


@pytest.fixture
def wired(dev_pki: dict[str, object]) -> tuple[pm.PModeSet, msh.CoreCodec, msh.Receiver, dict[str, msh.InboundRecord]]:
    blue, blue_codec = side("blue", "red", dev_pki)
    red, red_codec = side("red", "blue", dev_pki)
    stored: dict[str, msh.InboundRecord] = {}

    def seen(message_id: str) -> msh.PriorReceipt | None:
        rec = stored.get(message_id)
        return None if rec is None else msh.PriorReceipt(rec.received_at, rec.receipt.content_type, rec.receipt.body)

    ids = itertools.count(1)
    return blue, blue_codec, msh.Receiver(red, red_codec, seen, lambda: f"s{next(ids)}@red"), stored


def test_signed_encrypted_exchange_with_nrr_receipt(wired) -> None:  # type: ignore[no-untyped-def]
    blue, codec, receiver, stored = wired
    payload = Payload(
        "regrep@blue", "application/x-ebrs+xml", b"<?xml version='1.0'?><query>" + b"x" * 5000 + b"</query>"
    )
    mode = blue.resolve(blue.partner("red"), blue.leg("QueryManager", "ExecuteQueryRequest"))
    record = msh.create_outbound(codec, user_message("m1@blue"), [payload], mode, NOW)
    assert payload.data not in record.body  # compressed and encrypted on the wire
    record, request = msh.begin_attempt(record, mode, NOW)
    answer = msh.receive(receiver, request.content_type, request.body, NOW)
    assert answer.error is None, answer.error
    assert answer.record is not None
    got = answer.record.message
    assert got.payloads[0].data == payload.data
    assert got.signer.subject.rfc4514_string() == "CN=blue sign" or "blue sign" in got.signer.subject.rfc4514_string()
    assert got.pmode is not None
    assert got.pmode.partner.name == "blue"
    stored[got.message_id] = answer.record
    record, events = msh.on_reply(record, mode, codec, (answer.content_type, answer.body), NOW)
    assert record.state is msh.OutboundState.RECEIPT, record.error_detail
    assert isinstance(events[0], msh.ReceiptReceived)
    assert events[0].receipt.receipt is not None
    assert set(events[0].receipt.receipt.references) == set(record.references)


def test_a_flipped_byte_is_refused(wired) -> None:  # type: ignore[no-untyped-def]
    blue, codec, receiver, _ = wired
    mode = blue.resolve(blue.partner("red"), blue.test_leg())
    record = msh.create_outbound(
        codec,
        dataclasses.replace(
            user_message("m2@blue"), collaboration_info=CollaborationInfo(Service(pm.TEST_SERVICE), pm.TEST_ACTION, "c")
        ),
        [Payload("p@b", "text/plain", b"hello")],
        mode,
        NOW,
    )
    body = record.body.replace(b"m2@blue", b"m3@blue", 1)
    answer = msh.receive(receiver, record.content_type, body, NOW)
    assert answer.record is None
    assert answer.error is not None
    assert answer.error.error_code == "EBMS:0101"
    assert answer.error.ref_to_message_in_error == "m3@blue"  # the id it claims, to correlate the error


def test_a_partner_cannot_sign_in_another_ones_name(wired, dev_pki: dict[str, object]) -> None:  # type: ignore[no-untyped-def]
    blue, _codec, receiver, _ = wired
    # red's own key signs a message whose header claims to come from blue.
    impostor = msh.CoreCodec(dev_pki["red_sign"], dev_pki["red_encrypt"], os.urandom)  # type: ignore[arg-type]
    mode = blue.resolve(blue.partner("red"), blue.leg("QueryManager", "ExecuteQueryRequest"))
    record = msh.create_outbound(impostor, user_message("m4@blue"), [], mode, NOW)
    answer = msh.receive(receiver, record.content_type, record.body, NOW)
    assert answer.error is not None
    assert answer.error.error_code == "EBMS:0101"


def test_the_test_service_with_the_real_codec(wired) -> None:  # type: ignore[no-untyped-def]
    blue, codec, receiver, _ = wired
    mode = blue.resolve(blue.partner("red"), blue.test_leg())
    um = dataclasses.replace(
        user_message("m5@blue"),
        collaboration_info=CollaborationInfo(Service(pm.TEST_SERVICE), pm.TEST_ACTION, "c"),
        message_properties=(),
    )
    record = msh.create_outbound(codec, um, [], mode, NOW)
    answer = msh.receive(receiver, record.content_type, record.body, NOW)
    assert answer.record is not None
    assert not answer.record.deliver


def test_a_ca_issued_signer_s_chain_is_built_once_not_per_message(wired, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Without a pinned signing certificate the signer is trusted through the partner's CA: the chain is
    built once and kept with the anchors' trust store, and the signer's validity at each message's time
    is still checked."""
    blue, codec, receiver, _stored = wired
    unpinned = dataclasses.replace(
        receiver.pmodes,
        partners=tuple(dataclasses.replace(p, signing_certificate=None) for p in receiver.pmodes.partners),
    )
    rx = dataclasses.replace(receiver, pmodes=unpinned)
    builds: list[int] = []
    real = trust.verification.PolicyBuilder

    def counting() -> object:
        builds.append(1)
        return real()

    monkeypatch.setattr(trust.verification, "PolicyBuilder", counting)
    mode = blue.resolve(blue.partner("red"), blue.leg("QueryManager", "ExecuteQueryRequest"))
    for n in range(3):
        record = msh.create_outbound(codec, user_message(f"ca{n}@blue"), [], mode, NOW)
        answer = msh.receive(rx, record.content_type, record.body, NOW)
        assert answer.error is None, answer.error
    assert len(builds) <= 1  # two stores per message, each building the chain, before
    record = msh.create_outbound(codec, user_message("ca-late@blue"), [], mode, NOW)
    late = msh.receive(rx, record.content_type, record.body, NOW + dt.timedelta(days=3650))
    assert late.error is not None
    assert late.error.error_code == "EBMS:0101"


def _signed_request(blue: pm.PModeSet, codec: msh.CoreCodec, message_id: str) -> tuple[str, bytes]:
    mode = blue.resolve(blue.partner("red"), blue.leg("QueryManager", "ExecuteQueryRequest"))
    record = msh.create_outbound(
        codec, user_message(message_id), [Payload("q@blue", "application/xml", b"<q/>")], mode, NOW
    )
    return record.content_type, record.body


_SKI = b"http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-x509-token-profile-1.0#X509SubjectKeyIdentifier"


def _bad_key_identifier(body: bytes) -> bytes:
    start = body.rfind(b"<ds:KeyInfo><wsse:SecurityTokenReference>")
    end = body.find(b"</ds:KeyInfo>", start)
    assert start > 0
    assert end > start
    ski = b'<wsse:KeyIdentifier ValueType="' + _SKI + b'">abcde</wsse:KeyIdentifier>'
    return (
        body[:start]
        + b"<ds:KeyInfo><wsse:SecurityTokenReference>"
        + ski
        + b"</wsse:SecurityTokenReference>"
        + body[end:]
    )


def _bad_oaep_params(body: bytes) -> bytes:
    at = body.find(b"</xenc:EncryptionMethod>")
    assert at > 0
    return body[:at] + b"<xenc:OAEPparams>abcde</xenc:OAEPparams>" + body[at:]


@pytest.mark.parametrize(
    ("tamper", "code", "detail"),
    [
        (_bad_key_identifier, "EBMS:0101", "KeyIdentifier is not base64"),
        (_bad_oaep_params, "EBMS:0102", "OAEPparams"),
    ],
    ids=["key identifier", "OAEP params"],
)
def test_malformed_base64_before_authentication_is_an_ebms_error(wired, tamper, code, detail) -> None:  # type: ignore[no-untyped-def]
    blue, codec, receiver, _ = wired
    content_type, body = _signed_request(blue, codec, "b64@blue")
    answer = msh.receive(receiver, content_type, tamper(body), NOW)
    assert answer.record is None
    assert answer.error is not None
    assert answer.error.error_code == code
    assert detail in (answer.error.error_detail or "")


def test_a_claimed_message_id_xml_cannot_carry_is_not_echoed(wired) -> None:  # type: ignore[no-untyped-def]
    _, _, receiver, _ = wired
    body = (
        b'<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope"><env:Header>'
        b"<eb:MessageId>a\x01b</eb:MessageId></env:Header><env:Body/></env:Envelope>"
    )
    answer = msh.receive(receiver, "application/soap+xml", body, NOW)
    assert answer.error is not None
    assert answer.error.error_code == "EBMS:0009"
    assert answer.message_id is None
    assert answer.error.ref_to_message_in_error is None


def test_a_look_up_before_the_receipt_refuses_another_partner_s_message_id(dev_pki) -> None:  # type: ignore[no-untyped-def]
    """The pipeline's own deduplicate step (``Receiver.seen``) keys on the sender too."""
    blue, blue_codec = side("blue", "red", dev_pki)
    green, green_codec = side("green", "red", dev_pki)
    red, red_codec = side("red", "blue", dev_pki)
    red = dataclasses.replace(red, partners=red.partners + side("red", "green", dev_pki)[0].partners)
    inbox = MemoryInbox()
    rx = receiver(red, red_codec, inbox)
    first = msh.receive(rx, *_signed_request(blue, blue_codec, "shared@x"), NOW)
    assert first.record is not None
    inbox.accept(first.record)
    mode = green.resolve(green.partner("red"), green.leg("QueryManager", "ExecuteQueryRequest"))
    record = msh.create_outbound(
        green_codec, user_message("shared@x", sender="green"), [Payload("q@g", "application/xml", b"<g/>")], mode, NOW
    )
    answer = msh.receive(rx, record.content_type, record.body, NOW)
    assert answer.duplicate_of is None
    assert answer.record is None
    assert answer.error is not None
    assert answer.error.error_code == "EBMS:0003"


def test_the_signer_is_checked_against_the_partner_the_message_is_attributed_to(dev_pki) -> None:  # type: ignore[no-untyped-def]
    """Blue configured under the name "x", green with the party id "x" and no type: blue signing a message
    from "x" was checked as blue (by name) and attributed to green (by party id)."""
    blue, blue_codec = side("blue", "red", dev_pki)
    red_b, red_codec = side("red", "blue", dev_pki)
    red_g, _ = side("red", "green", dev_pki)
    as_x = dataclasses.replace(red_b.partners[0], name="x")
    green_x = dataclasses.replace(red_g.partners[0], party=pm.Party("x", ""))
    red = dataclasses.replace(red_b, partners=(as_x, green_x))
    problems = {(p.path, p.message.split(":")[0]) for p in pm.validate(red, require_certificates=True)}
    assert ("partners[x].name", "is the party id of partners[green]") in problems
    assert (
        "partners[green].party.party_id_type",
        "is empty (the eDelivery AS4 profile needs a PartyId type)",
    ) in problems

    um = user_message("x1@blue")
    um = dataclasses.replace(
        um,
        party_info=PartyInfo(Party(PartyId("x", None), pm.GATEWAY_ROLE), um.party_info.to_party),
    )
    mode = blue.resolve(blue.partner("red"), blue.leg("QueryManager", "ExecuteQueryRequest"))
    record = msh.create_outbound(blue_codec, um, [Payload("q@x", "application/xml", b"<q/>")], mode, NOW)
    rx = msh.Receiver(red, red_codec, None, lambda: "sig@red")
    answer = msh.receive(rx, record.content_type, record.body, NOW)
    assert answer.record is None  # checked as green, whose party id the header names: not green's signature
    assert answer.error is not None
    assert answer.error.error_code == "EBMS:0101"
