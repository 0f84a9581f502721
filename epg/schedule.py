"""Schedule records (周播表): what a load reads, what validation keeps, what a version holds.

A schedule file is a list of rows; validation turns them into ScheduledEvents
with frame positions on their broadcast day (frames at 25 fps from 00:00
Beijing time). Versions are immutable: each load or rollback adds one, and the
newest version of a channel and day is its current schedule.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from core.timecode import FPS
from epg.rundown import EventType, StartMode

# Canonical column → accepted headers (English or Chinese), compared case-insensitively.
COLUMNS: Mapping[str, tuple[str, ...]] = {
    "channel": ("channel", "频道"),
    "date": ("date", "日期"),
    "start": ("start", "开始时间"),
    "type": ("type", "类型"),
    "asset": ("asset", "节目编号"),
    "duration": ("duration", "时长"),
    "start_mode": ("start_mode", "起播方式"),
}
REQUIRED_COLUMNS = ("channel", "type")

CellValue = str | int | float | date | time | datetime | timedelta | None


@dataclass(frozen=True, kw_only=True)
class ScheduleRow:
    """One row of a schedule file, cells keyed by canonical column name."""

    where: str  # "row 7" or "events[6]"
    row: int
    cells: Mapping[str, CellValue]

    def text(self, column: str) -> str:
        value = self.cells.get(column)
        if value is None:
            return ""
        return str(value).strip()


@dataclass(frozen=True, kw_only=True)
class ScheduleSource:
    """A schedule file as read: its rows plus what identifies the file."""

    name: str
    sha256: str
    format: str  # "xlsx" | "csv" | "json"
    rows: tuple[ScheduleRow, ...]


@dataclass(frozen=True, kw_only=True)
class ScheduledEvent:
    """A validated event on one channel and broadcast day."""

    seq: int  # order within the day, from 0
    type: EventType
    start_mode: StartMode
    start_frame: int  # frames from 00:00 Beijing time of the broadcast day
    duration_frames: int
    asset_id: str | None  # resolved asset id (never a lesson id); None: fill from the pool
    source_row: str  # "schedule.xlsx row 7"

    @property
    def end_frame(self) -> int:
        return self.start_frame + self.duration_frames

    @property
    def hard(self) -> bool:
        """A fixed start is a hard start: playout cuts filler to honour it."""
        return self.start_mode is StartMode.FIXED

    def as_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "type": self.type.value,
            "start_mode": self.start_mode.value,
            "start_frame": self.start_frame,
            "duration_frames": self.duration_frames,
            "asset_id": self.asset_id,
            "source_row": self.source_row,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ScheduledEvent:
        return cls(
            seq=int(data["seq"]),
            type=EventType(data["type"]),
            start_mode=StartMode(data["start_mode"]),
            start_frame=int(data["start_frame"]),
            duration_frames=int(data["duration_frames"]),
            asset_id=data.get("asset_id"),
            source_row=str(data["source_row"]),
        )

    def signature(self, zone: ZoneInfo, day: date) -> str:
        """A one-line description used by version diffs ("08:00:00.00 lesson A12")."""
        clock = beijing_clock(zone, day, self.start_frame)
        what = self.asset_id or f"{self.duration_frames}f"
        return f"{clock} {self.type.value} {what}"


@dataclass(frozen=True, kw_only=True)
class DaySchedule:
    """The events of one channel on one broadcast day, as one version holds them."""

    channel_id: str
    broadcast_date: date
    version: int
    events: tuple[ScheduledEvent, ...]


@dataclass(frozen=True, kw_only=True)
class DayDiff:
    """What a version changed on one channel and day, against the version before it."""

    channel_id: str
    broadcast_date: date
    previous_version: int | None
    added: tuple[str, ...]
    removed: tuple[str, ...]

    @property
    def unchanged(self) -> bool:
        return not self.added and not self.removed

    def as_json(self) -> dict[str, Any]:
        return {
            "channel": self.channel_id,
            "date": self.broadcast_date.isoformat(),
            "previous_version": self.previous_version,
            "added": list(self.added),
            "removed": list(self.removed),
        }


@dataclass(frozen=True, kw_only=True)
class ScheduleVersion:
    """One immutable load (or rollback): who, when, from which file, what changed."""

    number: int
    created_by: str
    created_at: datetime
    source_name: str
    source_sha256: str
    note: str
    diffs: tuple[DayDiff, ...] = field(default_factory=tuple)

    def as_json(self) -> dict[str, Any]:
        return {
            "version": self.number,
            "created_by": self.created_by,
            "created_at": self.created_at.isoformat(),
            "source_name": self.source_name,
            "source_sha256": self.source_sha256,
            "note": self.note,
            "days": [d.as_json() for d in self.diffs],
        }


def day_start(zone: ZoneInfo, day: date) -> datetime:
    """The UTC instant of 00:00 local time on a broadcast day."""
    return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)


def day_frames(zone: ZoneInfo, day: date) -> int:
    """Frames in a broadcast day (always 24 h in Asia/Shanghai; computed, not assumed)."""
    seconds = (day_start(zone, day + timedelta(days=1)) - day_start(zone, day)).total_seconds()
    return int(seconds) * FPS


def broadcast_date_of(instant: datetime, zone: ZoneInfo) -> date:
    """The broadcast day an instant belongs to: its local date (the day starts at 00:00)."""
    if instant.tzinfo is None:
        raise ValueError("broadcast_date_of needs an aware datetime")
    return instant.astimezone(zone).date()


def frame_instant(zone: ZoneInfo, day: date, frame: int) -> datetime:
    """The UTC instant of a frame on a broadcast day (exact to the microsecond at 25 fps)."""
    return day_start(zone, day) + timedelta(microseconds=frame * (1_000_000 // FPS))


def beijing_clock(zone: ZoneInfo, day: date, frame: int) -> str:
    """HH:MM:SS.ff local time of a frame (ff = frame within the second)."""
    local = frame_instant(zone, day, frame).astimezone(zone)
    return f"{local:%H:%M:%S}.{(frame % FPS):02d}"
