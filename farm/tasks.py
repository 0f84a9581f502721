"""The ingest task and its retry rule, on a procrastinate Blueprint (no connection needed).

Retry rule (the job's own ``max_attempts`` counts runs, the first included):
- bad input (``core.errors.BadInputError``: ``IngestInputError``, ``QcRejectedError``,
  a missing file, …) fails at once: running it again gives the same answer;
- anything else (ffmpeg crashed, the disk, a bug) is queued again after
  ``retry_delay_seconds`` until ``max_attempts`` runs have failed.
A worker that dies mid-job is handled by ``farm.recovery`` under the same bound.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import procrastinate
from procrastinate.retry import BaseRetryStrategy, RetryDecision

from core.errors import BadInputError

if TYPE_CHECKING:
    from procrastinate.job_context import JobContext
    from procrastinate.jobs import Job
    from procrastinate.types import TimeDeltaParams

__all__ = ["FarmRetry", "blueprint", "ingest", "job_int"]

#: Key of the worker's FarmWorker in procrastinate's additional_context.
CONTEXT_KEY = "farm"

blueprint = procrastinate.Blueprint()


def job_int(job: Job, key: str, default: int) -> int:
    """An integer the job carries in its task kwargs (see farm.queue.task_kwargs)."""
    value = job.task_kwargs.get(key, default)
    return value if isinstance(value, int) else default


class FarmRetry(BaseRetryStrategy):
    def get_retry_decision(self, *, exception: BaseException, job: Job) -> RetryDecision | None:
        if isinstance(exception, BadInputError):
            return None
        this_run = job.attempts + 1  # procrastinate counts the runs before this one
        if this_run >= job_int(job, "max_attempts", 1):
            return None
        delay: TimeDeltaParams = {"seconds": job_int(job, "retry_delay_seconds", 0)}
        return RetryDecision(retry_in=delay)


@blueprint.task(name="ingest", pass_context=True, retry=FarmRetry())
def ingest(context: JobContext, /, *, job_id: int, max_attempts: int, **_: Any) -> None:
    """Run ingest job ``job_id`` (a row in farm.ingest_job) on this worker."""
    from farm.worker import FarmWorker

    worker = context.additional_context[CONTEXT_KEY]
    assert isinstance(worker, FarmWorker)
    worker.run(job_id, attempt=context.job.attempts + 1, max_attempts=max_attempts)
