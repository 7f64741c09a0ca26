"""A provider node whose answer cannot be sent: the requester's encryption certificate (as the provider
has it configured) has expired, or is not valid yet.

Waiting does not mend that (an operator must configure a valid certificate), so the delivery is not
retried: its job is dead-lettered at once with a sentence naming the partner and the certificate's
dates, the received request shows ``delivery_failed``, the journal records ``exchange_failed``, and a
log line tells the operator. Once the certificate is replaced and the node restarted, requeueing the
dead job from the admin area answers the request.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "as4"))

from asgi_sync import SyncASGITransport

from oots import edm
from oots.as4 import profile, service
from oots.as4.keys import init_dev_pki
from oots.as4.model import PartyId, Payload
from oots.as4.models import As4Inbound, As4Outbound
from oots.audit.models import AuditEntry
from oots.network.pair import write_node_configs
from oots.node import NodeContext, build_context
from oots.node.admin import hash_password
from oots.node.app import create_app, create_worker
from oots.provider.role import ProviderRole
from oots.settings import load_settings
from oots.store import queue
from oots.store.models import QueueJob

from .parties import GARCIA, query_request

NOW = dt.datetime.now(dt.UTC)
PASSWORD = "correct horse battery staple"
CORNER = "urn:oasis:names:tc:ebcore:partyid-type:unregistered:ES"


@dataclass
class Pair:
    blue: service.AccessPoint  # the requester's access point (only sends)
    red_config: Path  # the provider node's configuration
    good_certificate: str  # blue's encryption certificate as red's configuration names it
    bad_certificate: str  # the same, not valid at NOW


def _pair(tmp_path: Path, *, bad: str | None, queue: str = "backoff_base_seconds = 60") -> Pair:
    """blue and red; red has blue's encryption certificate valid at NOW unless ``bad`` says otherwise."""
    digest = hash_password(PASSWORD, iterations=1000)
    configs = write_node_configs(
        tmp_path,
        {"blue": "http://blue.test/as4", "red": "http://red.test/as4"},
        now=NOW,
        node={"red": 'country = "ES"\nroles = ["provider"]'},
        queue=queue,
        tables={"red": f'[provider]\nsamples = true\n\n[admin]\npassword_hash = "{digest}"'},
    )
    good = (tmp_path / "pki" / "blue" / "encrypt.pem").as_posix()
    if bad is None:
        blue = service.load_access_point(load_settings(configs["blue"]))
        return Pair(blue, configs["red"], good, good)
    # another encryption certificate of blue's, from the same CA, valid some other time than now
    start = NOW - dt.timedelta(days=10) if bad == "expired" else NOW + dt.timedelta(days=10)
    other = init_dev_pki(tmp_path / "pki", ["blue-other"], now=start, days=5).access_points["blue-other"]
    text = configs["red"].read_text(encoding="utf-8")
    assert text.count(good) == 1
    configs["red"].write_text(text.replace(good, other["encrypt_cert"].as_posix()), encoding="utf-8")
    blue = service.load_access_point(load_settings(configs["blue"]))
    return Pair(blue, configs["red"], good, other["encrypt_cert"].as_posix())


@pytest.fixture
def expired(tmp_path: Path, clean_env: pytest.MonkeyPatch) -> Pair:
    return _pair(tmp_path, bad="expired")


def _red(pair: Pair) -> NodeContext:
    ctx = build_context(load_settings(pair.red_config))
    app = service.create_as4_app(ctx.services["as4"].access_point, ctx.services["as4"].store)
    pair.blue.sender.transport = SyncASGITransport(app)
    return ctx


def _request(pair: Pair) -> str:
    """blue sends red an evidence request (red keeps it, to deliver); the request's message id."""
    blue = pair.blue
    own = blue.pmodes.own
    message = profile.user_message(
        message_id=blue.new_message_id(),
        timestamp=blue.clock(),
        from_party=PartyId(own.party_id, own.party_id_type),
        to_party=PartyId("red_gw", profile.PARTY_ID_TYPE),
        original_sender=PartyId("requester-es", CORNER),
        final_recipient=PartyId("provider-es", CORNER),
        conversation_id="conversation-1",
    )
    body = edm.to_xml(query_request(GARCIA))
    payload = Payload(f"{uuid.uuid4()}@blue.oots", profile.REGREP_MIME_TYPE, body)
    record = service.send_once(blue, message, [payload])
    assert record.state.value == "receipt", record.error_detail
    return message.message_info.message_id


