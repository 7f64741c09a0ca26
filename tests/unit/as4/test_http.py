# ruff: noqa: F811  (fixtures are imported from msh_doubles / msh_world and used as arguments)
from __future__ import annotations

import asyncio
import gzip
import logging
import ssl
from typing import Any

import httpx
import pytest
from asgi_sync import SyncASGITransport
from msh_world import (
    NOW,
    MemoryInbox,
    dev_pki,  # noqa: F401 - fixture
    receiver,
    side,
    user_message,
)

from oots.as4 import http, msh
from oots.as4.model import Payload
from oots.errors import ConfigError, TransportError


@pytest.fixture
def world(dev_pki: dict[str, object]):  # type: ignore[no-untyped-def]
    blue, blue_codec = side("blue", "red", dev_pki, endpoint="http://red.test/as4")
    red, red_codec = side("red", "blue", dev_pki)
    inbox = MemoryInbox()
    app = http.as4_app(lambda: receiver(red, red_codec, inbox), inbox, clock=lambda: NOW, max_bytes=200_000)
    sender = http.HttpSender(transport=SyncASGITransport(app))
    return blue, blue_codec, inbox, sender


def send(world, message_id: str, data: bytes = b"<q/>"):  # type: ignore[no-untyped-def]
    blue, codec, _inbox, sender = world
    mode = blue.resolve(blue.partner("red"), blue.leg("QueryManager", "ExecuteQueryRequest"))
    record = msh.create_outbound(
        codec, user_message(message_id), [Payload("p@blue", "application/xml", data)], mode, NOW
    )
    record, request = msh.begin_attempt(record, mode, NOW)
    try:
        reply = sender.post(request)
    except TransportError as exc:
        return msh.on_transport_failure(record, mode, exc.message)
    return msh.on_reply(record, mode, codec, (reply.content_type, reply.body), NOW)


def test_send_over_http_with_receipt(world) -> None:  # type: ignore[no-untyped-def]
    record, _events = send(world, "h1@blue")
    assert record.state is msh.OutboundState.RECEIPT
    assert world[2].records["h1@blue"].message.payloads[0].data == b"<q/>"
    # the same bytes again (a retry after a lost answer): the first receipt comes back, kept once
    blue, _codec, inbox, sender = world
    mode = blue.resolve(blue.partner("red"), blue.leg("QueryManager", "ExecuteQueryRequest"))
    again = msh.SendRequest(mode.address, record.content_type, record.body, record.message_id)
    reply = sender.post(again)
    assert reply.body == record.receipt
    assert len(inbox.records) == 1


def test_store_failure_answers_delivery_failure_and_the_sender_retries(world) -> None:  # type: ignore[no-untyped-def]
    world[2].fail = True
    record, events = send(world, "h2@blue")
    assert record.state is msh.OutboundState.WAITING_TO_RETRY
    assert "EBMS:0202" in events[0].reason
    assert world[2].records == {}


def test_oversized_body_is_refused_while_reading(world) -> None:  # type: ignore[no-untyped-def]
    app = http.as4_app(lambda: None, MemoryInbox(), clock=lambda: NOW, max_bytes=1000)  # type: ignore[arg-type,return-value]
    client = httpx.Client(transport=SyncASGITransport(app), base_url="http://red.test")
    answer = client.post("/as4", content=b"x" * 5000, headers={"Content-Type": "multipart/related"})
    assert answer.status_code == 413
    assert client.get("/as4/health").text == "ok\n"
    assert client.get("/as4").status_code == 405


def test_garbage_is_answered_with_an_ebms_error(world, dev_pki) -> None:  # type: ignore[no-untyped-def]
    red, red_codec = side("red", "blue", dev_pki)
    inbox = MemoryInbox()
    app = http.as4_app(lambda: receiver(red, red_codec, inbox), inbox, clock=lambda: NOW, max_bytes=10_000)
    client = httpx.Client(transport=SyncASGITransport(app), base_url="http://red.test")
    answer = client.post("/as4", content=b"hello", headers={"Content-Type": "text/plain"})
    assert answer.status_code == 200
    assert b"EBMS:0007" in answer.content or b"EBMS:0009" in answer.content


def test_unreachable_partner_is_a_transport_error() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    sender = http.HttpSender(transport=httpx.MockTransport(refuse))
    with pytest.raises(TransportError, match="cannot send"):
        sender.post(msh.SendRequest("http://red.test/as4", "multipart/related", b"x"))

    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    sender = http.HttpSender(transport=httpx.MockTransport(slow))
    with pytest.raises(TransportError, match="in time"):
        sender.post(msh.SendRequest("http://red.test/as4", "multipart/related", b"x"))


def test_answers_too_large_are_refused() -> None:
    sender = http.HttpSender(
        max_answer_bytes=10, transport=httpx.MockTransport(lambda r: httpx.Response(200, content=b"y" * 100))
    )
    with pytest.raises(TransportError, match="larger"):
        sender.post(msh.SendRequest("http://red.test/as4", "multipart/related", b"x"))


