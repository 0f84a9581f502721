"""asset library

Revision ID: 0001
Revises:
Create Date: 2026-11-22 16:37:23.690300
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import core.orm

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "asset",
        sa.Column("asset_id", sa.String(length=32), nullable=False),
        sa.Column("lesson_id", sa.String(length=128), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("title", sa.String(length=256), nullable=False),
        sa.Column("grade", sa.String(length=8), nullable=True),
        sa.Column("subject", sa.String(length=64), nullable=True),
        sa.Column("textbook_edition", sa.String(length=64), nullable=True),
        sa.Column("unit", sa.String(length=128), nullable=True),
        sa.Column("lesson_number", sa.Integer(), nullable=True),
        sa.Column("teacher", sa.String(length=128), nullable=True),
        sa.Column("school", sa.String(length=256), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("profile", sa.String(length=8), nullable=False),
        sa.Column("path", sa.String(length=1024), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("duration_frames", sa.Integer(), nullable=False),
        sa.Column("source_name", sa.String(length=512), nullable=False),
        sa.Column("source_sha256", sa.String(length=64), nullable=False),
        sa.Column("stream_copied", sa.Boolean(), nullable=False),
        sa.Column("loudness_before", sa.JSON(), nullable=False),
        sa.Column("loudness_after", sa.JSON(), nullable=False),
        sa.Column("qc", sa.JSON(), nullable=False),
        sa.Column("review_state", sa.String(length=16), nullable=False),
        sa.Column("created_at", core.orm.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("asset_id", name=op.f("pk_asset")),
        sa.UniqueConstraint("lesson_id", name=op.f("uq_asset_lesson_id")),
        sa.UniqueConstraint("sha256", name=op.f("uq_asset_sha256")),
    )
    with op.batch_alter_table("asset", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_asset_grade"), ["grade"], unique=False)
        batch_op.create_index(batch_op.f("ix_asset_kind"), ["kind"], unique=False)
        batch_op.create_index(batch_op.f("ix_asset_review_state"), ["review_state"], unique=False)

    op.create_table(
        "asset_attachment",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("asset_id", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("filename", sa.String(length=512), nullable=False),
        sa.Column("media_type", sa.String(length=128), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("path", sa.String(length=1024), nullable=False),
        sa.ForeignKeyConstraint(
            ["asset_id"], ["asset.asset_id"], name=op.f("fk_asset_attachment_asset_id_asset")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_asset_attachment")),
    )
    with op.batch_alter_table("asset_attachment", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_asset_attachment_asset_id"), ["asset_id"], unique=False
        )

    op.create_table(
        "asset_review",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("asset_id", sa.String(length=32), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("reviewer", sa.String(length=128), nullable=False),
        sa.Column("at", core.orm.UtcDateTime(timezone=True), nullable=False),
        sa.Column("notes", sa.Text(), nullable=False),
        sa.Column("checks", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["asset_id"], ["asset.asset_id"], name=op.f("fk_asset_review_asset_id_asset")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_asset_review")),
    )
    with op.batch_alter_table("asset_review", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_asset_review_asset_id"), ["asset_id"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("asset_review", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_asset_review_asset_id"))

    op.drop_table("asset_review")
    with op.batch_alter_table("asset_attachment", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_asset_attachment_asset_id"))

    op.drop_table("asset_attachment")
    with op.batch_alter_table("asset", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_asset_review_state"))
        batch_op.drop_index(batch_op.f("ix_asset_kind"))
        batch_op.drop_index(batch_op.f("ix_asset_grade"))

    op.drop_table("asset")
