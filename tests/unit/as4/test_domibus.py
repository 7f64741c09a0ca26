from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_sync import SyncASGITransport
from fake_domibus import FakeDomibus, plugin_schema

from oots.as4 import domibus
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
from oots.errors import RemoteProtocolError, TransportError

NOW = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)
URL = "http://domibus.test/domibus/services/wsplugin"


def message(message_id: str = "m1@blue", *, with_payload: bool = True) -> tuple[UserMessage, list[Payload]]:
    payloads = (
        [Payload("regrep@blue", "application/x-ebrs+xml", b"<query/>\x00\xff binary-safe")] if with_payload else []
    )
    um = UserMessage(
        MessageInfo(message_id, NOW),
        PartyInfo(
            Party(PartyId("blue_gw", pm.OOTS_PARTY_ID_TYPE), pm.GATEWAY_ROLE),
            Party(PartyId("red_gw", pm.OOTS_PARTY_ID_TYPE), pm.GATEWAY_ROLE),
        ),
        CollaborationInfo(
            Service("QueryManager", "urn:oasis:names:tc:ebcore:ebrs:ebms:binding:1.0"), "ExecuteQueryRequest", "c-1"
        ),
        (
            Property("originalSender", "BE0001", "urn:cef.eu:names:identifier:EAS:0208"),
            Property("finalRecipient", "FR0002", "urn:cef.eu:names:identifier:EAS:0009"),
        ),
        tuple(__import__("oots.as4.model", fromlist=["PartInfo"]).PartInfo(p.href) for p in payloads),
    )
    return um, payloads


@pytest.fixture
def fake(spec_dir: Path) -> FakeDomibus:
    return FakeDomibus(plugin_schema(spec_dir))


@pytest.fixture
def client(fake: FakeDomibus) -> domibus.DomibusClient:
    return domibus.DomibusClient(URL, "admin", "secret", transport=SyncASGITransport(fake.app()))  # type: ignore[arg-type]


def test_submit_message_is_schema_valid_and_returns_the_id(fake: FakeDomibus, client: domibus.DomibusClient) -> None:
    um, payloads = message()
    assert client.submit_message(um, payloads) == "m1@blue"
    stored = fake.submitted["m1@blue"]
    assert stored.payloads == [("cid:regrep@blue", "application/x-ebrs+xml", payloads[0].data)]
    assert stored.messaging.findtext(f".//{{{domibus.EBMS_NS}}}Action") == "ExecuteQueryRequest"
    assert client.get_status("m1@blue") == "SEND_ENQUEUED"
    assert client.get_status("nope") == "NOT_FOUND"


def test_round_trip_of_the_header() -> None:
    um, payloads = message()
    back = domibus.user_message_from_messaging(domibus.messaging_from_user_message(um, payloads), NOW)
    assert back.party_info == um.party_info
    assert back.collaboration_info == um.collaboration_info
    assert back.message_properties == um.message_properties
    assert back.message_info.message_id == um.message_info.message_id
    assert back.payload_info[0].property("MimeType").value == "application/x-ebrs+xml"  # type: ignore[union-attr]


def test_retrieve_and_sweep(fake: FakeDomibus, client: domibus.DomibusClient) -> None:
    for i in (1, 2):
        um, payloads = message(f"in{i}@red")
        fake.inject(
            domibus.messaging_from_user_message(um, payloads),
            [(p.href, p.mime_type, p.data) for p in payloads],
        )
    assert client.list_pending_messages() == ["in1@red", "in2@red"]
    got: list[domibus.DomibusMessage] = []
    assert domibus.sweep(client, got.append) == ["in1@red", "in2@red"]
    assert [m.message_id for m in got] == ["in1@red", "in2@red"]
    assert got[0].payloads[0].data == b"<query/>\x00\xff binary-safe"
    assert got[0].payloads[0].content_id == "regrep@blue"
    assert got[0].via == "domibus"
    assert got[0].user_message.property("originalSender").value == "BE0001"  # type: ignore[union-attr]
    assert client.list_pending_messages() == []
    assert fake.received["in1@red"].status == "DOWNLOADED"


