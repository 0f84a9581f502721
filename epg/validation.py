"""Schedule validation: all-or-nothing, every problem reported with row and column.

The rules (issue #4): known channel; a lesson's grade carried by the channel
(专题教育 lessons air anywhere); a known, approved asset of the right kind and
house profile that keeps its band's duration rule; no overlaps; fixed starts
on the 25 fps frame grid; ads and promos only in a break between two lessons;
the screen-time policy (minimum break between lessons, lesson minutes per day);
the channel's ad policy (issue #12: no banned ad category, at most its ad minutes
in any clock hour; ingest requires the category, the audit reports ads without one).
Gaps are warnings: the rundown compiler fills them.

Validation never writes; the caller stores the result only if `errors` is empty.
"""

from __future__ import annotations

import bisect
import itertools
import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Protocol, TypeVar
from zoneinfo import ZoneInfo

from channels import Channel, ChannelRegistry, split_by_clock_hour
from core.timecode import FPS
from epg.cells import parse_clock, parse_date, parse_duration, parse_mode, parse_type
from epg.errors import CellError, Problem
from epg.rundown import EventType, StartMode
from epg.schedule import (
    CellValue,
    ScheduledEvent,
    ScheduleRow,
    ScheduleSource,
    beijing_clock,
    day_frames,
    frame_instant,
)
from grading import GradingPolicy, is_topic
from ingest import Asset, AssetKind

logger = logging.getLogger(__name__)

ProgressCallback = Callable[[str, int, int], None]  # (stage, done, total)

_FILL_KINDS = (AssetKind.FILLER, AssetKind.IDENT, AssetKind.PSA, AssetKind.EYE_BREAK)
_KINDS_FOR_TYPE: Mapping[EventType, tuple[AssetKind, ...]] = {
    EventType.LESSON: (AssetKind.LESSON,),
    EventType.RERUN: (AssetKind.LESSON,),
    EventType.AD: (AssetKind.AD,),
    EventType.PROMO: (AssetKind.PROMO,),
    EventType.FILLER: _FILL_KINDS,
    EventType.BREAK: _FILL_KINDS,
}
_NEEDS_ASSET = (EventType.LESSON, EventType.RERUN, EventType.AD, EventType.PROMO)


class AssetLookup(Protocol):
    """The slice of ingest.AssetLibrary validation needs (one batch query)."""

    def many(self, refs: Iterable[str]) -> dict[str, Asset]: ...


