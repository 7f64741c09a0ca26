"""eID: SAML assertions already used (eid_used_assertions).

Revision ID: eid_0001
Revises: base
Create Date: 2026-11-27 03:50:57.853844
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from oots.store.base import UtcDateTime

revision: str = "eid_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("eid",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "eid_used_assertions",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("expires_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_eid_used_assertions")),
    )
    with op.batch_alter_table("eid_used_assertions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_eid_used_assertions_expires_at"), ["expires_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("eid_used_assertions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_eid_used_assertions_expires_at"))

    op.drop_table("eid_used_assertions")
