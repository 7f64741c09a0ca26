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
* A kind may also have a *preparer*: work done before the job's transaction opens (parsing, rendering,
  signing — anything that needs no write), so that on SQLite the node's single write lock is held
  only for the writes. A preparer keeps what it made for its handler (the handler does the work
  itself when there is nothing kept); a preparer that raises is logged and the handler runs as usual.
* A failed attempt is retried after an exponential backoff with jitter; after ``max_attempts`` the
  job is dead-lettered (status ``dead``) with its last error, listed by :func:`list_dead`, put back
  by :func:`requeue`, or ended unrun by :func:`discard` when its cause will never be mended (``done``,
  its last error kept with a note that it was discarded). An error that is not retryable
  (``OotsError.retryable`` false: an expired certificate, which waiting does not mend) dead-letters
  the job at once. A kind may have an *on_dead* hook, run in a savepoint of the transaction that
  dead-letters a job — its handler failed, or its worker never finished its last attempt
  (:class:`LeaseExpired`) — to record what became of the work (a requeued job runs its handler again
  as usual; a discarded one runs nothing more, and what the hook recorded stays).
* :func:`cancel` marks queued jobs done unrun when their work is no longer needed (the timeout job
  of something that ended), so that no worker claims them only to find nothing to do.
* :func:`retired` is the handler of a kind nothing queues any more (work that became periodic): the
  jobs of it an older version left are completed unrun rather than left queued with no one to claim them.

States (see docs/architecture.md): ``queued`` → ``running`` → ``done`` | ``queued`` (retry) | ``dead``;
``queued`` → ``done`` (cancelled); ``dead`` → ``queued`` (requeued) | ``done`` (discarded); ``running``
with an expired lease → ``running`` (claimed again) | ``dead`` (no attempts left).
"""

from __future__ import annotations

import json
import logging
import os
import random
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from types import FrameType
from typing import Any, NoReturn

from sqlalchemy import Connection, Table, Text, Update, bindparam, delete, func, insert, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from oots.errors import (
    LeaseExpired,
    NotFound,
    OotsError,
    StoreError,
    StoreUnavailable,
    error_text,
    exception_text,
)
from oots.settings import QueueSettings
from oots.store.base import UtcDateTime, utcnow
from oots.store.database import Database, Reconnect
from oots.store.models import JOB_STATUSES, QueueJob
from oots.store.wake import on_commit, topic

__all__ = [
    "JOB_STATUSES",
    "WAKE_TOPIC",
    "DeadHook",
    "Handler",
    "Job",
    "Preparer",
    "QueueJob",
    "Worker",
    "backoff_delay",
    "cancel",
    "claim",
    "complete",
    "counts",
    "default_worker_id",
    "discard",
    "discard_dead",
    "end_group_after",
    "enqueue",
    "enqueue_many",
    "extend",
    "fail",
    "list_dead",
    "purge_done",
    "release",
    "requeue",
    "requeue_dead",
    "retired",
    "uncomplete",
]

log = logging.getLogger(__name__)

MAX_KIND_LENGTH = 100
MAX_KEY_LENGTH = 200
#: Longest error text kept on a job (the start of the message is what matters).
MAX_ERROR_LENGTH = 4000

_SKIP = {"synchronize_session": False}

#: The :mod:`oots.store.wake` topic fired when a transaction that enqueued a job commits.
WAKE_TOPIC = "queue"


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
#: A preparer does what it can of a job before its transaction (no database writes; see the module doc).
Preparer = Callable[[Job], None]
#: Told, in the transaction that dead-letters a job, of the error its handler failed with (a
#: :class:`LeaseExpired` when its worker never finished its last attempt).
DeadHook = Callable[[Session, Job, BaseException], None]


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


# Built once, values passed as parameters: compiled once and reused (``.values(row)`` per call would
# build a new statement and its cache key over every value).
_JOBS: Table = QueueJob.__table__  # type: ignore[assignment]
_INSERT_JOB = insert(_JOBS).returning(_JOBS.c.id)
_JOB_BY_KEY = select(_JOBS.c.id).where(_JOBS.c.kind == bindparam("kind"), _JOBS.c.key == bindparam("key"))
_UPSERT_JOB = {
    "postgresql": postgresql.insert(_JOBS).on_conflict_do_nothing(index_elements=["kind", "key"]).returning(_JOBS.c.id),
    "sqlite": sqlite.insert(_JOBS).on_conflict_do_nothing(index_elements=["kind", "key"]).returning(_JOBS.c.id),
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
    A job due now wakes the workers when the transaction commits; a job for later wakes none (each
    would claim nothing): a worker finds it at its next poll after ``run_at``.
    """
    moment = now or utcnow()
    row = _new_row(kind, payload, key, run_at, max_attempts, moment)
    if run_at is None or run_at <= moment:
        on_commit(session, WAKE_TOPIC)
    conn = session.connection()  # Core statements: no ORM state is involved
    if key is None:
        return int(conn.execute(_INSERT_JOB, row).scalar_one())
    stmt = _UPSERT_JOB["postgresql" if conn.dialect.name == "postgresql" else "sqlite"]
    job_id = conn.execute(stmt, row).scalar_one_or_none()
    if job_id is None:
        job_id = conn.execute(_JOB_BY_KEY, {"kind": kind, "key": key}).scalar_one()
    return int(job_id)


