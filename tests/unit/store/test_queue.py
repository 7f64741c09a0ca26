"""The durable work queue on SQLite and PostgreSQL: enqueue, claim, lease, retry, dead letters, stop."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import event, func, select, text
from sqlalchemy.orm import Session

from oots.audit.journal import Journal
from oots.errors import CertificateNotValid, LeaseExpired, NotFound, RegisterError, StoreError
from oots.settings import QueueSettings
from oots.store import Database
from oots.store import queue as q
from oots.store.models import QueueJob

from .conftest import Clock

SETTINGS = QueueSettings(
    lease_seconds=30, max_attempts=3, backoff_base_seconds=10, backoff_max_seconds=100, batch_size=10
)


class FixedRandom:
    """A stand-in for random.Random that always draws the same number."""

    def __init__(self, value: float) -> None:
        self.value = value

    def random(self) -> float:
        return self.value


def ledger(session: Session, job: q.Job, note: str = "") -> None:
    """A handler's database effect: one ledger row per run."""
    session.execute(
        text("INSERT INTO ledger (job_id, worker, note) VALUES (:j, :w, :n)"), {"j": job.id, "w": "x", "n": note}
    )


def ledger_rows(db: Database) -> list[int]:
    with db.session() as s:
        return list(s.scalars(text("SELECT job_id FROM ledger ORDER BY job_id")))


def job_row(db: Database, job_id: int) -> QueueJob:
    with db.session() as s:
        row = s.get(QueueJob, job_id)
        assert row is not None
        return row


def worker(db: Database, clock: Clock, handlers: dict[str, q.Handler], **kw: Any) -> q.Worker:
    settings = kw.pop("settings", SETTINGS)
    return q.Worker(db, settings, handlers=handlers, clock=clock, rng=FixedRandom(1.0), **kw)  # type: ignore[arg-type]


# --- enqueue --------------------------------------------------------------------------------------


def test_enqueue_keeps_the_payload(db: Database, clock: Clock) -> None:
    payload = {"to": "BE", "ids": [1, 2], "nested": {"ok": True, "x": None}, "text": "Zoë"}
    with db.session() as s:
        job_id = q.enqueue(s, "send", payload, now=clock())
    row = job_row(db, job_id)
    assert (row.kind, row.payload, row.status, row.attempts) == ("send", payload, "queued", 0)
    assert row.run_at == clock()
    assert row.run_at.tzinfo is not None


def test_enqueue_with_the_same_key_returns_the_first_job(db: Database) -> None:
    with db.session() as s:
        first = q.enqueue(s, "send", {"n": 1}, key="msg-1")
        again = q.enqueue(s, "send", {"n": 2}, key="msg-1")
    with db.session() as s:
        later = q.enqueue(s, "send", {"n": 3}, key="msg-1")
        other_kind = q.enqueue(s, "receipt", {"n": 4}, key="msg-1")
        no_key = [q.enqueue(s, "send", {"n": 5}), q.enqueue(s, "send", {"n": 5})]
    assert first == again == later
    assert len({first, other_kind, *no_key}) == 4
    assert job_row(db, first).payload == {"n": 1}
    with db.session() as s:
        assert q.counts(s) == {"send": {"queued": 3}, "receipt": {"queued": 1}}


def test_a_key_stays_taken_after_the_job_is_done(db: Database, clock: Clock) -> None:
    with db.session() as s:
        first = q.enqueue(s, "send", {}, key="k", now=clock())
    worker(db, clock, {"send": ledger}).drain()
    with db.session() as s:
        assert q.enqueue(s, "send", {}, key="k") == first
    assert ledger_rows(db) == [first]


def test_enqueue_belongs_to_the_callers_transaction(db: Database) -> None:
    class Boom(Exception):
        pass

    def enqueue_then_fail() -> None:
        with db.session() as s:
            q.enqueue(s, "send", {"n": 1})
            raise Boom

    with pytest.raises(Boom):
        enqueue_then_fail()
    with db.session() as s:
        assert q.counts(s) == {}


@pytest.mark.parametrize(
    ("kind", "payload", "key", "message"),
    [
        ("", {}, None, "job kind"),
        ("k" * 101, {}, None, "job kind"),
        ("send", {1, 2}, None, "plain JSON"),
        ("send", {"x": float("nan")}, None, "plain JSON"),
        ("send", {}, "", "job key"),
        ("send", {}, "k" * 201, "job key"),
    ],
)
def test_enqueue_refuses_bad_input(db: Database, kind: str, payload: Any, key: str | None, message: str) -> None:
    with db.session() as s, pytest.raises(StoreError, match=message):
        q.enqueue(s, kind, payload, key=key)


def test_enqueue_many_returns_ids_in_order(db: Database) -> None:
    with db.session() as s:
        ids = q.enqueue_many(s, "bulk", [{"i": i} for i in range(50)])
        assert q.enqueue_many(s, "bulk", []) == []
    assert len(set(ids)) == 50
    assert [job_row(db, i).payload["i"] for i in ids] == list(range(50))


def test_cancel_marks_queued_jobs_done_unrun(db: Database, clock: Clock) -> None:
    later = clock() + timedelta(seconds=600)
    with db.session() as s:
        due = q.enqueue(s, "timer", {}, key="due", now=clock())
        waiting = q.enqueue(s, "timer", {}, key="later", run_at=later, now=clock())
        kept = q.enqueue(s, "timer", {}, key="kept", run_at=later, now=clock())
        other_kind = q.enqueue(s, "other", {}, key="due", now=clock())
    clock.advance(5)
    with db.session() as s:
        assert q.cancel(s, "timer", ["due", "later", "nope"], now=clock()) == 2
        assert q.cancel(s, "timer", [], now=clock()) == 0
    for job_id in (due, waiting):
        row = job_row(db, job_id)
        assert (row.status, row.finished_at, row.locked_by, row.attempts) == ("done", clock(), None, 0)
    assert job_row(db, kept).status == job_row(db, other_kind).status == "queued"
    with db.session() as s:  # its key still deduplicates: the same job comes back, done
        assert q.enqueue(s, "timer", {}, key="due", now=clock()) == due
        assert q.cancel(s, "timer", ["due"], now=clock()) == 0  # done already
    ran: list[int] = []
    clock.advance(600)
    assert worker(db, clock, {"timer": lambda s, j: ran.append(j.id), "other": lambda s, j: None}).drain() == 2
    assert ran == [kept]


