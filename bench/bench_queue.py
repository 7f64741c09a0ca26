"""Queue throughput: jobs/s enqueued and completed, on SQLite and PostgreSQL.

PostgreSQL runs when ``OOTS_BENCH_POSTGRES_URL`` or ``OOTS_TEST_POSTGRES_URL`` names a server (a
scratch database is created there and dropped). ``OOTS_BENCH_QUEUE_JOBS`` sets the job count (10,000).
Handlers are no-ops: the figures are the queue's own cost per job.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import func, select

from bench.postgres import answering, configured
from oots.settings import QueueSettings
from oots.store import Database
from oots.store import queue as q
from oots.store.models import QueueJob
from oots.store.scratch import scratch_database

ROOT = Path(__file__).resolve().parent.parent


def _done(db: Database) -> int:
    with db.session() as s:
        return s.scalar(select(func.count()).select_from(QueueJob).where(QueueJob.status == "done")) or 0


def _enqueue_one_by_one(db: Database, n: int) -> float:
    started = time.perf_counter()
    for i in range(n):
        with db.session(immediate=True) as s:
            q.enqueue(s, "noop", {"i": i})
    return n / (time.perf_counter() - started)


def _enqueue_with_keys(db: Database, n: int) -> float:
    started = time.perf_counter()
    for i in range(n):
        with db.session(immediate=True) as s:
            q.enqueue(s, "noop", {"i": i}, key=f"k-{i}")
    return n / (time.perf_counter() - started)


def _enqueue_bulk(db: Database, n: int) -> float:
    started = time.perf_counter()
    with db.session(immediate=True) as s:
        q.enqueue_many(s, "noop", [{"i": i} for i in range(n)])
    return n / (time.perf_counter() - started)


def _drain_in_process(db: Database) -> tuple[int, float]:
    worker = q.Worker(db, QueueSettings(), handlers={"noop": lambda s, j: None})
    started = time.perf_counter()
    n = worker.drain()
    return n, n / (time.perf_counter() - started)


def _drain_with_processes(db: Database, n: int, processes: int, tmp: Path) -> float:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = []
    for k in range(processes):
        ready = tmp / f"ready-{k}-{time.monotonic_ns()}"
        procs.append(
            (
                subprocess.Popen(
                    [sys.executable, "-m", "bench.queue_worker", str(db.url.render_as_string(False)), str(ready)],
                    env=env,
                    cwd=ROOT,
                ),
                ready,
            )
        )
    try:
        while not all(ready.exists() for _, ready in procs):
            time.sleep(0.05)
        before = _done(db)
        with db.session(immediate=True) as s:
            q.enqueue_many(s, "noop", [{"i": i} for i in range(n)])
        started = time.perf_counter()
        while _done(db) < before + n:
            time.sleep(0.02)
        return n / (time.perf_counter() - started)
    finally:
        for proc, _ in procs:
            proc.send_signal(signal.SIGTERM)
        for proc, _ in procs:
            proc.wait(timeout=60)


def _measure(label: str, db: Database, n: int, tmp: Path) -> None:
    db.migrate()
    keyed = max(n // 10, 100)
    print(f"   {label}: enqueue, one job per transaction     {_enqueue_one_by_one(db, keyed):9,.0f} jobs/s")
    print(f"   {label}: enqueue with idempotency key        {_enqueue_with_keys(db, keyed):9,.0f} jobs/s")
    print(f"   {label}: enqueue_many, one transaction        {_enqueue_bulk(db, n):9,.0f} jobs/s")
    done, rate = _drain_in_process(db)
    print(f"   {label}: completed, 1 worker (in process)    {rate:9,.0f} jobs/s  ({done:,} jobs)")
    for processes in (1, 2):
        rate = _drain_with_processes(db, n, processes, tmp)
        print(f"   {label}: completed, {processes} worker process(es)   {rate:9,.0f} jobs/s  ({n:,} jobs)")


def run() -> None:
    n = int(os.environ.get("OOTS_BENCH_QUEUE_JOBS", "10000"))
    with tempfile.TemporaryDirectory(prefix="oots-bench-queue-") as tmp:
        db = Database(f"sqlite:///{tmp}/queue.db")
        try:
            _measure("sqlite  ", db, n, Path(tmp))
        finally:
            db.dispose()
        server = answering(configured(), "postgres")
        if not server:
            return
        with scratch_database(server, prefix="oots_bench") as url:
            db = Database(url)
            try:
                _measure("postgres", db, n, Path(tmp))
            finally:
                db.dispose()