_CANCEL = (
    update(_JOBS)
    .where(
        _JOBS.c.kind == bindparam("b_kind"),
        _JOBS.c.key.in_(bindparam("b_keys", expanding=True)),
        _JOBS.c.status == "queued",
    )
    .values(status="done", finished_at=bindparam("now"), updated_at=bindparam("now"))
)


def cancel(session: Session, kind: str, keys: Collection[str], *, now: datetime | None = None) -> int:
    """Mark the queued jobs of ``kind`` and ``keys`` done unrun, in the caller's transaction; how many.

    For work that is no longer needed (a timeout job of something that has ended): no worker claims
    it. Only a ``queued`` job is touched (due or not, retrying included): one a worker holds
    (``running``) is left to its worker, which completes it as usual, so its handler must still find
    nothing to do by itself; a ``done`` or ``dead`` job stays as it is. A job done this way keeps its
    key (a later :func:`enqueue` of it returns it) and has no ``locked_by``: no worker ran it.
    """
    if not keys:
        return 0
    params = {"b_kind": kind, "b_keys": list(keys), "now": now or utcnow()}
    return _rowcount(session.connection().execute(_CANCEL, params))


def retired(session: Session, job: Job) -> None:
    """The handler of a job kind nothing queues any more (its work is done otherwise now): a job of it
    that an older version left in the database — queued, retrying, held by a worker that was stopped,
    or requeued from the dead letters — is completed without doing anything, instead of staying queued
    for ever (no worker claims a kind it has no handler for)."""
    log.info("job %d of the retired kind %s completed without running", job.id, job.kind)


def enqueue_many(
    session: Session, kind: str, payloads: Iterable[Any], *, run_at: datetime | None = None, now: datetime | None = None
) -> list[int]:
    """Add one job per payload (no idempotency keys) in one round trip; return their ids in order."""
    moment = now or utcnow()
    rows = [_new_row(kind, payload, None, run_at, None, moment) for payload in payloads]
    if not rows:
        return []
    if run_at is None or run_at <= moment:
        on_commit(session, WAKE_TOPIC)
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


# Statements built once (building SQLAlchemy expressions costs more than running them).
_T: Table = QueueJob.__table__  # type: ignore[assignment]
_C = _T.c