def _jobs(ctx: NodeContext) -> list[QueueJob]:
    with ctx.database.session() as session:
        jobs = list(session.scalars(select(QueueJob).where(QueueJob.kind == "as4.deliver")))
        session.expunge_all()
    return jobs


def _journal(ctx: NodeContext) -> list[tuple[str, str | None, str | None]]:
    with ctx.database.session() as session:
        rows = session.execute(select(AuditEntry.event, AuditEntry.outcome, AuditEntry.conversation_id)).all()
    return [tuple(r) for r in rows]  # type: ignore[misc]


@pytest.fixture
def red(expired: Pair) -> Iterator[NodeContext]:
    ctx = _red(expired)
    yield ctx
    ctx.services["as4"].close()
    ctx.database.dispose()


def test_an_answer_to_a_requester_whose_certificate_expired_fails_at_once(
    expired: Pair, red: NodeContext, caplog: pytest.LogCaptureFixture
) -> None:
    sent = _request(expired)
    caplog.set_level(logging.INFO, logger="oots")
    create_worker(red).worker.drain()

    (job,) = _jobs(red)
    assert (job.status, job.attempts) == ("dead", 1)  # not retried: waiting does not mend a certificate
    ended = f"{(NOW + dt.timedelta(days=-5)):%Y-%m-%d}"
    assert job.last_error is not None
    assert job.last_error.startswith("CertificateNotValid: the encryption certificate of AS4 partner blue (blue_gw)")
    assert f"expired on {ended}" in job.last_error
    assert red.services["as4"].store.inbound_state(sent) == "delivery_failed"
    with red.database.session() as session:
        assert session.scalar(select(As4Inbound.last_error).where(As4Inbound.message_id == sent)) == job.last_error
        assert session.scalars(select(As4Outbound.message_id)).all() == []  # nothing was sent

    assert _journal(red) == [("exchange_failed", "answer_not_sent", "conversation-1")]
    (line,) = [r for r in caplog.records if r.levelno >= logging.ERROR and r.name.startswith("oots.provider")]
    said = line.getMessage()
    assert sent in said
    assert "conversation-1" in said
    assert "AS4 partner blue (blue_gw)" in said
    assert "García" not in caplog.text
    assert "12345678Z" not in caplog.text

    # the operator sees it in the admin area: the dead letter (to requeue) and the request's state
    with httpx.Client(transport=SyncASGITransport(create_app(red)), base_url="http://red.test") as admin:
        assert admin.post("/admin/login", data={"password": PASSWORD}).status_code == 303
        dead = admin.get("/admin/queue").text
        assert "as4.deliver" in dead
        assert "CertificateNotValid: the encryption certificate of AS4 partner blue (blue_gw) expired on" in dead
        assert "Requeue" in dead
        exchanges = admin.get("/admin/exchanges").text
    assert "delivery_failed" in exchanges
    assert "AS4 partner blue (blue_gw) expired on" in exchanges


def test_requeued_after_the_certificate_is_replaced_the_request_is_answered(
    expired: Pair, red: NodeContext, clean_env: pytest.MonkeyPatch
) -> None:
    sent = _request(expired)
    create_worker(red).worker.drain()
    (job,) = _jobs(red)
    assert job.status == "dead"
    red.services["as4"].close()
    red.database.dispose()

    # the operator configures blue's valid certificate and restarts the node
    text = expired.red_config.read_text(encoding="utf-8")
    expired.red_config.write_text(text.replace(expired.bad_certificate, expired.good_certificate), encoding="utf-8")
    fixed = _red(expired)
    try:
        with fixed.database.session() as session:  # what the admin area's Requeue button does
            queue.requeue(session, job.id)
        create_worker(fixed).worker.drain()
        (job,) = _jobs(fixed)
        assert job.status == "done"
        assert fixed.services["as4"].store.inbound_state(sent) == "delivered"
        with fixed.database.session() as session:
            (reply,) = session.execute(select(As4Outbound.partner, As4Outbound.state)).all()
        assert tuple(reply) == ("blue", "created")  # the answer is on its way
        assert [e for e, _, _ in _journal(fixed)] == ["exchange_failed", "request_received", "evidence_sent"]
    finally:
        fixed.services["as4"].close()
        fixed.database.dispose()