def test_sweep_keeps_a_message_pending_when_the_hand_over_fails(
    fake: FakeDomibus, client: domibus.DomibusClient
) -> None:
    for i in (1, 2):
        um, payloads = message(f"in{i}@red")
        fake.inject(
            domibus.messaging_from_user_message(um, payloads), [(p.href, p.mime_type, p.data) for p in payloads]
        )
    fake.fail_retrieve.add("in1@red")

    assert domibus.sweep(client, lambda m: None) == ["in2@red"]
    assert client.list_pending_messages() == ["in1@red"]

    fake.fail_retrieve.clear()

    def crash(m: domibus.DomibusMessage) -> None:
        raise RuntimeError("the node died")

    with pytest.raises(RuntimeError):
        domibus.sweep(client, crash)
    assert client.list_pending_messages() == ["in1@red"]  # not marked: fetched again next time


def test_sweep_sets_aside_a_message_that_cannot_be_kept(fake: FakeDomibus, client: domibus.DomibusClient) -> None:
    """An over-long media type (Domibus takes it, the node's tables do not): set aside, the others handed over."""
    for name in ("long-type", "fine"):
        um, payloads = message(f"{name}@red")
        messaging = domibus.messaging_from_user_message(um, payloads)
        mime = "application/" + "x" * 300 if name == "long-type" else payloads[0].mime_type
        fake.inject(messaging, [(p.href, mime, p.data) for p in payloads])

    got: list[domibus.DomibusMessage] = []
    assert domibus.sweep(client, got.append) == ["fine@red"]
    assert [m.message_id for m in got] == ["fine@red"]
    assert client.list_pending_messages() == []  # set aside: not fetched again by every sweep
    assert fake.received["long-type@red"].status == "DOWNLOADED"


def test_faults_and_credentials(fake: FakeDomibus) -> None:
    transport = SyncASGITransport(fake.app())  # type: ignore[arg-type]
    good = domibus.DomibusClient(URL, "admin", "secret", transport=transport)
    with pytest.raises(domibus.DomibusError) as info:
        good.retrieve_message("missing@x")
    assert info.value.code == "WS_PLUGIN:0007"
    bad = domibus.DomibusClient(URL, "admin", "wrong", transport=transport)
    with pytest.raises(TransportError, match="401"):
        bad.list_pending_messages()


def test_unreachable_domibus() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    client = domibus.DomibusClient(URL, transport=httpx.MockTransport(refuse))
    with pytest.raises(TransportError, match="cannot reach Domibus"):
        client.list_pending_messages()


@pytest.mark.parametrize("answer", [b"<html>bad gateway</html>", b"<x:Envelope xmlns:x='urn:x'/>", b"\x00"])
def test_junk_answers(answer: bytes) -> None:
    client = domibus.DomibusClient(URL, transport=httpx.MockTransport(lambda r: httpx.Response(200, content=answer)))
    with pytest.raises(RemoteProtocolError):
        client.list_pending_messages()


TOKEN = "push-token-0123456789abcdef"
NOTE = (
    f'<e:Envelope xmlns:e="{domibus.SOAP_NS}"><e:Body><n:receiveSuccess xmlns:n="{domibus.BACKEND_NS}">'
    "<messageID>in1@red</messageID></n:receiveSuccess></e:Body></e:Envelope>"
).encode()


def test_the_client_repr_hides_the_password() -> None:
    client = domibus.DomibusClient(URL, "admin", "s3cr3t-domibus-password")
    assert "s3cr3t" not in repr(client)
    assert "admin" in repr(client)
    assert client.password == "s3cr3t-domibus-password"


def _pushed(app: object, **request: Any) -> int:
    with httpx.Client(transport=SyncASGITransport(app), base_url="http://node.test") as http:
        return http.post("/", content=NOTE, **request).status_code