#: The condition that a worker still holds one particular claim of a job.
_HELD = (
    (_C.id == bindparam("job_id"))
    & (_C.status == "running")
    & (_C.locked_by == bindparam("worker"))
    & (_C.attempts == bindparam("b_attempts"))
)
_COMPLETE = (
    update(_T)
    .where(_C.id.in_(bindparam("ids", expanding=True)), _C.status == "running", _C.locked_by == bindparam("worker"))
    .values(status="done", finished_at=bindparam("now"), updated_at=bindparam("now"))
    .returning(_C.id)
)
_UNCOMPLETE = (
    update(_T)
    .where(_C.id.in_(bindparam("ids", expanding=True)), _C.status == "done", _C.locked_by == bindparam("worker"))
    .values(status="running", finished_at=None)
)
_FAIL = (
    update(_T)
    .where(_HELD)
    .values(
        status=bindparam("new_status"),
        run_at=func.coalesce(bindparam("retry_at", type_=UtcDateTime()), _C.run_at),
        finished_at=bindparam("finished_at", type_=UtcDateTime()),
        locked_by=None,
        locked_until=None,
        last_error=bindparam("error"),
        updated_at=bindparam("now"),
    )
)
_RELEASE = (
    update(_T)
    .where(_HELD)
    .values(status="queued", locked_by=None, locked_until=None, attempts=_C.attempts - 1, updated_at=bindparam("now"))
)
_EXTEND = update(_T).where(_HELD).values(locked_until=bindparam("until"))
_EXPIRED = (
    select(_C.id, _C.kind, _C.key, _C.payload, _C.attempts, _C.max_attempts, _C.locked_by, _C.locked_until)
    .where(_C.status == "running", _C.locked_until <= bindparam("now"), _C.kind.in_(bindparam("kinds", expanding=True)))
    .order_by(_C.locked_until, _C.id)
    .limit(bindparam("limit"))
    .with_for_update(skip_locked=True)
)
#: What taking a job sets (the worker's lease and one more attempt), for both ways of taking.
_TAKEN = {
    "status": "running",
    "locked_by": bindparam("worker"),
    "locked_until": bindparam("until"),
    "attempts": _C.attempts + 1,
    "updated_at": bindparam("now"),
}
_TAKE = (
    update(_T)
    .where(_C.id.in_(bindparam("ids", expanding=True)))
    .values(_TAKEN)
    .returning(_C.id, _C.kind, _C.key, _C.payload, _C.attempts, _C.max_attempts)
)
# The usual claim in one statement: the oldest due jobs (locked, others' locked rows skipped on
# PostgreSQL) are taken as they are found.
_TAKE_DUE = (
    update(_T)
    .where(
        _C.id.in_(
            select(_C.id)
            .where(
                _C.status == "queued",
                _C.run_at <= bindparam("now"),
                _C.kind.in_(bindparam("kinds", expanding=True)),
            )
            .order_by(_C.run_at, _C.id)
            .limit(bindparam("limit"))
            .with_for_update(skip_locked=True)
            .scalar_subquery()
        )
    )
    .values(_TAKEN)
    .returning(_C.id, _C.kind, _C.key, _C.payload, _C.attempts, _C.max_attempts, _C.run_at)
)
_EXPIRED_TO_DEAD = (
    update(_T)
    .where(_C.id == bindparam("job_id"), _C.status == "running")
    .values(
        status="dead",
        locked_by=None,
        locked_until=None,
        finished_at=bindparam("now"),
        updated_at=bindparam("now"),
        last_error=bindparam("error"),
    )
)


_ASYNC_COMMIT = text("SET LOCAL synchronous_commit = off")


def _held(job: Job, worker_id: str) -> dict[str, Any]:
    return {"job_id": job.id, "worker": worker_id, "b_attempts": job.attempts}


def claim(
    session: Session | Connection,
    worker_id: str,
    *,
    kinds: Sequence[str],
    limit: int,
    lease_seconds: float,
    default_max_attempts: int,
    now: datetime | None = None,
    dead_hooks: Mapping[str, DeadHook] | None = None,
) -> list[Job]:
    """Claim up to ``limit`` due jobs of ``kinds`` for ``worker_id`` and return them, oldest due first.

    Run it in a transaction of its own that commits right away (on SQLite an immediate one, see
    :meth:`Database.session`), given as a session or a Core connection. Jobs whose lease expired are
    taken first; those among them that have no attempts left are dead-lettered instead of run again,
    and the ``on_dead`` hook of their kind in ``dead_hooks`` runs, in a savepoint of this transaction,
    with a :class:`LeaseExpired` (given a connection, in a session joined to its transaction; a topic a
    hook fires with :func:`oots.store.wake.on_commit` is not fired: a worker finds its job at its poll).
    """
    if not kinds or limit < 1:
        return []
    conn = session.connection() if isinstance(session, Session) else session
    moment = now or utcnow()
    until = moment + timedelta(seconds=lease_seconds)
    kinds = list(kinds)
    ids: list[int] = []
    dead: list[tuple[DeadHook, Job, LeaseExpired]] = []
    for row in conn.execute(_EXPIRED, {"now": moment, "kinds": kinds, "limit": limit}).all():
        if row.attempts >= (row.max_attempts or default_max_attempts):
            exc = LeaseExpired(f"lease expired on attempt {row.attempts} (worker {row.locked_by} never finished it)")
            conn.execute(_EXPIRED_TO_DEAD, {"job_id": row.id, "now": moment, "error": _error_text(exc)})
            log.warning("job %s (%s) dead-lettered: its last worker never finished it", row.id, row.kind)
            hook = (dead_hooks or {}).get(row.kind)
            if hook is not None:
                job = Job(row.id, row.kind, row.key, row.payload, row.attempts, row.max_attempts, row.locked_until)
                dead.append((hook, job, exc))
        else:
            ids.append(row.id)
    if dead:
        # Before any queued job is taken: a hook may lock what a web step locks before it reschedules
        # or cancels a queued job (the journal's head), and must not hold such a job's row meanwhile.
        _run_dead_hooks(session, dead)
    jobs: list[Job] = []
    if ids:
        rows = conn.execute(_TAKE, {"ids": ids, "worker": worker_id, "until": until, "now": moment}).all()
        by_id = {r.id: Job(r.id, r.kind, r.key, r.payload, r.attempts, r.max_attempts, until) for r in rows}
        jobs = [by_id[i] for i in ids if i in by_id]
    if len(ids) < limit:
        params = {"now": moment, "kinds": kinds, "limit": limit - len(ids), "worker": worker_id, "until": until}
        due = sorted(conn.execute(_TAKE_DUE, params).all(), key=lambda r: (r.run_at, r.id))  # RETURNING: no order
        jobs.extend(Job(r.id, r.kind, r.key, r.payload, r.attempts, r.max_attempts, until) for r in due)
    return jobs