def test_mutual_tls_options_are_passed(tmp_path) -> None:  # type: ignore[no-untyped-def]
    sender = http.HttpSender(ca_file=tmp_path / "missing-ca.pem")
    with pytest.raises(ConfigError, match="cannot set up TLS"):
        sender.post(msh.SendRequest("https://127.0.0.1:9/as4", "multipart/related", b"x"))
    context = http.tls_context(None, None, None)
    assert context.minimum_version is ssl.TLSVersion.TLSv1_2


@pytest.mark.parametrize("private_picker", [True, False], ids=["httpx-transport-picker", "without-it"])
def test_a_post_is_the_client_s_request_and_its_answer_as_sent(
    private_picker: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The client builds the request (its default headers and timeouts) and its transport sends it:
    what goes on the wire is what the client would send; a redirect is returned, not followed; an
    answer's content coding is undone; the connection is given back after each answer. The same
    holds with an httpx that lacks the private method picking the transport (the client's own way)."""
    if not private_picker:
        monkeypatch.setattr(http, "_TRANSPORT_PICKER", "_no_such_method")
    seen: list[httpx.Request] = []
    closed: list[bool] = []

    class Stream(httpx.SyncByteStream):
        def __init__(self, data: bytes) -> None:
            self.data = data

        def __iter__(self):  # type: ignore[no-untyped-def]
            yield self.data

        def close(self) -> None:
            closed.append(True)

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path == "/moved":
            return httpx.Response(302, headers={"Location": "http://elsewhere.test/as4"}, stream=Stream(b""))
        gzipped = gzip.compress(b"<receipt/>")
        headers = {"Content-Type": "application/soap+xml", "Content-Encoding": "gzip"}
        return httpx.Response(200, headers=headers, stream=Stream(gzipped))

    sender = http.HttpSender(timeout=12.0, connect_timeout=3.0, transport=httpx.MockTransport(answer))
    reply = sender.post(msh.SendRequest("http://red.test/as4", "multipart/related; boundary=b", b"body"))
    assert (reply.status, reply.content_type, reply.body) == (200, "application/soap+xml", b"<receipt/>")
    expected = httpx.Client().build_request("POST", "http://red.test/as4", content=b"body").headers
    request = seen[-1]
    assert request.method == "POST"
    assert request.content == b"body"
    for name in ("accept", "accept-encoding", "connection", "user-agent", "host", "content-length"):
        assert request.headers[name] == expected[name]
    assert request.headers["content-type"] == "multipart/related; boundary=b"
    assert request.headers["mime-version"] == "1.0"
    assert request.extensions["timeout"] == {"connect": 3.0, "read": 12.0, "write": 12.0, "pool": 12.0}
    assert closed == [True]

    moved = sender.post(msh.SendRequest("http://red.test/moved", "multipart/related", b"x"))
    assert moved.status == 302
    assert [r.url.host for r in seen] == ["red.test", "red.test"]  # not followed
    assert closed == [True, True]


def post_to(app: Any, headers: list[tuple[bytes, bytes]], incoming: list[dict[str, object]]) -> list[dict[str, object]]:
    """Run ``app`` on one POST to /as4 whose body arrives as ``incoming`` (ASGI receive events); what it sent."""
    sent: list[dict[str, object]] = []

    async def receive() -> dict[str, object]:
        return incoming.pop(0)

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/as4",
        "raw_path": b"/as4",
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "server": ("red.test", 80),
        "client": ("127.0.0.1", 5000),
    }
    asyncio.run(app(scope, receive, send))
    return sent


def test_a_client_hanging_up_mid_upload_is_one_warning(caplog: pytest.LogCaptureFixture) -> None:
    app = http.as4_app(lambda: None, MemoryInbox(), clock=lambda: NOW, max_bytes=100_000)  # type: ignore[arg-type,return-value]
    incoming: list[dict[str, object]] = [
        {"type": "http.request", "body": b"--part\r\nContent-Type: application/soap+xml\r\n\r\n<", "more_body": True},
        {"type": "http.disconnect"},
    ]
    with caplog.at_level(logging.INFO):  # no exception leaves the application
        post_to(app, [(b"content-type", b"multipart/related"), (b"content-length", b"5000")], incoming)
    abandoned = [r for r in caplog.records if "abandoned by the client" in r.getMessage()]
    assert len(abandoned) == 1
    assert abandoned[0].levelno == logging.WARNING
    assert abandoned[0].exc_info is None
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_a_body_over_the_limit_without_a_declared_length_is_refused_while_it_is_read() -> None:
    app = http.as4_app(lambda: None, MemoryInbox(), clock=lambda: NOW, max_bytes=1000)  # type: ignore[arg-type,return-value]
    incoming = [
        {"type": "http.request", "body": b"x" * 600, "more_body": True},
        {"type": "http.request", "body": b"x" * 600, "more_body": True},
    ]
    sent = post_to(app, [(b"content-type", b"multipart/related"), (b"transfer-encoding", b"chunked")], incoming)
    assert sent[0]["status"] == 413
    assert dict(sent[0]["headers"])[b"content-type"] == b"text/plain; charset=utf-8"  # type: ignore[call-overload]
    assert sent[1]["body"] == b"the message is larger than 1000 bytes\n"
    assert incoming == []  # read up to the chunk that went over the limit, not further