def test_cancel_in_a_transaction_that_fails_cancels_nothing(db: Database, clock: Clock) -> None:
    with db.session() as s:
        job = q.enqueue(s, "timer", {}, key="t", now=clock())

    def cancel_then_fail() -> None:
        with db.session() as s:
            q.cancel(s, "timer", ["t"], now=clock())
            raise ZeroDivisionError

    with pytest.raises(ZeroDivisionError):
        cancel_then_fail()
    assert job_row(db, job).status == "queued"


def test_cancel_leaves_a_job_a_worker_holds_to_its_worker(db: Database, clock: Clock) -> None:
    # The job was claimed just before the cancelling transaction: its worker still completes it (and
    # its handler, finding nothing to do, does nothing); a cancel does not break the lease.
    with db.session() as s:
        job = q.enqueue(s, "timer", {}, key="t", now=clock())
    w = worker(db, clock, {"timer": ledger})
    (claimed,) = w.claim_batch()
    with db.session() as s:
        assert q.cancel(s, "timer", ["t"], now=clock()) == 0
    row = job_row(db, job)
    assert (row.status, row.locked_by) == ("running", w.id)
    with db.session() as s:
        assert q.complete(s, [claimed], w.id, now=clock()) == [claimed]
    assert job_row(db, job).status == "done"


def test_cancel_waits_for_a_claim_in_progress_and_leaves_its_job(db: Database, clock: Clock) -> None:
    # PostgreSQL: a claim that has locked the job makes the cancel wait, which then finds it taken.
    if db.is_sqlite:
        pytest.skip("one writer at a time on SQLite: a claim and a cancel never overlap")
    with db.session() as s:
        job = q.enqueue(s, "timer", {}, key="t", now=clock())
    cancelled: list[int] = []

    def cancel() -> None:
        with db.session() as s:
            cancelled.append(q.cancel(s, "timer", ["t"], now=clock()))

    with db.connect() as conn:
        taken = q.claim(conn, "w1", kinds=["timer"], limit=1, lease_seconds=30, default_max_attempts=3, now=clock())
        assert [j.id for j in taken] == [job]
        other = threading.Thread(target=cancel)
        other.start()
        other.join(0.5)
        assert other.is_alive()  # waiting for the claim's row lock
    other.join(10)
    assert cancelled == [0]
    assert (job_row(db, job).status, job_row(db, job).locked_by) == ("running", "w1")


def test_cancel_takes_a_retrying_job_and_leaves_a_dead_one(db: Database, clock: Clock) -> None:
    with db.session() as s:
        retrying = q.enqueue(s, "timer", {}, key="retrying", now=clock())
        dead = q.enqueue(s, "timer", {}, key="dead", max_attempts=1, now=clock())

    def boom(session: Session, job: q.Job) -> None:
        raise ZeroDivisionError

    assert worker(db, clock, {"timer": boom}).drain() == 2
    assert (job_row(db, retrying).status, job_row(db, dead).status) == ("queued", "dead")
    with db.session() as s:
        assert q.cancel(s, "timer", ["retrying", "dead"], now=clock()) == 1
    assert (job_row(db, retrying).status, job_row(db, dead).status) == ("done", "dead")


# --- running --------------------------------------------------------------------------------------


def test_a_worker_runs_due_jobs_oldest_first_and_marks_them_done(db: Database, clock: Clock) -> None:
    with db.session() as s:
        late = q.enqueue(s, "a", {}, run_at=clock() + timedelta(seconds=60), now=clock())
        first = q.enqueue(s, "a", {}, run_at=clock() - timedelta(seconds=5), now=clock())
        second = q.enqueue(s, "a", {}, now=clock())
    seen: list[tuple[int, int]] = []
    w = worker(db, clock, {"a": lambda s, j: seen.append((j.id, j.attempts))})
    assert w.drain() == 2
    assert seen == [(first, 1), (second, 1)]
    assert job_row(db, first).status == "done"
    assert job_row(db, first).finished_at == clock()
    assert job_row(db, late).status == "queued"
    clock.advance(60)
    assert w.drain() == 1
    assert seen[-1] == (late, 1)


def test_a_worker_claims_only_kinds_it_has_handlers_for(db: Database, clock: Clock) -> None:
    with db.session() as s:
        mine = q.enqueue(s, "mine", {}, now=clock())
        theirs = q.enqueue(s, "theirs", {}, now=clock())
    assert worker(db, clock, {"mine": ledger}).drain() == 1
    assert job_row(db, mine).status == "done"
    row = job_row(db, theirs)
    assert (row.status, row.attempts) == ("queued", 0)


def test_the_handlers_effects_commit_with_the_completion(db: Database, clock: Clock) -> None:
    def handler(s: Session, job: q.Job) -> None:
        ledger(s, job, note=job.payload["note"])
        q.enqueue(s, "follow-up", {"after": job.id})

    with db.session() as s:
        job_id = q.enqueue(s, "a", {"note": "hello"}, now=clock())
    worker(db, clock, {"a": handler}).drain()
    assert ledger_rows(db) == [job_id]
    with db.session() as s:
        assert q.counts(s) == {"a": {"done": 1}, "follow-up": {"queued": 1}}


