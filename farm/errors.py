"""Every exception the farm raises, in one tree under core's root.

SkyclassError
└── FarmError                       root of the farm's errors (exit 1 unless below)
    ├── JobTimeLimitError           a run outlived its time limit; its ffmpeg was
    │                               killed (retried like any unexpected error)
    └── FarmInputError              (BadInputError: exit 2) the operator asked for
        │                           something the configuration cannot do
        ├── QueueUnavailableError   the queue is off, or the database is not PostgreSQL
        └── UnknownJobError         no ingest job with that id
"""

from __future__ import annotations

from core.errors import BadInputError, SkyclassError

__all__ = [
    "FarmError",
    "FarmInputError",
    "JobTimeLimitError",
    "QueueUnavailableError",
    "UnknownJobError",
]


class FarmError(SkyclassError):
    """Root of the farm's errors."""


class JobTimeLimitError(FarmError):
    """A run was still going past its time limit (farm.deadline): its ffmpeg was killed."""


class FarmInputError(FarmError, BadInputError):
    """The operator's request cannot be done as configured; fixing the input fixes it."""


class QueueUnavailableError(FarmInputError):
    """The ingest queue is off, or the database cannot hold it (it needs PostgreSQL)."""


class UnknownJobError(FarmInputError):
    """No ingest job with that id."""
