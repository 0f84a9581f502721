"""`skyclass worker`: a procrastinate worker that runs ingest jobs, and what one job does.

A worker runs on any machine that mounts the media store (and the sources) at the
same path as the others. Each job builds a fresh ``Ingester``, whose start sweeps
media/.staging of the files that dead jobs (a SIGKILLed worker) left there; the
staging locks keep it away from jobs still running on other machines. Each run
has a time limit (farm.deadline): a hung ffmpeg is killed and the attempt fails.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from core.clock import Clock
from core.errors import BadInputError
from farm.config import FarmConfig
from farm.deadline import JobWatchdog, time_limit
from farm.errors import FarmInputError, JobTimeLimitError
from farm.jobs import IngestJob, JobStore
from farm.queue import make_app
from farm.recovery import StalledJobRecovery
from farm.tasks import CONTEXT_KEY
from grading import GradingPolicy
from ingest.config import IngestConfig
from ingest.library import AssetLibrary, AssetRow

__all__ = ["FarmWorker", "default_worker_name", "run_worker"]

logger = logging.getLogger(__name__)

#: Longest error text kept on a job row (the full traceback goes to the worker's log).
MAX_ERROR = 2000


def default_worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True, kw_only=True)
class FarmWorker:
    """Everything one job needs; procrastinate hands it to the task in its context."""

    name: str
    store: JobStore
    library_sessions: sessionmaker[Session]
    media_root: Path
    policy: GradingPolicy
    ingest_config: IngestConfig
    clock: Clock
    config: FarmConfig

    @property
    def progress_interval(self) -> float:
        return self.config.progress_interval_seconds

    def run(self, job_id: int, *, attempt: int, max_attempts: int) -> None:
        from farm.payload import request_from_json
        from ingest.pipeline import Ingester

        job = self.store.start(job_id, worker=self.name, attempt=attempt, at=self.clock.now())
        if job.state.finished:
            # An earlier run finished it, and its worker died before telling the queue.
            logger.info("job %d (%s) is already %s", job_id, job.label, job.state.value)
            return
        logger.info("job %d (%s): attempt %d of %d", job_id, job.label, attempt, max_attempts)
        try:
            request = request_from_json(dict(job.request))
        except (KeyError, TypeError, ValueError) as exc:
            message = f"{job.label}: the job's request cannot be read ({exc}): queue it again"
            self.store.fail(job_id, error=message, at=self.clock.now())
            raise FarmInputError(message) from None
        library = AssetLibrary(self.library_sessions, self.media_root)
        if attempt > 1:
            adopted = self._registered_by_an_earlier_run(job, request.source)
            if adopted is not None:
                logger.info("job %d: asset %s was stored by an earlier run", job_id, adopted)
                self.store.succeed(job_id, asset_id=adopted, at=self.clock.now())
                return
        ingester = Ingester(
            library, policy=self.policy, config=self.ingest_config, clock=self.clock
        )
        limit = time_limit(self.config, source_seconds(request.source))
        watchdog = JobWatchdog(limit, label=job.label)
        try:
            try:
                with watchdog:
                    outcome = ingester.ingest(request, progress=self._progress(job_id))
            except Exception as exc:
                if watchdog.fired:  # whatever killing its ffmpeg made the pipeline raise
                    raise JobTimeLimitError(watchdog.reason()) from exc
                raise
        except BadInputError as exc:  # the file or its metadata: the same answer every time
            self.store.fail(job_id, error=str(exc)[:MAX_ERROR], at=self.clock.now())
            raise
        except Exception as exc:
            what = f"{type(exc).__name__}: {exc}"[:MAX_ERROR]
            if attempt >= max_attempts:
                self.store.fail(
                    job_id,
                    error=f"{job.label}: failed on all {attempt} attempt(s) "
                    f"(max_attempts {max_attempts}); last error: {what}",
                    at=self.clock.now(),
                )
            else:
                self.store.retrying(
                    job_id,
                    error=f"attempt {attempt} of {max_attempts} failed: {what}",
                    at=self.clock.now(),
                )
            raise
        self.store.succeed(job_id, asset_id=outcome.asset.asset_id, at=self.clock.now())
        logger.info("job %d (%s): asset %s", job_id, job.label, outcome.asset.asset_id)

    def _progress(self, job_id: int) -> ProgressWriter:
        return ProgressWriter(self, job_id)

    def _registered_by_an_earlier_run(self, job: IngestJob, source: Path) -> str | None:
        """The asset a dead run stored after registering it but before recording it here."""
        from ingest.package import sha256_of

        with self.library_sessions() as session:
            rows = session.execute(
                select(AssetRow.asset_id, AssetRow.source_sha256).where(
                    AssetRow.source_name == source.name, AssetRow.created_at >= job.created_at
                )
            ).all()
        if not rows or not source.is_file():
            return None
        digest = sha256_of(source)
        return next((asset_id for asset_id, sha in rows if sha == digest), None)


def source_seconds(source: Path) -> float:
    """The source's duration from its header (no packet walk), 0 if it cannot be read:
    the pipeline's own probe then says what is wrong with the file."""
    from ingest.probe import probe

    try:
        media = probe(source, walk_packets=False)
    except Exception:
        return 0.0
    video = media.video.duration_seconds if media.video is not None else 0.0
    return media.duration_seconds or video