def test_a_group_of_jobs_shares_one_commit(db: Database, clock: Clock) -> None:
    with db.session() as s:
        ids = q.enqueue_many(s, "a", [{}] * 5, now=clock())
    w = worker(db, clock, {"a": ledger}, settings=SETTINGS.model_copy(update={"group_commit_seconds": 3600}))
    commits: list[object] = []

    def count(conn: object) -> None:
        commits.append(conn)

    event.listen(db.engine, "commit", count)
    try:
        assert w.run_once() == 5
    finally:
        event.remove(db.engine, "commit", count)
    assert len(commits) == 2  # the claim, then the whole group
    assert ledger_rows(db) == ids
    assert {job_row(db, i).status for i in ids} == {"done"}


def test_without_group_commit_each_job_commits_alone(db: Database, clock: Clock) -> None:
    with db.session() as s:
        q.enqueue_many(s, "a", [{}] * 3, now=clock())
    w = worker(db, clock, {"a": ledger}, settings=SETTINGS.model_copy(update={"group_commit_seconds": 0}))
    commits: list[object] = []

    def count(conn: object) -> None:
        commits.append(conn)

    event.listen(db.engine, "commit", count)
    try:
        assert w.run_once() == 3
    finally:
        event.remove(db.engine, "commit", count)
    assert len(commits) == 4


def test_preparers_run_before_the_jobs_transaction_without_the_write_lock(db: Database, clock: Clock) -> None:
    with db.session() as s:
        ids = q.enqueue_many(s, "a", [{"n": i} for i in range(3)], now=clock())
    events: list[str] = []

    def prepare(job: q.Job) -> None:
        # another writer can commit now: the preparer holds no write transaction
        with db.session(immediate=True) as s:
            s.execute(text("INSERT INTO ledger (job_id, worker, note) VALUES (:j, 'p', 'prepared')"), {"j": -job.id})
        events.append(f"prepare {job.payload['n']}")

    def handle(session: Session, job: q.Job) -> None:
        events.append(f"handle {job.payload['n']}")
        ledger(session, job)

    w = q.Worker(db, SETTINGS.model_copy(update={"group_commit_seconds": 3600}), clock=clock)
    w.register("a", handle, prepare=prepare)
    assert w.run_once() == 3
    # every job of the group is prepared before the group's transaction, each only once
    assert events == ["prepare 0", "prepare 1", "prepare 2", "handle 0", "handle 1", "handle 2"]
    assert ledger_rows(db) == sorted([-i for i in ids]) + ids


