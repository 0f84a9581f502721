"""Farm settings (config section `[farm]`, env SKYCLASS_FARM__…): the queue and its timeouts.

The queue is off by default: `skyclass ingest` then runs in-process as it always
did. Turning it on needs PostgreSQL (`database_url`), where the jobs live.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator


class FarmConfig(BaseModel):
    model_config = ConfigDict(frozen=True)

    enabled: bool = False  # SKYCLASS_FARM__ENABLED=true: `ingest --queue`, workers, console
    queue: str = Field(default="ingest", min_length=1, max_length=64)
    # Runs of one job, the first included: a crash, a dead worker or an unexpected
    # error retries until this many runs have failed. Bad input fails at once.
    max_attempts: int = Field(default=3, ge=1, le=20)
    retry_delay_seconds: int = Field(default=30, ge=0)
    # A worker proves it is alive every heartbeat; one silent for stalled_seconds is
    # dead, and its job goes back to the queue (or fails, on its last attempt).
    heartbeat_seconds: float = Field(default=10.0, gt=0)
    stalled_seconds: float = Field(default=60.0, gt=0)
    recovery_interval_seconds: float = Field(default=15.0, gt=0)
    # Workers hear of new jobs by LISTEN/NOTIFY; polling is the fallback.
    poll_seconds: float = Field(default=5.0, gt=0)
    # How often a running job writes its stage and percent (a row update each).
    progress_interval_seconds: float = Field(default=1.0, ge=0)
    # A run whose ffmpeg hangs keeps its worker's heartbeat alive, so the stalled-job
    # recovery never sees it. Each run gets floor + multiple × the source's duration;
    # past it the worker kills the run's ffmpeg and the attempt fails (and retries).
    time_limit_floor_seconds: float = Field(default=600.0, gt=0)
    time_limit_per_source_second: float = Field(default=8.0, ge=0)

    @model_validator(mode="after")
    def _heartbeat_fits(self) -> FarmConfig:
        if self.stalled_seconds < 2 * self.heartbeat_seconds:
            raise ValueError(
                f"stalled_seconds ({self.stalled_seconds:g}) must be at least twice "
                f"heartbeat_seconds ({self.heartbeat_seconds:g}): one late heartbeat "
                "must not declare a live worker dead"
            )
        return self
