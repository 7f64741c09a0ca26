"""The durable work queue: queue_jobs.

Revision ID: store_0001
Revises: base (first revision of the store branch)
Create Date: 2026-11-27 03:29:50.500564
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy import Text  # autogenerate writes JSONB(astext_type=Text())
from sqlalchemy.dialects import postgresql

from oots.store.base import UtcDateTime

revision: str = "store_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("store",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "queue_jobs",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(length=100), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=True),
        sa.Column(
            "payload", sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql"), nullable=False
        ),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=True),
        sa.Column("run_at", UtcDateTime(), nullable=False),
        sa.Column("locked_by", sa.String(length=200), nullable=True),
        sa.Column("locked_until", UtcDateTime(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.Column("finished_at", UtcDateTime(), nullable=True),
        sa.CheckConstraint("status IN ('queued', 'running', 'done', 'dead')", name=op.f("ck_queue_jobs_status")),
        sa.CheckConstraint("attempts >= 0", name=op.f("ck_queue_jobs_attempts")),
        sa.CheckConstraint("max_attempts IS NULL OR max_attempts >= 1", name=op.f("ck_queue_jobs_max_attempts")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_queue_jobs")),
        sa.UniqueConstraint("kind", "key", name=op.f("uq_queue_jobs_kind_key")),
    )
    with op.batch_alter_table("queue_jobs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_queue_jobs_status_locked_until"), ["status", "locked_until"], unique=False)
        batch_op.create_index(batch_op.f("ix_queue_jobs_status_run_at"), ["status", "run_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("queue_jobs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_queue_jobs_status_run_at"))
        batch_op.drop_index(batch_op.f("ix_queue_jobs_status_locked_until"))

    op.drop_table("queue_jobs")