def test_a_failing_preparer_leaves_the_work_to_the_handler(
    db: Database, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    with db.session() as s:
        (job_id,) = q.enqueue_many(s, "a", [{}], now=clock())

    def prepare(job: q.Job) -> None:
        raise RuntimeError("cannot prepare")

    w = q.Worker(db, SETTINGS, clock=clock)
    w.register("a", ledger, prepare=prepare)
    with caplog.at_level("DEBUG", logger="oots.store.queue"):
        assert w.run_once() == 1
    assert ledger_rows(db) == [job_id]
    assert job_row(db, job_id).status == "done"
    assert "preparing failed (cannot prepare)" in caplog.text


def test_a_failure_in_a_group_rolls_back_only_the_failure_for_good(db: Database, clock: Clock) -> None:
    runs: list[int] = []

    def handler(s: Session, job: q.Job) -> None:
        runs.append(job.id)
        ledger(s, job)
        if job.payload["fail"]:
            raise RuntimeError("no")

    with db.session() as s:
        ids = q.enqueue_many(s, "a", [{"fail": n == 2} for n in range(5)], now=clock())
    w = worker(db, clock, {"a": handler}, settings=SETTINGS.model_copy(update={"group_commit_seconds": 3600}))
    assert w.run_once() == 5
    assert ledger_rows(db) == [i for n, i in enumerate(ids) if n != 2]
    assert [job_row(db, i).status for i in ids] == ["done", "done", "queued", "done", "done"]
    assert [job_row(db, i).attempts for i in ids] == [1, 1, 1, 1, 1]
    # the jobs run before the failure in its group were rolled back with it and run again
    assert runs == [ids[0], ids[1], ids[2], ids[0], ids[1], ids[3], ids[4]]


def test_a_group_whose_commit_fails_is_run_again_job_by_job(db: Database, clock: Clock) -> None:
    broken = {"commit": True}

    def handler(s: Session, job: q.Job) -> None:
        ledger(s, job)
        if broken["commit"]:

            @event.listens_for(s, "before_commit")
            def refuse(session: Session) -> None:
                if broken["commit"] and not session.in_nested_transaction():
                    broken["commit"] = False
                    raise RuntimeError("the disk is full")

    with db.session() as s:
        ids = q.enqueue_many(s, "a", [{}, {}, {}], now=clock())
    w = worker(db, clock, {"a": handler}, settings=SETTINGS.model_copy(update={"group_commit_seconds": 3600}))
    assert w.run_once() == 3
    assert ledger_rows(db) == ids
    assert {job_row(db, i).status for i in ids} == {"done"}
    assert {job_row(db, i).attempts for i in ids} == {1}


def test_a_failing_handlers_effects_are_rolled_back_and_the_job_retried(db: Database, clock: Clock) -> None:
    def handler(s: Session, job: q.Job) -> None:
        ledger(s, job)
        q.enqueue(s, "follow-up", {})
        raise RuntimeError("peer said no")

    with db.session() as s:
        job_id = q.enqueue(s, "a", {}, now=clock())
    assert worker(db, clock, {"a": handler}).drain() == 1
    assert ledger_rows(db) == []
    row = job_row(db, job_id)
    assert (row.status, row.attempts, row.locked_by) == ("queued", 1, None)
    assert row.last_error == "RuntimeError"  # not its message: it may quote personal data
    assert row.run_at == clock() + timedelta(seconds=10)  # base 10 s, jitter drawn at its top
    with db.session() as s:
        assert q.counts(s) == {"a": {"queued": 1}}


def test_last_error_keeps_no_foreign_message_but_an_oots_one(db: Database, clock: Clock) -> None:
    def handler(s: Session, job: q.Job) -> None:
        if job.kind == "a":
            raise KeyError("García Márquez")  # a foreign message may quote the data it choked on
        raise RegisterError("register es-births answered HTTP 500", register="es-births")

    with db.session() as s:
        a = q.enqueue(s, "a", {}, now=clock())
        b = q.enqueue(s, "b", {}, now=clock())
    worker(db, clock, {"a": handler, "b": handler}).drain()
    assert job_row(db, a).last_error == "KeyError"
    assert job_row(db, b).last_error == "RegisterError: register es-births answered HTTP 500"


def test_a_handler_that_breaks_the_commit_counts_as_a_failure(db: Database, clock: Clock) -> None:
    def handler(s: Session, job: q.Job) -> None:
        s.execute(text("INSERT INTO ledger (job_id, worker) VALUES (:j, NULL)"), {"j": job.id})

    with db.session() as s:
        job_id = q.enqueue(s, "a", {}, now=clock())
    worker(db, clock, {"a": handler}).drain()
    row = job_row(db, job_id)
    assert row.status == "queued"
    assert row.last_error is not None
    assert "IntegrityError" in row.last_error


def test_retries_follow_the_backoff_schedule_then_dead_letter(db: Database, clock: Clock) -> None:
    def handler(s: Session, job: q.Job) -> None:
        raise ValueError(f"attempt {job.attempts}")

    with db.session() as s:
        job_id = q.enqueue(s, "a", {}, now=clock())
    w = worker(db, clock, {"a": handler})
    delays = []
    for attempt in (1, 2):
        assert w.drain() == 1
        row = job_row(db, job_id)
        assert (row.status, row.attempts, row.last_error) == ("queued", attempt, "ValueError")
        delays.append((row.run_at - clock()).total_seconds())
        assert w.drain() == 0  # not due yet
        clock.now = row.run_at
    assert delays == [10, 20]
    assert w.drain() == 1
    row = job_row(db, job_id)
    assert (row.status, row.attempts, row.last_error) == ("dead", 3, "ValueError")
    clock.advance(10_000)
    assert w.drain() == 0


def test_an_error_that_is_not_retryable_dead_letters_the_job_at_once(
    db: Database, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    # Before, an expired partner certificate was retried with backoff until the attempts ran out.
    def handler(s: Session, job: q.Job) -> None:
        ledger(s, job)
        raise CertificateNotValid("the encryption certificate of AS4 partner red (red_gw) expired on 2026-01-01")

    with db.session() as s:
        job_id = q.enqueue(s, "a", {}, now=clock())
    with caplog.at_level("ERROR", logger="oots.store.queue"):
        assert worker(db, clock, {"a": handler}).drain() == 1
    row = job_row(db, job_id)
    assert (row.status, row.attempts, row.finished_at) == ("dead", 1, clock())
    assert row.last_error == (
        "CertificateNotValid: the encryption certificate of AS4 partner red (red_gw) expired on 2026-01-01"
    )
    assert ledger_rows(db) == []  # the handler's effects are rolled back, as for any failure
    (record,) = caplog.records
    assert record.getMessage() == f"job {job_id} (a) dead-lettered at once, not retried: {row.last_error}"


def test_the_on_dead_hook_runs_in_the_transaction_that_dead_letters_the_job(db: Database, clock: Clock) -> None:
    told: list[tuple[int, str]] = []

    def handler(s: Session, job: q.Job) -> None:
        ledger(s, job, "handler")
        if job.kind == "certificate":
            raise CertificateNotValid("the signing certificate of AS4 partner red (red_gw) expired")
        raise RuntimeError("down")

    def on_dead(s: Session, job: q.Job, exc: BaseException) -> None:
        ledger(s, job, "dead")
        told.append((job.id, type(exc).__name__))

    with db.session() as s:
        certificate = q.enqueue(s, "certificate", {}, now=clock())
        down = q.enqueue(s, "down", {}, max_attempts=2, now=clock())
    w = worker(db, clock, {})
    w.register("certificate", handler, on_dead=on_dead)
    w.register("down", handler, on_dead=on_dead)
    w.drain()
    assert told == [(certificate, "CertificateNotValid")]  # the other is retried: not dead yet
    assert ledger_rows(db) == [certificate]  # the hook's row, committed with the dead letter
    clock.advance(10)
    w.drain()
    assert told == [(certificate, "CertificateNotValid"), (down, "RuntimeError")]  # out of attempts
    assert job_row(db, down).status == "dead"


def test_a_failing_on_dead_hook_does_not_keep_the_job_from_its_dead_letter(db: Database, clock: Clock) -> None:
    def handler(s: Session, job: q.Job) -> None:
        raise CertificateNotValid("expired")

    def on_dead(s: Session, job: q.Job, exc: BaseException) -> None:
        ledger(s, job)
        raise RuntimeError("the hook is broken")

    with db.session() as s:
        job_id = q.enqueue(s, "a", {}, now=clock())
    w = worker(db, clock, {})
    w.register("a", handler, on_dead=on_dead)
    w.drain()
    assert job_row(db, job_id).status == "dead"
    assert ledger_rows(db) == []  # the hook's savepoint was rolled back


def test_a_job_may_allow_more_or_fewer_attempts_than_the_default(db: Database, clock: Clock) -> None:
    def handler(s: Session, job: q.Job) -> None:
        raise ValueError("no")

    with db.session() as s:
        once = q.enqueue(s, "a", {}, max_attempts=1, now=clock())
    worker(db, clock, {"a": handler}).drain()
    assert job_row(db, once).status == "dead"
    with db.session() as s, pytest.raises(StoreError, match="max_attempts"):
        q.enqueue(s, "a", {}, max_attempts=0)


@pytest.mark.parametrize(
    ("attempt", "draw", "expected"),
    [(1, 1.0, 10), (2, 1.0, 20), (3, 1.0, 40), (4, 1.0, 80), (5, 1.0, 100), (60, 1.0, 100), (1, 0.0, 5), (3, 0.5, 30)],
)
def test_backoff_doubles_up_to_the_cap_with_jitter_in_its_upper_half(
    attempt: int, draw: float, expected: float
) -> None:
    assert q.backoff_delay(attempt, SETTINGS, FixedRandom(draw)) == pytest.approx(expected)  # type: ignore[arg-type]


def test_backoff_with_real_randomness_stays_within_bounds() -> None:
    for attempt in range(1, 12):
        ceiling = min(100.0, 10.0 * 2 ** (attempt - 1))
        assert ceiling / 2 <= q.backoff_delay(attempt, SETTINGS) <= ceiling


# --- dead letters and inspection ------------------------------------------------------------------


def test_dead_jobs_are_listed_and_can_be_requeued(db: Database, clock: Clock) -> None:
    fail = {"on": True}

    def handler(s: Session, job: q.Job) -> None:
        if fail["on"]:
            raise RuntimeError("down")
        ledger(s, job)

    with db.session() as s:
        dead_a = q.enqueue(s, "a", {}, max_attempts=1, now=clock())
        dead_b = q.enqueue(s, "b", {}, max_attempts=1, now=clock())
    w = worker(db, clock, {"a": handler, "b": handler})
    w.drain()
    with db.session() as s:
        assert {j.id for j in q.list_dead(s)} == {dead_a, dead_b}
        assert [j.id for j in q.list_dead(s, kind="a")] == [dead_a]
        assert q.list_dead(s)[0].last_error == "RuntimeError"
        assert q.requeue(s, dead_a, now=clock()) == "a"
        with pytest.raises(NotFound):
            q.requeue(s, dead_a)  # no longer dead
        with pytest.raises(NotFound):
            q.requeue(s, 999_999)
    row = job_row(db, dead_a)
    assert (row.status, row.attempts, row.finished_at) == ("queued", 0, None)
    fail["on"] = False
    assert w.drain() == 1
    assert job_row(db, dead_a).status == "done"
    with db.session() as s:
        assert q.requeue_dead(s, kind="b", now=clock()) == 1
    assert w.drain() == 1
    assert ledger_rows(db) == sorted([dead_a, dead_b])


def test_dead_jobs_can_be_discarded_unrun(db: Database, clock: Clock) -> None:
    hooked: list[int] = []

    def boom(s: Session, job: q.Job) -> None:
        raise RuntimeError("down")

    with db.session() as s:
        first = q.enqueue(s, "a", {}, key="first", max_attempts=1, now=clock())
        second = q.enqueue(s, "a", {}, max_attempts=1, now=clock())
        other = q.enqueue(s, "b", {}, max_attempts=1, now=clock())
    w = worker(db, clock, {"a": boom, "b": boom})
    w.register("c", ledger, on_dead=lambda s, job, exc: hooked.append(job.id))
    w.drain()
    with db.session() as s:
        waiting = q.enqueue(s, "c", {}, run_at=clock() + timedelta(hours=1), now=clock())
    failed_at = clock()
    clock.advance(3600)
    with db.session() as s:
        assert q.discard(s, first, now=clock()) == "a"
        with pytest.raises(NotFound, match=f"no dead job {first}: it is done, and only a dead job can be discarded"):
            q.discard(s, first)
        with pytest.raises(NotFound, match=f"no dead job {waiting}: it is queued"):
            q.discard(s, waiting)
        with pytest.raises(NotFound, match=r"no dead job 999999 \(no job has that id\)"):
            q.discard(s, 999_999)
        with pytest.raises(NotFound, match=f"no dead job {first}: it is done, and only a dead job can be requeued"):
            q.requeue(s, first)
    row = job_row(db, first)
    assert (row.status, row.attempts, row.locked_by, row.locked_until) == ("done", 1, None, None)
    assert row.finished_at == clock() != failed_at  # purge_done counts from the discarding
    assert row.last_error == "RuntimeError; discarded unrun by an operator at 2026-11-27T13:00:00+00:00"
    with db.session() as s:
        assert q.enqueue(s, "a", {}, key="first") == first  # its key still deduplicates, the job stays done
        assert q.discard_dead(s, kind="b", now=clock()) == 1
        assert [j.id for j in q.list_dead(s)] == [second]
        assert q.discard_dead(s, now=clock()) == 1
        assert q.discard_dead(s, now=clock()) == 0
        assert q.counts(s) == {"a": {"done": 2}, "b": {"done": 1}, "c": {"queued": 1}}
    clock.advance(3600)
    assert w.drain() == 1  # the queued job only: a discarded one never runs
    assert ledger_rows(db) == [waiting]
    assert hooked == []  # no on_dead hook runs for a discarded job (it ran when the job died)
    assert job_row(db, other).last_error == "RuntimeError; discarded unrun by an operator at 2026-11-27T13:00:00+00:00"
    with db.session() as s:
        assert q.purge_done(s, older_than=failed_at + timedelta(seconds=1)) == 0  # not before its discarding
        assert q.purge_done(s, older_than=clock() + timedelta(seconds=1)) == 4
        assert q.counts(s) == {}


def test_a_discarded_jobs_note_fits_beside_any_last_error(db: Database, clock: Clock) -> None:
    with db.session() as s:
        long, none = q.enqueue(s, "a", {}, now=clock()), q.enqueue(s, "a", {}, now=clock())
        s.execute(q.QueueJob.__table__.update().where(QueueJob.id == long).values(status="dead", last_error="x" * 4000))
        s.execute(q.QueueJob.__table__.update().where(QueueJob.id == none).values(status="dead", last_error=None))
        assert q.discard_dead(s, now=clock()) == 2
    note = "discarded unrun by an operator at 2026-11-27T12:00:00+00:00"
    cut = job_row(db, long).last_error
    assert cut is not None
    assert len(cut) == q.MAX_ERROR_LENGTH
    assert cut.endswith("xxx; " + note)
    assert job_row(db, none).last_error == note


def test_counts_and_purge(db: Database, clock: Clock) -> None:
    with db.session() as s:
        q.enqueue_many(s, "a", [{}, {}, {}], now=clock())
        q.enqueue(s, "b", {}, now=clock())
    w = worker(db, clock, {"a": ledger}, settings=SETTINGS.model_copy(update={"batch_size": 2}))
    assert w.run_once() == 2
    with db.session() as s:
        assert q.counts(s) == {"a": {"done": 2, "queued": 1}, "b": {"queued": 1}}
        assert q.purge_done(s, older_than=clock()) == 0
        assert q.purge_done(s, older_than=clock() + timedelta(seconds=1)) == 2
        assert q.counts(s) == {"a": {"queued": 1}, "b": {"queued": 1}}


# --- leases ---------------------------------------------------------------------------------------


def test_an_expired_lease_makes_the_job_claimable_again(db: Database, clock: Clock) -> None:
    with db.session() as s:
        job_id = q.enqueue(s, "a", {}, now=clock())
    crashed = worker(db, clock, {"a": ledger}, worker_id="crashed")
    rescuer = worker(db, clock, {"a": ledger}, worker_id="rescuer")
    [held] = crashed.claim_batch()  # ...and then the process dies
    assert (held.id, held.attempts) == (job_id, 1)
    row = job_row(db, job_id)
    assert (row.status, row.locked_by, row.locked_until) == ("running", "crashed", clock() + timedelta(seconds=30))
    clock.advance(29)
    assert rescuer.claim_batch() == []
    clock.advance(1)
    [again] = rescuer.claim_batch()
    assert (again.id, again.attempts) == (job_id, 2)
    assert job_row(db, job_id).locked_by == "rescuer"


def test_a_worker_that_lost_its_lease_commits_nothing(db: Database, clock: Clock) -> None:
    with db.session() as s:
        job_id = q.enqueue(s, "a", {}, now=clock())
    slow = worker(db, clock, {"a": ledger}, worker_id="slow")
    fast = worker(db, clock, {"a": ledger}, worker_id="fast")
    [held] = slow.claim_batch()
    clock.advance(31)
    assert fast.drain() == 1  # took the job over and finished it
    slow._run_group([held])  # the slow worker finally gets to it: it must not run it
    assert ledger_rows(db) == [job_id]
    row = job_row(db, job_id)
    assert (row.status, row.attempts) == ("done", 2)


def test_an_expired_lease_without_attempts_left_dead_letters_the_job(db: Database, clock: Clock) -> None:
    with db.session() as s:
        job_id = q.enqueue(s, "a", {}, max_attempts=1, now=clock())
    worker(db, clock, {"a": ledger}, worker_id="w1").claim_batch()
    clock.advance(31)
    assert worker(db, clock, {"a": ledger}).drain() == 0
    row = job_row(db, job_id)
    assert row.status == "dead"
    assert row.last_error is not None
    assert "lease expired" in row.last_error
    assert "w1" in row.last_error


def test_a_job_dead_lettered_by_its_expired_lease_runs_its_on_dead_hook(db: Database, clock: Clock) -> None:
    # Before, only a job whose handler failed ran its hook: a worker killed on the last attempt left no trace.
    told: list[tuple[int, int, Any, str]] = []

    def on_dead(s: Session, job: q.Job, exc: BaseException) -> None:
        ledger(s, job, "dead")
        told.append((job.id, job.attempts, job.payload, str(exc)))
        assert isinstance(exc, LeaseExpired)

    with db.session() as s:
        last = q.enqueue(s, "a", {"n": 1}, key="k1", max_attempts=1, now=clock())
        spare = q.enqueue(s, "a", {"n": 2}, max_attempts=2, now=clock())
        unhooked = q.enqueue(s, "b", {}, max_attempts=1, now=clock())
    crashed = worker(db, clock, {}, worker_id="crashed")
    crashed.register("a", ledger, on_dead=on_dead)
    crashed.register("b", ledger)
    assert len(crashed.claim_batch()) == 3  # ...and then the process dies
    clock.advance(31)
    rescuer = worker(db, clock, {}, worker_id="rescuer")
    rescuer.register("a", ledger, on_dead=on_dead)
    rescuer.register("b", ledger)
    [again] = rescuer.claim_batch()  # the hook ran in this claim's transaction, committed with it
    assert (again.id, again.attempts) == (spare, 2)  # attempts left: claimed again, no hook
    said = "lease expired on attempt 1 (worker crashed never finished it)"
    assert told == [(last, 1, {"n": 1}, said)]
    assert ledger_rows(db) == [last]
    for job_id in (last, unhooked):
        row = job_row(db, job_id)
        assert (row.status, row.last_error) == ("dead", f"LeaseExpired: {said}")


def test_claim_runs_the_lease_expiry_hooks_in_the_session_it_is_given(db: Database, clock: Clock) -> None:
    def on_dead(s: Session, job: q.Job, exc: BaseException) -> None:
        ledger(s, job, type(exc).__name__)

    with db.session() as s:
        job_id = q.enqueue(s, "a", {}, max_attempts=1, now=clock())
    with db.session() as s:
        q.claim(s, "w1", kinds=["a"], limit=5, lease_seconds=30, default_max_attempts=3, now=clock())
    clock.advance(31)
    with db.session() as s:
        taken = q.claim(
            s,
            "w2",
            kinds=["a"],
            limit=5,
            lease_seconds=30,
            default_max_attempts=3,
            now=clock(),
            dead_hooks={"a": on_dead},
        )
        assert taken == []
        assert s.scalars(text("SELECT note FROM ledger")).all() == ["LeaseExpired"]  # in this transaction
    assert ledger_rows(db) == [job_id]
    assert job_row(db, job_id).status == "dead"


def test_a_failing_lease_expiry_hook_does_not_keep_the_job_from_its_dead_letter(
    db: Database, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    def on_dead(s: Session, job: q.Job, exc: BaseException) -> None:
        ledger(s, job)
        raise RuntimeError("the hook is broken")

    with db.session() as s:
        first = q.enqueue(s, "a", {}, max_attempts=1, now=clock())
        second = q.enqueue(s, "a", {}, max_attempts=1, now=clock())
        due = q.enqueue(s, "b", {}, now=clock() + timedelta(seconds=31))
    crashed = worker(db, clock, {}, worker_id="crashed")
    crashed.register("a", ledger, on_dead=on_dead)
    crashed.claim_batch()
    clock.advance(31)
    w = worker(db, clock, {"b": ledger})
    w.register("a", ledger, on_dead=on_dead)
    caplog.set_level("ERROR", logger="oots.store.queue")
    assert w.drain() == 1  # the due job is claimed and run as usual
    assert [job_row(db, i).status for i in (first, second, due)] == ["dead", "dead", "done"]
    assert ledger_rows(db) == [due]  # each hook's savepoint was rolled back, the claim committed
    said = [r.getMessage().partition(";")[0] for r in caplog.records]
    assert said == [f"job {i} (a): its on_dead hook failed: RuntimeError" for i in (first, second)]


def test_a_long_batch_renews_the_leases_of_its_waiting_jobs(db: Database, clock: Clock) -> None:
    with db.session() as s:
        ids = q.enqueue_many(s, "a", [{}, {}, {}], now=clock())

    started = clock()

    def slow(s: Session, job: q.Job) -> None:
        ledger(s, job)
        clock.advance(20)  # each job takes 20 s of a 30 s lease

    w = worker(db, clock, {"a": slow}, settings=SETTINGS.model_copy(update={"group_commit_seconds": 0}))
    assert w.run_once() == 3
    assert ledger_rows(db) == ids
    assert {job_row(db, i).status for i in ids} == {"done"}
    assert {job_row(db, i).locked_by for i in ids} == {w.id}
    # the last job was claimed at `started` with a 30 s lease, renewed twice while it waited
    assert job_row(db, ids[2]).locked_until == started + timedelta(seconds=40 + 30)


def test_a_worker_claims_fewer_jobs_while_they_run_slowly(db: Database, clock: Clock) -> None:
    with db.session() as s:
        q.enqueue_many(s, "a", [{}] * 30, now=clock())

    def slow(s: Session, job: q.Job) -> None:
        time.sleep(0.05)  # takes at least 50 ms

    settings = SETTINGS.model_copy(update={"lease_seconds": 0.4, "batch_size": 20, "group_commit_seconds": 0})
    w = worker(db, clock, {"a": slow}, settings=settings)
    assert w.claim_size() == 20  # nothing known yet
    w.run_once()
    # a quarter lease (0.1 s) holds at most two such jobs
    assert 1 <= w.claim_size() <= 2
    assert 1 <= len(w.claim_batch()) <= 2


# --- stopping -------------------------------------------------------------------------------------


def test_stop_finishes_the_job_in_hand_and_gives_back_the_rest(db: Database, clock: Clock) -> None:
    with db.session() as s:
        ids = q.enqueue_many(s, "a", [{}, {}, {}], now=clock())
    w = worker(db, clock, {})

    @w.handler("a")
    def handler(s: Session, job: q.Job) -> None:
        ledger(s, job)
        w.stop()

    assert w.run_once() == 1
    assert ledger_rows(db) == ids[:1]
    for job_id in ids[1:]:
        row = job_row(db, job_id)
        assert (row.status, row.attempts, row.locked_by, row.locked_until) == ("queued", 0, None, None)
    assert w.run_once() == 0  # a stopped worker claims nothing


def test_sigterm_stops_run_forever_gracefully(db: Database, clock: Clock) -> None:
    with db.session() as s:
        ids = q.enqueue_many(s, "a", [{}, {}, {}], now=clock())
    before = signal.getsignal(signal.SIGTERM)

    def handler(s: Session, job: q.Job) -> None:
        ledger(s, job)
        os.kill(os.getpid(), signal.SIGTERM)

    worker(db, clock, {"a": handler}).run_forever()
    assert ledger_rows(db) == ids[:1]
    assert [job_row(db, i).status for i in ids] == ["done", "queued", "queued"]
    assert signal.getsignal(signal.SIGTERM) == before


def test_run_forever_claims_again_at_once_after_a_full_batch_only(db: Database, clock: Clock) -> None:
    settings = SETTINGS.model_copy(update={"batch_size": 2, "poll_interval_seconds": 60})
    with db.session() as s:
        ids = q.enqueue_many(s, "a", [{}, {}, {}], now=clock())
    w = worker(db, clock, {"a": ledger}, settings=settings)
    claims: list[int] = []
    real_claim = w.claim_batch

    def counted_claim() -> list[q.Job]:
        jobs = real_claim()
        claims.append(len(jobs))
        return jobs

    w.claim_batch = counted_claim  # type: ignore[method-assign]
    runner = threading.Thread(target=w.run_forever, kwargs={"install_signal_handlers": False})
    runner.start()
    try:
        deadline = time.monotonic() + 30
        while len(ledger_rows(db)) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.2)
        # two jobs (all it could take), at once the third; that claim found every due job: no claim to find none
        assert claims == [2, 1]
        with db.session() as s:
            later = q.enqueue(s, "a", {}, now=clock())  # its commit wakes the worker
        while len(ledger_rows(db)) < 4 and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.2)
        assert claims == [2, 1, 1]
    finally:
        w.stop()
        runner.join(30)
    assert ledger_rows(db) == [*ids, later]


def test_registering_a_kind_twice_is_refused(db: Database, clock: Clock) -> None:
    w = worker(db, clock, {"a": ledger})
    with pytest.raises(StoreError, match="already registered"):
        w.register("a", ledger)


def test_claims_are_recorded_on_the_row(db: Database, clock: Clock) -> None:
    with db.session() as s:
        q.enqueue_many(s, "a", [{}] * 5, now=clock())
    [*claimed] = worker(db, clock, {"a": ledger}, worker_id="w").claim_batch()
    assert len(claimed) == 5
    with db.session() as s:
        held = s.scalar(select(func.count()).select_from(QueueJob).where(QueueJob.locked_by == "w"))
    assert held == 5


def test_run_forever_outlives_a_database_outage(db: Database, clock: Clock, caplog: pytest.LogCaptureFixture) -> None:
    from sqlalchemy.exc import OperationalError

    with db.session() as s:
        job_id = q.enqueue(s, "a", {}, now=clock())
    w = worker(db, clock, {}, settings=SETTINGS.model_copy(update={"poll_interval_seconds": 0.001}))
    real_claim = w.claim_batch
    outages = iter([True, True, False])

    def flaky_claim() -> list[q.Job]:
        if next(outages, False):
            raise OperationalError("SELECT", {}, Exception("server closed the connection"))
        return real_claim()

    @w.handler("a")
    def handler(s: Session, job: q.Job) -> None:
        ledger(s, job)
        w.stop()

    w.claim_batch = flaky_claim  # type: ignore[method-assign]
    w.run_forever(install_signal_handlers=False)
    assert ledger_rows(db) == [job_id]
    assert "database unreachable (Exception: server closed the connection), retrying in 0.5 s" in caplog.text


@pytest.mark.postgres
def test_racing_enqueues_of_one_key_make_one_job(postgres_url: str) -> None:
    import threading

    from oots.store import Database as Db

    db = Db(postgres_url)
    db.migrate()
    first_inserted = threading.Event()
    release_first = threading.Event()
    ids: dict[str, int] = {}

    def first() -> None:
        with db.session() as s:
            ids["first"] = q.enqueue(s, "race", {"who": 1}, key="same")
            first_inserted.set()
            release_first.wait(10)

    def second() -> None:
        first_inserted.wait(10)
        with db.session() as s:
            ids["second"] = q.enqueue(s, "race", {"who": 2}, key="same")  # blocks until the first commits

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    first_inserted.wait(10)
    # hold the first transaction open until the second enqueue is seen waiting on its row lock
    for _ in range(200):
        with db.session() as s:
            waiting = s.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                    " AND wait_event_type = 'Lock' AND query LIKE 'INSERT INTO queue_jobs%'"
                )
            )
        if waiting:
            break
        time.sleep(0.05)
    assert waiting == 1
    release_first.set()
    for t in threads:
        t.join()
    assert ids["first"] == ids["second"]
    with db.session() as s:
        assert q.counts(s)["race"] == {"queued": 1}
        s.execute(text("DELETE FROM queue_jobs WHERE kind = 'race'"))
    db.dispose()


