"""The store's own tables: the durable work queue."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from oots.store.base import Base, BigId, JsonValue, utcnow

__all__ = ["JOB_STATUSES", "QueueJob"]

#: Every status a job can be in (see docs/architecture.md, "the job state table").
JOB_STATUSES = ("queued", "running", "done", "dead")


class QueueJob(Base):
    """One unit of background work.

    ``(kind, key)`` is unique: ``key`` is the caller's idempotency key (NULL: none).
    ``queued`` jobs are due at ``run_at``; a ``running`` job is held by ``locked_by`` until
    ``locked_until`` and is claimable again after that (its worker is presumed dead); ``done`` and
    ``dead`` are final (a dead job can be re-queued by hand).
    """

    __tablename__ = "queue_jobs"
    __table_args__ = (
        UniqueConstraint("kind", "key"),
        CheckConstraint(f"status IN {JOB_STATUSES!r}", name="status"),
        CheckConstraint("attempts >= 0", name="attempts"),
        CheckConstraint("max_attempts IS NULL OR max_attempts >= 1", name="max_attempts"),
        Index(None, "status", "run_at"),
        Index(None, "status", "locked_until"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(100))
    key: Mapped[str | None] = mapped_column(String(200))
    payload: Mapped[Any] = mapped_column(JsonValue)
    status: Mapped[str] = mapped_column(String(16), default="queued")
    attempts: Mapped[int] = mapped_column(default=0)
    #: Attempts before the job is dead-lettered; NULL means the worker's ``queue.max_attempts``.
    max_attempts: Mapped[int | None]
    run_at: Mapped[datetime] = mapped_column(default=utcnow)
    locked_by: Mapped[str | None] = mapped_column(String(200))
    locked_until: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
