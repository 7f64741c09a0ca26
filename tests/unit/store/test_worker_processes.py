"""Acceptance: worker processes drain a queue, one is SIGKILLed mid-job, no job runs twice or is lost."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from oots.store import Database
from oots.store import queue as q
from oots.store.models import QueueJob

from .conftest import LEDGER_DDL

WORKER = Path(__file__).with_name("worker_process.py")
LEASE_SECONDS = 2.0
#: Guards against a hang (never a timing assertion): how long to wait for progress at all.
PATIENCE_SECONDS = 240.0


def wait_for(condition: Callable[[], bool], what: str, procs: list[subprocess.Popen[bytes]]) -> None:
    deadline = time.monotonic() + PATIENCE_SECONDS
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what}")
        time.sleep(0.1)


def done_count(db: Database) -> int:
    with db.session() as s:
        return s.scalar(select(func.count()).select_from(QueueJob).where(QueueJob.status == "done")) or 0


def drain_with_a_crash(url: str, jobs: int, tmp_path: Path) -> None:
    db = Database(url)
    db.migrate()
    with db.connect() as conn:
        conn.execute(text(LEDGER_DDL))
    stall_at = jobs // 4
    with db.session() as s:
        ids = q.enqueue_many(s, "ledger", [{"n": n, "stall": n == stall_at} for n in range(jobs)])
    procs = []
    logs = []
    for n in range(2):
        log = (tmp_path / f"worker-{n}.log").open("wb")
        logs.append(log)
        procs.append(
            subprocess.Popen(
                [sys.executable, str(WORKER), url, str(LEASE_SECONDS), str(tmp_path)], stdout=log, stderr=log
            )
        )
    try:
        stalled: list[Path] = []

        def someone_stalled() -> bool:
            stalled[:] = [p for p in tmp_path.iterdir() if p.name.isdigit()]
            return bool(stalled)

        wait_for(someone_stalled, "a worker to reach the stalling job", procs)
        victim = next(p for p in procs if p.pid == int(stalled[0].name))
        victim.send_signal(signal.SIGKILL)
        assert victim.wait() == -signal.SIGKILL
        survivor = next(p for p in procs if p is not victim)
        wait_for(lambda: done_count(db) == jobs or survivor.poll() is not None, "the queue to drain", procs)
        assert survivor.poll() is None, (tmp_path / "worker-0.log").read_text() + (
            tmp_path / "worker-1.log"
        ).read_text()
        survivor.send_signal(signal.SIGTERM)
        assert survivor.wait(timeout=60) == 0
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        for log in logs:
            log.close()

    with db.session() as s:
        per_job = {r[0]: r[1] for r in s.execute(text("SELECT job_id, count(*) FROM ledger GROUP BY job_id"))}
        statuses = {r[0]: r[1] for r in s.execute(select(QueueJob.status, func.count()).group_by(QueueJob.status))}
        retried = s.scalars(select(QueueJob.id).where(QueueJob.attempts > 1)).all()
        stalled_job = s.get(QueueJob, ids[stall_at])
    db.dispose()
    assert statuses == {"done": jobs}  # none lost, none dead
    assert sorted(per_job) == sorted(ids)  # every job's effect is there ...
    assert set(per_job.values()) == {1}  # ... exactly once
    assert stalled_job is not None
    assert stalled_job.attempts == 2  # run again after the lease of the killed worker expired
    assert ids[stall_at] in retried


@pytest.mark.slow
@pytest.mark.postgres
def test_two_processes_drain_10000_jobs_on_postgres_exactly_once_despite_sigkill(
    postgres_database: Callable[[], str], tmp_path: Path
) -> None:
    drain_with_a_crash(postgres_database(), 10_000, tmp_path)


@pytest.mark.slow
def test_two_processes_drain_a_sqlite_queue_exactly_once_despite_sigkill(sqlite_url: str, tmp_path: Path) -> None:
    drain_with_a_crash(sqlite_url, 2_000, tmp_path)
