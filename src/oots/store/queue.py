"""The durable work queue: background jobs kept in the node's own database.

* :func:`enqueue` adds a job inside the caller's transaction, so the job exists exactly when the
  state change that called for it commits. An idempotency ``key`` makes a second enqueue of the same
  ``(kind, key)`` return the first job instead of adding another.
* A :class:`Worker` claims due jobs in batches (PostgreSQL ``FOR UPDATE SKIP LOCKED``; SQLite's single
  writer lock) and holds each under a lease (``locked_by``, ``locked_until``). A job whose lease ran
  out — its worker was killed — is claimable again, so nothing is lost.
* A handler runs inside a transaction, and the job is marked done in that same transaction: the
  handler's database effects and the job's completion commit together or not at all. Retries are
  therefore exactly-once for database effects but at-least-once for anything outside the database,
  so a handler that calls the network must be idempotent (send a message id the peer deduplicates).
* A failed attempt is retried after an exponential backoff with jitter; after ``max_attempts`` the
  job is dead-lettered (status ``dead``) with its last error, listed by :func:`list_dead` and put
  back by :func:`requeue`.

States (see docs/architecture.md): ``queued`` → ``running`` → ``done`` | ``queued`` (retry) | ``dead``;
``running`` with an expired lease → ``running`` (claimed again) | ``dead`` (no attempts left).
"""

from __future__ import annotations

import json
import logging
import os
import random
import signal
import socket
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import FrameType
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from oots.errors import NotFound, StoreError
from oots.settings import QueueSettings
from oots.store.base import utcnow
from oots.store.database import Database
from oots.store.models import JOB_STATUSES, QueueJob

__all__ = [
    "JOB_STATUSES",
    "Handler",
    "Job",
    "QueueJob",
    "Worker",
    "backoff_delay",
    "claim",
    "complete",
    "counts",
    "enqueue",
    "enqueue_many",
    "fail",
    "list_dead",
    "purge_done",
    "release",
    "requeue",
]

log = logging.getLogger(__name__)

MAX_KIND_LENGTH = 100
MAX_KEY_LENGTH = 200
#: Longest error text kept on a job (the start of the message is what matters).
MAX_ERROR_LENGTH = 4000

_SKIP = {"synchronize_session": False}


@dataclass(frozen=True, slots=True)
class Job:
    """A claimed job as its handler sees it. ``attempts`` counts this attempt (1 on the first run)."""

    id: int
    kind: str
    key: str | None
    payload: Any
    attempts: int
    max_attempts: int | None
    locked_until: datetime


#: A handler does the job's work with the session of the job's transaction.
Handler = Callable[[Session, Job], None]


def _check_kind(kind: str) -> None:
    if not kind or len(kind) > MAX_KIND_LENGTH:
        raise StoreError(f"a job kind must be 1 to {MAX_KIND_LENGTH} characters, not {kind!r}")


