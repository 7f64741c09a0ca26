"""Domibus mode end to end in one process: the fake plugin, the node's store, the delivery worker."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

import httpx
import pytest
from asgi_sync import SyncASGITransport
from fake_domibus import FakeDomibus, plugin_schema

from oots.as4 import domibus, msh, service
from oots.as4 import pmode as pm
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
from oots.as4.store import As4Store
from oots.settings import As4Settings, QueueSettings
from oots.store import Database

NOW = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)
URL = "http://domibus.test/domibus/services/wsplugin"


def incoming(message_id: str, *, test: bool = False) -> tuple[UserMessage, list[Payload]]:
    payloads = [] if test else [Payload("ev@red", "application/pdf", b"%PDF-1.7 evidence")]
    collab = (
        CollaborationInfo(Service(pm.TEST_SERVICE), pm.TEST_ACTION, "c")
        if test
        else CollaborationInfo(
            Service("QueryManager", "urn:oasis:names:tc:ebcore:ebrs:ebms:binding:1.0"), "ExecuteQueryResponse", "c"
        )
    )
    um = UserMessage(
        MessageInfo(message_id, NOW),
        PartyInfo(
            Party(PartyId("red_gw", pm.OOTS_PARTY_ID_TYPE), pm.GATEWAY_ROLE),
            Party(PartyId("blue_gw", pm.OOTS_PARTY_ID_TYPE), pm.GATEWAY_ROLE),
        ),
        collab,
        () if test else (Property("originalSender", "FR2"), Property("finalRecipient", "BE1")),
        tuple(PartInfo(p.href) for p in payloads),
    )
    return um, payloads


@pytest.fixture
def mode(tmp_path: Path, spec_dir: Path):  # type: ignore[no-untyped-def]
    fake = FakeDomibus(plugin_schema(spec_dir))
    client = domibus.DomibusClient(URL, "admin", "secret", transport=SyncASGITransport(fake.app()))
    db = Database(f"sqlite:///{tmp_path / 'node.db'}")
    db.migrate()
    partner = pm.Partner("red", pm.Party("red_gw"), "https://red.example/as4")
    pmodes = pm.PModeSet(pm.Party("blue_gw"), (partner,), pm.oots_legs())
    store = As4Store(db, pmodes, clock=lambda: NOW)
    got: list[msh.VerifiedMessage] = []
    loops = service.domibus_background(client, store, lambda s, m: got.append(m), QueueSettings())
    yield fake, loops, store, got
    db.dispose()


def inject(fake: FakeDomibus, message_id: str, *, test: bool = False) -> None:
    um, payloads = incoming(message_id, test=test)
    fake.inject(domibus.messaging_from_user_message(um, payloads), [(p.href, p.mime_type, p.data) for p in payloads])


def test_sweep_keeps_and_delivers_exactly_once(mode) -> None:  # type: ignore[no-untyped-def]
    fake, loops, store, got = mode
    inject(fake, "d1@red")
    inject(fake, "t1@red", test=True)
    assert loops.sweep_once() == ["d1@red", "t1@red"]
    # Domibus "forgets" the downloads (a crash before the mark): fetched again, not kept or delivered twice
    for stored in fake.received.values():
        stored.downloaded = False
    assert loops.sweep_once() == ["d1@red", "t1@red"]
    assert loops.worker.drain() == 1
    assert [m.message_id for m in got] == ["d1@red"]
    assert got[0].via == "domibus"
    assert got[0].signer is None
    assert got[0].payloads[0].data == b"%PDF-1.7 evidence"
    assert store.inbound_state("t1@red") == "not_delivered"  # the test service is never delivered


def test_push_notification_fetches_at_once(mode) -> None:  # type: ignore[no-untyped-def]
    fake, loops, store, _got = mode
    inject(fake, "d2@red")
    app = loops.push_app(allow_from=["127.0.0.1"])
    note = (
        f'<e:Envelope xmlns:e="{domibus.SOAP_NS}"><e:Body><n:receiveSuccess xmlns:n="{domibus.BACKEND_NS}">'
        "<messageID>d2@red</messageID></n:receiveSuccess></e:Body></e:Envelope>"
    ).encode()

    async def push() -> int:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://node.test") as http:
            return (await http.post("/", content=note)).status_code

    assert asyncio.run(push()) == 200
    assert store.inbound_state("d2@red") == "received"
    assert fake.received["d2@red"].downloaded


def test_domibus_client_from_settings() -> None:
    with pytest.raises(Exception, match="domibus_url"):
        service.domibus_client(As4Settings(mode="domibus"))
    client = service.domibus_client(As4Settings(mode="domibus", domibus_url=URL, domibus_username="u"))
    assert client.url == URL
