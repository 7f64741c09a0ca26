# ruff: noqa: F811  (fixtures are imported from msh_world and used as arguments)
from __future__ import annotations

import dataclasses
import datetime as dt
import json
from dataclasses import replace
from pathlib import Path

import pytest
from asgi_sync import SyncASGITransport
from msh_world import NOW, dev_pki, side, user_message  # noqa: F401 - fixture
from sqlalchemy import text

from oots.as4 import http, model, msh
from oots.as4 import pmode as pm
from oots.as4.domibus import DomibusMessage, UnusableMessage
from oots.as4.model import Payload, Property
from oots.as4.store import (
    DELIVER_JOB,
    RETIRED_PURGE_JOB,
    As4Store,
    InboundPurge,
    Unsent,
    send_due,
    user_message_from_json,
    user_message_to_json,
)
from oots.settings import QueueSettings
from oots.store import Database
from oots.store.queue import Job, Worker, counts, enqueue, requeue_dead, retired


class Clock:
    def __init__(self, start: dt.datetime) -> None:
        self.now = start

    def __call__(self) -> dt.datetime:
        return self.now


def database(url: str) -> Database:
    db = Database(url)
    db.migrate()
    return db


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def urls(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, str]:
    """Two fresh databases (blue's and red's): SQLite files, or PostgreSQL databases on the test server."""
    if request.param == "postgres":
        make = request.getfixturevalue("postgres_database")
        return {"blue": make(), "red": make()}
    return {name: f"sqlite:///{tmp_path / name}.db" for name in ("blue", "red")}


@pytest.fixture
def nodes(urls: dict[str, str], dev_pki: dict[str, object]):  # type: ignore[no-untyped-def]
    clock = Clock(NOW)
    blue_pm, blue_codec = side("blue", "red", dev_pki, endpoint="http://red.test/as4", offsets=(10.0, 30.0))
    red_pm, red_codec = side("red", "blue", dev_pki)
    blue = As4Store(database(urls["blue"]), blue_pm, clock=clock)
    red = As4Store(database(urls["red"]), red_pm, clock=clock)
    ids = iter(range(1, 10_000))
    # as the node's endpoint: no look-up before, the store finds duplicates as it keeps the message
    red_rx = lambda: msh.Receiver(red_pm, red_codec, None, lambda: f"sig-{next(ids)}@red")  # noqa: E731
    app = http.as4_app(red_rx, red, clock=clock, max_bytes=5_000_000)
    sender = http.HttpSender(transport=SyncASGITransport(app))
    yield blue, blue_codec, red, sender, clock
    blue.db.dispose()
    red.db.dispose()


def submit(blue: As4Store, codec: msh.CoreCodec, message_id: str, clock: Clock, *, test: bool = False) -> None:
    pm = blue.pmodes
    leg = pm.test_leg() if test else pm.leg("QueryManager", "ExecuteQueryRequest")
    payloads = (
        []
        if test
        else [Payload("q@blue", "application/x-ebrs+xml", b"<query id='1'/>", (Property("PayloadName", "q.xml"),))]
    )
    record = msh.create_outbound(
        codec, user_message(message_id, test=test), payloads, pm.resolve(pm.partner("red"), leg), clock()
    )
    with blue.db.session() as session:
        blue.submit(session, record)


def test_header_json_round_trip() -> None:
    um = user_message("j1@blue")
    assert user_message_from_json(user_message_to_json(um)) == um


def test_send_receive_deliver_exactly_once(nodes) -> None:  # type: ignore[no-untyped-def]
    blue, codec, red, sender, clock = nodes
    submit(blue, codec, "s1@blue", clock)
    assert send_due(blue, codec, sender, now=clock) == 1
    out = blue.outbound("s1@blue")
    assert out.state is msh.OutboundState.RECEIPT, out.error_detail
    assert out.receipt  # the non-repudiation record
    assert send_due(blue, codec, sender, now=clock) == 0
    assert red.inbound_state("s1@blue") == "received"

    delivered: list[msh.VerifiedMessage] = []
    worker = Worker(red.db, QueueSettings(), clock=clock)
    worker.register(DELIVER_JOB, red.deliver_handler(lambda session, m: delivered.append(m)))
    assert worker.drain() == 1
    assert [m.message_id for m in delivered] == ["s1@blue"]
    assert delivered[0].payloads[0].data == b"<query id='1'/>"
    assert delivered[0].payloads[0].property("PayloadName").value == "q.xml"  # type: ignore[union-attr]
    assert delivered[0].pmode is not None
    assert delivered[0].signer.subject.rfc4514_string().startswith("CN=blue sign")
    assert red.inbound_state("s1@blue") == "delivered"

    # the same bytes again (the sender never saw its receipt): answered, not kept or delivered again
    again = sender.post(msh.SendRequest("http://red.test/as4", out.content_type, out.body, out.message_id))
    assert again.body == red.seen("s1@blue").receipt  # type: ignore[union-attr]
    assert worker.drain() == 0
    assert len(delivered) == 1
    with red.db.session() as session:
        assert counts(session)[DELIVER_JOB] == {"done": 1}


@pytest.mark.parametrize("parts", [0, 3])
def test_the_delivery_hook_gets_every_payload_in_order(nodes, parts: int) -> None:  # type: ignore[no-untyped-def]
    blue, codec, red, sender, clock = nodes
    pm = blue.pmodes
    payloads = [
        Payload(f"p{i}@blue", "application/xml", f"<part n='{i}'/>".encode(), (Property("PayloadName", f"{i}.xml"),))
        for i in range(parts)
    ]
    mode = pm.resolve(pm.partner("red"), pm.leg("QueryManager", "ExecuteQueryRequest"))
    record = msh.create_outbound(codec, user_message(f"n{parts}@blue"), payloads, mode, clock())
    with blue.db.session() as session:
        blue.submit(session, record)
    assert send_due(blue, codec, sender, now=clock) == 1
    delivered: list[msh.VerifiedMessage] = []
    worker = Worker(red.db, QueueSettings(), clock=clock)
    worker.register(DELIVER_JOB, red.deliver_handler(lambda session, m: delivered.append(m)))
    assert worker.drain() == 1
    got = delivered[0].payloads
    assert [(p.content_id, p.data, p.property("PayloadName").value) for p in got] == [  # type: ignore[union-attr]
        (p.content_id, p.data, f"{i}.xml") for i, p in enumerate(payloads)
    ]
    assert delivered[0].message_id == f"n{parts}@blue"
    assert red.inbound_state(f"n{parts}@blue") == "delivered"


