"""A node in Domibus mode (``[as4] mode = "domibus"``) against the fake WS plugin: the node's own
composition (``build_context``, ``create_worker``, ``create_app``) submits through Domibus, learns the
outcome, receives by sweep and by push notification, and delivers to a role through the usual jobs."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_sync import SyncASGITransport
from cryptography.hazmat.primitives import serialization
from fake_domibus import FakeDomibus, plugin_schema
from msh_doubles import make_certificate
from starlette.routing import BaseRoute

from oots.as4 import domibus
from oots.as4 import pmode as pm
from oots.as4.domibus_mode import PUSH_PATH, DomibusAccessPoint
from oots.as4.model import (
    CollaborationInfo,
    MessageInfo,
    PartInfo,
    Party,
    PartyId,
    PartyInfo,
    Payload,
    Property,
    Service,
    UserMessage,
)
from oots.as4.msh import OutboundState
from oots.as4.store import RETIRED_PURGE_JOB
from oots.errors import ConfigError
from oots.node.app import build_context, create_app, create_worker
from oots.node.gateway import As4Gateway
from oots.settings import load_settings
from oots.store.queue import Handler, counts

URL = "http://domibus.test/domibus/services/wsplugin"
PUSH_TOKEN = "blue-push-token-0123456789"
EAS = "urn:cef.eu:names:identifier:EAS:0208"


class Consumer:
    """A role that consumes ExecuteQueryResponse messages (what the requester role does)."""

    name = "consumer"

    def __init__(self) -> None:
        self.got: list[Any] = []

    def routes(self) -> Sequence[BaseRoute]:
        return []

    def job_handlers(self) -> Mapping[str, Handler]:
        return {}

    def as4_handlers(self) -> Mapping[str, Any]:
        return {"ExecuteQueryResponse": lambda session, message: self.got.append(message)}


def write_config(directory: Path, *, extra: str = "") -> Path:
    config = directory / "blue.toml"
    config.write_text(
        f"""
[node]
name = "blue"
data_dir = "{(directory / "blue").as_posix()}"
roles = []

[as4]
mode = "domibus"
party_id = "blue_gw"
domibus_url = "{URL}"
domibus_username = "admin"
domibus_password = "secret"
domibus_push_token = "{PUSH_TOKEN}"
domibus_poll_seconds = 0.001
retry_offsets_seconds = [60]
{extra}