def _run_dead_hooks(session: Session | Connection, dead: Sequence[tuple[DeadHook, Job, BaseException]]) -> None:
    """Run on_dead hooks in the transaction of ``session`` (a connection's: in a session joined to it)."""
    if isinstance(session, Session):
        for hook, job, exc in dead:
            _run_dead_hook(session, hook, job, exc)
        return
    with Session(bind=session) as joined:  # joins the connection's transaction, never commits it
        for hook, job, exc in dead:
            _run_dead_hook(joined, hook, job, exc)


def _run_dead_hook(session: Session, hook: DeadHook, job: Job, exc: BaseException) -> None:
    """Run ``hook`` in a savepoint: when it fails (logged), its effects go, the job's dead letter stays."""
    try:
        with session.begin_nested():
            hook(session, job, exc)
    except Exception as failure:
        log.error("job %s (%s): its on_dead hook failed: %s", job.id, job.kind, exception_text(failure))


def complete(session: Session, jobs: Sequence[Job], worker_id: str, *, now: datetime | None = None) -> list[Job]:
    """Mark claimed jobs done in the caller's transaction; return those ``worker_id`` still held.

    Call it in the handlers' transaction (before or after the handlers run): a job missing from the
    result was taken over by another worker after its lease expired, and its handler must not run
    here (or its effects must be rolled back). On PostgreSQL the rows stay locked until the
    transaction ends, so nobody can take the jobs over in the meantime. A done job keeps
    ``locked_by``: the worker that finished it.
    """
    if not jobs:
        return []
    params = {"ids": [j.id for j in jobs], "worker": worker_id, "now": now or utcnow()}
    held = set(session.connection().scalars(_COMPLETE, params))
    return [job for job in jobs if job.id in held]


#: ``session.info`` key set by :func:`end_group_after`.
_END_GROUP = "oots.queue.end_group"


def end_group_after(session: Session) -> None:
    """Tell the worker running a job in ``session`` to commit its group after this job (PostgreSQL).

    For a handler that locks a row every transaction of the node queues on (the audit journal's head):
    held until the group commits, the next jobs of the group would lock their own rows after it, the
    reverse of a web step's order (its record, then the head), and the two would deadlock.
    """
    session.info[_END_GROUP] = True


def uncomplete(session: Session, jobs: Sequence[Job], worker_id: str) -> None:
    """Undo :func:`complete` for jobs whose handlers did not run in this transaction after all."""
    if jobs:
        session.connection().execute(_UNCOMPLETE, {"ids": [j.id for j in jobs], "worker": worker_id})