def test_a_delivery_hook_that_fails_is_retried_and_its_effects_rolled_back(nodes) -> None:  # type: ignore[no-untyped-def]
    blue, codec, red, sender, clock = nodes
    submit(blue, codec, "s2@blue", clock)
    send_due(blue, codec, sender, now=clock)
    calls = []

    def flaky(session, message):  # type: ignore[no-untyped-def]
        calls.append(message.message_id)
        enqueue(session, "app.effect", {"of": message.message_id, "call": len(calls)})  # a database effect
        if len(calls) == 1:
            raise RuntimeError("the application is down")

    worker = Worker(red.db, QueueSettings(backoff_base_seconds=0.001, backoff_max_seconds=0.001), clock=clock)
    worker.register(DELIVER_JOB, red.deliver_handler(flaky))
    worker.drain()
    assert red.inbound_state("s2@blue") == "received"
    clock.now += dt.timedelta(seconds=1)
    worker.drain()
    assert red.inbound_state("s2@blue") == "delivered"
    assert calls == ["s2@blue", "s2@blue"]
    with red.db.session() as session:  # the failed attempt's effect went with it
        assert counts(session)["app.effect"] == {"queued": 1}
        effects = session.execute(text("SELECT payload FROM queue_jobs WHERE kind = 'app.effect'")).scalars().all()
    assert [json.loads(e) if isinstance(e, str) else e for e in effects] == [{"of": "s2@blue", "call": 2}]


def test_a_prepared_delivery_reads_the_message_once_and_is_delivered_once(nodes) -> None:  # type: ignore[no-untyped-def]
    blue, codec, red, sender, clock = nodes
    submit(blue, codec, "p1@blue", clock)
    send_due(blue, codec, sender, now=clock)
    prepared: list[msh.VerifiedMessage] = []
    delivered: list[msh.VerifiedMessage] = []
    loads: list[int] = []
    load = red.load_inbound

    def counting_load(session, inbound_id):  # type: ignore[no-untyped-def]
        loads.append(inbound_id)
        return load(session, inbound_id)

    red.load_inbound = counting_load  # type: ignore[method-assign]
    worker = Worker(red.db, QueueSettings(), clock=clock)
    worker.register(
        DELIVER_JOB,
        red.deliver_handler(lambda session, m: delivered.append(m)),
        prepare=red.deliver_preparer(prepared.append),
    )
    assert worker.drain() == 1
    assert len(loads) == 1  # read by the preparer; its handler took that message
    assert delivered == prepared
    assert [m.payloads[0].data for m in delivered] == [b"<query id='1'/>"]
    assert red.inbound_state("p1@blue") == "delivered"

    # the job run again (its completion lost): the message is not delivered a second time
    handle = red.deliver_handler(lambda session, m: delivered.append(m))
    with red.db.session() as session:
        job_id, payload = session.execute(text("SELECT id, payload FROM queue_jobs WHERE kind = 'as4.deliver'")).one()
    job = Job(job_id, DELIVER_JOB, None, json.loads(payload) if isinstance(payload, str) else payload, 2, None, NOW)
    red.deliver_preparer(prepared.append)(job)  # delivered already: nothing prepared, nothing kept
    with red.db.session() as session:
        handle(session, job)
    assert len(delivered) == 1
    assert len(prepared) == 1


def test_test_service_is_kept_but_never_delivered(nodes) -> None:  # type: ignore[no-untyped-def]
    blue, codec, red, sender, clock = nodes
    submit(blue, codec, "t1@blue", clock, test=True)
    send_due(blue, codec, sender, now=clock)
    assert blue.outbound("t1@blue").state is msh.OutboundState.RECEIPT
    assert red.inbound_state("t1@blue") == "not_delivered"
    with red.db.session() as session:
        assert DELIVER_JOB not in counts(session)


def test_retries_on_schedule_then_fails_with_a_clear_status(nodes) -> None:  # type: ignore[no-untyped-def]
    blue, codec, _red, _sender, clock = nodes
    down = http.HttpSender(transport=__import__("httpx").MockTransport(_refuse))
    submit(blue, codec, "r1@blue", clock)
    assert send_due(blue, codec, down, now=clock) == 1
    out = blue.outbound("r1@blue")
    assert out.state is msh.OutboundState.WAITING_TO_RETRY
    assert out.next_attempt_at == NOW + dt.timedelta(seconds=10)
    assert send_due(blue, codec, down, now=clock) == 0  # not due yet
    clock.now = NOW + dt.timedelta(seconds=10)
    assert send_due(blue, codec, down, now=clock) == 1
    assert blue.outbound("r1@blue").next_attempt_at == NOW + dt.timedelta(seconds=30)
    clock.now = NOW + dt.timedelta(seconds=30)
    send_due(blue, codec, down, now=clock)
    out = blue.outbound("r1@blue")
    assert out.state is msh.OutboundState.FAILED
    assert out.attempts == 3
    assert out.error_code == "EBMS:0301"
    assert "refused" in (out.error_detail or "")


def test_a_message_whose_partner_certificate_expired_after_it_was_packed_fails_without_an_attempt(
    nodes, dev_pki
) -> None:  # type: ignore[no-untyped-def]
    # Before, it was sent on the retry schedule until it failed for want of a receipt it could trust.
    blue, codec, _red, _sender, clock = nodes
    submit(blue, codec, "x1@blue", clock)
    expired = dev_pki["red_encrypt"].certificate.not_valid_after_utc  # type: ignore[attr-defined]
    clock.now = expired + dt.timedelta(minutes=1)
    counted = http.HttpSender(transport=__import__("httpx").MockTransport(_no_request_expected))
    assert send_due(blue, codec, counted, now=clock) == 1
    out = blue.outbound("x1@blue")
    assert out.state is msh.OutboundState.FAILED
    assert out.attempts == 0
    assert f"expired on {expired:%Y-%m-%d %H:%M} UTC" in (out.error_detail or "")
    assert "AS4 partner red" in (out.error_detail or "")
    assert send_due(blue, codec, counted, now=clock) == 0  # nothing left to send


def _no_request_expected(request):  # type: ignore[no-untyped-def]
    raise AssertionError(f"nothing should be sent to {request.url}")


def _refuse(request):  # type: ignore[no-untyped-def]
    import httpx

    raise httpx.ConnectError("connection refused", request=request)


def test_a_claimed_message_is_held_by_its_lease(nodes) -> None:  # type: ignore[no-untyped-def]
    blue, codec, _red, _sender, clock = nodes
    submit(blue, codec, "l1@blue", clock)
    assert [r.message_id for r in blue.claim_due(clock(), lease_seconds=60)] == ["l1@blue"]
    assert blue.claim_due(clock(), lease_seconds=60) == []  # held by the first (perhaps killed) sender
    clock.now += dt.timedelta(seconds=61)
    assert [r.message_id for r in blue.claim_due(clock(), lease_seconds=60)] == ["l1@blue"]