def test_push_needs_the_token_or_an_allowed_address() -> None:
    seen: list[domibus.Notification] = []

    async def on_note(note: domibus.Notification) -> None:
        seen.append(note)

    closed = domibus.push_app(on_note)
    assert _pushed(closed) == 403  # nothing configured: nobody may push
    with_token = domibus.push_app(on_note, token=TOKEN)
    assert _pushed(with_token) == 401
    assert _pushed(with_token, headers={"Authorization": "Bearer wrong-token-0123456789"}) == 401
    assert _pushed(with_token, headers={"Authorization": "Basic !!!"}) == 401
    assert _pushed(with_token, headers={"Authorization": f"Bearer {TOKEN}"}) == 200
    assert _pushed(with_token, auth=("domibus", TOKEN)) == 200
    assert _pushed(with_token, params={"token": TOKEN}) == 200
    # httpx's ASGI transport connects from 127.0.0.1
    assert _pushed(domibus.push_app(on_note, allow_from=["10.0.0.0/8"])) == 403
    assert _pushed(domibus.push_app(on_note, allow_from=["127.0.0.1"])) == 200
    both = domibus.push_app(on_note, token=TOKEN, allow_from=["127.0.0.0/8"])
    assert _pushed(both) == 401
    assert _pushed(both, headers={"Authorization": f"Bearer {TOKEN}"}) == 200
    assert len(seen) == 5  # only the accepted pushes reached the node


def test_push_notifications() -> None:
    seen: list[domibus.Notification] = []

    async def on_note(note: domibus.Notification) -> None:
        seen.append(note)

    app = domibus.push_app(on_note, token=TOKEN)
    ns = domibus.BACKEND_NS
    soap = domibus.SOAP_NS
    body = (
        f'<e:Envelope xmlns:e="{soap}"><e:Body><n:receiveSuccess xmlns:n="{ns}"><messageID>in1@red</messageID>'
        f"</n:receiveSuccess></e:Body></e:Envelope>"
    ).encode()
    status = (
        f'<e:Envelope xmlns:e="{soap}"><e:Body><n:messageStatusChange xmlns:n="{ns}"><messageID>m1@blue</messageID>'
        f"<messageStatus>ACKNOWLEDGED</messageStatus></n:messageStatusChange></e:Body></e:Envelope>"
    ).encode()
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    with httpx.Client(transport=SyncASGITransport(app), base_url="http://node.test", headers=bearer) as http:
        assert http.post("/", content=body).status_code == 200
        answer = http.post("/", content=status)
        assert answer.status_code == 200
        assert b"messageStatusChangeResponse" in answer.content
        refused = http.post("/", content=b"<not-soap/>")
        assert refused.status_code == 500
        assert b"BackendFaultDetail" in refused.content
        assert http.get("/").status_code == 405
    assert seen == [
        domibus.Notification("receiveSuccess", ("in1@red",)),
        domibus.Notification("messageStatusChange", ("m1@blue",), "ACKNOWLEDGED"),
    ]


def test_the_fake_holds_the_client_to_the_wsdl(fake: FakeDomibus, client: domibus.DomibusClient) -> None:
    from lxml import etree

    bogus = etree.Element(f"{{{domibus.WS_NS}}}listPendingMessagesRequest")
    etree.SubElement(bogus, "colour").text = "blue"
    with pytest.raises(domibus.DomibusError, match="invalid request"):
        client._call(bogus)


def test_fetch_after_a_push(fake: FakeDomibus, client: domibus.DomibusClient) -> None:
    um, payloads = message("in9@red")
    fake.inject(domibus.messaging_from_user_message(um, payloads), [(p.href, p.mime_type, p.data) for p in payloads])
    got: list[str] = []
    domibus.fetch(client, "in9@red", lambda m: got.append(m.message_id))
    assert got == ["in9@red"]
    assert fake.received["in9@red"].downloaded
