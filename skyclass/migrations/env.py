"""Alembic environment: runs on the engine the shell hands over (see skyclass.database)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Engine, text

import skyclass.models
from skyclass.database import MIGRATION_LOCK, MIGRATION_LOCK_TIMEOUT

config = context.config
target_metadata = skyclass.models.Base.metadata


def run_migrations() -> None:
    engine = config.attributes.get("engine")
    assert isinstance(engine, Engine), "use skyclass.database.upgrade(), not the alembic CLI"
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            # Services keep running during an upgrade: one migrator at a time (the lock
            # ends with the transaction), and a DDL statement that would queue behind a
            # running query gives up after a few seconds instead of stalling every
            # request behind its table lock.
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
            connection.execute(text(f"SET LOCAL lock_timeout = '{MIGRATION_LOCK_TIMEOUT}'"))
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        context.run_migrations()


run_migrations()