def test_a_sender_whose_lease_ran_out_does_not_overwrite_the_sender_that_took_over(nodes) -> None:  # type: ignore[no-untyped-def]
    blue, codec, _red, sender, clock = nodes
    submit(blue, codec, "s1@blue", clock)
    [stale] = blue.claim_due(clock(), lease_seconds=120)
    stale_lease = clock() + dt.timedelta(seconds=120)
    clock.now += dt.timedelta(seconds=121)  # the first sender hangs past its lease; another takes over
    [fresh] = blue.claim_due(clock(), lease_seconds=120)
    fresh_lease = clock() + dt.timedelta(seconds=120)
    assert blue.save(replace(fresh, state=msh.OutboundState.RECEIPT, attempts=1), lease=fresh_lease)
    late = replace(stale, state=msh.OutboundState.WAITING_TO_RETRY, attempts=1, error_code="EBMS:0005")
    assert not blue.save(late, lease=stale_lease)
    kept = blue.outbound("s1@blue")
    assert (kept.state, kept.error_code) == (msh.OutboundState.RECEIPT, None)
    # A sender that gets to a claimed message after its lease ran out does not send it.
    submit(blue, codec, "s2@blue", clock)
    start = clock()
    moments = iter([start, start + dt.timedelta(seconds=121)])
    assert send_due(blue, codec, sender, now=lambda: next(moments, clock.now), lease_seconds=120) == 0
    assert blue.outbound("s2@blue").attempts == 0


def test_a_stopping_sender_gives_back_at_once_what_it_claimed_and_had_not_started(nodes) -> None:  # type: ignore[no-untyped-def]
    blue, codec, _red, sender, clock = nodes
    for n in range(3):
        submit(blue, codec, f"g{n}@blue", clock)
    unsent = Unsent()

    class StoppedMidSend:
        """The node is asked to stop while the first message is on the wire."""

        def post(self, request: msh.SendRequest) -> http.HttpReply:
            unsent.give_back(blue)
            return sender.post(request)

    assert send_due(blue, codec, StoppedMidSend(), now=clock, limit=3, unsent=unsent) == 1
    assert blue.outbound("g0@blue").state is msh.OutboundState.RECEIPT  # the send in flight finished
    # The other two are due again now (not after the lease), unattempted, for any sender.
    again = blue.claim_due(clock(), lease_seconds=60)
    assert [(r.message_id, r.attempts) for r in again] == [("g1@blue", 0), ("g2@blue", 0)]
    # Given back since: a sender claiming now releases what it claimed at once and sends nothing.
    clock.now += dt.timedelta(seconds=61)
    assert send_due(blue, codec, sender, now=clock, unsent=unsent) == 0
    assert len(blue.claim_due(clock(), lease_seconds=60)) == 2


def test_a_release_touches_only_the_claim_it_names(nodes) -> None:  # type: ignore[no-untyped-def]
    blue, codec, _red, _sender, clock = nodes
    submit(blue, codec, "r1@blue", clock)
    claimed = blue.claim_due(clock(), lease_seconds=60)
    # Another claim's lease (the first one ran out and another sender took the message over): untouched.
    assert blue.release(claimed, until=clock() + dt.timedelta(seconds=30)) == 0
    assert blue.claim_due(clock(), lease_seconds=60) == []
    assert blue.release(claimed, until=clock() + dt.timedelta(seconds=60)) == 1
    assert [r.message_id for r in blue.claim_due(clock(), lease_seconds=60)] == ["r1@blue"]


def test_due_messages_are_claimed_oldest_first_then_in_submission_order(nodes) -> None:  # type: ignore[no-untyped-def]
    blue, codec, _red, _sender, clock = nodes
    for name in ("f3", "f1", "f2"):  # one moment: the order of submission decides
        submit(blue, codec, f"{name}@blue", clock)
    clock.now -= dt.timedelta(seconds=5)
    submit(blue, codec, "f0@blue", clock)  # due earlier than the others
    clock.now += dt.timedelta(seconds=5)
    claimed = blue.claim_due(clock(), lease_seconds=60, limit=3)
    assert [r.message_id for r in claimed] == ["f0@blue", "f3@blue", "f1@blue"]
    assert [r.message_id for r in blue.claim_due(clock(), lease_seconds=60)] == ["f2@blue"]
    stored = blue.outbound("f3@blue")
    assert (stored.state, stored.body, stored.references) == (claimed[1].state, claimed[1].body, claimed[1].references)


def test_accept_twice_keeps_once_and_purge_forgets(nodes, dev_pki) -> None:  # type: ignore[no-untyped-def]
    blue, codec, red, _sender, clock = nodes
    submit(blue, codec, "p1@blue", clock, test=True)
    out = blue.claim_due(clock(), lease_seconds=60)[0]
    red_pm, red_codec = side("red", "blue", dev_pki)
    blind = msh.Receiver(red_pm, red_codec, lambda _id: None, lambda: "sig-x@red")  # no duplicate detection
    first = msh.receive(blind, out.content_type, out.body, clock())
    assert first.record is not None
    assert red.accept(first.record) is None
    second = msh.receive(blind, out.content_type, out.body, clock())  # the same message, a new receipt
    assert second.record is not None
    assert second.body != first.body
    prior = red.accept(second.record)
    assert prior is not None
    assert prior.receipt == first.body  # the first receipt, not the second
    assert red.seen("p1@blue") == prior
    with red.db.session() as session:
        assert session.execute(text("SELECT count(*) FROM as4_inbound")).scalar() == 1
    assert red.purge_inbound(older_than=NOW) == 0
    assert red.purge_inbound(older_than=NOW + dt.timedelta(seconds=1)) == 1
    assert red.seen("p1@blue") is None