def _check_payload(payload: Any) -> None:
    try:
        json.dumps(payload, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise StoreError(f"a job payload must be plain JSON: {exc}") from None


def _new_row(  # noqa: PLR0917 - private helper
    kind: str, payload: Any, key: str | None, run_at: datetime | None, max_attempts: int | None, now: datetime
) -> dict[str, Any]:
    _check_kind(kind)
    _check_payload(payload)
    if key is not None and not 1 <= len(key) <= MAX_KEY_LENGTH:
        raise StoreError(f"a job key must be 1 to {MAX_KEY_LENGTH} characters")
    if max_attempts is not None and max_attempts < 1:
        raise StoreError(f"max_attempts must be at least 1, not {max_attempts}")
    return {
        "kind": kind,
        "key": key,
        "payload": payload,
        "status": "queued",
        "attempts": 0,
        "max_attempts": max_attempts,
        "run_at": run_at or now,
        "created_at": now,
        "updated_at": now,
    }


def enqueue(
    session: Session,
    kind: str,
    payload: Any,
    *,
    key: str | None = None,
    run_at: datetime | None = None,
    max_attempts: int | None = None,
    now: datetime | None = None,
) -> int:
    """Add a job in the caller's transaction and return its id.

    ``payload`` is any JSON value. With ``key``, a job of the same ``kind`` and ``key`` that already
    exists (in any state, done included) is returned instead of adding a second one — also when two
    transactions race. ``run_at`` delays the job; ``max_attempts`` overrides ``queue.max_attempts``.
    """
    row = _new_row(kind, payload, key, run_at, max_attempts, now or utcnow())
    if key is None:
        return session.execute(insert(QueueJob).values(row).returning(QueueJob.id)).scalar_one()
    dialect = session.get_bind().dialect.name
    upsert = postgresql.insert(QueueJob) if dialect == "postgresql" else sqlite.insert(QueueJob)
    stmt = upsert.values(row).on_conflict_do_nothing(index_elements=["kind", "key"]).returning(QueueJob.id)
    job_id = session.execute(stmt).scalar_one_or_none()
    if job_id is None:
        job_id = session.execute(select(QueueJob.id).where(QueueJob.kind == kind, QueueJob.key == key)).scalar_one()
    return job_id


def enqueue_many(
    session: Session, kind: str, payloads: Iterable[Any], *, run_at: datetime | None = None, now: datetime | None = None
) -> list[int]:
    """Add one job per payload (no idempotency keys) in one round trip; return their ids in order."""
    moment = now or utcnow()
    rows = [_new_row(kind, payload, None, run_at, None, moment) for payload in payloads]
    if not rows:
        return []
    stmt = insert(QueueJob).returning(QueueJob.id, sort_by_parameter_order=True)
    return list(session.scalars(stmt, rows))


def backoff_delay(attempt: int, settings: QueueSettings, rng: random.Random | None = None) -> float:
    """Seconds to wait before retrying after failed attempt number ``attempt`` (1, 2, ...).

    ``backoff_base_seconds * 2**(attempt-1)``, capped at ``backoff_max_seconds``, then jittered into
    its upper half ([d/2, d]) so that jobs that failed together do not all come back together.
    """
    ceiling = min(settings.backoff_max_seconds, settings.backoff_base_seconds * 2.0 ** min(max(attempt - 1, 0), 62))
    draw = (rng or random).random()
    return ceiling / 2 + ceiling / 2 * draw


def claim(
    session: Session,
    worker_id: str,
    *,
    kinds: Sequence[str],
    limit: int,
    lease_seconds: float,
    default_max_attempts: int,
    now: datetime | None = None,
) -> list[Job]:
    """Claim up to ``limit`` due jobs of ``kinds`` for ``worker_id`` and return them, oldest due first.

    Run it in a transaction of its own that commits right away (on SQLite an immediate one, see
    :meth:`Database.session`). Jobs whose lease expired are taken first; those among them that have
    no attempts left are dead-lettered instead of run again.
    """
    if not kinds or limit < 1:
        return []
    moment = now or utcnow()
    until = moment + timedelta(seconds=lease_seconds)
    expired = session.execute(
        select(QueueJob.id, QueueJob.attempts, QueueJob.max_attempts, QueueJob.locked_by)
        .where(QueueJob.status == "running", QueueJob.locked_until <= moment, QueueJob.kind.in_(kinds))
        .order_by(QueueJob.locked_until, QueueJob.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    ids: list[int] = []
    for row in expired:
        if row.attempts >= (row.max_attempts or default_max_attempts):
            session.execute(
                update(QueueJob)
                .where(QueueJob.id == row.id)
                .values(
                    status="dead",
                    locked_by=None,
                    locked_until=None,
                    finished_at=moment,
                    updated_at=moment,
                    last_error=f"lease expired on attempt {row.attempts} (worker {row.locked_by} never finished it)",
                )
                .execution_options(**_SKIP)
            )
            log.warning("job %s dead-lettered: its last worker never finished it", row.id)
        else:
            ids.append(row.id)
    if len(ids) < limit:
        ids.extend(
            session.scalars(
                select(QueueJob.id)
                .where(QueueJob.status == "queued", QueueJob.run_at <= moment, QueueJob.kind.in_(kinds))
                .order_by(QueueJob.run_at, QueueJob.id)
                .limit(limit - len(ids))
                .with_for_update(skip_locked=True)
            )
        )
    if not ids:
        return []
    rows = session.execute(
        update(QueueJob)
        .where(QueueJob.id.in_(ids))
        .values(
            status="running",
            locked_by=worker_id,
            locked_until=until,
            attempts=QueueJob.attempts + 1,
            updated_at=moment,
        )
        .returning(QueueJob.id, QueueJob.kind, QueueJob.key, QueueJob.payload, QueueJob.attempts, QueueJob.max_attempts)
        .execution_options(**_SKIP)
    ).all()
    by_id = {r.id: Job(r.id, r.kind, r.key, r.payload, r.attempts, r.max_attempts, until) for r in rows}
    return [by_id[i] for i in ids if i in by_id]


def _held(job: Job, worker_id: str) -> Any:
    """The condition that ``worker_id`` still holds this claim of ``job``."""
    return (
        (QueueJob.id == job.id)
        & (QueueJob.status == "running")
        & (QueueJob.locked_by == worker_id)
        & (QueueJob.attempts == job.attempts)
    )


def complete(session: Session, job: Job, worker_id: str, *, now: datetime | None = None) -> bool:
    """Mark ``job`` done in the caller's transaction; False if ``worker_id`` no longer holds it.

    Call it in the handler's transaction: when it returns False the lease was lost (another worker
    took the job over), and the caller must roll back so the handler's effects are not committed twice.
    """
    moment = now or utcnow()
    result = session.execute(
        update(QueueJob)
        .where(_held(job, worker_id))
        .values(status="done", locked_by=None, locked_until=None, finished_at=moment, updated_at=moment)
        .execution_options(**_SKIP)
    )
    return _rowcount(result) == 1


def fail(
    session: Session,
    job: Job,
    worker_id: str,
    error: str,
    *,
    settings: QueueSettings,
    rng: random.Random | None = None,
    now: datetime | None = None,
) -> str | None:
    """Record a failed attempt: back to ``queued`` after a backoff, or ``dead`` when none are left.

    Returns the new status, or None if ``worker_id`` no longer held the job.
    """
    moment = now or utcnow()
    error = error[:MAX_ERROR_LENGTH]
    if job.attempts >= (job.max_attempts or settings.max_attempts):
        values: dict[str, Any] = {"status": "dead", "finished_at": moment}
    else:
        delay = backoff_delay(job.attempts, settings, rng)
        values = {"status": "queued", "run_at": moment + timedelta(seconds=delay)}
    values |= {"locked_by": None, "locked_until": None, "last_error": error, "updated_at": moment}
    result = session.execute(update(QueueJob).where(_held(job, worker_id)).values(values).execution_options(**_SKIP))
    return str(values["status"]) if _rowcount(result) == 1 else None


def release(session: Session, jobs: Iterable[Job], worker_id: str, *, now: datetime | None = None) -> int:
    """Give claimed jobs back unattempted (a stopping worker); returns how many were given back."""
    moment = now or utcnow()
    released = 0
    for job in jobs:
        result = session.execute(
            update(QueueJob)
            .where(_held(job, worker_id))
            .values(
                status="queued",
                locked_by=None,
                locked_until=None,
                attempts=QueueJob.attempts - 1,
                updated_at=moment,
            )
            .execution_options(**_SKIP)
        )
        released += _rowcount(result)
    return released


def extend(session: Session, jobs: Iterable[Job], worker_id: str, until: datetime) -> int:
    """Extend the lease of claimed jobs still waiting in a worker's batch; returns how many."""
    extended = 0
    for job in jobs:
        result = session.execute(
            update(QueueJob).where(_held(job, worker_id)).values(locked_until=until).execution_options(**_SKIP)
        )
        extended += _rowcount(result)
    return extended


def _rowcount(result: Any) -> int:
    return int(result.rowcount)


# --- inspection -----------------------------------------------------------------------------------


def counts(session: Session) -> dict[str, dict[str, int]]:
    """Number of jobs per kind and status: ``{"send": {"queued": 3, "done": 10}, ...}``."""
    out: dict[str, dict[str, int]] = {}
    rows = session.execute(
        select(QueueJob.kind, QueueJob.status, func.count()).group_by(QueueJob.kind, QueueJob.status)
    )
    for kind, status, number in rows:
        out.setdefault(kind, {})[status] = int(number)
    return out


def list_dead(session: Session, *, kind: str | None = None, limit: int = 100) -> list[QueueJob]:
    """Dead-lettered jobs, most recently failed first."""
    stmt = select(QueueJob).where(QueueJob.status == "dead")
    if kind is not None:
        stmt = stmt.where(QueueJob.kind == kind)
    return list(session.scalars(stmt.order_by(QueueJob.finished_at.desc(), QueueJob.id.desc()).limit(limit)))


def requeue(session: Session, job_id: int, *, now: datetime | None = None) -> None:
    """Put a dead job back in the queue with a fresh set of attempts (its last error is kept).

    Raises :class:`NotFound` if there is no dead job with this id.
    """
    moment = now or utcnow()
    result = session.execute(
        update(QueueJob)
        .where(QueueJob.id == job_id, QueueJob.status == "dead")
        .values(status="queued", attempts=0, run_at=moment, finished_at=None, updated_at=moment)
        .execution_options(**_SKIP)
    )
    if _rowcount(result) != 1:
        raise NotFound(f"there is no dead job {job_id}")


def requeue_dead(session: Session, *, kind: str | None = None, now: datetime | None = None) -> int:
    """Put every dead job (of ``kind``) back in the queue; returns how many."""
    moment = now or utcnow()
    stmt = update(QueueJob).where(QueueJob.status == "dead")
    if kind is not None:
        stmt = stmt.where(QueueJob.kind == kind)
    result = session.execute(
        stmt.values(status="queued", attempts=0, run_at=moment, finished_at=None, updated_at=moment).execution_options(
            **_SKIP
        )
    )
    return _rowcount(result)


def purge_done(session: Session, *, older_than: datetime) -> int:
    """Delete done jobs finished before ``older_than`` (their keys then stop deduplicating)."""
    result = session.execute(
        delete(QueueJob).where(QueueJob.status == "done", QueueJob.finished_at < older_than).execution_options(**_SKIP)
    )
    return _rowcount(result)


# --- the worker -----------------------------------------------------------------------------------


def default_worker_id() -> str:
    """``host:pid:random`` — unique per worker, readable in ``locked_by``."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class _LeaseLost(Exception):
    """The job was taken over by another worker before this one finished it."""


class Worker:
    """Runs the handlers of the kinds registered with it until stopped.

    ``run_once()`` claims one batch and works through it; ``run_forever()`` polls every
    ``queue.poll_interval_seconds`` while idle and stops gracefully on SIGTERM or SIGINT: the job in
    hand is finished, the rest of the claimed batch is given back at once. ``clock`` and ``rng``
    are injectable for tests.
    """

    def __init__(
        self,
        db: Database,
        settings: QueueSettings,
        *,
        handlers: Mapping[str, Handler] | None = None,
        worker_id: str | None = None,
        clock: Callable[[], datetime] = utcnow,
        rng: random.Random | None = None,
    ) -> None:
        self.db = db
        self.settings = settings
        self.id = worker_id or default_worker_id()
        self.clock = clock
        self.rng = rng or random.Random()  # noqa: S311 - jitter, not security
        self.handlers: dict[str, Handler] = {}
        self._stop = threading.Event()
        for kind, handler in (handlers or {}).items():
            self.register(kind, handler)

    def register(self, kind: str, handler: Handler) -> None:
        """Run ``handler`` for jobs of ``kind`` (one handler per kind)."""
        _check_kind(kind)
        if kind in self.handlers:
            raise StoreError(f"a handler for job kind {kind!r} is already registered")
        self.handlers[kind] = handler

    def handler(self, kind: str) -> Callable[[Handler], Handler]:
        """Decorator form of :meth:`register`."""

        def decorate(function: Handler) -> Handler:
            self.register(kind, function)
            return function

        return decorate

    # -- stopping

    def stop(self) -> None:
        """Ask the worker to stop after the job in hand (safe from signal handlers and other threads)."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    # -- work

    def claim_batch(self) -> list[Job]:
        """Claim the next batch in a transaction of its own."""
        with self.db.session(immediate=True) as session:
            return claim(
                session,
                self.id,
                kinds=sorted(self.handlers),
                limit=self.settings.batch_size,
                lease_seconds=self.settings.lease_seconds,
                default_max_attempts=self.settings.max_attempts,
                now=self.clock(),
            )

    def run_once(self) -> int:
        """Claim one batch and run it; return how many jobs were run (0: nothing was due)."""
        if self.stopping:
            return 0
        pending = self.claim_batch()
        done = 0
        renew_below = self.settings.lease_seconds / 2
        while pending:
            if self._stop.is_set():
                self._release(pending)
                break
            if (pending[0].locked_until - self.clock()).total_seconds() < renew_below:
                # The batch has been waiting long: renew its leases (dropping any already taken over).
                pending = self._extend(pending)
                continue
            self._run(pending.pop(0))
            done += 1
        return done

    def drain(self) -> int:
        """Run batches until nothing is due; return how many jobs were run (for tests and tools)."""
        total = 0
        while (n := self.run_once()) > 0:
            total += n
        return total

    def run_forever(self, *, install_signal_handlers: bool = True) -> None:
        """Work until :meth:`stop` (or SIGTERM/SIGINT when ``install_signal_handlers``)."""
        previous: dict[int, Any] = {}
        if install_signal_handlers and threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGTERM, signal.SIGINT):
                previous[signum] = signal.signal(signum, self._on_signal)
        log.info("worker %s started for %s", self.id, ", ".join(sorted(self.handlers)))
        try:
            while not self.stopping:
                try:
                    ran = self.run_once()
                except DBAPIError as exc:
                    log.warning("worker %s: database error, retrying: %s", self.id, type(exc.orig).__name__)
                    ran = 0
                if ran == 0:
                    self._stop.wait(self.settings.poll_interval_seconds)
        finally:
            for number, old_handler in previous.items():
                signal.signal(number, old_handler)
            log.info("worker %s stopped", self.id)

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        log.info("worker %s: %s received, finishing the job in hand", self.id, signal.Signals(signum).name)
        self.stop()
        # A second signal acts as it did before (a second Ctrl-C interrupts at once).
        signal.signal(signum, signal.default_int_handler if signum == signal.SIGINT else signal.SIG_DFL)

    def _run(self, job: Job) -> None:
        handler = self.handlers[job.kind]
        try:
            with self.db.session(immediate=True) as session:
                handler(session, job)
                if not complete(session, job, self.id, now=self.clock()):
                    raise _LeaseLost
        except _LeaseLost:
            log.warning("job %s (%s): lease lost to another worker; its effects were rolled back", job.id, job.kind)
        except Exception as exc:
            text = f"{type(exc).__name__}: {exc}"
            with self.db.session(immediate=True) as session:
                status = fail(session, job, self.id, text, settings=self.settings, rng=self.rng, now=self.clock())
            log.warning(
                "job %s (%s) attempt %d failed (%s): %s",
                job.id,
                job.kind,
                job.attempts,
                type(exc).__name__,
                "dead-lettered" if status == "dead" else "will retry",
            )

    def _release(self, jobs: Sequence[Job]) -> None:
        if not jobs:
            return
        with self.db.session(immediate=True) as session:
            n = release(session, jobs, self.id, now=self.clock())
        log.info("worker %s gave back %d claimed job(s)", self.id, n)

    def _extend(self, jobs: Sequence[Job]) -> list[Job]:
        until = self.clock() + timedelta(seconds=self.settings.lease_seconds)
        kept = []
        with self.db.session(immediate=True) as session:
            for job in jobs:
                if extend(session, [job], self.id, until):
                    kept.append(Job(job.id, job.kind, job.key, job.payload, job.attempts, job.max_attempts, until))
        return kept