def fail(
    session: Session,
    job: Job,
    worker_id: str,
    error: str,
    *,
    settings: QueueSettings,
    rng: random.Random | None = None,
    now: datetime | None = None,
    retry: bool = True,
) -> str | None:
    """Record a failed attempt: back to ``queued`` after a backoff, or ``dead`` when none are left (or,
    without ``retry``, at once: the error is one that trying again cannot mend).

    Returns the new status, or None if ``worker_id`` no longer held the job.
    """
    moment = now or utcnow()
    params: dict[str, Any] = {**_held(job, worker_id), "now": moment, "error": error[:MAX_ERROR_LENGTH]}
    if not retry or job.attempts >= (job.max_attempts or settings.max_attempts):
        params |= {"new_status": "dead", "retry_at": None, "finished_at": moment}
    else:
        delay = backoff_delay(job.attempts, settings, rng)
        params |= {"new_status": "queued", "retry_at": moment + timedelta(seconds=delay), "finished_at": None}
    result = session.connection().execute(_FAIL, params)
    return str(params["new_status"]) if _rowcount(result) == 1 else None


def release(session: Session, jobs: Iterable[Job], worker_id: str, *, now: datetime | None = None) -> int:
    """Give claimed jobs back unattempted (a stopping worker); returns how many were given back."""
    moment = now or utcnow()
    conn = session.connection()
    return sum(_rowcount(conn.execute(_RELEASE, {**_held(job, worker_id), "now": moment})) for job in jobs)


def extend(session: Session, jobs: Iterable[Job], worker_id: str, until: datetime) -> list[Job]:
    """Extend the lease of claimed jobs to ``until``; return those still held, with their new lease."""
    conn = session.connection()
    kept = []
    for job in jobs:
        if _rowcount(conn.execute(_EXTEND, {**_held(job, worker_id), "until": until})) == 1:
            kept.append(replace(job, locked_until=until))
    return kept


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


def list_dead(session: Session, *, kind: str | None = None, limit: int = 100, offset: int = 0) -> list[QueueJob]:
    """Dead-lettered jobs, most recently failed first (``limit`` of them after skipping ``offset``)."""
    stmt = select(QueueJob).where(QueueJob.status == "dead")
    if kind is not None:
        stmt = stmt.where(QueueJob.kind == kind)
    stmt = stmt.order_by(QueueJob.finished_at.desc(), QueueJob.id.desc()).limit(limit).offset(offset)
    return list(session.scalars(stmt))


def requeue(session: Session, job_id: int, *, now: datetime | None = None) -> str:
    """Put a dead job back in the queue with a fresh set of attempts (its last error is kept); returns
    its kind.

    Raises :class:`NotFound` if there is no dead job with this id.
    """
    moment = now or utcnow()
    kind = session.execute(
        update(QueueJob)
        .where(QueueJob.id == job_id, QueueJob.status == "dead")
        .values(status="queued", attempts=0, run_at=moment, finished_at=None, updated_at=moment)
        .returning(QueueJob.kind)
        .execution_options(**_SKIP)
    ).scalar()
    if kind is None:
        _not_dead(session, job_id, "requeued")
    return str(kind)


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


def discard(session: Session, job_id: int, *, now: datetime | None = None) -> str:
    """End a dead job without running it, for work whose cause will never be mended; returns its kind.

    The job becomes ``done`` (``finished_at`` now: :func:`purge_done` deletes it with the other done
    jobs), its last error kept with a note that it was discarded and when. No hook runs: the kind's
    ``on_dead`` hook ran when the job was dead-lettered, and what it recorded stays (a received AS4
    message stays ``delivery_failed``, and its purge forgets it now that its job cannot run any more).
    Like a cancelled job, a discarded one keeps its key: enqueueing the same ``(kind, key)`` returns it,
    unrun, until it is purged. Raises :class:`NotFound` if there is no dead job with this id.
    """
    moment = now or utcnow()
    kind = session.execute(_discarding(moment).where(QueueJob.id == job_id).returning(QueueJob.kind)).scalar()
    if kind is None:
        _not_dead(session, job_id, "discarded")
    return str(kind)


def discard_dead(session: Session, *, kind: str | None = None, now: datetime | None = None) -> int:
    """End every dead job (of ``kind``) without running it (see :func:`discard`); returns how many."""
    stmt = _discarding(now or utcnow())
    if kind is not None:
        stmt = stmt.where(QueueJob.kind == kind)
    return _rowcount(session.execute(stmt))


