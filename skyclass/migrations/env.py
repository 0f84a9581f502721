"""Alembic environment: runs on the engine the shell hands over (see skyclass.database)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Engine

import skyclass.models

config = context.config
target_metadata = skyclass.models.Base.metadata


def run_migrations() -> None:
    engine = config.attributes.get("engine")
    assert isinstance(engine, Engine), "use skyclass.database.upgrade(), not the alembic CLI"
    with engine.begin() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        context.run_migrations()


run_migrations()
