"""The AS4 access point: messages received (with payloads and receipts) and sent (with receipts).

Revision ID: as4_0001
Revises: base (first revision of the as4 branch)
Create Date: 2026-11-27 03:48:34.353236
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy import Text  # autogenerate writes JSONB(astext_type=Text())
from sqlalchemy.dialects import postgresql

from oots.store.base import UtcDateTime

revision: str = "as4_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("as4",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "as4_inbound",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("message_id", sa.String(length=255), nullable=False),
        sa.Column("header", sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql"), nullable=False),
        sa.Column("from_party", sa.String(length=255), nullable=False),
        sa.Column("partner", sa.String(length=100), nullable=False),
        sa.Column("leg", sa.String(length=100), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("received_at", UtcDateTime(), nullable=False),
        sa.Column("delivered_at", UtcDateTime(), nullable=True),
        sa.Column("via", sa.String(length=20), nullable=False),
        sa.Column("signer", sa.LargeBinary(), nullable=False),
        sa.Column(
            "references", sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql"), nullable=False
        ),
        sa.Column("receipt_content_type", sa.String(length=400), nullable=False),
        sa.Column("receipt", sa.LargeBinary(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_as4_inbound")),
        sa.UniqueConstraint("message_id", name=op.f("uq_as4_inbound_message_id")),
    )
    with op.batch_alter_table("as4_inbound", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_as4_inbound_state_received_at"), ["state", "received_at"], unique=False)

    op.create_table(
        "as4_outbound",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("message_id", sa.String(length=255), nullable=False),
        sa.Column("partner", sa.String(length=100), nullable=False),
        sa.Column("leg", sa.String(length=100), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("first_sent_at", UtcDateTime(), nullable=True),
        sa.Column("next_attempt_at", UtcDateTime(), nullable=True),
        sa.Column("locked_until", UtcDateTime(), nullable=True),
        sa.Column("error_code", sa.String(length=20), nullable=True),
        sa.Column("error_detail", sa.Text(), nullable=True),
        sa.Column("content_type", sa.String(length=400), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column(
            "references", sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql"), nullable=False
        ),
        sa.Column("receipt", sa.LargeBinary(), nullable=True),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_as4_outbound")),
        sa.UniqueConstraint("message_id", name=op.f("uq_as4_outbound_message_id")),
    )
    with op.batch_alter_table("as4_outbound", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_as4_outbound_state_next_attempt_at"), ["state", "next_attempt_at"], unique=False
        )

    op.create_table(
        "as4_inbound_payloads",
        sa.Column("inbound_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("content_id", sa.String(length=255), nullable=False),
        sa.Column("mime_type", sa.String(length=255), nullable=False),
        sa.Column(
            "properties", sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql"), nullable=False
        ),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["inbound_id"],
            ["as4_inbound.id"],
            name=op.f("fk_as4_inbound_payloads_inbound_id_as4_inbound"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("inbound_id", "position", name=op.f("pk_as4_inbound_payloads")),
    )


def downgrade() -> None:
    op.drop_table("as4_inbound_payloads")
    with op.batch_alter_table("as4_outbound", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_as4_outbound_state_next_attempt_at"))

    op.drop_table("as4_outbound")
    with op.batch_alter_table("as4_inbound", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_as4_inbound_state_received_at"))

    op.drop_table("as4_inbound")