def _discarding(moment: datetime) -> Update:
    """The update that discards dead jobs: ``done`` now, the note appended to the last error (cut to fit)."""
    note = f"discarded unrun by an operator at {moment.isoformat(timespec='seconds')}"
    keep = MAX_ERROR_LENGTH - len(note) - len(_NOTE_SEPARATOR)
    kept = func.substr(QueueJob.last_error, 1, keep, type_=Text) + _NOTE_SEPARATOR
    error = func.coalesce(kept, "", type_=Text) + note
    return (
        update(QueueJob)
        .where(QueueJob.status == "dead")
        .values(status="done", locked_by=None, locked_until=None, finished_at=moment, updated_at=moment)
        .values(last_error=error)
        .execution_options(**_SKIP)
    )


#: Between a discarded job's last error and the note that it was discarded.
_NOTE_SEPARATOR = "; "


def _not_dead(session: Session, job_id: int, done: str) -> NoReturn:
    """Raise the :class:`NotFound` that says why job ``job_id`` could not be ``done`` (requeued...)."""
    status = session.execute(select(QueueJob.status).where(QueueJob.id == job_id)).scalar()
    if status is None:
        raise NotFound(f"there is no dead job {job_id} (no job has that id)")
    raise NotFound(f"there is no dead job {job_id}: it is {status}, and only a dead job can be {done}")


def purge_done(session: Session, *, older_than: datetime) -> int:
    """Delete done jobs finished before ``older_than`` (their keys then stop deduplicating)."""
    result = session.execute(
        delete(QueueJob).where(QueueJob.status == "done", QueueJob.finished_at < older_than).execution_options(**_SKIP)
    )
    return _rowcount(result)


# --- the worker -----------------------------------------------------------------------------------


class _HandlerFailed(Exception):
    """A handler raised: the group's transaction is rolled back."""


@dataclass(frozen=True, slots=True)
class _Group:
    attempted: int  # jobs whose outcome (done or failed) is now recorded
    again: list[Job]  # jobs still held that must be run again
    in_time: bool  # every job given ran within group_commit_seconds


