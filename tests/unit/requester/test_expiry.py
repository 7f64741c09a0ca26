"""Timeouts: the periodic sweep ends the exchanges whose deadline has passed; no exchange has a job for it."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, event, select, text

from oots.cs.keys import CsPki
from oots.requester import EXPIRE_JOB, role
from oots.requester.exchange import _DUE, _DUE_LOCKED, WEBHOOK_JOB
from oots.store.models import QueueJob
from oots.store.queue import enqueue
from requester.helpers import Node, Provider, make_node, person_json
from requester.test_journeys import AUTH, _journal, api, explicit, start, state


def _record(node: Node) -> tuple[list[str], list[bool]]:
    """Every statement the node's database runs while ``on[0]`` is true (one line each)."""
    seen: list[str] = []
    on = [True]

    def keep(conn: Connection, cursor: Any, statement: str, *_: Any) -> None:
        if on[0]:
            seen.append(" ".join(statement.split()))

    event.listen(node.ctx.database.engine, "before_cursor_execute", keep)
    return seen, on


def _queue_jobs(node: Node, kind: str) -> list[dict[str, Any]]:
    with node.ctx.database.session() as session:
        return [dict(p) for p in session.scalars(select(QueueJob.payload).where(QueueJob.kind == kind))]


def _due_exchanges(node: Node, count: int) -> list[str]:
    """``count`` exchanges waiting for a provider's answer, all past their deadline."""
    client = api(node)
    ids = []
    for _ in range(count):
        ex_id = start(node, client)
        explicit(node, client, ex_id)
        ids.append(ex_id)
    node.clock.advance(node.ctx.settings.requester.response_timeout_seconds)
    return ids


def test_an_exchange_writes_nothing_to_the_queue_for_its_timeout(tmp_path: Path, pki: CsPki) -> None:
    # Before, each exchange had a timeout job: enqueued with it, moved with each new deadline, cancelled
    # when it ended, three statements on queue_jobs inside the node's write transactions.
    node = make_node(tmp_path, pki, preview=False)
    client = api(node)
    seen, on = _record(node)
    reply = client.post(
        "/api/v1/exchanges",
        json={"procedure": "R1", "country": "BE", "person": person_json()},
        headers=AUTH,
    )
    ex_id = reply.json()["id"]
    on[0] = False
    node.drain()  # the discovery job (the worker's own statements are not counted)
    on[0] = True
    explicit(node, client, ex_id)
    node.deliver(Provider().evidence(*node.outbox.last_request()))
    assert state(client, ex_id)["state"] == "completed"
    on[0] = False
    queued = [s for s in seen if "queue_jobs" in s]
    assert [s.split(" (")[0] for s in queued] == ["INSERT INTO queue_jobs"]  # the discovery job, no other
    assert _queue_jobs(node, EXPIRE_JOB) == []


def test_the_sweep_ends_an_exchange_once_its_deadline_has_passed(tmp_path: Path, pki: CsPki) -> None:
    node = make_node(tmp_path, pki, preview=False, webhook_url="https://portal.example/hook")
    client = api(node)
    ex_id = start(node, client)
    explicit(node, client, ex_id)
    sweep = node.role.sweep
    node.clock.advance(node.ctx.settings.requester.response_timeout_seconds - 1)
    assert sweep() == 0
    assert state(client, ex_id)["state"] == "requesting"
    node.clock.advance(1)
    assert sweep() == 1
    view = state(client, ex_id)
    assert (view["state"], view["reason"]) == ("expired", "timeout")
    assert view["reason_text"]
    last = _journal(node)[-1]
    assert (last["exchange_id"], last["event"], last["outcome"]) == (ex_id, "timeout", "timeout")
    hooks = [p for p in _queue_jobs(node, WEBHOOK_JOB) if p["exchange"] == ex_id]
    assert (hooks[-1]["state"], hooks[-1]["reason"], hooks[-1]["version"]) == ("expired", "timeout", view["version"])
    assert sweep() == 0  # ended: not again
    assert state(client, ex_id)["version"] == view["version"]


def test_a_sweep_that_finds_nothing_due_takes_no_write_lock(tmp_path: Path, pki: CsPki) -> None:
    node = make_node(tmp_path, pki, preview=False)
    client = api(node)
    ex_id = start(node, client)
    seen, _ = _record(node)
    assert node.role.sweep() == 0
    assert [s.split(" ")[0] for s in seen] == ["SELECT"]  # one read; no BEGIN IMMEDIATE, no write
    assert state(client, ex_id)["state"] == "awaiting_explicit_request"


def test_the_sweep_ends_exchanges_a_batch_per_transaction(
    tmp_path: Path, pki: CsPki, monkeypatch: pytest.MonkeyPatch
) -> None:
    node = make_node(tmp_path, pki, preview=False)
    ids = _due_exchanges(node, 5)
    monkeypatch.setattr(role, "EXPIRY_BATCH", 2)
    commits = [0]
    event.listen(node.ctx.database.engine, "commit", lambda conn: commits.__setitem__(0, commits[0] + 1))
    assert [node.role.sweep() for _ in range(4)] == [2, 2, 1, 0]
    assert commits[0] == 3 * 2 + 1  # each batch: a read, then its own write transaction; the last: a read
    client = api(node)
    assert {state(client, ex_id)["state"] for ex_id in ids} == {"expired"}


