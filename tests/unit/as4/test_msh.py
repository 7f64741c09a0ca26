# ruff: noqa: F811  (fixtures are imported from msh_doubles / msh_world and used as arguments)
from __future__ import annotations

import dataclasses
import datetime as dt
import itertools

import pytest
from cryptography import x509
from msh_doubles import make_cert, partner_cert, token_codec  # noqa: F401 - fixtures

from oots.as4 import msh
from oots.as4 import pmode as pm
from oots.as4.model import (
    CollaborationInfo,
    MessageInfo,
    Party,
    PartyId,
    PartyInfo,
    Payload,
    Property,
    Service,
    UserMessage,
)
from oots.errors import LocalProtocolError

NOW = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)
T = pm.OOTS_PARTY_ID_TYPE


def pmode_set(own: str, other: str, cert: x509.Certificate, offsets: tuple[float, ...] = (10.0, 30.0)) -> pm.PModeSet:
    ra = pm.ReceptionAwareness(retry=pm.RetrySchedule(offsets), duplicate_detection=pm.DuplicateDetection(True, 3600))
    partner = pm.Partner(other, pm.Party(other), f"http://{other}.test/as4", cert, cert)
    return pm.PModeSet(pm.Party(own), (partner,), pm.oots_legs(), reception_awareness=ra)


def user_message(message_id: str = "m1@blue", *, test: bool = False, props: bool = True) -> UserMessage:
    service, action = (
        (Service(pm.TEST_SERVICE), pm.TEST_ACTION)
        if test
        else (
            Service("QueryManager", "urn:oasis:names:tc:ebcore:ebrs:ebms:binding:1.0"),
            "ExecuteQueryRequest",
        )
    )
    properties = (
        (Property("originalSender", "BE0001", "urn:cef.eu:names:identifier:EAS:0208"),
         Property("finalRecipient", "FR0002", "urn:cef.eu:names:identifier:EAS:0009"))
        if props
        else ()
    )  # fmt: skip
    return UserMessage(
        MessageInfo(message_id, NOW),
        PartyInfo(Party(PartyId("blue_gw", T), pm.GATEWAY_ROLE), Party(PartyId("red_gw", T), pm.GATEWAY_ROLE)),
        CollaborationInfo(service, action, "conv-1"),
        properties,
    )


class Pair:
    """A sender (blue) and a receiver (red) wired together in memory, with a receiver-side store."""

    def __init__(self, codec: object, cert: x509.Certificate, offsets: tuple[float, ...] = (10.0, 30.0)) -> None:
        self.codec = codec
        self.blue = pmode_set("blue_gw", "red_gw", cert, offsets)
        self.red = pmode_set("red_gw", "blue_gw", cert)
        self.stored: dict[str, msh.InboundRecord] = {}
        ids = itertools.count(1)
        self.receiver = msh.Receiver(
            self.red,
            codec,
            self.seen,
            lambda: f"signal-{next(ids)}@red",
        )

    def seen(self, message_id: str) -> msh.PriorReceipt | None:
        rec = self.stored.get(message_id)
        if rec is None:
            return None
        return msh.PriorReceipt(rec.received_at, rec.receipt.content_type, rec.receipt.body)

    def pmode(self, message: UserMessage) -> pm.PMode:
        ci = message.collaboration_info
        return self.blue.resolve(self.blue.partner("red_gw"), self.blue.leg(ci.service.value, ci.action))

    def deliver(self, request: msh.SendRequest, now: dt.datetime) -> msh.Inbound:
        answer = msh.receive(self.receiver, request.content_type, request.body, now)
        if answer.record is not None:
            self.stored[answer.record.message.message_id] = answer.record
        return answer


@pytest.fixture
def pair(token_codec: object, partner_cert: x509.Certificate) -> Pair:
    return Pair(token_codec, partner_cert)


# -- the state tables ---------------------------------------------------------------------------------


def test_every_outbound_state_is_reachable_and_finals_have_no_exit() -> None:
    reached = {msh.OutboundState.CREATED} | set(msh.OUTBOUND_TRANSITIONS.values())
    assert reached == set(msh.OutboundState)
    for state, _event in msh.OUTBOUND_TRANSITIONS:
        assert not msh.is_final(state)


@pytest.mark.parametrize(
    ("state", "event"),
    [
        (msh.OutboundState.RECEIPT, msh.OutboundEvent.SEND),
        (msh.OutboundState.FAILED, msh.OutboundEvent.SEND),
        (msh.OutboundState.CREATED, msh.OutboundEvent.RECEIPT),
        (msh.OutboundState.WAITING_TO_RETRY, msh.OutboundEvent.RECEIPT),
        (msh.OutboundState.SENT, msh.OutboundEvent.SEND),
    ],
)
def test_illegal_outbound_moves_are_refused(state: msh.OutboundState, event: msh.OutboundEvent) -> None:
    with pytest.raises(LocalProtocolError, match="cannot take event"):
        msh.outbound_next(state, event)