def test_a_delivery_that_keeps_failing_is_dead_lettered_and_delivered_once_requeued(nodes) -> None:  # type: ignore[no-untyped-def]
    # Before, the last failed attempt marked the message delivery_failed and its job done: nothing an
    # operator could requeue once the cause was mended.
    from oots.store.queue import list_dead, requeue

    blue, codec, red, sender, clock = nodes
    submit(blue, codec, "f1@blue", clock)
    send_due(blue, codec, sender, now=clock)
    mended = {"on": False}
    delivered: list[str] = []
    told: list[tuple[str, str]] = []

    def broken(session, message):  # type: ignore[no-untyped-def]
        enqueue(session, "app.effect", {"of": message.message_id})  # a database effect, then a failure
        if not mended["on"]:
            raise RuntimeError("the register is unreachable")
        delivered.append(message.message_id)

    settings = QueueSettings(backoff_base_seconds=0.001, backoff_max_seconds=0.001, max_attempts=2)
    worker = Worker(red.db, settings, clock=clock)
    worker.register(
        DELIVER_JOB,
        red.deliver_handler(broken),
        on_dead=red.delivery_dead(lambda session, m, exc: told.append((m.message_id, type(exc).__name__))),
    )
    worker.drain()
    assert red.inbound_state("f1@blue") == "received"  # the first attempt failed: retried
    assert told == []
    clock.now += dt.timedelta(seconds=1)
    worker.drain()
    assert red.inbound_state("f1@blue") == "delivery_failed"
    assert told == [("f1@blue", "RuntimeError")]
    with red.db.session() as session:
        job_counts = counts(session)
        (dead,) = list_dead(session)
        reason = session.execute(text("SELECT last_error FROM as4_inbound")).scalar_one()
    assert job_counts[DELIVER_JOB] == {"dead": 1}  # requeueable
    assert "app.effect" not in job_counts  # the hook's own effects were rolled back each time
    assert (dead.attempts, dead.last_error, reason) == (2, "RuntimeError", "RuntimeError")

    mended["on"] = True  # the operator mended the cause, and requeues the dead job
    with red.db.session() as session:
        requeue(session, dead.id, now=clock())
    assert worker.drain() == 1
    assert delivered == ["f1@blue"]
    assert red.inbound_state("f1@blue") == "delivered"
    with red.db.session() as session:
        assert counts(session)[DELIVER_JOB] == {"done": 1}
        assert session.execute(text("SELECT last_error FROM as4_inbound")).scalar_one() is None
        requeue_again = session.execute(text("UPDATE queue_jobs SET status = 'dead' WHERE id = :i"), {"i": dead.id})
        assert requeue_again.rowcount == 1  # type: ignore[attr-defined]
        requeue(session, dead.id, now=clock())  # a second requeue (or a re-run): nothing delivered twice
    assert worker.drain() == 1
    assert delivered == ["f1@blue"]


def test_a_delivery_whose_worker_died_on_its_last_attempt_ends_delivery_failed_and_is_delivered_once_requeued(
    nodes,
) -> None:  # type: ignore[no-untyped-def]
    # Before, the job dead-lettered by its expired lease ran no on_dead hook: the message stayed "received".
    from oots.store.queue import list_dead, requeue

    blue, codec, red, sender, clock = nodes
    submit(blue, codec, "k1@blue", clock)
    send_due(blue, codec, sender, now=clock)
    delivered: list[str] = []
    told: list[tuple[str, str]] = []

    def worker(worker_id: str) -> Worker:
        w = Worker(red.db, QueueSettings(max_attempts=1, lease_seconds=30), clock=clock, worker_id=worker_id)
        w.register(
            DELIVER_JOB,
            red.deliver_handler(lambda session, m: delivered.append(m.message_id)),
            on_dead=red.delivery_dead(lambda session, m, exc: told.append((m.message_id, str(exc)))),
        )
        return w

    [held] = worker("crashed").claim_batch()  # ...and then the process dies
    clock.now += dt.timedelta(seconds=31)
    rescuer = worker("rescuer")
    assert rescuer.drain() == 0
    said = "lease expired on attempt 1 (worker crashed never finished it)"
    assert told == [("k1@blue", said)]
    assert red.inbound_state("k1@blue") == "delivery_failed"
    with red.db.session() as session:
        (dead,) = list_dead(session)
        reason = session.execute(text("SELECT last_error FROM as4_inbound")).scalar_one()
    assert (dead.id, dead.last_error, reason) == (held.id, f"LeaseExpired: {said}", f"LeaseExpired: {said}")

    with red.db.session() as session:
        requeue(session, dead.id, now=clock())
    assert rescuer.drain() == 1
    assert delivered == ["k1@blue"]
    assert red.inbound_state("k1@blue") == "delivered"


def test_a_delivery_that_fails_for_good_at_once_is_dead_lettered_and_delivered_once_requeued(nodes) -> None:  # type: ignore[no-untyped-def]
    # an answer to a partner whose certificate is not valid: not retried; marked, told, and requeueable
    from oots.errors import CertificateNotValid
    from oots.store.queue import list_dead, requeue

    blue, codec, red, sender, clock = nodes
    submit(blue, codec, "c1@blue", clock)
    submit(blue, codec, "c2@blue", clock)
    send_due(blue, codec, sender, now=clock)
    fixed = {"on": False}
    delivered: list[str] = []
    told: list[tuple[str, str]] = []

    def answer(session, message):  # type: ignore[no-untyped-def]
        enqueue(session, "app.effect", {"of": message.message_id})
        if not fixed["on"]:
            raise CertificateNotValid("the encryption certificate of AS4 partner blue (blue_gw) expired on ...")
        delivered.append(message.message_id)

    worker = Worker(red.db, QueueSettings(), clock=clock)
    worker.register(
        DELIVER_JOB,
        red.deliver_handler(answer),
        on_dead=red.delivery_dead(lambda session, m, exc: told.append((m.message_id, type(exc).__name__))),
    )
    assert worker.drain() == 2
    assert told == [("c1@blue", "CertificateNotValid"), ("c2@blue", "CertificateNotValid")]
    with red.db.session() as session:
        dead = list_dead(session)
        assert [(j.attempts, j.status) for j in dead] == [(1, "dead"), (1, "dead")]
        assert "app.effect" not in counts(session)  # the hook's effects were rolled back
        last_error = session.execute(text("SELECT last_error FROM as4_inbound ORDER BY id")).scalars().all()
    assert red.inbound_state("c1@blue") == "delivery_failed"
    said = "CertificateNotValid: the encryption certificate of AS4 partner blue (blue_gw) expired on ..."
    assert last_error == [said, said]
    assert [j.last_error for j in dead] == [said, said]

    fixed["on"] = True  # the operator replaced the certificate
    with red.db.session() as session:
        for job in dead:
            requeue(session, job.id, now=clock())
        session.execute(text("DELETE FROM as4_inbound_payloads WHERE inbound_id = (SELECT max(id) FROM as4_inbound)"))
        session.execute(text("DELETE FROM as4_inbound WHERE message_id = 'c2@blue'"))  # purged meanwhile
    assert worker.drain() == 2
    assert delivered == ["c1@blue"]
    assert red.inbound_state("c1@blue") == "delivered"
    with red.db.session() as session:
        assert counts(session)[DELIVER_JOB] == {"done": 2}  # the purged one: nothing to do, not an error
    assert worker.drain() == 0
    assert delivered == ["c1@blue"]


