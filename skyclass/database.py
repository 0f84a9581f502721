"""Database engine, sessions and Alembic migrations (SQLite by default, PostgreSQL by URL)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

logger = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).with_name("migrations")
#: pg_advisory_xact_lock key taken by every upgrade ("skyclass" as a number).
MIGRATION_LOCK = 0x736B79636C617373
#: How long a migration's DDL may queue for a table lock before it gives up.
MIGRATION_LOCK_TIMEOUT = "5s"


#: PostgreSQL connection pool per process: a station process (console, API, EPG pull,
#: jobs) needs a handful; connections are checked before use so a database restart
#: costs one retry, not an error page, and recycled before server-side timeouts.
POOL_SIZE = 5
POOL_OVERFLOW = 10
POOL_RECYCLE_SECONDS = 1800


def make_engine(url: str) -> Engine:
    parsed = make_url(url)
    kwargs: dict[str, Any] = {}
    if parsed.get_backend_name() == "postgresql":
        kwargs |= {
            "pool_size": POOL_SIZE,
            "max_overflow": POOL_OVERFLOW,
            "pool_pre_ping": True,
            "pool_recycle": POOL_RECYCLE_SECONDS,
        }
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        kwargs["connect_args"] = {"timeout": 30}
    engine = create_engine(url, **kwargs)
    if parsed.get_backend_name() == "sqlite":

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.close()

    return engine


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(sessions: sessionmaker[Session]) -> Iterator[Session]:
    """One all-or-nothing unit of work."""
    with sessions() as session, session.begin():
        yield session


if TYPE_CHECKING:
    from alembic.config import Config


def alembic_config(engine: Engine) -> Config:
    # Alembic (with Mako and Pygments) costs ~0.2 s to import: only when migrating.
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False))
    config.attributes["engine"] = engine
    return config


def upgrade(engine: Engine, revision: str = "heads") -> None:
    logger.info("migrating %s to %s", engine.url.render_as_string(), revision)
    from alembic import command

    command.upgrade(alembic_config(engine), revision)


def head_revisions(engine: Engine) -> tuple[str, ...]:
    """Each package's migrations form their own branch off the asset library (0001)."""
    from alembic.script import ScriptDirectory

    return tuple(ScriptDirectory.from_config(alembic_config(engine)).get_heads())


def current_revisions(engine: Engine) -> tuple[str, ...]:
    from alembic.migration import MigrationContext

    with engine.connect() as connection:
        return tuple(MigrationContext.configure(connection).get_current_heads())