def test_inbound_table() -> None:
    assert msh.inbound_next(msh.InboundState.RECEIVED, msh.InboundEvent.DELIVER) is msh.InboundState.DELIVERED
    with pytest.raises(LocalProtocolError):
        msh.inbound_next(msh.InboundState.DELIVERED, msh.InboundEvent.DELIVER)


# -- sending and receiving -----------------------------------------------------------------------------


def test_send_with_receipt(pair: Pair) -> None:
    message = user_message()
    payload = Payload("p1@blue", "application/x-ebrs+xml", b"<query/>")
    mode = pair.pmode(message)
    record = msh.create_outbound(pair.codec, message, [payload], mode, NOW)
    assert record.state is msh.OutboundState.CREATED
    assert record.next_attempt_at == NOW
    record, request = msh.begin_attempt(record, mode, NOW)
    assert record.state is msh.OutboundState.SENT
    assert request.url == "http://red_gw.test/as4"
    answer = pair.deliver(request, NOW)
    assert answer.record is not None
    assert answer.record.deliver
    assert answer.record.state is msh.InboundState.RECEIVED
    assert answer.record.message.payloads == (payload,)
    assert answer.record.message.pmode is not None
    assert answer.record.message.pmode.leg.name == "ootsRequestLeg"
    record, events = msh.on_reply(record, mode, pair.codec, (answer.content_type, answer.body), NOW)
    assert record.state is msh.OutboundState.RECEIPT
    assert record.receipt == answer.body
    assert isinstance(events[0], msh.ReceiptReceived)


def test_retries_on_schedule_then_missing_receipt(pair: Pair) -> None:
    message = user_message()
    mode = pair.pmode(message)
    record = msh.create_outbound(pair.codec, message, [], mode, NOW)
    times = []
    now = NOW
    for _ in range(3):
        record, _request = msh.begin_attempt(record, mode, now)
        record, events = msh.on_transport_failure(record, mode, "connection refused")
        if record.state is msh.OutboundState.WAITING_TO_RETRY:
            assert isinstance(events[0], msh.RetryScheduled)
            assert record.next_attempt_at is not None
            times.append(record.next_attempt_at)
            now = record.next_attempt_at
    assert times == [NOW + dt.timedelta(seconds=10), NOW + dt.timedelta(seconds=30)]
    assert record.state is msh.OutboundState.FAILED
    assert record.attempts == 3
    assert record.error_code == "EBMS:0301"
    assert isinstance(events[0], msh.MessageFailed)
    assert events[0].error.short_description == "MissingReceipt"
    assert "connection refused" in (record.error_detail or "")


def test_a_retry_after_a_lost_receipt_is_answered_with_the_first_receipt(pair: Pair) -> None:
    message = user_message()
    mode = pair.pmode(message)
    record = msh.create_outbound(pair.codec, message, [], mode, NOW)
    record, request = msh.begin_attempt(record, mode, NOW)
    first = pair.deliver(request, NOW)  # stored, but the answer is lost on the way back
    record, _ = msh.on_transport_failure(record, mode, "read timeout")
    assert record.next_attempt_at is not None
    record, request = msh.begin_attempt(record, mode, record.next_attempt_at)
    second = pair.deliver(request, record.first_sent_at + dt.timedelta(seconds=10))
    assert second.record is None
    assert second.duplicate_of is not None
    assert second.body == first.body
    assert len(pair.stored) == 1
    record, _ = msh.on_reply(record, mode, pair.codec, (second.content_type, second.body), NOW)
    assert record.state is msh.OutboundState.RECEIPT


def test_duplicate_detection_off_stores_again(token_codec: object, partner_cert: x509.Certificate) -> None:
    pair = Pair(token_codec, partner_cert)
    off = pm.ReceptionAwareness(duplicate_detection=pm.DuplicateDetection(False))
    pair.red = dataclasses.replace(pair.red, reception_awareness=off)
    pair.receiver = dataclasses.replace(pair.receiver, pmodes=pair.red)
    message = user_message()
    mode = pair.pmode(message)
    record = msh.create_outbound(pair.codec, message, [], mode, NOW)
    _, request = msh.begin_attempt(record, mode, NOW)
    pair.deliver(request, NOW)
    assert pair.deliver(request, NOW).record is not None


def test_test_service_is_answered_not_delivered(pair: Pair) -> None:
    message = user_message(test=True, props=False)
    mode = pair.pmode(message)
    _, request = msh.begin_attempt(msh.create_outbound(pair.codec, message, [], mode, NOW), mode, NOW)
    answer = pair.deliver(request, NOW)
    assert answer.record is not None
    assert not answer.record.deliver


