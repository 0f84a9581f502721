"""compliance: append-only as-run (triggers), guide log, asset ad category

Revision ID: 0012
Revises: 0003
Create Date: 2026-12-02 14:00:00.000000

Numbered after its issue (#12) so branches written in parallel never collide.

* ``asrun`` and the new ``guide_log`` refuse UPDATE and DELETE (and TRUNCATE on
  PostgreSQL, which skips row triggers) in the database itself, whatever the client;
* ``asset.ad_category``: what an ad or promo sells (the ad rules for minors).

A later migration that rebuilds ``asrun`` or ``guide_log`` on SQLite (batch mode copies
the table) must create these triggers again: ``skyclass compliance verify`` reports
them missing.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import core.orm

revision = "0012"
down_revision = "0003"
branch_labels = None
depends_on = None

APPEND_ONLY = ("asrun", "guide_log")


def _sqlite_triggers(table: str) -> list[str]:
    return [
        f"CREATE TRIGGER {table}_no_{what} BEFORE {what.upper()} ON {table} "
        f"BEGIN SELECT RAISE(ABORT, '{table} is append-only: records are never "
        f"changed or removed'); END"
        for what in ("update", "delete")
    ]


def _postgresql_triggers(table: str) -> list[str]:
    return [
        f"CREATE TRIGGER {table}_no_update BEFORE UPDATE OR DELETE ON {table} "
        "FOR EACH ROW EXECUTE FUNCTION skyclass_append_only()",
        f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
        "FOR EACH STATEMENT EXECUTE FUNCTION skyclass_append_only()",
    ]


def upgrade() -> None:
    op.create_table(
        "guide_log",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("channel_id", sa.String(length=128), nullable=False),
        sa.Column("partner", sa.String(length=128), nullable=True),
        sa.Column("first_day", sa.Date(), nullable=False),
        sa.Column("last_day", sa.Date(), nullable=False),
        sa.Column("versions", sa.JSON(), nullable=False),
        sa.Column("document", sa.String(length=64), nullable=False),
        sa.Column("published_at", core.orm.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_guide_log")),
    )
    op.create_index(op.f("ix_guide_log_channel_id"), "guide_log", ["channel_id"], unique=False)
    op.create_index(op.f("ix_guide_log_published_at"), "guide_log", ["published_at"], unique=False)
    op.add_column("asset", sa.Column("ad_category", sa.String(length=32), nullable=True))

    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute(
            "CREATE FUNCTION skyclass_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
            "BEGIN RAISE EXCEPTION '% is append-only: % refused (records are never changed "
            "or removed)', TG_TABLE_NAME, TG_OP; END $$"
        )
        for table in APPEND_ONLY:
            for statement in _postgresql_triggers(table):
                op.execute(statement)
    elif dialect == "sqlite":
        for table in APPEND_ONLY:
            for statement in _sqlite_triggers(table):
                op.execute(statement)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    for table in APPEND_ONLY:
        if dialect == "postgresql":
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_update ON {table}")
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}")
        elif dialect == "sqlite":
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_update")
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_delete")
    if dialect == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS skyclass_append_only()")
    with op.batch_alter_table("asset") as batch:
        batch.drop_column("ad_category")
    op.drop_index(op.f("ix_guide_log_published_at"), table_name="guide_log")
    op.drop_index(op.f("ix_guide_log_channel_id"), table_name="guide_log")
    op.drop_table("guide_log")