def test_an_ended_exchange_past_its_deadline_is_left_alone(tmp_path: Path, pki: CsPki) -> None:
    node = make_node(tmp_path, pki, preview=False)
    client = api(node)
    ex_id = start(node, client)
    explicit(node, client, ex_id)
    node.deliver(Provider().evidence(*node.outbox.last_request()))
    done = state(client, ex_id)
    node.clock.advance(node.ctx.settings.requester.choice_timeout_seconds + 1)
    assert node.drain() == 0
    assert state(client, ex_id) == done


def _sweep_at_once(node: Node, sweeps: int) -> list[int]:
    """``sweeps`` threads sweeping side by side until each finds nothing: how many each ended."""
    ended = [0] * sweeps
    ready = threading.Barrier(sweeps)
    failed: list[BaseException] = []

    def run(i: int) -> None:
        try:
            ready.wait()
            while found := node.role.sweep():
                ended[i] += found
        except BaseException as exc:
            failed.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(sweeps)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not failed, failed
    return ended


def _expired_once(node: Node, ids: list[str]) -> None:
    client = api(node)
    assert {state(client, ex_id)["state"] for ex_id in ids} == {"expired"}
    timeouts = [e["exchange_id"] for e in _journal(node) if e["event"] == "timeout"]
    assert sorted(timeouts) == sorted(ids)  # one timeout each


def test_two_sweeps_at_once_end_each_exchange_once(tmp_path: Path, pki: CsPki, monkeypatch: pytest.MonkeyPatch) -> None:
    node = make_node(tmp_path, pki, preview=False)
    ids = _due_exchanges(node, 6)
    monkeypatch.setattr(role, "EXPIRY_BATCH", 2)
    assert sum(_sweep_at_once(node, 2)) == 6
    _expired_once(node, ids)


@pytest.fixture
def pg_node(tmp_path: Path, pki: CsPki, postgres_database: Callable[[], str]) -> Iterator[Node]:
    node = make_node(tmp_path, pki, preview=False, database_url=postgres_database())
    yield node
    node.ctx.database.dispose()


@pytest.mark.postgres
def test_two_sweeps_at_once_on_postgresql(pg_node: Node, monkeypatch: pytest.MonkeyPatch) -> None:
    node = pg_node
    ids = _due_exchanges(node, 6)
    requester = node.role.requester
    # A sweep holding rows it has not committed yet: another takes none of them (SKIP LOCKED), only
    # those nobody holds (it would then wait for the journal's head, which the first holds until it commits).
    with node.ctx.database.session(immediate=True) as first:
        assert requester.expire_due(first, limit=4) == 4
        with node.ctx.database.session(immediate=True) as second:
            free = second.execute(_DUE_LOCKED.limit(10), {"now": node.clock()}).scalars().all()
        assert len(free) == 2
    assert node.role.sweep() == 2
    timeouts = [e["exchange_id"] for e in _journal(node) if e["event"] == "timeout"]
    assert sorted(timeouts[-2:]) == sorted(free)  # the sweep after it ended the two the first left
    _expired_once(node, ids)
    # and threads sweeping side by side share the work
    more = _due_exchanges(node, 6)
    monkeypatch.setattr(role, "EXPIRY_BATCH", 2)
    assert sum(_sweep_at_once(node, 3)) == 6
    _expired_once(node, ids + more)


def test_a_timeout_job_left_from_before_the_sweep_still_works(tmp_path: Path, pki: CsPki) -> None:
    # A database from before the upgrade may still hold queued requester.expire jobs: the role still
    # handles them, ending their exchange when it is due, and doing nothing otherwise.
    node = make_node(tmp_path, pki, preview=False)
    client = api(node)
    due, ended = start(node, client), start(node, client)
    explicit(node, client, due)
    explicit(node, client, ended)
    node.deliver(Provider().evidence(*node.outbox.last_request()))
    with node.ctx.database.session() as session:
        for ex_id in (due, ended):  # as the node made them before (key ``<id>:deadline``)
            deadline = node.role.requester.load(session, ex_id).deadline
            enqueue(
                session, EXPIRE_JOB, {"exchange": ex_id}, key=f"{ex_id}:deadline", run_at=deadline, now=node.clock()
            )
    node.clock.advance(node.ctx.settings.requester.response_timeout_seconds)
    assert node.worker.drain() == 2  # the jobs alone, no sweep
    view = state(client, due)
    assert (view["state"], view["reason"]) == ("expired", "timeout")
    assert state(client, ended)["state"] == "completed"
    with node.ctx.database.session() as session:
        statuses = session.scalars(select(QueueJob.status).where(QueueJob.kind == EXPIRE_JOB)).all()
    assert statuses == ["done", "done"]
    assert node.role.sweep() == 0


def test_the_sweep_reads_the_state_and_deadline_index(tmp_path: Path, pki: CsPki) -> None:
    node = make_node(tmp_path, pki, preview=False)
    _plan_uses_index(node)


@pytest.mark.postgres
def test_the_sweep_reads_the_index_on_postgresql(pg_node: Node) -> None:
    _plan_uses_index(pg_node)


def _plan_uses_index(node: Node) -> None:
    database = node.ctx.database
    with database.connect() as conn:
        due = _DUE.limit(20).params(now=node.clock())
        sql = str(due.compile(conn, compile_kwargs={"literal_binds": True}))
        if database.is_sqlite:
            plan = " ".join(str(row[-1]) for row in conn.execute(text(f"EXPLAIN QUERY PLAN {sql}")))
        else:
            conn.execute(text("SET LOCAL enable_seqscan = off"))  # an empty table would be read whole anyway
            plan = " ".join(str(row[0]) for row in conn.execute(text(f"EXPLAIN {sql}")))
    assert "ix_requester_exchanges_state_deadline" in plan, plan