def test_error_answer_ends_the_message(pair: Pair) -> None:
    message = user_message(props=False)  # originalSender/finalRecipient are required on this leg
    mode = pair.pmode(message)
    record, request = msh.begin_attempt(msh.create_outbound(pair.codec, message, [], mode, NOW), mode, NOW)
    answer = pair.deliver(request, NOW)
    assert answer.record is None
    assert answer.error is not None
    assert answer.error.error_code == "EBMS:0010"
    assert answer.error.ref_to_message_in_error == "m1@blue"
    record, events = msh.on_reply(record, mode, pair.codec, (answer.content_type, answer.body), NOW)
    assert record.state is msh.OutboundState.ERROR
    assert record.error_code == "EBMS:0010"
    assert isinstance(events[0], msh.ErrorReceived)


@pytest.mark.parametrize(
    ("tamper", "code"),
    [
        ("garbage", "EBMS:0009"),
        ("unknown_sender", "EBMS:0010"),
        ("wrong_signer", "EBMS:0101"),
        ("undecryptable", "EBMS:0102"),
        ("not_for_us", "EBMS:0010"),
    ],
)
def test_receive_errors(pair: Pair, tamper: str, code: str, make_cert: object) -> None:
    message = user_message()
    if tamper == "not_for_us":
        pi = message.party_info
        message = dataclasses.replace(
            message, party_info=dataclasses.replace(pi, to_party=Party(PartyId("green_gw", T), pm.GATEWAY_ROLE))
        )
    mode = pair.pmode(message)
    _, request = msh.begin_attempt(msh.create_outbound(pair.codec, message, [], mode, NOW), mode, NOW)
    body = request.body
    if tamper == "garbage":
        body = b"garbage"
    elif tamper == "unknown_sender":
        pair.receiver = dataclasses.replace(pair.receiver, pmodes=pair.red.with_partners([]))
    elif tamper == "wrong_signer":
        other = make_cert("mallory")[1]
        pair.receiver = dataclasses.replace(
            pair.receiver,
            pmodes=pair.red.with_partners([dataclasses.replace(pair.red.partners[0], signing_certificate=other)]),
        )
    elif tamper == "undecryptable":
        pair.codec.refuse_decrypt = True
    answer = msh.receive(pair.receiver, request.content_type, body, NOW)
    assert answer.record is None
    assert answer.error is not None
    assert answer.error.error_code == code


def test_a_receipt_for_another_message_is_not_accepted(pair: Pair) -> None:
    one, two = user_message("m1@blue"), user_message("m2@blue")
    mode = pair.pmode(one)
    rec1, req1 = msh.begin_attempt(msh.create_outbound(pair.codec, one, [], mode, NOW), mode, NOW)
    _, req2 = msh.begin_attempt(msh.create_outbound(pair.codec, two, [], mode, NOW), mode, NOW)
    pair.deliver(req1, NOW)
    answer2 = pair.deliver(req2, NOW)
    rec1, events = msh.on_reply(rec1, mode, pair.codec, (answer2.content_type, answer2.body), NOW)
    assert rec1.state is msh.OutboundState.WAITING_TO_RETRY
    assert isinstance(events[0], msh.RetryScheduled)
    assert "refers to 'm2@blue'" in events[0].reason


def test_junk_answer_is_retried_then_fails(token_codec: object, partner_cert: x509.Certificate) -> None:
    pair = Pair(token_codec, partner_cert, offsets=())
    message = user_message()
    mode = pair.pmode(message)
    record, _ = msh.begin_attempt(msh.create_outbound(pair.codec, message, [], mode, NOW), mode, NOW)
    record, _events = msh.on_reply(record, mode, pair.codec, ("text/html", b"<html>proxy error</html>"), NOW)
    assert record.state is msh.OutboundState.FAILED
    assert record.error_code == "EBMS:0301"


def test_give_up(pair: Pair) -> None:
    message = user_message()
    mode = pair.pmode(message)
    record = msh.create_outbound(pair.codec, message, [], mode, NOW)
    record, events = msh.give_up(record, "partner removed")
    assert record.state is msh.OutboundState.FAILED
    assert isinstance(events[0], msh.MessageFailed)
    with pytest.raises(LocalProtocolError):
        msh.begin_attempt(record, mode, NOW)


def test_pipeline_steps_are_named_in_order() -> None:
    assert [name for name, _ in msh.STEPS] == [
        "parse", "decrypt_and_verify", "resolve_pmode", "deduplicate", "store", "receipt", "deliver",
    ]  # fmt: skip