[[as4.partners]]
name = "red"
party_id = "red_gw"
""",
        encoding="utf-8",
    )
    return config


@pytest.fixture
def node(tmp_path: Path, spec_dir: Path):  # type: ignore[no-untyped-def]
    fake = FakeDomibus(plugin_schema(spec_dir))
    ctx = build_context(load_settings(write_config(tmp_path)))
    gateway: As4Gateway = ctx.services["as4"]
    assert isinstance(gateway.access_point, DomibusAccessPoint)
    gateway.access_point.client.transport = SyncASGITransport(fake.app())
    consumer = Consumer()
    ctx.services["roles"].append(consumer)
    worker = create_worker(ctx)
    yield fake, ctx, gateway, worker, consumer
    gateway.close()
    ctx.database.dispose()


def send(ctx, gateway: As4Gateway) -> str:  # type: ignore[no-untyped-def]
    with ctx.database.session() as session:
        message = gateway.user_message(
            to_party=PartyId("red_gw", pm.OOTS_PARTY_ID_TYPE),
            action="ExecuteQueryRequest",
            conversation_id="c-1",
            original_sender=PartyId("BE1", EAS),
            final_recipient=PartyId("FR2", EAS),
        )
        gateway.submit(session, message, [Payload("q@blue", "application/x-ebrs+xml", b"<query/>")])
    return message.message_info.message_id


def incoming(fake: FakeDomibus, message_id: str) -> None:
    """A response as Domibus would list it after receiving, verifying and decrypting it."""
    payload = Payload("ev@red", "application/pdf", b"%PDF-1.7 evidence")
    um = UserMessage(
        MessageInfo(message_id, dt.datetime.now(dt.UTC)),
        PartyInfo(
            Party(PartyId("red_gw", pm.OOTS_PARTY_ID_TYPE), pm.GATEWAY_ROLE),
            Party(PartyId("blue_gw", pm.OOTS_PARTY_ID_TYPE), pm.GATEWAY_ROLE),
        ),
        CollaborationInfo(
            Service("QueryManager", "urn:oasis:names:tc:ebcore:ebrs:ebms:binding:1.0"), "ExecuteQueryResponse", "c-1"
        ),
        (Property("originalSender", "FR2"), Property("finalRecipient", "BE1")),
        (PartInfo(payload.href),),
    )
    fake.inject(domibus.messaging_from_user_message(um, [payload]), [(payload.href, payload.mime_type, payload.data)])


def test_submits_through_domibus_from_the_outbox_and_reads_the_outcome(node) -> None:  # type: ignore[no-untyped-def]
    fake, ctx, gateway, _worker, _consumer = node
    sent = send(ctx, gateway)
    assert fake.submitted == {}  # kept in the outbox with the role's transaction, not sent from it
    assert gateway.send_due() == 1  # what the node worker's sender loop runs
    assert fake.submitted[sent].payloads == [("cid:q@blue", "application/x-ebrs+xml", b"<query/>")]
    assert gateway.store.outbound(sent).state is OutboundState.SENT  # Domibus has it: awaiting its outcome
    assert gateway.send_due() == 0  # not submitted twice

    fake.submitted[sent].status = "ACKNOWLEDGED"  # Domibus got the partner's receipt
    gateway.send_due()
    assert gateway.store.outbound(sent).state is OutboundState.RECEIPT

    failed = send(ctx, gateway)
    gateway.send_due()
    fake.submitted[failed].status = "SEND_FAILURE"
    gateway.send_due()
    out = gateway.store.outbound(failed)
    assert out.state is OutboundState.ERROR
    assert (out.error_code, out.error_detail) == ("EBMS:0301", "no receipt")


def test_an_unreachable_domibus_is_retried_on_schedule(node) -> None:  # type: ignore[no-untyped-def]
    _fake, ctx, gateway, _worker, _consumer = node

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    gateway.access_point.client.close()
    gateway.access_point.client.transport = httpx.MockTransport(refuse)
    sent = send(ctx, gateway)
    assert gateway.send_due() == 1
    out = gateway.store.outbound(sent)
    assert out.state is OutboundState.WAITING_TO_RETRY
    assert out.next_attempt_at is not None
    assert "Domibus" in (out.error_detail or "")


def test_receives_by_sweep_and_by_push_and_delivers_to_the_role(node) -> None:  # type: ignore[no-untyped-def]
    fake, ctx, gateway, worker, consumer = node
    incoming(fake, "in1@red")
    gateway.send_due()  # the worker's loop sweeps every domibus_poll_seconds
    assert gateway.store.inbound_state("in1@red") == "received"
    assert fake.received["in1@red"].downloaded

    incoming(fake, "in2@red")
    note = (
        f'<e:Envelope xmlns:e="{domibus.SOAP_NS}"><e:Body><n:receiveSuccess xmlns:n="{domibus.BACKEND_NS}">'
        "<messageID>in2@red</messageID></n:receiveSuccess></e:Body></e:Envelope>"
    ).encode()
    with httpx.Client(transport=SyncASGITransport(create_app(ctx)), base_url="http://blue.test") as http:
        assert http.post(PUSH_PATH, content=note).status_code == 401  # not without the token
        assert http.post(PUSH_PATH, content=note, params={"token": PUSH_TOKEN}).status_code == 200
        assert http.post("/as4", content=b"x").status_code in (404, 405)  # no built-in endpoint here
    assert gateway.store.inbound_state("in2@red") == "received"

    worker.worker.drain()
    assert [m.message_id for m in consumer.got] == ["in1@red", "in2@red"]
    assert {m.via for m in consumer.got} == {"domibus"}
    assert consumer.got[0].payloads[0].data == b"%PDF-1.7 evidence"
    assert gateway.store.inbound_state("in1@red") == "delivered"
    assert "as4-inbound-purge" in [loop.name for loop in worker._loops._loops]  # the duplicate-window purge
    with ctx.database.session() as session:
        assert RETIRED_PURGE_JOB not in counts(session)  # periodic work: no queue job


def test_without_push_token_or_addresses_pushes_are_refused_and_the_start_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = write_config(tmp_path)
    config.write_text(config.read_text().replace(f'domibus_push_token = "{PUSH_TOKEN}"', ""), encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="oots.node.app"):
        ctx = build_context(load_settings(config))  # starts: the sweep still collects what Domibus received
    try:
        assert "push notifications from Domibus (/domibus/push) are refused until as4.domibus_push_token" in caplog.text
        with httpx.Client(transport=SyncASGITransport(create_app(ctx)), base_url="http://blue.test") as http:
            assert http.post(PUSH_PATH, content=b"<x/>").status_code == 403
    finally:
        ctx.services["as4"].close()
        ctx.database.dispose()


@pytest.mark.parametrize(
    ("line", "error"),
    [('domibus_push_token = "short"', "fewer than 16 bytes"), ('domibus_push_from = ["10.0.0.300"]', "not an IP")],
)
def test_a_weak_push_token_or_a_wrong_address_stops_the_start(tmp_path: Path, line: str, error: str) -> None:
    config = write_config(tmp_path)
    config.write_text(config.read_text().replace(f'domibus_push_token = "{PUSH_TOKEN}"', line), encoding="utf-8")
    with pytest.raises(ConfigError, match=error):
        load_settings(config)


def test_domibus_mode_needs_the_plugin_url(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    config.write_text(config.read_text().replace(f'domibus_url = "{URL}"', ""), encoding="utf-8")
    with pytest.raises(ConfigError, match="domibus_url"):
        build_context(load_settings(config))


def test_a_partner_certificate_that_expired_is_a_warning_in_domibus_mode_too(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _, old = make_certificate("red_gw", not_before=dt.datetime.now(dt.UTC) - dt.timedelta(days=400), days=30)
    (tmp_path / "red.pem").write_bytes(old.public_bytes(serialization.Encoding.PEM))
    config = write_config(tmp_path)
    config.write_text(
        config.read_text(encoding="utf-8") + f'signing_certificate = "{(tmp_path / "red.pem").as_posix()}"\n',
        encoding="utf-8",
    )
    with caplog.at_level(logging.WARNING, logger="oots.node.app"):
        ctx = build_context(load_settings(config))  # starts
    ctx.services["as4"].close()
    ctx.database.dispose()
    ended = f"{old.not_valid_after_utc:%Y-%m-%d %H:%M} UTC"
    assert f"partners[red].signing_certificate: expired on {ended}: messages to partner red (red_gw)" in caplog.text
