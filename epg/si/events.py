"""What the encoder needs to know about one programme event (a lesson, a break)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from epg.si.descriptors import EDUCATIONAL_CONTENT
from epg.si.errors import SiInputError
from epg.si.time_codes import MAX_DURATION_SECONDS, utc_datetime


@dataclass(frozen=True, kw_only=True, slots=True)
class SiEvent:
    """One EIT event. ``start`` is converted to UTC on construction.

    ``event_id`` must be unique within the service for the span of the guide
    (EN 300 468 5.2.4); the rundown compiler allocates it. ``content_nibbles``
    defaults to 0x5/0x4, "informational/educational/school programmes"; None
    leaves the content descriptor out. ``parental_rating`` is a minimum age.
    """

    event_id: int
    start: datetime
    duration_seconds: int
    title: str
    description: str = ""
    content_nibbles: tuple[int, int] | None = EDUCATIONAL_CONTENT
    parental_rating: int | None = None
    free_ca: bool = False

    def __post_init__(self) -> None:
        where = f"SI event {self.event_id} ({self.title!r})"
        if not 0 <= self.event_id <= 0xFFFF:
            raise SiInputError(f"{where}: event_id must be 0..65535")
        if not 0 < self.duration_seconds <= MAX_DURATION_SECONDS:
            raise SiInputError(f"{where}: duration must be 1..{MAX_DURATION_SECONDS} s")
        object.__setattr__(self, "start", utc_datetime(self.start, f"{where}: start"))

    @property
    def end(self) -> datetime:
        return self.start + timedelta(seconds=self.duration_seconds)
