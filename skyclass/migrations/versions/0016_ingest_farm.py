"""ingest farm: procrastinate's queue and farm.ingest_job, in schema farm (PostgreSQL only)

Revision ID: 0016
Revises: 0001
Create Date: 2026-12-01 10:00:00.000000

Numbered after its issue (#16) so branches written in parallel never collide.

The queue exists only on PostgreSQL; on SQLite this revision does nothing (and
`skyclass ingest --queue` says the queue needs PostgreSQL). Everything lives in
schema ``farm``, so the station's own schema stays exactly what its models say.
Procrastinate's schema is the one of the installed version (pinned <3.11 in
pyproject.toml): a procrastinate upgrade that changes it brings a migration that
applies its ``procrastinate/sql/migrations`` files.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import core.orm

revision = "0016"
down_revision = "0001"
branch_labels = None
depends_on = None

SCHEMA = "farm"


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    op.execute(sa.text(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}"))
    present = bind.execute(sa.text(f"SELECT to_regclass('{SCHEMA}.procrastinate_jobs')")).scalar()
    if present is None:  # e.g. not applied by hand with `procrastinate schema --apply`
        from procrastinate.schema import SchemaManager

        # On the driver connection, inside Alembic's transaction: no parameter
        # parsing of procrastinate's SQL, and objects created in schema farm.
        driver = bind.connection.driver_connection
        assert driver is not None
        bind.execute(sa.text(f"SET LOCAL search_path TO {SCHEMA}"))
        driver.execute(SchemaManager.get_schema())
        bind.execute(sa.text("SET LOCAL search_path TO DEFAULT"))
    op.create_table(
        "ingest_job",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("label", sa.String(length=512), nullable=False),
        sa.Column("source", sa.String(length=2048), nullable=False),
        sa.Column("request", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("stage", sa.String(length=32), nullable=True),
        sa.Column("fraction", sa.Float(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("worker", sa.String(length=256), nullable=True),
        sa.Column("asset_id", sa.String(length=32), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("queue_job_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", core.orm.UtcDateTime(timezone=True), nullable=False),
        sa.Column("started_at", core.orm.UtcDateTime(timezone=True), nullable=True),
        sa.Column("finished_at", core.orm.UtcDateTime(timezone=True), nullable=True),
        sa.Column("updated_at", core.orm.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_ingest_job"),
        schema=SCHEMA,
    )
    op.create_index("ix_ingest_job_state", "ingest_job", ["state"], schema=SCHEMA)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(sa.text(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))