def default_worker_id() -> str:
    """``host:pid:random`` — unique per worker, readable in ``locked_by``."""
    return f"{socket.gethostname()[:150]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Worker:
    """Runs the handlers of the kinds registered with it until stopped.

    ``run_once()`` claims one batch and works through it; ``run_forever()`` polls every
    ``queue.poll_interval_seconds`` while idle, woken at once when a job is enqueued in this process
    (with :func:`oots.store.wake.listen`, in any process of the node); after a batch that took fewer
    jobs than it could (every due one), it claims again only once a job has been enqueued since that
    claim began or the poll is due, not at once to find nothing. It stops gracefully on
    SIGTERM or SIGINT: the job in hand is finished, the rest of the claimed batch is given back at
    once. While the database cannot be reached it waits and tries again (0.5 s, doubling up to 5 s,
    with a warning), for as long as it takes. ``clock`` and ``rng`` are injectable for tests.
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
        if len(self.id) > 200:
            raise StoreError("a worker id must be at most 200 characters")
        self.clock = clock
        self.rng = rng or random.Random()  # noqa: S311 - jitter, not security
        self.handlers: dict[str, Handler] = {}
        self.preparers: dict[str, Preparer] = {}
        self.dead_hooks: dict[str, DeadHook] = {}
        self._stop = threading.Event()
        self._wake = topic(WAKE_TOPIC)
        self._group_size = settings.batch_size if settings.group_commit_seconds > 0 else 1
        self._job_seconds: float | None = None  # moving average of the time a job takes here
        self._batch_full = False  # the last claim took as many jobs as it could: more may be due
        for kind, handler in (handlers or {}).items():
            self.register(kind, handler)

    def register(
        self, kind: str, handler: Handler, *, prepare: Preparer | None = None, on_dead: DeadHook | None = None
    ) -> None:
        """Run ``handler`` for jobs of ``kind`` (one handler per kind), ``prepare`` before its transaction,
        ``on_dead`` in the transaction that dead-letters a job (its handler failed, or its lease expired
        on its last attempt)."""
        _check_kind(kind)
        if kind in self.handlers:
            raise StoreError(f"a handler for job kind {kind!r} is already registered")
        self.handlers[kind] = handler
        if prepare is not None:
            self.preparers[kind] = prepare
        if on_dead is not None:
            self.dead_hooks[kind] = on_dead

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
        self._wake.fire()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    # -- work

    def claim_size(self) -> int:
        """How many jobs to claim at once: ``queue.batch_size``, fewer while jobs run slowly.

        A worker claims no more than it expects to finish in a quarter of a lease (from the average
        time its recent jobs took), so slow jobs are spread over all workers instead of waiting in
        one worker's batch.
        """
        size = self.settings.batch_size
        if self._job_seconds:
            size = min(size, int(self.settings.lease_seconds / 4 / self._job_seconds))
        return max(1, size)

    def claim_batch(self) -> list[Job]:
        """Claim the next batch in a transaction of its own."""
        limit = self.claim_size()
        with self.db.connect(immediate=True) as conn:  # Core statements only: no ORM session
            self._no_flush_wait(conn)
            jobs = claim(
                conn,
                self.id,
                kinds=sorted(self.handlers),
                limit=limit,
                lease_seconds=self.settings.lease_seconds,
                default_max_attempts=self.settings.max_attempts,
                now=self.clock(),
                dead_hooks=self.dead_hooks,
            )
        self._batch_full = len(jobs) >= limit
        return jobs

    def run_once(self) -> int:
        """Claim one batch and run it; return how many jobs were attempted (0: nothing was due)."""
        if self._stop.is_set():
            return 0
        pending = self.claim_batch()
        prepared: set[int] = set()
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
            size = min(len(pending), self._group_size)
            prepared = self._prepare(pending[:size], prepared)
            started = time.monotonic()
            group = self._run_group(pending[:size])
            if group.attempted:
                per_job = (time.monotonic() - started) / group.attempted
                self._job_seconds = per_job if self._job_seconds is None else 0.7 * self._job_seconds + 0.3 * per_job
            pending = group.again + pending[size:]
            done += group.attempted
            # Grow groups while they finish in time, shrink them to what did when they do not.
            if self.settings.group_commit_seconds <= 0:
                self._group_size = 1
            elif group.in_time:
                self._group_size = min(size * 2, self.settings.batch_size)
            else:
                self._group_size = max(1, group.attempted)
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
        reconnect = Reconnect(f"worker {self.id}")
        try:
            while not self.stopping:
                generation = self._wake.generation
                try:
                    ran = self.run_once()
                except (DBAPIError, StoreUnavailable) as exc:
                    # The database went away (or failed under us): what this worker held waits for its
                    # lease; wait a little longer each time, and go on when it answers again.
                    self._stop.wait(reconnect.failed(exc))
                    continue
                reconnect.succeeded()
                if ran == 0 or not self._batch_full:
                    # Until a job is enqueued in this process (or on PostgreSQL, in any) or the poll is due.
                    # A claim that took fewer jobs than it could found every due one: the next claim would
                    # find none unless one was enqueued since `generation` (the wait then returns at once).
                    self._wake.wait(generation, self.settings.poll_interval_seconds)
        finally:
            for number, old_handler in previous.items():
                signal.signal(number, old_handler)
            log.info("worker %s stopped", self.id)

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        log.info("worker %s: %s received, finishing the job in hand", self.id, signal.Signals(signum).name)
        self.stop()
        # A second signal acts as it did before (a second Ctrl-C interrupts at once).
        signal.signal(signum, signal.default_int_handler if signum == signal.SIGINT else signal.SIG_DFL)

    def _prepare(self, jobs: Sequence[Job], prepared: set[int]) -> set[int]:
        """Run the preparers of ``jobs`` not prepared yet (outside any transaction); the ids now prepared."""
        for job in jobs:
            prepare = self.preparers.get(job.kind)
            if prepare is None or job.id in prepared:
                continue
            prepared.add(job.id)
            try:
                prepare(job)
            except Exception as exc:  # the handler does the work, and reports its failure, itself
                log.debug("job %s (%s): preparing failed (%s); the handler does the work", job.id, job.kind, exc)
        return prepared

    def _no_flush_wait(self, session: Session | Connection) -> None:
        """On PostgreSQL, let this transaction commit without waiting for its disk flush.

        Used for claims, releases and lease renewals only: losing one in a server crash merely
        returns the jobs to where they were, and the next synchronous commit (a group's) flushes it
        anyway, the write-ahead log being sequential. Halves the flushes per batch.
        """
        if not self.db.is_sqlite:
            session.execute(_ASYNC_COMMIT)

    def _run_group(self, jobs: list[Job]) -> _Group:
        """Run ``jobs`` (in order) in one transaction that also marks them done: one commit for all.

        The group is cut short when it runs longer than ``queue.group_commit_seconds`` or the worker
        is asked to stop; jobs not reached go back to the caller (``again``). A handler that raises
        rolls the whole transaction back: its failure is recorded, and the jobs run before it in the
        group go back to be run again (their database effects were rolled back with it; anything
        they did outside the database happens twice — handlers must be idempotent). A group whose
        commit fails is run again one job per transaction.
        """
        seconds = self.settings.group_commit_seconds
        ran: list[Job] = []
        rest: list[Job] = []
        failure: tuple[Job, Exception] | None = None
        cut = False  # ended early by end_group_after, not by time
        try:
            with self.db.session(immediate=True) as session:
                held = complete(session, jobs, self.id, now=self.clock())
                for job in jobs:
                    if job not in held:
                        log.warning("job %s (%s): lease lost to another worker; not run here", job.id, job.kind)
                started = time.monotonic()
                for index, job in enumerate(held):
                    if ran and (self._stop.is_set() or time.monotonic() - started >= seconds):
                        rest = held[index:]
                        uncomplete(session, rest, self.id)
                        break
                    try:
                        self.handlers[job.kind](session, job)
                    except Exception as exc:
                        failure = (job, exc)
                        rest = held[index + 1 :]
                        raise _HandlerFailed from exc
                    ran.append(job)
                    if session.info.pop(_END_GROUP, False) and not self.db.is_sqlite and index + 1 < len(held):
                        # A lock the node's other transactions queue on is held: commit before taking others.
                        rest = held[index + 1 :]
                        uncomplete(session, rest, self.id)
                        cut = True
                        break
        except _HandlerFailed:
            assert failure is not None
            self._record_failure(*failure)
            return _Group(attempted=1, again=ran + rest, in_time=False)
        except Exception as exc:
            if not ran:
                raise
            if len(ran) == 1:
                self._record_failure(ran[0], exc)
            else:
                log.warning(
                    "worker %s: a group of %d jobs failed to commit; running them one by one", self.id, len(ran)
                )
                for job in ran:
                    self._run_group([job])
            return _Group(attempted=len(ran), again=rest, in_time=False)
        return _Group(attempted=len(ran), again=rest, in_time=cut or not rest)

    def _record_failure(self, job: Job, exc: BaseException) -> None:
        retry = not (isinstance(exc, OotsError) and not exc.retryable)
        with self.db.session(immediate=True) as session:
            status = fail(
                session,
                job,
                self.id,
                _error_text(exc),
                settings=self.settings,
                rng=self.rng,
                now=self.clock(),
                retry=retry,
            )
            if status == "dead":
                self._dead(session, job, exc)
        if retry or status != "dead":
            self._log_failure(job, exc, status)
        else:  # the error says what an operator must mend; an error of oots names no person
            log.error("job %s (%s) dead-lettered at once, not retried: %s", job.id, job.kind, _error_text(exc))

    def _dead(self, session: Session, job: Job, exc: BaseException) -> None:
        """Run the kind's on_dead hook (in a savepoint: its failure does not keep the job from its end)."""
        hook = self.dead_hooks.get(job.kind)
        if hook is not None:
            _run_dead_hook(session, hook, job, exc)

    def _log_failure(self, job: Job, exc: BaseException, status: str | None) -> None:
        outcome = {"dead": "dead-lettered", "queued": "will retry"}.get(status or "", "lease lost")
        log.warning(
            "job %s (%s) attempt %d failed (%s): %s", job.id, job.kind, job.attempts, type(exc).__name__, outcome
        )

    def _release(self, jobs: Sequence[Job]) -> None:
        if not jobs:
            return
        with self.db.session(immediate=True) as session:
            self._no_flush_wait(session)
            n = release(session, jobs, self.id, now=self.clock())
        log.info("worker %s gave back %d claimed job(s)", self.id, n)

    def _extend(self, jobs: Sequence[Job]) -> list[Job]:
        until = self.clock() + timedelta(seconds=self.settings.lease_seconds)
        with self.db.session(immediate=True) as session:
            self._no_flush_wait(session)
            return extend(session, jobs, self.id, until)


def _error_text(exc: BaseException) -> str:
    """What ``last_error`` keeps: no message that may quote personal data (see ``error_text``)."""
    return error_text(exc)[:4000]
