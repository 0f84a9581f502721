"""The ingest farm: `skyclass ingest --queue` on procrastinate (PostgreSQL), run by workers.

See docs/ingest-farm.md for why procrastinate and how jobs retry and recover.
"""

from farm.config import FarmConfig
from farm.errors import FarmError, FarmInputError, QueueUnavailableError, UnknownJobError
from farm.jobs import FARM_SCHEMA, IngestJob, JobState, JobStore

__all__ = [
    "FARM_SCHEMA",
    "FarmConfig",
    "FarmError",
    "FarmInputError",
    "IngestJob",
    "JobState",
    "JobStore",
    "QueueUnavailableError",
    "UnknownJobError",
]
