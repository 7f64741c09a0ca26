"""The access point as a node role: routes, delivery jobs by ebMS action, sending."""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from pathlib import Path

import pytest
from asgi_sync import SyncASGITransport
from msh_world import user_message
from node_configs import write_pair
from starlette.applications import Starlette

from oots.as4 import msh, service
from oots.as4.model import Payload
from oots.as4.store import send_due
from oots.settings import load_settings
from oots.store import Database
from oots.store.queue import Worker, counts

NOW = dt.datetime.now(dt.UTC)


@pytest.fixture
def roles(tmp_path: Path, clean_env: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    configs = write_pair(tmp_path, blue_url="http://blue.test/as4", red_url="http://red.test/as4", now=NOW)
    got: list[msh.VerifiedMessage] = []
    made = {}
    for name in ("blue", "red"):
        settings = load_settings(configs[name])
        (tmp_path / name).mkdir(exist_ok=True)
        db = Database(f"sqlite:///{tmp_path / name / 'oots.db'}")
        db.migrate()
        consumers = {"ExecuteQueryRequest": lambda session, m: got.append(m)} if name == "red" else {}
        made[name] = service.AccessPointRole(settings, db, consumers=consumers)
    red_app = Starlette(routes=list(made["red"].routes()))
    assert made["blue"].access_point is not None
    made["blue"].access_point.sender.transport = SyncASGITransport(red_app)
    yield made["blue"], made["red"], got
    for role in made.values():
        role.store.db.dispose()


def test_role_sends_receives_and_hands_over_by_action(roles) -> None:  # type: ignore[no-untyped-def]
    blue, red, got = roles
    um = user_message("role1@blue")
    with blue.store.db.session() as session:
        assert blue.submit(session, um, [Payload("q@blue", "application/xml", b"<q/>")]) == "role1@blue"
    ap = blue.access_point
    assert send_due(blue.store, ap.codec, ap.sender, now=ap.clock) == 1
    assert blue.store.outbound("role1@blue").state is msh.OutboundState.RECEIPT
    worker = Worker(red.store.db, red.settings.queue, handlers=red.job_handlers())
    assert worker.drain() == 1
    assert [m.message_id for m in got] == ["role1@blue"]
    assert red.store.inbound_state("role1@blue") == "delivered"


def test_a_message_nobody_consumes_is_not_delivered(roles) -> None:  # type: ignore[no-untyped-def]
    blue, red, got = roles
    um = user_message("role2@blue")
    um = dataclasses.replace(
        um, collaboration_info=dataclasses.replace(um.collaboration_info, action="ExecuteQueryResponse")
    )
    with blue.store.db.session() as session:
        blue.submit(session, um, [])
    send_due(blue.store, blue.access_point.codec, blue.access_point.sender, now=blue.access_point.clock)
    worker = Worker(red.store.db, red.settings.queue, handlers=red.job_handlers())
    worker.drain()
    assert got == []
    assert red.store.inbound_state("role2@blue") == "received"
    with red.store.db.session() as session:
        assert counts(session)["as4.deliver"].get("queued", 0) == 1  # waiting for its retry


def test_role_sender_loop_starts_and_stops(roles) -> None:  # type: ignore[no-untyped-def]
    blue, _red, _got = roles
    with blue.store.db.session() as session:
        blue.submit(session, user_message("role3@blue"), [])
    blue.start()
    deadline = time.monotonic() + 20
    while blue.store.outbound("role3@blue").state is not msh.OutboundState.RECEIPT and time.monotonic() < deadline:
        time.sleep(0.05)
    blue.stop()
    assert blue.store.outbound("role3@blue").state is msh.OutboundState.RECEIPT
