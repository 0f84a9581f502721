from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect

import skyclass.models
from skyclass.database import current_revisions, head_revisions


def test_migrations_produce_exactly_the_models_schema(engine: Engine) -> None:
    """Runs on SQLite and on PostgreSQL (when SKYCLASS_TEST_DATABASE_URL is set)."""
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        diff = compare_metadata(context, skyclass.models.Base.metadata)
    assert diff == []
    assert set(current_revisions(engine)) == set(head_revisions(engine))
    tables = set(inspect(engine).get_table_names())
    assert set(skyclass.models.Base.metadata.tables) <= tables
    assert "asset" in tables