def test_the_purge_forgets_past_the_window_a_batch_at_a_time(nodes, caplog) -> None:  # type: ignore[no-untyped-def]
    blue, codec, red, sender, clock = nodes
    for i in range(5):  # delivered: purged once past the window
        submit(blue, codec, f"w{i}@blue", clock)
    submit(blue, codec, "late@blue", clock)  # its delivery is not done: kept, whatever its age
    send_due(blue, codec, sender, now=clock)
    with red.db.session() as session:
        session.execute(
            text(  # late's delivery job: the last one
                "UPDATE queue_jobs SET run_at = :later WHERE id = "
                "(SELECT max(id) FROM queue_jobs WHERE kind = 'as4.deliver')"
            ),
            {"later": NOW.replace(2027)},
        )
    worker = Worker(red.db, QueueSettings(), clock=clock)
    worker.register(DELIVER_JOB, red.deliver_handler(lambda session, m: None))
    assert worker.drain() == 5
    purge = InboundPurge(red, window_seconds=600, batch=2)

    clock.now = NOW + dt.timedelta(seconds=600)  # nothing is older than the window yet
    assert purge() == 0
    assert red.seen("w0@blue") is not None
    clock.now = NOW + dt.timedelta(seconds=601)
    with caplog.at_level("INFO", logger="oots.as4.store"):
        assert [purge(), purge(), purge(), purge()] == [2, 2, 1, 0]  # a loop runs it again while it finds some
    assert [r.getMessage() for r in caplog.records] == [
        "AS4: 5 received message(s) past the duplicate-detection window purged"  # one line for the run
    ]
    assert all(red.seen(f"w{i}@blue") is None for i in range(5))  # forgotten: a resend now is a new message
    assert red.inbound_state("late@blue") == "received"  # not delivered yet: never purged
    with red.db.session() as session:
        assert session.execute(text("SELECT count(*) FROM as4_inbound_payloads")).scalar() == 1  # late's
        assert RETIRED_PURGE_JOB not in counts(session)  # nothing is queued for it


def test_purge_jobs_left_from_before_the_periodic_purge_are_completed(nodes) -> None:  # type: ignore[no-untyped-def]
    _blue, _codec, red, _sender, clock = nodes
    with red.db.session() as session:  # as the self-scheduling job of an older version left them
        soon = NOW + dt.timedelta(seconds=300)
        enqueue(session, RETIRED_PURGE_JOB, {"at": soon.isoformat()}, key="3600:1", run_at=soon, now=clock())
        enqueue(session, RETIRED_PURGE_JOB, {"at": NOW.isoformat()}, key="3600:0", now=clock())
        session.execute(text("UPDATE queue_jobs SET status = 'dead', attempts = 5 WHERE key = '3600:0'"))
    worker = Worker(red.db, QueueSettings(), clock=clock)
    worker.register(RETIRED_PURGE_JOB, retired)
    clock.now = soon
    assert worker.drain() == 1
    with red.db.session() as session:
        assert counts(session)[RETIRED_PURGE_JOB] == {"done": 1, "dead": 1}
        assert requeue_dead(session, kind=RETIRED_PURGE_JOB, now=clock()) == 1
    assert worker.drain() == 1  # a dead one requeued: completed too, never dead again
    with red.db.session() as session:
        assert counts(session)[RETIRED_PURGE_JOB] == {"done": 2}


def _failing_worker(red: As4Store, clock: Clock, mended: dict[str, bool], delivered: list[str]) -> Worker:
    """A worker whose delivery hook fails (once: dead-lettered at once) until ``mended["on"]``."""

    def deliver(session, message):  # type: ignore[no-untyped-def]
        if message.message_id.startswith("x") and not mended["on"]:
            raise RuntimeError("the register is unreachable")
        delivered.append(message.message_id)

    worker = Worker(red.db, QueueSettings(max_attempts=1), clock=clock)
    worker.register(
        DELIVER_JOB,
        red.deliver_handler(deliver),
        prepare=red.deliver_preparer(lambda m: None),
        on_dead=red.delivery_dead(),
    )
    return worker


def _job_of(red: As4Store, message_id: str) -> int:
    with red.db.session() as session:
        job = session.execute(
            text("SELECT delivery_job FROM as4_inbound WHERE message_id = :m"), {"m": message_id}
        ).scalar_one()
    assert isinstance(job, int)
    return job


def test_a_failed_delivery_is_kept_past_the_window_while_its_job_can_run_and_purged_once_delivered(nodes) -> None:  # type: ignore[no-untyped-def]
    # Before, the purge forgot a delivery_failed message past the window like a delivered one: its dead
    # job, requeued after that, found nothing, and the request or answer was lost.
    from oots.store.queue import requeue

    blue, codec, red, sender, clock = nodes
    submit(blue, codec, "x1@blue", clock)  # its delivery fails: dead-lettered
    submit(blue, codec, "d1@blue", clock)  # delivered
    submit(blue, codec, "t1@blue", clock, test=True)  # not for delivery
    send_due(blue, codec, sender, now=clock)
    mended, delivered = {"on": False}, []
    worker = _failing_worker(red, clock, mended, delivered)
    assert worker.drain() == 2
    assert [red.inbound_state(m) for m in ("x1@blue", "d1@blue", "t1@blue")] == [
        "delivery_failed",
        "delivered",
        "not_delivered",
    ]
    job = _job_of(red, "x1@blue")
    purge = InboundPurge(red, window_seconds=600)
    clock.now = NOW + dt.timedelta(days=30)  # long past the window
    assert purge() == 2  # the delivered one and the test message, as before
    assert purge() == 0
    assert red.seen("x1@blue") is not None  # its dead job can still be requeued: kept

    with red.db.session() as session:
        requeue(session, job, now=clock())
    assert purge() == 0  # queued again
    with red.db.session() as session:
        session.execute(text("UPDATE queue_jobs SET status = 'running' WHERE id = :j"), {"j": job})
    assert purge() == 0  # held by a worker
    with red.db.session() as session:
        session.execute(text("UPDATE queue_jobs SET status = 'queued' WHERE id = :j"), {"j": job})

    mended["on"] = True
    assert worker.drain() == 1
    assert delivered == ["d1@blue", "x1@blue"]  # delivered once
    assert red.inbound_state("x1@blue") == "delivered"
    assert purge() == 1  # done now: forgotten as a delivered one
    assert red.seen("x1@blue") is None
    with red.db.session() as session:
        assert session.execute(text("SELECT count(*) FROM as4_inbound_payloads")).scalar() == 0
        assert counts(session)[DELIVER_JOB] == {"done": 2}


