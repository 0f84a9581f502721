"""The queue: procrastinate on the station's PostgreSQL, and enqueueing in one transaction.

`IngestFarm.enqueue` writes our ingest_job rows and procrastinate's jobs in the
same transaction on the same connection: either the operator's batch is queued
with its rows, or nothing is (no broker that could accept a job whose row was
rolled back, or lose one whose row was committed).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from core.clock import Clock
from farm.config import FarmConfig
from farm.errors import QueueUnavailableError
from farm.jobs import FARM_SCHEMA, IngestJob, JobState, JobStore

if TYPE_CHECKING:
    import procrastinate

    from ingest.pipeline import IngestRequest

__all__ = [
    "TASK_NAME",
    "IngestFarm",
    "QueuedFile",
    "check_queue_database",
    "farm_search_path",
    "libpq_url",
    "make_app",
]

logger = logging.getLogger(__name__)

#: The ingest task as procrastinate names it (blueprint namespace "farm").
TASK_NAME = "farm:ingest"


def check_queue_database(database_url: str, config: FarmConfig) -> None:
    """QueueUnavailableError (exit 2) unless the queue is on and the database can hold it."""
    backend = make_url(database_url).get_backend_name()
    if backend != "postgresql":
        raise QueueUnavailableError(
            f"the ingest queue needs PostgreSQL, but database_url is {backend} "
            f"({make_url(database_url).render_as_string()}): set SKYCLASS_DATABASE_URL="
            "postgresql+psycopg://… (docs/ingest-farm.md), or ingest without --queue"
        )
    if not config.enabled:
        raise QueueUnavailableError(
            "the ingest queue is off: set SKYCLASS_FARM__ENABLED=true (or [farm] enabled = "
            "true in the config file), or ingest without --queue"
        )


def libpq_url(database_url: str) -> str:
    """The SQLAlchemy URL as libpq takes it (``postgresql+psycopg://`` → ``postgresql://``)."""
    url = make_url(database_url).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


def farm_search_path(connection: Connection) -> None:
    """Make procrastinate's unqualified names resolve inside this transaction only."""
    connection.execute(text(f"SET LOCAL search_path TO {FARM_SCHEMA}, public"))


def make_app(database_url: str, *, pool_size: int = 4) -> procrastinate.App:
    """A procrastinate App whose connections see schema ``farm`` first."""
    import procrastinate

    from farm.tasks import blueprint

    connector = procrastinate.PsycopgConnector(
        conninfo=libpq_url(database_url),
        kwargs={"options": f"-c search_path={FARM_SCHEMA},public"},
        min_size=1,
        max_size=pool_size,
    )
    app = procrastinate.App(connector=connector)
    app.add_tasks_from(blueprint, namespace="farm")
    return app


@dataclass(frozen=True, kw_only=True)
class QueuedFile:
    label: str
    request: IngestRequest


class IngestFarm:
    """What the shell hands the CLI and the console: enqueue, and read the jobs."""

    def __init__(
        self,
        engine: Engine,
        sessions: sessionmaker[Session],
        config: FarmConfig,
        *,
        clock: Clock,
    ) -> None:
        self.engine = engine
        self.config = config
        self.clock = clock
        self.store = JobStore(sessions)

    @contextmanager
    def _transaction(self) -> Iterator[Session]:
        with self.engine.begin() as connection:
            farm_search_path(connection)
            with Session(bind=connection) as session:
                yield session
                session.flush()

    def submit(self, files: Sequence[tuple[str, IngestRequest]]) -> list[IngestJob]:
        """Queue (label, request) pairs, all or none (what `skyclass ingest --queue` calls)."""
        return self.enqueue([QueuedFile(label=label, request=r) for label, r in files])

    def poll(self, job_ids: Sequence[int]) -> list[IngestJob]:
        return self.store.many(job_ids)

    def enqueue(self, files: Sequence[QueuedFile]) -> list[IngestJob]:
        """Queue every file (all or none); returns the new jobs in order."""
        at = self.clock.now()
        from procrastinate import jobs as pjobs
        from procrastinate.manager import JobManager
        from procrastinate.sync_psycopg_connector import SyncPsycopgConnector

        from farm.payload import request_to_json

        # Only its *_with_connection methods are used: no pool is opened.
        manager = JobManager(connector=SyncPsycopgConnector())
        ids: list[int] = []
        with self._transaction() as session:
            for item in files:
                row = JobStore.add(
                    session,
                    label=item.label,
                    request=request_to_json(item.request),
                    max_attempts=self.config.max_attempts,
                    at=at,
                )
                deferred = manager.defer_job(
                    pjobs.Job(
                        queue=self.config.queue,
                        task_name=TASK_NAME,
                        lock=None,
                        queueing_lock=None,
                        task_kwargs=task_kwargs(row.id, self.config),
                    ),
                    connection=session.connection().connection.driver_connection,
                )
                row.queue_job_id = deferred.id
                ids.append(row.id)
        logger.info("queued %d ingest job(s): %s", len(ids), ", ".join(map(str, ids)))
        return self.store.many(ids)

    def get(self, job_id: int) -> IngestJob:
        return self.store.get(job_id)

    def many(self, job_ids: Sequence[int]) -> list[IngestJob]:
        return self.store.many(job_ids)

    def list(self, *, states: Sequence[JobState] = (), limit: int = 200) -> list[IngestJob]:
        return self.store.list(states=states, limit=limit)

    def counts(self) -> dict[JobState, int]:
        return self.store.counts()


def task_kwargs(job_id: int, config: FarmConfig) -> dict[str, Any]:
    """What the job carries: our row's id and its retry bounds (fixed when queued)."""
    return {
        "job_id": job_id,
        "max_attempts": config.max_attempts,
        "retry_delay_seconds": config.retry_delay_seconds,
    }
