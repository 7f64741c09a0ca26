"""Node: the admin area's login failures per client and its sessions (admin_login_failures, admin_sessions).

Revision ID: node_0001
Revises: base
Create Date: 2026-11-29 06:50:51.867647
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from oots.store.base import UtcDateTime

revision: str = "node_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("node",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "admin_login_failures",
        sa.Column("client", sa.String(length=64), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_at", UtcDateTime(), nullable=False),
        sa.Column("paused_until", UtcDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("client", name=op.f("pk_admin_login_failures")),
    )
    with op.batch_alter_table("admin_login_failures", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_admin_login_failures_last_at"), ["last_at"], unique=False)

    op.create_table(
        "admin_sessions",
        sa.Column("id_hash", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("expires_at", UtcDateTime(), nullable=False),
        sa.Column("revoked_at", UtcDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id_hash", name=op.f("pk_admin_sessions")),
    )
    with op.batch_alter_table("admin_sessions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_admin_sessions_expires_at"), ["expires_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("admin_sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_admin_sessions_expires_at"))

    op.drop_table("admin_sessions")
    with op.batch_alter_table("admin_login_failures", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_admin_login_failures_last_at"))

    op.drop_table("admin_login_failures")
