from __future__ import annotations

import threading

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect, text

import skyclass.models
from skyclass.database import (
    MIGRATION_LOCK,
    POOL_SIZE,
    current_revisions,
    head_revisions,
    make_engine,
    upgrade,
)


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


def test_postgres_engine_pools_and_checks_connections(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        if engine.dialect.name != "postgresql":
            pytest.skip("pool settings are for PostgreSQL")
        assert engine.pool.size() == POOL_SIZE  # type: ignore[attr-defined]
        assert engine.pool._pre_ping  # type: ignore[attr-defined]
    finally:
        engine.dispose()


def test_migrations_wait_for_each_other_on_postgres(database_url: str) -> None:
    """While one migrator holds the advisory lock, another waits, then finishes."""
    if not database_url.startswith("postgresql"):
        pytest.skip("advisory locks are PostgreSQL's (SQLite serializes writers itself)")
    holder_engine = make_engine(database_url)
    engine = make_engine(database_url)
    finished = threading.Event()
    errors: list[BaseException] = []

    def migrate() -> None:
        try:
            upgrade(engine)
        except BaseException as exc:  # reported below
            errors.append(exc)
        finished.set()

    try:
        with holder_engine.connect() as holder:
            holder.execute(text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK})
            worker = threading.Thread(target=migrate)
            worker.start()
            assert not finished.wait(1.5), "the upgrade did not wait for the lock"
            holder.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK})
            holder.commit()
        assert finished.wait(60) and not errors, errors
        assert set(current_revisions(engine)) == set(head_revisions(engine))
        worker.join()
    finally:
        engine.dispose()
        holder_engine.dispose()
