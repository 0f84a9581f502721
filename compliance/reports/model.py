"""What a compliance report says, assembled once and rendered as HTML, CSV or BXF.

A report covers whole broadcast days (local dates in the station's zone) of one
channel: a daily report is one day, a weekly report seven. Per day it holds

* the as-run against the schedule: every journaled event with its scheduled and actual
  start and duration, outcome and record hash, plus the scheduled events that have no
  as-run record at all (from the compiled rundown, when it is on disk);
* the chain head of the day: the last as-run record journaled by the day's end (its
  sequence number and hash), which a regulator can later check the journal against;
* the loudness of every recorded hour, measured off air;
* the findings of the day.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from compliance.errors import ComplianceInputError
from compliance.findings import Finding, Severity
from compliance.offair_loudness import LoudnessReading
from core.timecode import FPS
from epg.rundown import EventType, Rundown, RundownError, rundown_path
from playout.asrun.ledger import AsRunOutcome, JournalEntry

logger = logging.getLogger(__name__)

MAX_DAYS = 31
STATUS_OK = "Aired Without Discrepancy"
STATUS_TIME = "Aired with Time Discrepancy"
STATUS_DURATION = "Aired with Duration Discrepancy"
STATUS_CONTENT = "Aired with Content Discrepancy"
STATUS_NOT_AIRED = "Did Not Air"


@dataclass(frozen=True, kw_only=True)
class AiredRow:
    """One line of the as-run against the schedule."""

    event_id: str
    event_type: str
    title: str
    asset_id: str | None
    scheduled_start: datetime  # aware, in the report's zone
    actual_start: datetime | None  # None: scheduled, never aired
    scheduled_frames: int
    duration_frames: int
    outcome: str  # as-run outcome, or "missing"
    reason: str
    seq: int | None
    hash: str | None

    @property
    def offset_s(self) -> float | None:
        """Actual minus scheduled start, in seconds."""
        if self.actual_start is None:
            return None
        return round((self.actual_start - self.scheduled_start).total_seconds(), 3)

    @property
    def status(self) -> str:
        """The BXF-style as-run status (also shown in the HTML and CSV)."""
        if self.actual_start is None or self.outcome == AsRunOutcome.SKIPPED.value:
            return STATUS_NOT_AIRED
        if self.outcome == AsRunOutcome.SUBSTITUTED.value:
            return STATUS_CONTENT
        if self.duration_frames != self.scheduled_frames:
            return STATUS_DURATION
        offset = self.offset_s or 0.0
        if abs(offset) > 1 / FPS:
            return STATUS_TIME
        return STATUS_OK

    @property
    def is_program(self) -> bool:
        try:
            return EventType(self.event_type).is_lesson
        except ValueError:
            return False


@dataclass(frozen=True, kw_only=True)
class DayHead:
    """The as-run chain head at the end of a day."""

    day: date
    seq: int
    hash: str
    event_id: str


@dataclass(frozen=True, kw_only=True)
class DayReport:
    day: date
    rows: tuple[AiredRow, ...]
    head: DayHead | None
    loudness: tuple[LoudnessReading, ...]  # hour readings, by hour
    findings: tuple[Finding, ...]


@dataclass(frozen=True, kw_only=True)
class ComplianceReport:
    channel_id: str
    channel_name: str
    first: date
    last: date
    zone: ZoneInfo
    generated_at: datetime
    days: tuple[DayReport, ...]
    findings: tuple[Finding, ...]

    @property
    def kind(self) -> str:
        span = (self.last - self.first).days + 1
        return "daily" if span == 1 else "weekly" if span == 7 else "period"

    @property
    def title(self) -> str:
        names = {"daily": "日报 daily report", "weekly": "周报 weekly report"}
        return f"安全播出 {names.get(self.kind, '报告 report')}"

    def severity_counts(self) -> dict[str, int]:
        counts = {s.value: 0 for s in Severity}
        for finding in self.findings:
            counts[finding.severity.value] += 1
        return counts

    def code_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for finding in self.findings:
            counts[finding.code] = counts.get(finding.code, 0) + 1
        return dict(sorted(counts.items()))


def period(first: date, last: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """UTC bounds of whole local days [first, last]; refuses inverted or over-long periods."""
    if last < first:
        raise ComplianceInputError(
            f"--to {last.isoformat()} is before --from {first.isoformat()}: swap them"
        )
    if (last - first).days + 1 > MAX_DAYS:
        raise ComplianceInputError(
            f"--from {first.isoformat()} --to {last.isoformat()} spans more than {MAX_DAYS} "
            "days: report a week or a month at a time"
        )
    start = datetime.combine(first, time(), zone).astimezone(UTC)
    end = datetime.combine(last + timedelta(days=1), time(), zone).astimezone(UTC)
    return start, end


def day_bounds(day: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time(), zone).astimezone(UTC)
    return start, datetime.combine(day + timedelta(days=1), time(), zone).astimezone(UTC)


def _rundown(rundown_dir: Path | None, channel_id: str, day: date) -> Rundown | None:
    if rundown_dir is None:
        return None
    path = rundown_path(rundown_dir, channel_id, day)
    if not path.exists():
        return None
    try:
        return Rundown.load(path)
    except RundownError as exc:
        logger.warning(
            "report: rundown %s unreadable (%s): titles and missing events lost", path, exc
        )
        return None


def _title(rundown: Rundown | None, event_id: str) -> str:
    if rundown is not None:
        for event in rundown.events:
            if event.event_id == event_id:
                if event.si is not None:
                    return event.si.title
                if event.media is not None:
                    return event.media.title
    return ""


def build_report(
    *,
    channel_id: str,
    channel_name: str,
    first: date,
    last: date,
    zone: ZoneInfo,
    entries: Sequence[JournalEntry],
    findings: Sequence[Finding],
    loudness_hours: Sequence[LoudnessReading],
    now: datetime,
    rundown_dir: Path | None = None,
) -> ComplianceReport:
    """Assemble the report of ``channel_id`` for local days ``first`` to ``last``."""
    period(first, last, zone)
    days = []
    day = first
    while day <= last:
        start, end = day_bounds(day, zone)
        rundown = _rundown(rundown_dir, channel_id, day)
        rows = []
        aired_ids = set()
        for entry in entries:
            r = entry.record
            if not start <= r.actual_start < end:
                continue
            aired_ids.add(r.event_id)
            rows.append(
                AiredRow(
                    event_id=r.event_id,
                    event_type=r.event_type,
                    title=_title(rundown, r.event_id),
                    asset_id=r.asset_id,
                    scheduled_start=r.scheduled_start.astimezone(zone),
                    actual_start=r.actual_start.astimezone(zone),
                    scheduled_frames=r.scheduled_frames,
                    duration_frames=r.duration_frames,
                    outcome=r.outcome.value,
                    reason=r.reason,
                    seq=entry.seq,
                    hash=entry.hash,
                )
            )
        if rundown is not None:
            for event in rundown.events:
                scheduled = rundown.wall_clock(event.start_frame)
                ended = rundown.wall_clock(event.end_frame)
                if event.event_id in aired_ids or ended > now or not start <= scheduled < end:
                    continue
                rows.append(
                    AiredRow(
                        event_id=event.event_id,
                        event_type=event.type.value,
                        title=_title(rundown, event.event_id),
                        asset_id=event.media.asset_id if event.media else None,
                        scheduled_start=scheduled.astimezone(zone),
                        actual_start=None,
                        scheduled_frames=event.duration_frames,
                        duration_frames=0,
                        outcome="missing",
                        reason="未播 no as-run record",
                        seq=None,
                        hash=None,
                    )
                )
        rows.sort(key=lambda row: (row.actual_start or row.scheduled_start, row.seq or 0))
        head = None
        for entry in entries:
            if entry.record.actual_start < end and (head is None or entry.seq > head.seq):
                head = DayHead(
                    day=day, seq=entry.seq, hash=entry.hash, event_id=entry.record.event_id
                )
        days.append(
            DayReport(
                day=day,
                rows=tuple(rows),
                head=head,
                loudness=tuple(
                    sorted(
                        (h for h in loudness_hours if start <= h.start < end),
                        key=lambda h: h.start,
                    )
                ),
                findings=tuple(
                    sorted((f for f in findings if start <= f.at < end), key=lambda f: f.at)
                ),
            )
        )
        day += timedelta(days=1)
    return ComplianceReport(
        channel_id=channel_id,
        channel_name=channel_name,
        first=first,
        last=last,
        zone=zone,
        generated_at=now,
        days=tuple(days),
        findings=tuple(sorted(findings, key=lambda f: f.at)),
    )