def test_a_failed_delivery_whose_dead_job_is_gone_or_done_is_purged(nodes) -> None:  # type: ignore[no-untyped-def]
    blue, codec, red, sender, clock = nodes
    for message_id in ("x1@blue", "x2@blue", "x3@blue"):
        submit(blue, codec, message_id, clock)
    send_due(blue, codec, sender, now=clock)
    worker = _failing_worker(red, clock, {"on": False}, [])
    assert worker.drain() == 3
    clock.now = NOW + dt.timedelta(days=30)
    with red.db.session() as session:  # the operator deleted one dead job; another ended done
        session.execute(text("DELETE FROM queue_jobs WHERE id = :j"), {"j": _job_of(red, "x1@blue")})
        session.execute(text("UPDATE queue_jobs SET status = 'done' WHERE id = :j"), {"j": _job_of(red, "x2@blue")})
    assert red.purge_inbound(older_than=clock() - dt.timedelta(seconds=600)) == 2
    assert red.seen("x1@blue") is None
    assert red.seen("x2@blue") is None
    assert red.inbound_state("x3@blue") == "delivery_failed"  # its job is still dead: kept


def test_a_failed_delivery_kept_while_its_job_is_dead_is_purged_once_the_job_is_discarded(nodes) -> None:  # type: ignore[no-untyped-def]
    # Before, a dead delivery job could only be requeued: one whose cause would never be mended kept its
    # message, and the personal data in its payloads, for ever.
    from oots.store.queue import discard, purge_done

    blue, codec, red, sender, clock = nodes
    submit(blue, codec, "x1@blue", clock)
    submit(blue, codec, "x2@blue", clock)
    send_due(blue, codec, sender, now=clock)
    delivered: list[str] = []
    worker = _failing_worker(red, clock, {"on": False}, delivered)
    assert worker.drain() == 2
    purge = InboundPurge(red, window_seconds=600)
    clock.now = NOW + dt.timedelta(days=30)  # long past the window
    assert purge() == 0
    assert red.inbound_state("x1@blue") == "delivery_failed"  # its dead job can still be requeued: kept

    job = _job_of(red, "x1@blue")
    with red.db.session() as session:
        assert discard(session, job, now=clock()) == DELIVER_JOB
    assert purge() == 1  # its job cannot run any more: forgotten with its payloads
    assert red.seen("x1@blue") is None
    assert red.inbound_state("x2@blue") == "delivery_failed"  # the other's job is still dead: kept
    assert worker.drain() == 0  # the discarded job never runs
    assert delivered == []
    with red.db.session() as session:
        payloads = session.execute(text("SELECT count(*) FROM as4_inbound_payloads")).scalar()
        assert payloads == 1  # the other message's only
        assert counts(session)[DELIVER_JOB] == {"dead": 1, "done": 1}
        assert purge_done(session, older_than=clock() + dt.timedelta(seconds=1)) == 1  # the discarded job's record
    assert purge() == 0


def test_a_requeued_delivery_whose_message_an_older_version_purged_ends_with_a_clear_warning(nodes, caplog) -> None:  # type: ignore[no-untyped-def]
    from oots.store.queue import requeue

    blue, codec, red, sender, clock = nodes
    submit(blue, codec, "x1@blue", clock)
    send_due(blue, codec, sender, now=clock)
    worker = _failing_worker(red, clock, {"on": True}, [])
    job = None
    with red.db.session() as session:  # as an older version left it: the job dead, the message purged
        job = session.execute(text("SELECT id FROM queue_jobs WHERE kind = 'as4.deliver'")).scalar_one()
        inbound = session.execute(text("SELECT id FROM as4_inbound")).scalar_one()
        session.execute(text("UPDATE queue_jobs SET status = 'dead', attempts = 5 WHERE id = :j"), {"j": job})
        session.execute(text("DELETE FROM as4_inbound_payloads"))
        session.execute(text("DELETE FROM as4_inbound"))
        requeue(session, job, now=clock())
    with caplog.at_level("WARNING", logger="oots.as4.store"):
        assert worker.drain() == 1
    assert [r.getMessage() for r in caplog.records] == [
        f"AS4 delivery job {job}: received message {inbound} is no longer kept (purged before the job ran); "
        "it cannot be delivered: the job ends without delivering it"
    ]
    with red.db.session() as session:
        assert counts(session)[DELIVER_JOB] == {"done": 1}  # not dead again: nothing is left to deliver


def test_the_purge_reads_the_state_index_and_the_jobs_primary_key(nodes) -> None:  # type: ignore[no-untyped-def]
    """The batch is read by the ``(state, received_at)`` index, and a failed delivery's job by its primary
    key: never the whole queue, however long its backlog (here 2,000 queued jobs, the statistics taken)."""
    from sqlalchemy import insert

    from oots.as4.store import _PURGEABLE
    from oots.store.models import QueueJob

    _blue, _codec, red, _sender, clock = nodes
    backlog = {"kind": "test.backlog", "payload": {}, "status": "queued", "attempts": 0, "run_at": NOW}
    with red.db.connect() as conn:
        conn.execute(insert(QueueJob), [dict(backlog, created_at=NOW, updated_at=NOW) for _ in range(2000)])
        conn.execute(text("ANALYZE"))
        sql = str(
            _PURGEABLE.params(older_than=clock(), limit=200).compile(conn, compile_kwargs={"literal_binds": True})
        )
        if red.db.dialect == "sqlite":
            plan = " ".join(str(row[-1]) for row in conn.execute(text(f"EXPLAIN QUERY PLAN {sql}")))
            assert "ix_as4_inbound_state_received_at" in plan, plan
            assert "SEARCH queue_jobs USING INTEGER PRIMARY KEY" in plan, plan
        else:
            conn.execute(text("SET LOCAL enable_seqscan = off"))  # an empty table would be read whole anyway
            plan = " ".join(str(row[0]) for row in conn.execute(text(f"EXPLAIN {sql}")))
            assert "ix_as4_inbound_state_received_at" in plan, plan
            assert "Index Scan using pk_queue_jobs on queue_jobs" in plan, plan
            assert "hashed SubPlan" not in plan, plan  # not every live job hashed per batch


