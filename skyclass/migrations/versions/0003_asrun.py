"""as-run ledger (append-only copy of playout's journal)

Revision ID: 0003
Revises: 0001
Create Date: 2026-11-22 17:40:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import core.orm

revision = "0003"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "asrun",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("channel_id", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("event_id", sa.String(length=128), nullable=False),
        sa.Column("event_type", sa.String(length=16), nullable=False),
        sa.Column("scheduled_frame", sa.BigInteger(), nullable=False),
        sa.Column("actual_frame", sa.BigInteger(), nullable=False),
        sa.Column("scheduled_start", core.orm.UtcDateTime(timezone=True), nullable=False),
        sa.Column("actual_start", core.orm.UtcDateTime(timezone=True), nullable=False),
        sa.Column("scheduled_frames", sa.BigInteger(), nullable=False),
        sa.Column("duration_frames", sa.BigInteger(), nullable=False),
        sa.Column("asset_id", sa.String(length=64), nullable=True),
        sa.Column("sha256", sa.String(length=64), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("ad_break", sa.String(length=64), nullable=True),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_asrun")),
        sa.UniqueConstraint("channel_id", "seq", name="uq_asrun_channel_seq"),
        sa.UniqueConstraint("hash", name=op.f("uq_asrun_hash")),
    )
    op.create_index(op.f("ix_asrun_channel_id"), "asrun", ["channel_id"], unique=False)
    op.create_index(op.f("ix_asrun_scheduled_start"), "asrun", ["scheduled_start"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_asrun_scheduled_start"), table_name="asrun")
    op.drop_index(op.f("ix_asrun_channel_id"), table_name="asrun")
    op.drop_table("asrun")
