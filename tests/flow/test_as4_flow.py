"""Two access points as separate processes on loopback: messages both ways with receipts, and faults.

Each node is ``as4_node.py`` under uvicorn with its own SQLite database, keys from the core's
development PKI generated per test. Messages are submitted into the sender's database (as its
application would, in its own transaction) and its sender loop takes them from there.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import httpx
import pytest
from as4_flow_nodes import Node, wait_for, write_configs

from oots.as4 import service
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
from oots.as4.store import As4Store
from oots.network.local import free_port
from oots.settings import load_settings
from oots.store import Database

pytestmark = pytest.mark.slow

T = "urn:oasis:names:tc:ebcore:partyid-type:unregistered:oots"
ROLE = "http://sdg.europa.eu/edelivery/gateway"


def submit(config: Path, to: str, *, size: int = 2000, message_id: str | None = None) -> str:
    """Submit one ExecuteQueryRequest from the node of ``config`` to party ``to``; return its id."""
    settings = load_settings(config)
    ap = service.load_access_point(settings)
    db = Database(settings.database_url)
    try:
        store = As4Store(db, ap.pmodes)
        own = ap.pmodes.own.party_id
        mid = message_id or ap.new_message_id()
        um = UserMessage(
            MessageInfo(mid, dt.datetime.now(dt.UTC)),
            PartyInfo(Party(PartyId(own, T), ROLE), Party(PartyId(to, T), ROLE)),
            CollaborationInfo(
                Service("QueryManager", "urn:oasis:names:tc:ebcore:ebrs:ebms:binding:1.0"), "ExecuteQueryRequest", "c-1"
            ),
            (
                Property("originalSender", "BE1", "urn:cef.eu:names:identifier:EAS:0208"),
                Property("finalRecipient", "FR2", "urn:cef.eu:names:identifier:EAS:0009"),
            ),
        )
        data = b"<?xml version='1.0'?><query>" + b"x" * size + b"</query>"
        with db.session(immediate=True) as session:
            service.submit(ap, store, session, um, [Payload("query@" + own, "application/x-ebrs+xml", data)])
        return mid
    finally:
        db.dispose()


@pytest.fixture
def network(tmp_path: Path, request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    ports = {"blue": free_port(), "red": free_port()}
    configs = write_configs(tmp_path, ports, retry=getattr(request, "param", "[1, 3, 8, 20, 40]"))
    nodes = {name: Node(name, configs[name], ports[name], tmp_path) for name in ("blue", "red")}
    yield nodes, configs
    for node in nodes.values():
        node.stop()


def receipt_for(node: Node, message_id: str) -> tuple[object, ...]:
    return wait_for(
        lambda: (row := node.outbound(message_id)) is not None and row[0] in ("receipt", "error", "failed") and row,
        timeout=90,
        what=f"the outcome of {message_id}",
    )


def test_messages_both_ways_with_receipts(network) -> None:  # type: ignore[no-untyped-def]
    nodes, configs = network
    blue, red = nodes["blue"], nodes["red"]
    blue.start()
    red.start()
    to_red = [submit(configs["blue"], "red_gw") for _ in range(3)]
    to_blue = [submit(configs["red"], "blue_gw") for _ in range(2)]
    for mid in to_red:
        assert receipt_for(blue, mid)[0] == "receipt"
    for mid in to_blue:
        assert receipt_for(red, mid)[0] == "receipt"
    assert wait_for(lambda: red.deliveries() == sorted(to_red), what="red's deliveries")
    assert wait_for(lambda: blue.deliveries() == sorted(to_blue), what="blue's deliveries")
    # the receipt kept by the sender is the one the receiver gave (non-repudiation record)
    (sent_receipt,) = blue.query("SELECT receipt FROM as4_outbound WHERE message_id = ?", to_red[0])[0]
    (given_receipt,) = red.query("SELECT receipt FROM as4_inbound WHERE message_id = ?", to_red[0])[0]
    assert sent_receipt == given_receipt


def test_receiver_killed_before_delivery_delivers_once_after_restart(network) -> None:  # type: ignore[no-untyped-def]
    nodes, configs = network
    blue, red = nodes["blue"], nodes["red"]
    blue.start()
    gate = red.directory / "crash-now"
    red.start(crash="before_delivery", gate=gate)
    mid = submit(configs["blue"], "red_gw")
    assert receipt_for(blue, mid)[0] == "receipt"  # stored and receipted; the delivery waits at the gate
    gate.touch()  # now the receiver dies in the middle of the delivery
    red.wait_dead()
    assert red.deliveries() == []
    red.start()
    assert wait_for(lambda: red.deliveries() == [mid], timeout=60, what="the delivery after restart")
    assert red.query("SELECT state FROM as4_inbound WHERE message_id = ?", mid) == [("delivered",)]


def test_receiver_killed_before_answering_keeps_the_message_and_the_retry_is_a_duplicate(network) -> None:  # type: ignore[no-untyped-def]
    nodes, configs = network
    blue, red = nodes["blue"], nodes["red"]
    blue.start()
    red.start(crash="before_answer")
    mid = submit(configs["blue"], "red_gw")
    red.wait_dead()  # it stored the message, then died without answering
    assert red.query("SELECT count(*) FROM as4_inbound WHERE message_id = ?", mid) == [(1,)]
    red.start()
    row = receipt_for(blue, mid)  # the retry is answered with the receipt given at storing time
    assert row[0] == "receipt"
    assert row[1] >= 2
    assert wait_for(lambda: red.deliveries() == [mid], what="the one delivery")
    (kept,) = red.query("SELECT receipt FROM as4_inbound WHERE message_id = ?", mid)[0]
    (got,) = blue.query("SELECT receipt FROM as4_outbound WHERE message_id = ?", mid)[0]
    assert kept == got


@pytest.mark.parametrize("network", ["[0.3, 0.6, 0.9]"], indirect=True)
def test_sender_retries_on_schedule_and_gives_up_with_a_clear_status(network) -> None:  # type: ignore[no-untyped-def]
    nodes, configs = network
    blue = nodes["blue"]  # red is never started
    blue.start()
    mid = submit(configs["blue"], "red_gw")
    state, attempts, code, detail = receipt_for(blue, mid)
    assert (state, attempts, code) == ("failed", 4, "EBMS:0301")  # the first send and three retries
    assert "no receipt after 4 attempt(s)" in str(detail)
    assert "cannot send to" in str(detail)


def test_a_replayed_message_is_answered_but_not_delivered_again(network) -> None:  # type: ignore[no-untyped-def]
    nodes, configs = network
    blue, red = nodes["blue"], nodes["red"]
    blue.start()
    red.start()
    mid = submit(configs["blue"], "red_gw")
    assert receipt_for(blue, mid)[0] == "receipt"
    assert wait_for(lambda: red.deliveries() == [mid], what="the delivery")
    content_type, body, receipt = blue.query(
        "SELECT content_type, body, receipt FROM as4_outbound WHERE message_id = ?", mid
    )[0]
    for _ in range(3):
        answer = httpx.post(red.url, content=body, headers={"Content-Type": str(content_type)}, timeout=10)
        assert answer.status_code == 200
        assert answer.content == receipt
    assert red.deliveries() == [mid]
    assert red.query("SELECT count(*) FROM queue_jobs WHERE kind = 'as4.deliver'") == [(1,)]