def test_a_certificate_not_valid_yet_fails_alike(tmp_path: Path, clean_env: pytest.MonkeyPatch) -> None:
    pair = _pair(tmp_path, bad="not yet valid")
    ctx = _red(pair)
    try:
        _request(pair)
        create_worker(ctx).worker.drain()
        (job,) = _jobs(ctx)
        assert (job.status, job.attempts) == ("dead", 1)
        begins = f"{(NOW + dt.timedelta(days=10)):%Y-%m-%d}"
        assert f"is not valid before {begins}" in (job.last_error or "")
    finally:
        ctx.services["as4"].close()
        ctx.database.dispose()


# --- a delivery that fails for another reason, or whose worker dies ---------------------------------------


@pytest.fixture
def once(tmp_path: Path, clean_env: pytest.MonkeyPatch) -> Iterator[tuple[Pair, NodeContext]]:
    """blue and red, red's certificates all valid and one attempt per job."""
    pair = _pair(tmp_path, bad=None, queue="max_attempts = 1")
    ctx = _red(pair)
    yield pair, ctx
    ctx.services["as4"].close()
    ctx.database.dispose()


def test_a_delivery_that_fails_on_its_last_attempt_is_dead_lettered_and_answered_once_requeued(
    once: tuple[Pair, NodeContext], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Before, the request ended delivery_failed with its job done: nothing to requeue once the cause was mended.
    pair, red = once
    sent = _request(pair)

    def broken(self: ProviderRole, session: object, message: object) -> None:
        raise RuntimeError("a bug, or a register answering nonsense")

    with monkeypatch.context() as patched:
        patched.setattr(ProviderRole, "on_request", broken)
        create_worker(red).worker.drain()
    (job,) = _jobs(red)
    assert (job.status, job.attempts, job.last_error) == ("dead", 1, "RuntimeError")  # the message left out
    assert red.services["as4"].store.inbound_state(sent) == "delivery_failed"
    assert _journal(red) == [("exchange_failed", "answer_not_sent", "conversation-1")]
    with httpx.Client(transport=SyncASGITransport(create_app(red)), base_url="http://red.test") as admin:
        assert admin.post("/admin/login", data={"password": PASSWORD}).status_code == 303
        page = admin.get("/admin/queue").text
        token = re.search(r"name='csrf' value='([^']+)'", page)
        assert token is not None
        assert f"<td>{job.id}</td><td>as4.deliver</td>" in page
        exchanges = admin.get("/admin/exchanges").text
        assert f"<td>{sent}</td>" in exchanges
        assert "<td>delivery_failed</td>" in exchanges
        # the cause is mended (the patch is gone): the operator requeues the dead job
        requeued = admin.post("/admin/queue", data={"csrf": token.group(1), "job": str(job.id)})
        assert requeued.status_code == 303
    create_worker(red).worker.drain()
    (job,) = _jobs(red)
    assert job.status == "done"
    assert red.services["as4"].store.inbound_state(sent) == "delivered"
    with red.database.session() as session:
        (reply,) = session.execute(select(As4Outbound.partner, As4Outbound.state)).all()
        assert session.scalar(select(As4Inbound.last_error).where(As4Inbound.message_id == sent)) is None
    assert tuple(reply) == ("blue", "created")  # answered once
    assert [e for e, _, _ in _journal(red)] == ["exchange_failed", "request_received", "evidence_sent"]


def test_a_delivery_whose_worker_died_on_its_last_attempt_is_journalled_and_answered_once_requeued(
    once: tuple[Pair, NodeContext],
) -> None:
    # Before, its job was dead-lettered by the next claim without a trace: the request stayed "received".
    pair, red = once
    sent = _request(pair)
    crashed = create_worker(red).worker
    [held] = crashed.claim_batch()  # ...and then the process dies
    rescuer = create_worker(red).worker
    rescuer.clock = lambda: red.clock() + dt.timedelta(minutes=5)  # its lease has run out
    assert rescuer.drain() == 0
    (job,) = _jobs(red)
    said = f"LeaseExpired: lease expired on attempt 1 (worker {crashed.id} never finished it)"
    assert (job.id, job.status, job.last_error) == (held.id, "dead", said)
    assert red.services["as4"].store.inbound_state(sent) == "delivery_failed"
    with red.database.session() as session:
        assert session.scalar(select(As4Inbound.last_error).where(As4Inbound.message_id == sent)) == said
    assert _journal(red) == [("exchange_failed", "answer_not_sent", "conversation-1")]

    with red.database.session() as session:
        queue.requeue(session, job.id)
    assert rescuer.drain() == 1
    assert red.services["as4"].store.inbound_state(sent) == "delivered"
    assert [e for e, _, _ in _journal(red)] == ["exchange_failed", "request_received", "evidence_sent"]
