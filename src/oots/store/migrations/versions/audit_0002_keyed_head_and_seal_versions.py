"""keyed head and seal versions

Revision ID: audit_0002
Revises: audit_0001
Create Date: 2026-11-28 00:30:00.000000

Entries written before keep seal version 1 (``subject_key`` not sealed) and are verified by that rule;
new entries are sealed with version 2. The head's MAC needs the seal key, which a migration does not
have: it stays NULL until the node's next append (or ``oots audit purge``) keys it.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "audit_0002"
down_revision: str | Sequence[str] | None = "audit_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("audit_entries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("seal_version", sa.SmallInteger(), server_default=sa.text("1"), nullable=False))
    with op.batch_alter_table("audit_head", schema=None) as batch_op:
        batch_op.add_column(sa.Column("mac", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("audit_head", schema=None) as batch_op:
        batch_op.drop_column("mac")
    with op.batch_alter_table("audit_entries", schema=None) as batch_op:
        batch_op.drop_column("seal_version")