def test_failed_deliveries_of_an_older_database_name_their_job_once_migrated(nodes) -> None:  # type: ignore[no-untyped-def]
    from alembic import command
    from sqlalchemy import insert

    from oots.as4.models import As4Inbound
    from oots.store.database import alembic_config
    from oots.store.models import QueueJob

    _blue, _codec, red, _sender, _clock = nodes
    db = red.db
    with db.connect() as conn:  # as an older version left it: no delivery_job column
        command.downgrade(alembic_config(conn), "as4_0001")
    inbound = {
        "header": {},
        "from_party": "|blue",
        "partner": "blue",
        "leg": "request",
        "received_at": NOW,
        "signer": b"",
        "references": [],
        "receipt_content_type": "text/xml",
        "receipt": b"",
    }
    job = {"kind": DELIVER_JOB, "attempts": 1, "run_at": NOW, "created_at": NOW, "updated_at": NOW}
    with db.connect() as conn:
        states = ("delivery_failed", "delivery_failed", "received", "delivered")
        ids = [
            conn.execute(
                insert(As4Inbound).returning(As4Inbound.id), dict(inbound, message_id=f"m{i}@blue", state=state)
            ).scalar_one()
            for i, state in enumerate(states)
        ]
        statuses = ("dead", "done", "queued", "done")
        jobs = [
            conn.execute(
                insert(QueueJob).returning(QueueJob.id), dict(job, payload={"id": inbound_id}, status=status)
            ).scalar_one()
            for inbound_id, status in zip(ids, statuses, strict=True)
        ]
    db.migrate()
    with db.connect() as conn:
        named = conn.execute(text("SELECT delivery_job FROM as4_inbound ORDER BY id")).scalars().all()
    assert named == [jobs[0], None, None, None]  # only a failed one whose job can still run
    assert red.purge_inbound(older_than=NOW + dt.timedelta(days=1)) == 2  # the failed one whose job is done
    assert red.seen("m0@blue") is not None  # its dead job can be requeued: kept