@given(
    attempt=st.integers(min_value=1, max_value=10_000),
    draw=st.floats(min_value=0, max_value=1),
    base=st.floats(min_value=0.01, max_value=100),
    cap=st.floats(min_value=0.01, max_value=100_000),
)
def test_backoff_is_bounded_and_never_shrinks_with_attempts(attempt: int, draw: float, base: float, cap: float) -> None:
    settings = QueueSettings(backoff_base_seconds=base, backoff_max_seconds=cap)
    rng = FixedRandom(draw)
    delay = q.backoff_delay(attempt, settings, rng)  # type: ignore[arg-type]
    ceiling = min(cap, base * 2.0 ** (attempt - 1)) if attempt < 1000 else cap
    assert ceiling / 2 - 1e-9 <= delay <= ceiling + 1e-9
    assert q.backoff_delay(attempt + 1, settings, rng) >= delay  # type: ignore[arg-type]


@pytest.mark.postgres
def test_a_web_step_does_not_deadlock_with_a_group_that_appended_to_the_journal(
    postgres_database: Callable[[], str],
) -> None:
    """A group's first job appends to the journal (its head locked); its next job updates a record a web
    step (a cancel, say) updated first and then appends too. Before, the group held the head until its
    commit: the two waited on each other and PostgreSQL aborted one (the web step's client got a 500)."""
    db = Database(postgres_database())
    db.migrate()
    journal = Journal("node", b"s" * 32, b"d" * 32)
    with db.connect() as conn:
        conn.execute(text("CREATE TABLE thing (id INT PRIMARY KEY, state TEXT)"))
        conn.execute(text("INSERT INTO thing VALUES (1, 'waiting')"))
    second_job_started, web_holds_the_record = threading.Event(), threading.Event()

    def step_of_b(session: Session, job: q.Job) -> None:  # as a requester step: its record, then the journal
        second_job_started.set()
        assert web_holds_the_record.wait(30)
        session.execute(text("UPDATE thing SET state = 'evidence' WHERE id = 1"))
        journal.append(session, side="requester", event="evidence_received", exchange_id="B")

    worker = q.Worker(db, QueueSettings(group_commit_seconds=60))
    worker.register("a", lambda s, job: journal.append(s, side="requester", event="discovery_done", exchange_id="A"))
    worker.register("b", step_of_b)
    with db.session() as session:
        q.enqueue(session, "a", {})
        q.enqueue(session, "b", {})
    thread = threading.Thread(target=worker.run_once)
    thread.start()
    try:
        assert second_job_started.wait(30)
        with db.session() as session:  # the web step on exchange B
            session.execute(text("UPDATE thing SET state = 'cancelled' WHERE id = 1"))
            web_holds_the_record.set()
            journal.append(session, side="requester", event="cancelled", exchange_id="B")
    finally:
        web_holds_the_record.set()
        thread.join(60)
    with db.session() as session:
        jobs = session.execute(text("SELECT kind, status, attempts, last_error FROM queue_jobs ORDER BY id")).all()
        assert [tuple(job) for job in jobs] == [("a", "done", 1, None), ("b", "done", 1, None)]
        assert session.execute(text("SELECT state FROM thing")).scalar_one() == "evidence"
        assert journal.verify(session).head_seq == 3
    db.dispose()
