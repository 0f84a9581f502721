"""Ingest jobs as operators see them: one row per file, in PostgreSQL schema `farm`.

Procrastinate's own job table says what to run and who runs it; this table says
what happened, in our words: state, stage, percent, worker, asset id, error. The
worker writes it as the job moves; the CLI and the console only read it.

The rows live next to procrastinate's tables in schema ``farm`` (PostgreSQL only,
migration 0016) and use their own MetaData, not the station's: the queue does not
exist on SQLite, and the station's schema stays what its models say.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, Float, Integer, MetaData, String, Text, func, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

from core.orm import NAMING_CONVENTION, UtcDateTime
from farm.errors import UnknownJobError

__all__ = ["FARM_SCHEMA", "IngestJob", "IngestJobRow", "JobState", "JobStore"]

#: The PostgreSQL schema that holds the queue: procrastinate's objects and ingest_job.
FARM_SCHEMA = "farm"


class JobState(StrEnum):
    QUEUED = "queued"  # waiting for a worker
    RUNNING = "running"  # a worker is on it
    RETRYING = "retrying"  # a run failed or its worker died: queued again
    SUCCEEDED = "succeeded"
    FAILED = "failed"

    @property
    def finished(self) -> bool:
        return self in (JobState.SUCCEEDED, JobState.FAILED)

    @property
    def name_zh(self) -> str:
        return _STATE_ZH[self]


_STATE_ZH = {
    JobState.QUEUED: "排队",
    JobState.RUNNING: "处理中",
    JobState.RETRYING: "重试",
    JobState.SUCCEEDED: "完成",
    JobState.FAILED: "失败",
}


class FarmBase(DeclarativeBase):
    metadata = MetaData(schema=FARM_SCHEMA, naming_convention=NAMING_CONVENTION)


class IngestJobRow(FarmBase):
    __tablename__ = "ingest_job"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    label: Mapped[str] = mapped_column(String(512))  # the file name the operator knows
    source: Mapped[str] = mapped_column(String(2048))
    request: Mapped[dict[str, Any]] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(16), index=True)
    stage: Mapped[str | None] = mapped_column(String(32))
    fraction: Mapped[float] = mapped_column(Float, default=0.0)
    attempts: Mapped[int] = mapped_column(Integer, default=0)  # runs started
    max_attempts: Mapped[int] = mapped_column(Integer)
    worker: Mapped[str | None] = mapped_column(String(256))
    asset_id: Mapped[str | None] = mapped_column(String(32))
    error: Mapped[str | None] = mapped_column(Text)
    queue_job_id: Mapped[int | None] = mapped_column(BigInteger)  # procrastinate_jobs.id
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    started_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())


@dataclass(frozen=True, kw_only=True)
class IngestJob:
    id: int
    label: str
    source: str
    request: Mapping[str, Any]
    state: JobState
    stage: str | None
    fraction: float
    attempts: int
    max_attempts: int
    worker: str | None
    asset_id: str | None
    error: str | None
    queue_job_id: int | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    updated_at: datetime

    @property
    def percent(self) -> float:
        return round(100.0 * self.fraction, 1)

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "file": self.label,
            "source": self.source,
            "state": self.state.value,
            "stage": self.stage,
            "percent": self.percent,
            "attempts": self.attempts,
            "max_attempts": self.max_attempts,
            "worker": self.worker,
            "asset_id": self.asset_id,
            "error": self.error,
            "created_at": self.created_at.isoformat(),
            "started_at": self.started_at.isoformat() if self.started_at else None,
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
        }


def _record(row: IngestJobRow) -> IngestJob:
    return IngestJob(
        id=row.id,
        label=row.label,
        source=row.source,
        request=dict(row.request),
        state=JobState(row.state),
        stage=row.stage,
        fraction=row.fraction,
        attempts=row.attempts,
        max_attempts=row.max_attempts,
        worker=row.worker,
        asset_id=row.asset_id,
        error=row.error,
        queue_job_id=row.queue_job_id,
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        updated_at=row.updated_at,
    )


class JobStore:
    """Repository over farm.ingest_job; returns frozen IngestJob records."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    # -- reading ---------------------------------------------------------------

    def get(self, job_id: int) -> IngestJob:
        with self._sessions() as session:
            row = session.get(IngestJobRow, job_id)
            if row is None:
                raise UnknownJobError(f"unknown ingest job {job_id}: see `skyclass jobs list`")
            return _record(row)

    def many(self, job_ids: Iterable[int]) -> list[IngestJob]:
        wanted = sorted(set(job_ids))
        if not wanted:
            return []
        with self._sessions() as session:
            rows = session.scalars(
                select(IngestJobRow).where(IngestJobRow.id.in_(wanted)).order_by(IngestJobRow.id)
            )
            return [_record(row) for row in rows]

    def list(self, *, states: Sequence[JobState] = (), limit: int = 200) -> list[IngestJob]:
        """Newest first."""
        with self._sessions() as session:
            stmt = select(IngestJobRow).order_by(IngestJobRow.id.desc()).limit(limit)
            if states:
                stmt = stmt.where(IngestJobRow.state.in_([s.value for s in states]))
            return [_record(row) for row in session.scalars(stmt)]

    def counts(self) -> dict[JobState, int]:
        with self._sessions() as session:
            rows = session.execute(
                select(IngestJobRow.state, func.count()).group_by(IngestJobRow.state)
            )
            found = {JobState(state): int(count) for state, count in rows}
        return {state: found.get(state, 0) for state in JobState}

    # -- writing (the enqueuer and the workers) -------------------------------------

    @staticmethod
    def add(
        session: Session, *, label: str, request: dict[str, Any], max_attempts: int, at: datetime
    ) -> IngestJobRow:
        """A new queued row inside the caller's transaction (the enqueue's)."""
        row = IngestJobRow(
            label=label,
            source=str(request["source"]),
            request=request,
            state=JobState.QUEUED.value,
            stage=None,
            fraction=0.0,
            attempts=0,
            max_attempts=max_attempts,
            created_at=at,
            updated_at=at,
        )
        session.add(row)
        session.flush()
        return row

    def start(self, job_id: int, *, worker: str, attempt: int, at: datetime) -> IngestJob:
        with self._sessions() as session, session.begin():
            row = self._locked(session, job_id)
            if not JobState(row.state).finished:
                row.state = JobState.RUNNING.value
                row.stage = "start"
                row.fraction = 0.0
                row.worker = worker
                row.attempts = attempt
                row.started_at = at
                row.updated_at = at
            return _record(row)

    def progress(self, job_id: int, *, stage: str, fraction: float, at: datetime) -> None:
        with self._sessions() as session, session.begin():
            row = self._locked(session, job_id)
            if row.state == JobState.RUNNING.value:
                row.stage = stage
                row.fraction = max(0.0, min(1.0, fraction))
                row.updated_at = at

    def succeed(self, job_id: int, *, asset_id: str, at: datetime) -> None:
        with self._sessions() as session, session.begin():
            row = self._locked(session, job_id)
            row.state = JobState.SUCCEEDED.value
            row.stage = "done"
            row.fraction = 1.0
            row.asset_id = asset_id
            row.error = None
            row.finished_at = at
            row.updated_at = at

    def fail(
        self, job_id: int, *, error: str, at: datetime, session: Session | None = None
    ) -> None:
        def write(session: Session) -> None:
            row = self._locked(session, job_id)
            if row.state == JobState.SUCCEEDED.value:
                return  # a duplicate run (a worker wrongly declared dead) lost the race
            row.state = JobState.FAILED.value
            row.error = error
            row.finished_at = at
            row.updated_at = at

        self._in(session, write)

    def retrying(
        self, job_id: int, *, error: str, at: datetime, session: Session | None = None
    ) -> None:
        def write(session: Session) -> None:
            row = self._locked(session, job_id)
            if JobState(row.state).finished:
                return
            row.state = JobState.RETRYING.value
            row.error = error
            row.updated_at = at

        self._in(session, write)

    def _in(self, session: Session | None, write: Callable[[Session], None]) -> None:
        """``write`` inside the caller's transaction, or in one of its own."""
        if session is not None:
            write(session)
            return
        with self._sessions() as own, own.begin():
            write(own)

    @staticmethod
    def _locked(session: Session, job_id: int) -> IngestJobRow:
        row = session.get(IngestJobRow, job_id, with_for_update=True)
        if row is None:
            raise UnknownJobError(f"unknown ingest job {job_id}: see `skyclass jobs list`")
        return row
