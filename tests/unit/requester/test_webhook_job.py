"""The webhook job posts outside the job's transaction, so the node's writers never wait for a portal."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from oots.audit.journal import Journal
from oots.requester.webhooks import WebhookJob
from oots.settings import QueueSettings
from oots.store import Database
from oots.store import queue as q


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    url = request.getfixturevalue("postgres_database")() if request.param == "postgres" else None
    database = Database(url or f"sqlite:///{tmp_path / 'node.db'}")
    database.migrate()
    yield database
    database.dispose()


def _config() -> Any:
    client = SimpleNamespace(id="portal", webhook_url="https://portal.example/hook", webhook_secret=None)
    return SimpleNamespace(clients=[client], webhook_timeout_seconds=30.0)


def test_a_slow_webhook_does_not_hold_up_the_nodes_writers(db: Database) -> None:
    """A webhook queued after a step that appended to the journal: while the portal takes its time, another
    append commits (before, on SQLite the write lock and on PostgreSQL the journal's head stayed taken by
    the job's transaction for as long as the post took)."""
    journal = Journal("node", b"s" * 32, b"d" * 32)
    posting, answer = threading.Event(), threading.Event()
    appended = threading.Event()

    def portal(request: httpx.Request) -> httpx.Response:
        posting.set()
        assert answer.wait(30)
        return httpx.Response(204)

    webhooks = WebhookJob(_config(), transport=httpx.MockTransport(portal))
    worker = q.Worker(db, QueueSettings(group_commit_seconds=60))
    worker.register("step", lambda s, job: journal.append(s, side="requester", event="discovery_done"))
    worker.register("requester.webhook", webhooks.handle, prepare=webhooks.prepare)
    with db.session(immediate=True) as session:
        q.enqueue(session, "step", {})
        q.enqueue(session, "requester.webhook", {"client": "portal", "exchange": "e1", "state": "found"})

    def web_step() -> None:  # the portal creating another exchange: one journal entry
        with db.session(immediate=True) as session:
            journal.append(session, side="requester", event="exchange_created")
        appended.set()

    thread = threading.Thread(target=worker.run_once)
    thread.start()
    try:
        assert posting.wait(30)
        other = threading.Thread(target=web_step)
        other.start()
        assert appended.wait(10), "the append waited for the webhook's post"
        assert not answer.is_set()
    finally:
        answer.set()
        thread.join(60)
    other.join(60)
    with db.session() as session:
        assert q.counts(session) == {"step": {"done": 1}, "requester.webhook": {"done": 1}}
        assert journal.verify(session).head_seq == 2


def test_a_failed_post_made_ahead_fails_the_job_and_is_retried(db: Database) -> None:
    webhooks = WebhookJob(_config(), transport=httpx.MockTransport(lambda request: httpx.Response(503)))
    worker = q.Worker(db, QueueSettings())
    worker.register("requester.webhook", webhooks.handle, prepare=webhooks.prepare)
    with db.session(immediate=True) as session:
        job_id = q.enqueue(session, "requester.webhook", {"client": "portal", "exchange": "e1"})
    assert worker.run_once() == 1
    with db.session() as session:
        job = session.get(q.QueueJob, job_id)
        assert job is not None
        assert (job.status, job.attempts) == ("queued", 1)
        assert "answered HTTP 503" in (job.last_error or "")
