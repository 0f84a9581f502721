"""Jobs of dead workers: back to the queue, or failed on their last attempt.

Procrastinate records which worker runs each job and a heartbeat per worker; it
does not act on a silent one. Every worker runs this sweep in a thread: jobs
still ``doing`` whose worker has sent no heartbeat for ``stalled_seconds`` (or was
pruned) are retried with ``procrastinate_retry_job`` (which counts the attempt),
or, when that run was the job's last allowed one, failed with a reason naming the
file, the worker and the attempts.

One sweep is one transaction under an advisory lock, so two workers never both
requeue a job (the second would see it ``todo`` or taken by a live worker).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from core.clock import Clock
from farm.config import FarmConfig
from farm.jobs import IngestJobRow, JobState, JobStore
from farm.queue import TASK_NAME, farm_search_path
from farm.tasks import job_int

if TYPE_CHECKING:
    import psycopg
    from procrastinate.jobs import Job
    from procrastinate.sync_psycopg_connector import SyncPsycopgConnector

__all__ = ["RECOVERY_LOCK", "Recovered", "StalledJobRecovery"]

logger = logging.getLogger(__name__)

#: pg_try_advisory_xact_lock key of the sweep ("farmsweep" as a number).
RECOVERY_LOCK = 0x6661726D7377


@dataclass(frozen=True, kw_only=True)
class Recovered:
    job_id: int
    queue_job_id: int
    action: str  # "retried" | "failed" | "closed"
    reason: str


class StalledJobRecovery:
    def __init__(self, engine: Engine, store: JobStore, config: FarmConfig, clock: Clock):
        self.engine = engine
        self.store = store
        self.config = config
        self.clock = clock

    def run(self, stop: threading.Event) -> None:
        while not stop.wait(self.config.recovery_interval_seconds):
            try:
                self.sweep()
            except Exception:  # the database may be restarting: try again next round
                logger.warning("stalled-job sweep failed", exc_info=True)

    def sweep(self) -> list[Recovered]:
        from procrastinate import sql
        from procrastinate.jobs import Job
        from procrastinate.sync_psycopg_connector import SyncPsycopgConnector

        connector = SyncPsycopgConnector()  # only its *_with_connection methods: no pool
        done: list[Recovered] = []
        with self.engine.begin() as connection:
            farm_search_path(connection)
            taken = connection.execute(
                text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": RECOVERY_LOCK}
            ).scalar()
            if not taken:
                return done  # another worker is sweeping right now
            raw = cast("psycopg.Connection[Any]", connection.connection.driver_connection)
            rows = connector.execute_query_all_with_connection(
                raw,
                query=sql.queries["select_stalled_jobs_by_heartbeat"],
                queue=self.config.queue,
                task_name=TASK_NAME,
                seconds_since_heartbeat=self.config.stalled_seconds,
            )
            with Session(bind=connection) as session:
                for queued in (Job.from_row(row) for row in rows):
                    assert queued.id is not None
                    done.append(self._recover(session, connector, raw, queued))
                session.flush()
        for item in done:
            logger.warning(
                "job %d (queue job %d) %s: %s",
                item.job_id,
                item.queue_job_id,
                item.action,
                item.reason,
            )
        return done

    def _recover(
        self,
        session: Session,
        connector: SyncPsycopgConnector,
        raw: psycopg.Connection[Any],
        queued: Job,
    ) -> Recovered:
        from procrastinate import sql

        assert queued.id is not None
        job_id = job_int(queued, "job_id", -1)
        max_attempts = job_int(queued, "max_attempts", self.config.max_attempts)
        run = queued.attempts + 1  # the run whose worker died
        row = session.get(IngestJobRow, job_id, with_for_update=True)
        now = self.clock.now()

        def finish(status: str) -> None:
            connector.execute_query_all_with_connection(
                raw,
                query=sql.queries["finish_job"],
                job_id=queued.id,
                status=status,
                delete_job=False,
            )

        if row is None or JobState(row.state).finished:
            # Our row says how it ended; only the queue's acknowledgement was lost.
            state = JobState(row.state) if row is not None else JobState.FAILED
            finish("succeeded" if state is JobState.SUCCEEDED else "failed")
            return Recovered(
                job_id=job_id,
                queue_job_id=queued.id,
                action="closed",
                reason=f"already {state.value}; its worker died before telling the queue",
            )
        label, worker = row.label, row.worker or "a worker"
        silent = f"{worker} stopped sending heartbeats (none for {self.config.stalled_seconds:g} s)"
        if run >= max_attempts:
            reason = (
                f"{label}: failed after {run} attempt(s) (max_attempts {max_attempts}): "
                f"on the last one {silent}"
            )
            finish("failed")
            self.store.fail(job_id, error=reason, at=now, session=session)
            return Recovered(job_id=job_id, queue_job_id=queued.id, action="failed", reason=reason)
        reason = f"attempt {run} of {max_attempts}: {silent}; queued again"
        connector.execute_query_all_with_connection(
            raw,
            query=sql.queries["retry_job"],
            job_id=queued.id,
            retry_at=now,
            new_priority=None,
            new_queue_name=None,
            new_lock=None,
        )
        self.store.retrying(job_id, error=reason, at=now, session=session)
        return Recovered(job_id=job_id, queue_job_id=queued.id, action="retried", reason=reason)
