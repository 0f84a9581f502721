"""The weekly grid (周播表视图) of one channel: the current schedule of seven broadcast days.

Pure layout over ScheduleStore records: each event gets its clock times in the
station's time zone and a vertical position in minutes, so the page draws it
with no script. Lessons, breaks, ads and filler get distinct colour classes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from core.timecode import FPS
from epg.schedule import DaySchedule, ScheduledEvent, frame_instant
from ingest import Asset

WEEKDAYS_ZH = ("周一", "周二", "周三", "周四", "周五", "周六", "周日")
WEEKDAYS_EN = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
PIXELS_PER_MINUTE = 1.5

#: Event type → (colour class, Chinese label). Reruns look like lessons; promos like ads.
KINDS: Mapping[str, tuple[str, str]] = {
    "lesson": ("lesson", "课程"),
    "rerun": ("lesson", "重播"),
    "break": ("break", "课间"),
    "ad": ("ad", "广告"),
    "promo": ("ad", "宣传片"),
    "filler": ("filler", "垫片"),
}


@dataclass(frozen=True, kw_only=True)
class GridEvent:
    channel_id: str
    day: date
    seq: int
    type: str
    css: str  # lesson | break | ad | filler
    label_zh: str
    title: str
    asset_id: str | None
    start: datetime  # aware UTC
    end: datetime
    start_text: str  # HH:MM:SS local
    end_text: str
    top_px: float
    height_px: float
    source_row: str
    version: int

    @property
    def href(self) -> str:
        return f"/console/grid/{self.channel_id}/{self.day.isoformat()}/{self.seq}"

    def as_json(self) -> dict[str, object]:
        return {
            "channel": self.channel_id,
            "date": self.day.isoformat(),
            "seq": self.seq,
            "type": self.type,
            "title": self.title,
            "asset_id": self.asset_id,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "source_row": self.source_row,
            "version": self.version,
        }


@dataclass(frozen=True, kw_only=True)
class GridDay:
    day: date
    weekday_zh: str
    weekday_en: str
    version: int | None
    events: tuple[GridEvent, ...]


@dataclass(frozen=True, kw_only=True)
class Week:
    channel_id: str
    monday: date
    first_hour: int
    last_hour: int
    days: tuple[GridDay, ...]

    @property
    def height_px(self) -> float:
        return (self.last_hour - self.first_hour) * 60 * PIXELS_PER_MINUTE

    @property
    def hours(self) -> list[tuple[int, float]]:
        """(hour, top px) of every hour line."""
        return [
            (h, (h - self.first_hour) * 60 * PIXELS_PER_MINUTE)
            for h in range(self.first_hour, self.last_hour)
        ]

    def as_json(self) -> dict[str, object]:
        return {
            "channel": self.channel_id,
            "week_of": self.monday.isoformat(),
            "days": [
                {
                    "date": d.day.isoformat(),
                    "version": d.version,
                    "events": [e.as_json() for e in d.events],
                }
                for d in self.days
            ],
        }


def monday_of(day: date) -> date:
    return day - timedelta(days=day.weekday())


def event_title(event: ScheduledEvent, assets: Mapping[str, Asset]) -> str:
    asset = assets.get(event.asset_id) if event.asset_id else None
    if asset is not None:
        return asset.title
    return KINDS.get(event.type.value, ("", event.type.value))[1]


def grid_event(
    channel_id: str,
    schedule: DaySchedule,
    event: ScheduledEvent,
    assets: Mapping[str, Asset],
    zone: ZoneInfo,
    first_hour: int = 0,
) -> GridEvent:
    day = schedule.broadcast_date
    start = frame_instant(zone, day, event.start_frame)
    end = frame_instant(zone, day, event.end_frame)
    css, label = KINDS.get(event.type.value, ("filler", event.type.value))
    minutes = event.start_frame / FPS / 60 - first_hour * 60
    return GridEvent(
        channel_id=channel_id,
        day=day,
        seq=event.seq,
        type=event.type.value,
        css=css,
        label_zh=label,
        title=event_title(event, assets),
        asset_id=event.asset_id,
        start=start,
        end=end,
        start_text=start.astimezone(zone).strftime("%H:%M:%S"),
        end_text=end.astimezone(zone).strftime("%H:%M:%S"),
        top_px=round(minutes * PIXELS_PER_MINUTE, 1),
        height_px=round(max(2.0, event.duration_frames / FPS / 60 * PIXELS_PER_MINUTE), 1),
        source_row=event.source_row,
        version=schedule.version,
    )


def build_week(
    channel_id: str,
    monday: date,
    days: Mapping[tuple[str, date], DaySchedule],
    assets: Mapping[str, Asset],
    zone: ZoneInfo,
) -> Week:
    """Lay out seven days from ``monday``; the hour range covers every event (06–22 at least)."""
    schedules = [days.get((channel_id, monday + timedelta(days=n))) for n in range(7)]
    first_hour, last_hour = 6, 22
    for schedule in schedules:
        for event in schedule.events if schedule else ():
            first_hour = min(first_hour, event.start_frame // (FPS * 3600))
            last_hour = max(last_hour, min(24, -(-event.end_frame // (FPS * 3600))))
    out = []
    for n, schedule in enumerate(schedules):
        events = (
            tuple(
                grid_event(channel_id, schedule, e, assets, zone, first_hour)
                for e in schedule.events
            )
            if schedule
            else ()
        )
        out.append(
            GridDay(
                day=monday + timedelta(days=n),
                weekday_zh=WEEKDAYS_ZH[n],
                weekday_en=WEEKDAYS_EN[n],
                version=schedule.version if schedule else None,
                events=events,
            )
        )
    return Week(
        channel_id=channel_id,
        monday=monday,
        first_hour=first_hour,
        last_hour=last_hour,
        days=tuple(out),
    )