class ProgressWriter:
    """The pipeline's progress callback: writes stage and fraction, at most every interval."""

    def __init__(self, worker: FarmWorker, job_id: int) -> None:
        self.worker = worker
        self.job_id = job_id
        self._stage = ""
        self._last = 0.0

    def __call__(self, stage: str, fraction: float) -> None:
        now = time.monotonic()
        if stage == self._stage and now - self._last < self.worker.progress_interval:
            return
        self._stage, self._last = stage, now
        try:
            self.worker.store.progress(
                self.job_id, stage=stage, fraction=fraction, at=self.worker.clock.now()
            )
        except Exception:  # a progress write must never fail the ingest itself
            logger.warning("job %d: progress not recorded", self.job_id, exc_info=True)


def run_worker(
    *,
    database_url: str,
    engine: Engine,
    sessions: sessionmaker[Session],
    media_root: Path,
    policy: GradingPolicy,
    ingest_config: IngestConfig,
    clock: Clock,
    config: FarmConfig,
    concurrency: int = 1,
    name: str | None = None,
    until_empty: bool = False,
) -> None:
    """Run jobs until SIGINT/SIGTERM (running jobs finish first), or until the queue is
    empty with ``until_empty``. Also recovers jobs of dead workers (farm.recovery)."""
    worker_name = name or default_worker_name()
    store = JobStore(sessions)
    farm_worker = FarmWorker(
        name=worker_name,
        store=store,
        library_sessions=sessions,
        media_root=media_root,
        policy=policy,
        ingest_config=ingest_config,
        clock=clock,
        config=config,
    )
    recovery = StalledJobRecovery(engine, store, config, clock)
    stop = threading.Event()
    sweeper = threading.Thread(target=recovery.run, args=(stop,), name="farm-recovery", daemon=True)
    app = make_app(database_url, pool_size=concurrency + 3)
    logger.info(
        "worker %s: queue %r, concurrency %d, media %s",
        worker_name,
        config.queue,
        concurrency,
        media_root,
    )
    sweeper.start()
    try:
        app.run_worker(
            queues=[config.queue],
            name=worker_name,
            concurrency=concurrency,
            wait=not until_empty,
            fetch_job_polling_interval=config.poll_seconds,
            update_heartbeat_interval=config.heartbeat_seconds,
            stalled_worker_timeout=config.stalled_seconds,
            additional_context={CONTEXT_KEY: farm_worker},
            delete_jobs="never",
        )
    finally:
        stop.set()
        sweeper.join(timeout=10)