def test_concurrent_accepts_from_many_threads_are_all_kept(nodes, dev_pki) -> None:  # type: ignore[no-untyped-def]
    import threading

    blue, codec, red, _sender, clock = nodes
    for i in range(16):
        submit(blue, codec, f"c{i}@blue", clock)
    due = blue.claim_due(clock(), lease_seconds=60, limit=16)
    red_pm, red_codec = side("red", "blue", dev_pki)
    rx = msh.Receiver(red_pm, red_codec, red.seen, lambda: f"sig-{threading.get_ident()}-{clock()}@red")
    records = [msh.receive(rx, out.content_type, out.body, clock()).record for out in due]
    failures: list[BaseException] = []

    def keep(chunk: list[msh.InboundRecord | None]) -> None:
        for record in chunk:
            assert record is not None
            try:
                red.accept(record)
            except BaseException as exc:
                failures.append(exc)

    threads = [threading.Thread(target=keep, args=(records[i::8],)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert all(red.inbound_state(f"c{i}@blue") == "received" for i in range(16))
    with red.db.session() as session:
        assert counts(session)[DELIVER_JOB] == {"queued": 16}


def test_the_same_message_accepted_from_many_threads_is_kept_once(nodes, dev_pki) -> None:  # type: ignore[no-untyped-def]
    import threading

    blue, codec, red, _sender, clock = nodes
    submit(blue, codec, "d1@blue", clock)
    out = blue.claim_due(clock(), lease_seconds=60)[0]
    red_pm, red_codec = side("red", "blue", dev_pki)
    ids = iter(range(100))
    rx = msh.Receiver(red_pm, red_codec, None, lambda: f"sig-{next(ids)}@red")
    records = [msh.receive(rx, out.content_type, out.body, clock()).record for _ in range(8)]
    results: list[msh.PriorReceipt | BaseException | None] = []

    def keep(record: msh.InboundRecord | None) -> None:
        assert record is not None
        try:
            results.append(red.accept(record))
        except BaseException as exc:
            results.append(exc)

    threads = [threading.Thread(target=keep, args=(record,)) for record in records]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    kept = [r for r in results if r is None]
    priors = [r for r in results if isinstance(r, msh.PriorReceipt)]
    assert len(kept) == 1
    assert len(priors) == 7
    first = red.seen("d1@blue")
    assert first is not None
    assert all(p == first for p in priors)  # every other copy is answered with the one kept
    assert first.receipt in {record.receipt.body for record in records if record is not None}
    with red.db.session() as session:
        assert counts(session)[DELIVER_JOB] == {"queued": 1}
        assert session.execute(text("SELECT count(*) FROM as4_inbound_payloads")).scalar() == 1


def _post_built_without_our_limits(
    blue: As4Store,
    codec: msh.CoreCodec,
    sender: http.HttpSender,
    clock: Clock,
    monkeypatch: pytest.MonkeyPatch,
    message_id: str,
    mime_type: str,
) -> http.HttpReply:
    """A signed message as a partner whose software has no length limits would make it."""
    pm = blue.pmodes
    with monkeypatch.context() as patched:
        patched.setattr(model, "MAX_ID_LENGTH", 10_000)
        record = msh.create_outbound(
            codec,
            user_message(message_id),
            [Payload("q@blue", mime_type, b"<q/>")],
            pm.resolve(pm.partner("red"), pm.leg("QueryManager", "ExecuteQueryRequest")),
            clock(),
        )
    return sender.post(msh.SendRequest("http://red.test/as4", record.content_type, record.body, record.message_id))


@pytest.mark.parametrize(
    ("message_id", "mime_type"),
    [("x" * 300 + "@blue", "application/xml"), ("long-type@blue", "application/" + "x" * 300)],
    ids=["message id", "mime type"],
)
def test_over_long_header_values_are_answered_invalid_header(nodes, monkeypatch, message_id, mime_type) -> None:  # type: ignore[no-untyped-def]
    blue, codec, red, sender, clock = nodes
    reply = _post_built_without_our_limits(blue, codec, sender, clock, monkeypatch, message_id, mime_type)
    assert reply.status == 200
    assert b"EBMS:0009" in reply.body
    assert b"over the limit of 255" in reply.body
    assert red.seen(message_id) is None
    submit(blue, codec, "after@blue", clock)  # the next message is received as usual
    assert send_due(blue, codec, sender, now=clock) == 1
    assert red.inbound_state("after@blue") == "received"


@pytest.mark.postgres
def test_a_value_the_database_refuses_is_answered_delivery_failure(postgres_database, dev_pki, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A value past the parser's checks that a column cannot hold: EBMS:0202 (send again), not an HTTP 500;
    in Domibus mode the message is one that cannot be kept (the sweep sets it aside)."""
    clock = Clock(NOW)
    blue_pm, blue_codec = side("blue", "red", dev_pki)
    red_pm, red_codec = side("red", "blue", dev_pki)
    red = As4Store(database(postgres_database()), red_pm, clock=clock)
    app = http.as4_app(
        lambda: msh.Receiver(red_pm, red_codec, None, lambda: "sig@red"), red, clock=clock, max_bytes=5_000_000
    )
    sender = http.HttpSender(transport=SyncASGITransport(app))
    blue = As4Store(database(postgres_database()), blue_pm, clock=clock)
    long_id = "y" * 300 + "@blue"
    monkeypatch.setattr(model, "MAX_ID_LENGTH", 10_000)  # the parser's checks out of the way: the database decides
    reply = _post_built_without_our_limits(blue, blue_codec, sender, clock, monkeypatch, long_id, "application/xml")
    assert reply.status == 200
    assert b"EBMS:0202" in reply.body
    assert red.seen(long_id) is None
    um = user_message(long_id)
    with pytest.raises(UnusableMessage, match="does not fit"):
        red.accept_domibus(DomibusMessage(um, ()))
    red.db.dispose()
    blue.db.dispose()


def test_another_partner_s_message_with_a_kept_id_is_refused_not_answered_with_the_receipt(urls, dev_pki) -> None:  # type: ignore[no-untyped-def]
    clock = Clock(NOW)
    blue_pm, blue_codec = side("blue", "red", dev_pki)
    green_pm, green_codec = side("green", "red", dev_pki)
    red_pm, red_codec = side("red", "blue", dev_pki)
    red_pm = dataclasses.replace(red_pm, partners=red_pm.partners + side("red", "green", dev_pki)[0].partners)
    red = As4Store(database(urls["red"]), red_pm, clock=clock)
    ids = iter(range(1, 100))
    app = http.as4_app(
        lambda: msh.Receiver(red_pm, red_codec, None, lambda: f"sig-{next(ids)}@red"),
        red,
        clock=clock,
        max_bytes=5_000_000,
    )
    sender = http.HttpSender(transport=SyncASGITransport(app))

    def send(pmodes: pm.PModeSet, codec: msh.CoreCodec, name: str, data: bytes) -> http.HttpReply:
        mode = pmodes.resolve(pmodes.partner("red"), pmodes.leg("QueryManager", "ExecuteQueryRequest"))
        record = msh.create_outbound(
            codec, user_message("shared@x", sender=name), [Payload("q@x", "application/xml", data)], mode, NOW
        )
        return sender.post(msh.SendRequest("http://red.test/as4", record.content_type, record.body, record.message_id))

    first = send(blue_pm, blue_codec, "blue", b"<blue/>")
    assert b"Receipt" in first.body
    other = send(green_pm, green_codec, "green", b"<green/>")
    assert other.body != first.body  # not blue's receipt, with the digests of blue's payload
    assert b"EBMS:0003" in other.body
    assert b"another partner" in other.body
    assert red.seen("shared@x").partner == "blue"  # type: ignore[union-attr]
    again = send(blue_pm, blue_codec, "blue", b"<blue/>")  # blue's own replay is still a duplicate
    assert again.body == first.body
    red.db.dispose()


def test_a_message_id_received_again_after_its_purge_is_delivered(nodes) -> None:  # type: ignore[no-untyped-def]
    """Past the duplicate window the id is forgotten: a message with it is new, kept, answered and delivered
    (its delivery job was keyed by the id, and the first one's job, done, swallowed the second)."""
    blue, codec, red, sender, clock = nodes
    pmodes = blue.pmodes
    mode = pmodes.resolve(pmodes.partner("red"), pmodes.leg("QueryManager", "ExecuteQueryRequest"))

    def send(data: bytes) -> http.HttpReply:
        record = msh.create_outbound(
            codec, user_message("again@blue"), [Payload("q@blue", "application/xml", data)], mode, clock()
        )
        return sender.post(msh.SendRequest("http://red.test/as4", record.content_type, record.body, record.message_id))

    delivered: list[bytes] = []
    worker = Worker(red.db, QueueSettings(), clock=clock)
    worker.register(DELIVER_JOB, red.deliver_handler(lambda session, m: delivered.append(m.payloads[0].data)))
    assert b"Receipt" in send(b"<first/>").body
    assert worker.drain() == 1
    assert red.purge_inbound(older_than=clock() + dt.timedelta(days=8)) == 1
    clock.now += dt.timedelta(days=8)
    assert b"Receipt" in send(b"<second/>").body
    assert worker.drain() == 1
    assert delivered == [b"<first/>", b"<second/>"]
    assert red.inbound_state("again@blue") == "delivered"


def test_a_message_id_of_255_characters_is_kept_and_queued(nodes) -> None:  # type: ignore[no-untyped-def]
    blue, codec, red, sender, clock = nodes
    longest = "m" * 250 + "@blue"
    submit(blue, codec, longest, clock)
    assert send_due(blue, codec, sender, now=clock) == 1
    assert blue.outbound(longest).state is msh.OutboundState.RECEIPT
    assert red.inbound_state(longest) == "received"


def test_prepared_messages_are_kept_within_a_byte_budget_and_not_after_a_failed_preparation(
    nodes, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    """A worker prepares a whole batch before it handles it: what is kept for the handlers is bounded in
    bytes (the rest is read again), and a preparation that fails keeps nothing."""
    import oots.as4.store as as4_store

    blue, codec, red, sender, clock = nodes
    for n in range(3):
        submit(blue, codec, f"b{n}@blue", clock)
    send_due(blue, codec, sender, now=clock)
    with red.db.session() as session:
        jobs = [
            Job(i, DELIVER_JOB, None, json.loads(p) if isinstance(p, str) else p, 1, None, NOW)
            for i, p in session.execute(text("SELECT id, payload FROM queue_jobs WHERE kind = 'as4.deliver'"))
        ]
    assert len(jobs) == 3
    size = len(b"<query id='1'/>")
    monkeypatch.setattr(as4_store, "_PREPARED_BYTES", 2 * size)  # room for two of the three
    prepare = red.deliver_preparer(lambda m: None)
    for job in jobs:
        prepare(job)
    assert len(red._prepared) == 2
    assert red._prepared_bytes == 2 * size
    assert int(jobs[0].payload["id"]) not in red._prepared  # the oldest made room

    def failing(message: msh.VerifiedMessage) -> None:
        raise RuntimeError("the role's preparation failed")

    with pytest.raises(RuntimeError):
        red.deliver_preparer(failing)(jobs[2])
    assert int(jobs[2].payload["id"]) not in red._prepared
    assert red._prepared_bytes == size