@dataclass(frozen=True, kw_only=True)
class ValidationReport:
    """The outcome of validating one file. `days` is meaningful only without errors."""

    source: ScheduleSource
    errors: tuple[Problem, ...]
    warnings: tuple[Problem, ...]
    days: Mapping[tuple[str, date], tuple[ScheduledEvent, ...]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def event_count(self) -> int:
        return sum(len(events) for events in self.days.values())

    def as_json(self) -> dict[str, object]:
        return {
            "source": self.source.name,
            "sha256": self.source.sha256,
            "ok": self.ok,
            "events": self.event_count,
            "days": [
                {"channel": channel, "date": day.isoformat(), "events": len(events)}
                for (channel, day), events in sorted(self.days.items())
            ],
            "errors": [p.as_json() for p in self.errors],
            "warnings": [p.as_json() for p in self.warnings],
        }


_T = TypeVar("_T")


@dataclass(kw_only=True)
class _Parsed:
    """A row on its way through validation (mutable only inside this module)."""

    row: ScheduleRow
    channel: Channel | None = None
    type: EventType | None = None
    mode: StartMode | None = None
    day: date | None = None
    start: int | None = None  # frames after 00:00 of `day`
    duration: int | None = None  # from the duration column
    asset: Asset | None = None
    asset_ref: str = ""
    timed: bool = False
    broken: bool = False  # an error makes its timing unknowable

    @property
    def end(self) -> int:
        assert self.start is not None and self.duration is not None
        return self.start + self.duration


class _Findings:
    def __init__(self) -> None:
        self.errors: list[Problem] = []
        self.warnings: list[Problem] = []

    def error(self, row: ScheduleRow, column: str, message: str) -> None:
        self.errors.append(Problem(where=row.where, row=row.row, column=column, message=message))

    def warn(self, row: ScheduleRow, column: str, message: str) -> None:
        self.warnings.append(Problem(where=row.where, row=row.row, column=column, message=message))


def policy_grade(channel: Channel) -> str:
    """The grade whose band sets a channel's screen-time policy.

    A grade channel uses its (first) grade; the 专题 channel serves every grade and
    takes the strictest band (小学, g01).
    """
    return channel.grades[0] if channel.grades else "g01"


def validate(
    source: ScheduleSource,
    *,
    registry: ChannelRegistry,
    assets: AssetLookup,
    policy: GradingPolicy,
    zone: ZoneInfo,
    progress: ProgressCallback | None = None,
) -> ValidationReport:
    """Check every row against every rule; return all errors and warnings at once."""
    findings = _Findings()
    total = len(source.rows)
    parsed = [_parse_row(row, registry, findings) for row in source.rows]
    if progress:
        progress("parse", total, total)

    refs = {p.asset_ref for p in parsed if p.asset_ref}
    found = assets.many(refs)
    for index, item in enumerate(parsed):
        _check_asset(item, found, policy, findings)
        if progress and (index % 250 == 0 or index == total - 1):
            progress("assets", index + 1, total)

    by_channel: dict[str, list[_Parsed]] = defaultdict(list)
    for item in parsed:
        if item.channel is not None:
            by_channel[item.channel.id].append(item)
    for items in by_channel.values():
        _place(items, zone, findings)
    if progress:
        progress("timing", total, total)

    days: dict[tuple[str, date], list[_Parsed]] = defaultdict(list)
    for item in parsed:
        if item.timed and item.channel is not None and item.day is not None:
            days[(item.channel.id, item.day)].append(item)
    for (channel_id, day), items in sorted(days.items()):
        channel = registry.get(channel_id)
        items.sort(key=lambda p: p.start or 0)
        _check_day(channel, day, items, policy, zone, findings)
    if progress:
        progress("rules", total, total)

    order = {row.where: n for n, row in enumerate(source.rows)}
    errors = tuple(sorted(findings.errors, key=lambda p: order.get(p.where, 0)))
    warnings = tuple(sorted(findings.warnings, key=lambda p: order.get(p.where, 0)))
    result: dict[tuple[str, date], tuple[ScheduledEvent, ...]] = {}
    if not errors:
        for key, items in days.items():
            result[key] = tuple(
                ScheduledEvent(
                    seq=seq,
                    type=item.type or EventType.FILLER,
                    start_mode=item.mode or StartMode.SEQUENTIAL,
                    start_frame=item.start or 0,
                    duration_frames=item.duration or 0,
                    asset_id=item.asset.asset_id if item.asset else None,
                    source_row=f"{source.name} {item.row.where}",
                )
                for seq, item in enumerate(items)
            )
    logger.info(
        "validated %s: %d rows, %d errors, %d warnings",
        source.name,
        total,
        len(errors),
        len(warnings),
    )
    return ValidationReport(source=source, errors=errors, warnings=warnings, days=result)


def _optional_cell(
    item: _Parsed, column: str, parse: Callable[[CellValue], _T], findings: _Findings
) -> _T | None:
    """Parse a cell that may be empty; a bad value is reported and makes the row broken."""
    value = item.row.cells.get(column)
    if value is None:
        return None
    try:
        return parse(value)
    except CellError as exc:
        findings.error(item.row, column, str(exc))
        item.broken = True
        return None


def _parse_row(row: ScheduleRow, registry: ChannelRegistry, findings: _Findings) -> _Parsed:
    item = _Parsed(row=row)
    channel_id = row.text("channel")
    if not channel_id:
        findings.error(row, "channel", "is empty: name the channel, e.g. g03.skyclass.cn")
    else:
        item.channel = registry.find(channel_id)
        if item.channel is None:
            known = ", ".join(c.id for c in registry)
            findings.error(row, "channel", f"unknown channel {channel_id!r}: use one of {known}")
    try:
        item.type = parse_type(row.cells.get("type"))
    except CellError as exc:
        findings.error(row, "type", str(exc))
        item.broken = True
    item.day = _optional_cell(item, "date", parse_date, findings)
    clock = _optional_cell(item, "start", parse_clock, findings)
    if clock is not None:
        item.start, carried = clock
        item.day = item.day or carried
    item.duration = _optional_cell(item, "duration", parse_duration, findings)
    if row.cells.get("start_mode") is not None:
        item.mode = _optional_cell(item, "start_mode", parse_mode, findings)
    else:
        item.mode = StartMode.FIXED if item.start is not None else StartMode.SEQUENTIAL
    item.asset_ref = row.text("asset")
    return item


def _check_asset(
    item: _Parsed, found: Mapping[str, Asset], policy: GradingPolicy, findings: _Findings
) -> None:
    row, kind = item.row, item.type
    if kind is None:
        return
    if not item.asset_ref:
        if kind in _NEEDS_ASSET:
            findings.error(row, "asset", f"a {kind.value} needs an asset id or lesson id")
            item.broken = True
        elif item.duration is None and not item.broken:
            findings.error(row, "duration", f"a {kind.value} without an asset needs a duration")
            item.broken = True
        return
    asset = found.get(item.asset_ref)
    if asset is None:
        findings.error(
            row,
            "asset",
            f"unknown asset {item.asset_ref!r}: ingest it first or check the id "
            "(`skyclass assets list`)",
        )
        item.broken = True
        return
    item.asset = asset
    allowed = _KINDS_FOR_TYPE[kind]
    if asset.kind not in allowed:
        findings.error(
            row,
            "asset",
            f"asset {asset.asset_id} is a {asset.kind.value}, but a {kind.value} row needs "
            f"a {' or '.join(k.value for k in allowed)}: fix the type or the asset",
        )
    if not asset.approved:
        findings.error(
            row,
            "asset",
            f"asset {asset.asset_id} is not approved (review state {asset.review_state.value}): "
            "it may air only after 审核 (`skyclass assets review`)",
        )
    channel = item.channel
    if channel is not None and asset.profile != channel.profile.name:
        findings.error(
            row,
            "asset",
            f"asset {asset.asset_id} is {asset.profile}, channel {channel.id} airs "
            f"{channel.profile.name}: ingest it for the {channel.profile.name} profile",
        )
    if asset.kind is AssetKind.LESSON:
        _check_lesson(item, asset, policy, findings)
    if kind in _NEEDS_ASSET or item.duration is None:
        if kind.is_lesson and item.duration is not None and item.duration != asset.duration_frames:
            findings.warn(
                row,
                "duration",
                f"ignored: a lesson plays its whole asset ({asset.duration_frames} frames)",
            )
        item.duration = asset.duration_frames


def _check_lesson(item: _Parsed, asset: Asset, policy: GradingPolicy, findings: _Findings) -> None:
    row, channel = item.row, item.channel
    subject = asset.metadata.subject or ""
    topic = is_topic(subject)
    grade = asset.metadata.grade
    if channel is not None and not topic:
        if grade is None:
            findings.error(
                row, "asset", f"lesson {asset.asset_id} has no grade: set it in the library"
            )
        elif not channel.carries(grade):
            findings.error(
                row,
                "asset",
                f"lesson {asset.asset_id} is for {grade}, which channel {channel.id} does not "
                f"carry ({', '.join(channel.grades)}): schedule it on its grade channel",
            )
    if grade is None and topic:
        # A 专题 lesson without a grade airs on any channel: any band's rule will do.
        if not any(r.allows(asset.duration_seconds) for r in policy.durations.values()):
            findings.error(
                row,
                "asset",
                f"专题 lesson {asset.asset_id} runs {asset.duration_seconds:.2f} s, outside "
                "every band's duration rule: re-edit the lesson",
            )
        return
    rule_grade = grade or (policy_grade(channel) if channel is not None else None)
    if rule_grade is None:
        return
    rule = policy.duration_rule(rule_grade)
    if not rule.allows(asset.duration_seconds):
        findings.error(
            row,
            "asset",
            f"lesson {asset.asset_id} runs {asset.duration_seconds:.2f} s, outside the "
            f"{rule.describe()} rule for {rule_grade}: re-edit the lesson",
        )


def _place(items: list[_Parsed], zone: ZoneInfo, findings: _Findings) -> None:
    """Give each row of one channel a day and start frame, chaining sequential rows."""
    previous: _Parsed | None = None
    lost = False  # a broken row hides where the following sequential rows would start
    for item in items:
        row = item.row
        if item.broken or item.duration is None:
            previous, lost = None, True
            continue
        if lost and item.mode is StartMode.SEQUENTIAL and item.start is None:
            continue  # its position follows a broken row: reported once the row is fixed
        lost = False
        chained = (
            item.mode is StartMode.SEQUENTIAL
            and previous is not None
            and (item.day is None or item.day == previous.day or item.start is None)
        )
        if chained:
            assert previous is not None and previous.day is not None
            day, start = previous.day, previous.end
            if item.day is not None and item.day != day and item.start is None:
                findings.error(
                    row,
                    "start",
                    f"a sequential event on a new day ({item.day}) needs a start time",
                )
                previous = None
                continue
            length = day_frames(zone, day)
            if start >= length:
                day, start = day + timedelta(days=1), start - length
            if item.start is not None and item.start != start:
                findings.warn(
                    row,
                    "start",
                    f"ignored: a sequential event follows the previous one at "
                    f"{beijing_clock(zone, day, start)}",
                )
            item.day, item.start = day, start
        else:
            if item.day is None:
                findings.error(row, "date", "needs a date: the first event of a day must say it")
                previous = None
                continue
            if item.start is None:
                findings.error(
                    row, "start", "needs a start time: a fixed or first event must say when"
                )
                previous = None
                continue
        assert item.day is not None and item.start is not None
        if item.end > day_frames(zone, item.day):
            findings.error(
                row,
                "duration",
                f"runs past 24:00 of {item.day} (the broadcast day ends at midnight "
                "Beijing time): end it before midnight and start the next day at 00:00",
            )
            previous = None
            continue
        item.timed = True
        previous = item


def _check_day(
    channel: Channel,
    day: date,
    items: list[_Parsed],
    policy: GradingPolicy,
    zone: ZoneInfo,
    findings: _Findings,
) -> None:
    """Rules over one channel-day, events in start order."""
    screen = policy.screen_time_for(policy_grade(channel))
    overlapped: set[int] = set()
    for before, after in itertools.pairwise(items):
        if after.start is not None and after.start < before.end:
            overlapped.add(id(after))
            findings.error(
                after.row,
                "start",
                f"starts at {beijing_clock(zone, day, after.start)}, before the event at "
                f"{before.row.where} ends at {beijing_clock(zone, day, before.end)}: "
                "events on a channel must not overlap",
            )
        elif after.start is not None and after.start > before.end:
            findings.warn(
                after.row,
                "start",
                f"gap of {(after.start - before.end) / FPS:.2f} s after {before.row.where}: "
                "the compiler fills it from the filler pool",
            )

    lessons = [p for p in items if p.type is not None and p.type.is_lesson]
    # Linear in the day's events (a hostile file may hold thousands of ads and lessons):
    # lessons are in start order, so the running maximum of their ends is sorted too.
    lesson_starts = [p.start or 0 for p in lessons]
    furthest_end = list(itertools.accumulate((p.end for p in lessons), max))
    first_end = min((p.end for p in lessons), default=None)
    last_start = max(lesson_starts, default=None)
    for item in items:
        if item.type is None or not item.type.is_commercial:
            continue
        assert item.start is not None
        # The first lesson that starts before this item ends and ends after it starts.
        first = bisect.bisect_right(furthest_end, item.start)
        if first < bisect.bisect_left(lesson_starts, item.end):
            findings.error(
                item.row,
                "start",
                f"this {item.type.value} falls inside the lesson at {lessons[first].row.where}: "
                "a lesson is never cut; move it to a break between two lessons",
            )
            continue
        lesson_before = first_end is not None and first_end <= item.start
        lesson_after = last_start is not None and last_start >= item.end
        if not (lesson_before and lesson_after):
            side = "before" if not lesson_before else "after"
            findings.error(
                item.row,
                "type",
                f"a {item.type.value} is allowed only in a break between two lessons, and "
                f"there is no lesson {side} it on {channel.id} on {day}: move it or remove it",
            )

    _check_ads(channel, day, items, zone, findings)

    min_break = screen.min_break_minutes * 60 * FPS
    cap = screen.max_lesson_minutes_per_day * 60 * FPS
    total = 0
    capped = False
    for index, lesson in enumerate(lessons):
        assert lesson.start is not None
        if index and id(lesson) not in overlapped:
            previous = lessons[index - 1]
            rest = lesson.start - previous.end
            if 0 <= rest < min_break:
                findings.error(
                    lesson.row,
                    "start",
                    f"only {rest / FPS / 60:.1f} min after the lesson at {previous.row.where}: "
                    f"the screen-time policy needs at least {screen.min_break_minutes} min "
                    "between lessons (眼保健操 break)",
                )
        total += lesson.duration or 0
        if total > cap and not capped:
            findings.error(
                lesson.row,
                "asset",
                f"brings {channel.id} to {total / FPS / 60:.1f} lesson minutes on {day}, over "
                f"the {screen.max_lesson_minutes_per_day} min a day the screen-time policy "
                "allows: move lessons to another day",
            )
            capped = True  # report the cap once per day, at the lesson that crosses it


def _check_ads(
    channel: Channel, day: date, items: list[_Parsed], zone: ZoneInfo, findings: _Findings
) -> None:
    """The channel's ad policy: no banned category, at most its ad minutes in a clock hour."""
    policy = channel.ad_policy
    used: dict[datetime, int] = {}
    reported: set[datetime] = set()
    for item in items:
        if item.type is None or not item.type.is_commercial or item.asset is None:
            continue
        asset = item.asset
        category = asset.ad_category
        if category is not None and category in policy.banned:
            findings.error(
                item.row,
                "asset",
                f"asset {asset.asset_id} is a {category.value} ({category.name_zh}) "
                f"{item.type.value}: that category is banned on {channel.id}, a channel for "
                "minors (Advertising Law §40, 双减, TV shopping): schedule another one",
            )
            continue
        if item.type is not EventType.AD:
            continue
        assert item.start is not None
        share = split_by_clock_hour(
            [(frame_instant(zone, day, item.start), item.duration or 0)], zone
        )
        for hour, frames in share.items():
            used[hour] = used.get(hour, 0) + frames
            if used[hour] > policy.max_frames_per_hour and hour not in reported:
                reported.add(hour)
                findings.error(
                    item.row,
                    "start",
                    f"this ad brings {hour:%H}:00–{hour.hour + 1:02d}:00 on {day} to "
                    f"{used[hour] / FPS / 60:.1f} ad minutes, over the "
                    f"{policy.max_minutes_per_hour:g} per clock hour {channel.id} allows "
                    "(SARFT Order 61): move ads to another hour or drop some",
                )
