"""the dead delivery job of a received message whose delivery failed

A ``delivery_failed`` message names its dead-lettered ``as4.deliver`` job, so that the purge of
received messages keeps it while that job can still run (dead, or requeued). The messages already
``delivery_failed`` get the delivery job that still names them (``payload.id``) and can still run.

Revision ID: as4_0002
Revises: as4_0001
Create Date: 2026-11-29 15:45:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "as4_0002"
down_revision: str | Sequence[str] | None = "as4_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_inbound = sa.table("as4_inbound", sa.column("id", sa.BigInteger), sa.column("state"), sa.column("delivery_job"))
_jobs = sa.table(
    "queue_jobs", sa.column("id", sa.BigInteger), sa.column("kind"), sa.column("status"), sa.column("payload", sa.JSON)
)


def upgrade() -> None:
    with op.batch_alter_table("as4_inbound", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("delivery_job", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True)
        )

    conn = op.get_bind()
    if not sa.inspect(conn).has_table("queue_jobs"):  # a new database (the store branch comes later): no jobs
        return
    live = conn.execute(
        sa.select(_jobs.c.id, _jobs.c.payload)
        .where(_jobs.c.kind == "as4.deliver", _jobs.c.status.in_(("queued", "running", "dead")))
        .order_by(_jobs.c.id)
    ).all()
    for job_id, payload in live:
        inbound_id = payload.get("id") if isinstance(payload, dict) else None
        if isinstance(inbound_id, int):
            conn.execute(
                sa.update(_inbound)
                .where(_inbound.c.id == inbound_id, _inbound.c.state == "delivery_failed")
                .values(delivery_job=job_id)
            )


def downgrade() -> None:
    with op.batch_alter_table("as4_inbound", schema=None) as batch_op:
        batch_op.drop_column("delivery_job")
