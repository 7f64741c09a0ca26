"""The requester's rows as plain records (written column by column) and the one timeout job of an exchange."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, event, select, text

from oots.cs.keys import CsPki
from oots.requester import EXPIRE_JOB, records
from oots.requester.records import ExchangeRecord, RequestRecord
from oots.store.models import QueueJob
from requester.helpers import Node, Provider, make_node
from requester.test_journeys import AUTH, _without_request_id, api, explicit, start, state


def _statements(node: Node) -> list[str]:
    seen: list[str] = []

    def keep(conn: Connection, cursor: Any, statement: str, *_: Any) -> None:
        seen.append(" ".join(statement.split()))

    event.listen(node.ctx.database.engine, "before_cursor_execute", keep)
    return seen


def _timeout_jobs(node: Node, ex_id: str) -> list[tuple[str | None, dt.datetime, str]]:
    with node.ctx.database.session() as session:
        jobs = session.execute(
            select(QueueJob.key, QueueJob.run_at, QueueJob.status)
            .where(QueueJob.kind == EXPIRE_JOB, QueueJob.payload["exchange"].as_string() == ex_id)
            .order_by(QueueJob.id)
        )
        return [tuple(job) for job in jobs]  # type: ignore[misc]


def _deadline(node: Node, ex_id: str) -> dt.datetime:
    with node.ctx.database.session() as session:
        return node.role.requester.load(session, ex_id).deadline


def test_a_record_writes_what_changed_once(tmp_path: Path, pki: CsPki) -> None:
    node = make_node(tmp_path, pki)
    now = node.clock()
    row: dict[str, Any] = {
        "id": "ex-1",
        "client_id": "portal",
        "procedure": "R1",
        "country": "BE",
        "subject": {"natural_person": {"identifier": {"value": "x"}}},
        "wanted": [],
        "requirements": [],
        "state": "discovering",
        "preview": False,
        "explicit_request_given": False,
        "version": 1,
        "created_at": now,
        "updated_at": now,
        "deadline": now,
    }
    request: dict[str, Any] = {
        "exchange_id": "ex-1",
        "position": 0,
        "requirement_id": "r",
        "evidence_type": "t",
        "data_service": {},
        "provider": {},
        "access_point": "AP_BE_01",
        "specification": "edm-v2",
        "status": "pending",
    }
    seen = _statements(node)
    with node.ctx.database.connect() as conn:
        ex, req = ExchangeRecord(row), RequestRecord(request)
        records.write(conn, [ex, req, RequestRecord({**request, "position": 1})])
        assert [s.split(" (")[0] for s in seen if not s.startswith("BEGIN")] == [
            "INSERT INTO requester_exchanges",
            "INSERT INTO requester_requests",  # both new requests in one statement
        ]
        seen.clear()
        loaded = records.load_exchange(conn, "ex-1")
        assert loaded is not None
        assert (loaded.state, loaded.subject, loaded.deadline) == ("discovering", row["subject"], now)
        assert not loaded.changed
        loaded.state, loaded.version = "failed", 2
        assert loaded.changed == {"state", "version"}
        records.write(conn, [loaded])
        records.write(conn, [loaded])  # nothing changed since
        records.write(conn, [records.load_exchange(conn, "ex-1")])  # nor on a record just read
    assert [s for s in seen if s.startswith("UPDATE")] == [
        "UPDATE requester_exchanges SET state=?, version=? WHERE requester_exchanges.id = ?"
    ]
    with node.ctx.database.session() as session:
        assert node.role.requester.load(session, "ex-1").state == "failed"


def test_an_answer_writes_only_the_columns_it_changes(tmp_path: Path, pki: CsPki) -> None:
    node = make_node(tmp_path, pki, preview=False)
    client = api(node)
    ex_id = start(node, client)
    explicit(node, client, ex_id)
    answer = Provider().evidence(*node.outbox.last_request())
    seen = _statements(node)
    node.deliver(answer)
    assert state(client, ex_id)["state"] == "completed"
    changes = [s.split(" WHERE")[0] for s in seen if s.startswith(("UPDATE requester", "INSERT INTO requester"))]
    assert changes == [
        "INSERT INTO requester_evidence (exchange_id, request_row, evidence_id, title, media_type, metadata_json, "
        "content, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        "UPDATE requester_exchanges SET state=?, version=?, updated_at=?",
        "UPDATE requester_requests SET status=?",
    ]


def test_an_exchange_deadline_follows_its_waits_without_a_job(tmp_path: Path, pki: CsPki) -> None:
    node = make_node(tmp_path, pki, preview=False)
    client = api(node)
    settings = node.ctx.settings.requester
    created = node.clock()
    ex_id = start(node, client)
    choice_deadline = created + dt.timedelta(seconds=settings.choice_timeout_seconds)
    assert _deadline(node, ex_id) == choice_deadline
    node.clock.advance(5)
    explicit(node, client, ex_id)  # waits for the answer: a deadline sooner than the choices'
    response_deadline = node.clock() + dt.timedelta(seconds=settings.response_timeout_seconds)
    assert _deadline(node, ex_id) == response_deadline < choice_deadline
    assert _timeout_jobs(node, ex_id) == []  # the sweep ends it at its deadline: no job made, moved or cancelled
    node.clock.advance(settings.response_timeout_seconds - 1)
    node.drain()
    assert state(client, ex_id)["state"] == "requesting"
    node.clock.advance(1)
    node.drain()
    view = client.get(f"/api/v1/exchanges/{ex_id}", headers=AUTH).json()
    assert (view["state"], view["reason"]) == ("expired", "timeout")


@pytest.mark.postgres
def test_exchanges_on_postgresql(tmp_path: Path, pki: CsPki, postgres_database: Callable[[], str]) -> None:
    node = make_node(tmp_path, pki, preview=True, database_url=postgres_database())
    client = api(node)
    ex_id = start(node, client)
    explicit(node, client, ex_id)
    provider = Provider()
    node.deliver(provider.preview(*node.outbox.last_request(), "https://ep.example/preview/z"))
    assert state(client, ex_id)["state"] == "awaiting_preview"
    node.deliver(provider.evidence(*node.outbox.last_request()))
    view = state(client, ex_id)
    assert view["state"] == "completed"
    (document,) = view["evidence"]
    assert client.get(document["href"].removeprefix("https://portal.example"), headers=AUTH).content.startswith(b"%PDF")
    assert document["evidence_type_title"] == "Birth certificate"
    assert document["issuing_authority"]  # read from the evidence's metadata (JSONB here)
    assert _timeout_jobs(node, ex_id) == []  # none made (the sweep ends exchanges at their deadline)
    late = start(node, client)
    explicit(node, client, late)
    refused = start(node, client)  # an error without a request id, found by its conversation
    explicit(node, client, refused)
    node.deliver(_without_request_id(provider.error(*node.outbox.last_request(), "EDM:ERR:0003")))
    assert state(client, refused)["reason"] == "request_refused"
    node.clock.advance(node.ctx.settings.requester.response_timeout_seconds)
    node.drain()
    assert (state(client, late)["state"], state(client, ex_id)["state"]) == ("expired", "completed")


def test_a_step_appends_its_journal_entries_at_once(tmp_path: Path, pki: CsPki) -> None:
    node = make_node(tmp_path, pki, preview=False)
    client = api(node)
    ex_id = start(node, client)
    seen = _statements(node)
    explicit(node, client, ex_id)
    assert len([s for s in seen if s.startswith("SELECT audit_head.seq")]) == 1  # the head locked once
    assert len([s for s in seen if s.startswith("INSERT INTO audit_entries")]) == 1  # both entries in one go
    with node.ctx.database.session() as session:
        journal = node.role.requester.journal
        assert journal is not None
        entries = sorted(journal.search(session, exchange_id=ex_id), key=lambda e: e.seq)
        assert [e.event for e in entries][-2:] == ["explicit_request_given", "request_sent"]
        assert journal.verify(session).ok


def _waiting_on_a_lock(node: Node) -> bool:
    with node.ctx.database.session() as session:
        waiting = session.execute(
            text(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
            )
        ).scalar_one()
    return bool(waiting)


@pytest.mark.postgres
def test_an_answer_waits_for_a_cancel_and_then_sees_it(
    tmp_path: Path, pki: CsPki, postgres_database: Callable[[], str]
) -> None:
    # Before, the answer read the exchange while the cancel was not committed yet, then wrote over it: the
    # cancelled exchange was back to requesting, kept the evidence and sent the person's data to the next provider.
    node = make_node(tmp_path, pki, two_requirements=True, preview=False, database_url=postgres_database())
    client = api(node)
    ex_id = start(node, client)
    explicit(node, client, ex_id)
    answer = Provider().evidence(*node.outbox.last_request())
    sent = len(node.outbox.sent)
    cancelled, commit = threading.Event(), threading.Event()

    def cancel() -> None:
        with node.ctx.database.session() as session:
            node.role.requester.cancel(session, ex_id, "portal")
            cancelled.set()
            commit.wait(30)

    canceller = threading.Thread(target=cancel)
    canceller.start()
    assert cancelled.wait(30)
    deliverer = threading.Thread(target=node.deliver, args=(answer,))
    deliverer.start()
    for _ in range(3000):  # until the answer's transaction waits for the cancel's lock
        if _waiting_on_a_lock(node) or not deliverer.is_alive():
            break
        threading.Event().wait(0.01)
    commit.set()
    canceller.join(30)
    deliverer.join(30)
    view = state(client, ex_id)
    assert (view["state"], view["reason"]) == ("failed", "cancelled")
    assert view["evidence"] == []
    assert len(node.outbox.sent) == sent  # nothing more went out
    assert [r["status"] for r in view["requests"]] == ["sent", "pending"]
