"""The ad rules for minors, as aired.

| code | when |
|---|---|
| ``ad_in_lesson`` | an ad or promo aired inside a lesson's span, or between two parts of it |
| ``ad_minutes`` | a local clock hour held more ad minutes than the channel's policy allows |
| ``ad_category`` | an aired ad or promo is of a category banned for minors, or an ad has none |
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Iterator
from datetime import datetime

from channels.ads import AdPolicy, split_by_clock_hour
from compliance.audit import AuditContext
from compliance.auditors.aired import (
    COMMERCIAL_TYPES,
    LESSON_TYPES,
    aired_events,
    ends,
    record_evidence,
    title_of,
)
from compliance.findings import Finding, Severity
from core.timecode import FPS
from playout.asrun.ledger import JournalEntry


def ad_findings(context: AuditContext) -> Iterator[Finding]:
    for channel in context.channels:
        events = aired_events(context, channel.id)
        lessons = sorted(
            (e for ev in events if ev.type in LESSON_TYPES for e in ev.with_media),
            key=lambda e: e.record.actual_start,
        )
        commercials = [e for ev in events if ev.type in COMMERCIAL_TYPES for e in ev.with_media]
        yield from _in_lessons(context, channel.id, lessons, commercials)
        yield from _minutes(context, channel.id, commercials, channel.ad_policy.max_frames_per_hour)
        yield from _categories(context, channel.id, commercials, channel.ad_policy)


def _in_lessons(
    context: AuditContext,
    channel_id: str,
    lessons: list[JournalEntry],
    commercials: list[JournalEntry],
) -> Iterator[Finding]:
    starts = [e.record.actual_start for e in lessons]
    furthest = list(itertools.accumulate((ends(e.record) for e in lessons), max))
    # Gaps inside one lesson event (it aired in parts): an ad there interrupted the lesson.
    gaps: list[tuple[JournalEntry, JournalEntry]] = []
    for event in aired_events(context, channel_id):
        if event.type not in LESSON_TYPES:
            continue
        parts = sorted(event.with_media, key=lambda e: e.record.actual_start)
        gaps.extend(itertools.pairwise(parts))
    for ad in commercials:
        start, end = ad.record.actual_start, ends(ad.record)
        inside: JournalEntry | None = None
        first = bisect.bisect_right(furthest, start)
        for index in range(first, bisect.bisect_left(starts, end)):
            if ends(lessons[index].record) > start:
                inside = lessons[index]
                break
        if inside is None:
            for before, after in gaps:
                if ends(before.record) <= start and end <= after.record.actual_start:
                    inside = before
                    break
        if inside is None:
            continue
        lesson = inside.record
        yield Finding(
            code="ad_in_lesson",
            severity=Severity.CRITICAL,
            channel_id=channel_id,
            at=ad.record.actual_start,
            message=f"课中插播广告 ad in lesson: {ad.record.event_type} "
            f"{title_of(context, ad.record.asset_id)} aired at "
            f"{context.local(start)} inside lesson {title_of(context, lesson.asset_id)} "
            f"({context.local(lesson.actual_start)}–{context.local(ends(lesson))})",
            evidence=record_evidence(context, ad)
            | {
                "lesson_event_id": lesson.event_id,
                "lesson_asset_id": lesson.asset_id,
                "lesson_start": context.local(lesson.actual_start),
                "lesson_end": context.local(ends(lesson)),
                "lesson_asrun_hash": inside.hash,
            },
            key=("asrun_hash",),
        )


def _minutes(
    context: AuditContext, channel_id: str, commercials: list[JournalEntry], limit: int
) -> Iterator[Finding]:
    ads = [e for e in commercials if e.record.event_type == "ad"]
    per_hour: dict[datetime, list[JournalEntry]] = {}
    totals: dict[datetime, int] = {}
    for entry in ads:
        shares = split_by_clock_hour(
            [(entry.record.actual_start, entry.record.duration_frames)], context.zone
        )
        for hour, frames in shares.items():
            totals[hour] = totals.get(hour, 0) + frames
            per_hour.setdefault(hour, []).append(entry)
    for hour, frames in sorted(totals.items()):
        if frames <= limit:
            continue
        at = hour.astimezone(context.zone)
        if not context.first <= at.date() <= context.last:
            continue
        yield Finding(
            code="ad_minutes",
            severity=Severity.CRITICAL,
            channel_id=channel_id,
            at=at,
            message=f"广告超时 ad minutes: {frames / FPS / 60:.1f} min of ads in "
            f"{at:%Y-%m-%d %H}:00–{at.hour + 1:02d}:00, over the "
            f"{limit / FPS / 60:g} min per clock hour of the channel's policy",
            evidence={
                "hour": context.local(at),
                "ad_frames": frames,
                "ad_seconds": frames / FPS,
                "limit_frames": limit,
                "ads": [
                    {
                        "event_id": e.record.event_id,
                        "actual_start": context.local(e.record.actual_start),
                        "duration_frames": e.record.duration_frames,
                        "asset_id": e.record.asset_id,
                        "asrun_hash": e.hash,
                    }
                    for e in per_hour[hour]
                ],
            },
            key=("hour",),
        )


def _categories(
    context: AuditContext, channel_id: str, commercials: list[JournalEntry], policy: AdPolicy
) -> Iterator[Finding]:
    for entry in commercials:
        r = entry.record
        asset = context.assets.get(r.asset_id or "")
        category = asset.ad_category if asset is not None else None
        if category is not None and category in policy.banned:
            yield Finding(
                code="ad_category",
                severity=Severity.CRITICAL,
                channel_id=channel_id,
                at=r.actual_start,
                message=f"违禁广告 banned ad: {r.event_type} {title_of(context, r.asset_id)} "
                f"({category.value}, {category.name_zh}) aired at {context.local(r.actual_start)}"
                " on a channel for minors",
                evidence=record_evidence(context, entry) | {"ad_category": category.value},
                key=("asrun_hash",),
            )
        elif category is None and r.event_type == "ad":
            known = "has no ad category" if asset is not None else "is not in the asset library"
            yield Finding(
                code="ad_category",
                severity=Severity.MAJOR,
                channel_id=channel_id,
                at=r.actual_start,
                message=f"广告类别不明 uncategorized ad: {title_of(context, r.asset_id)} aired at "
                f"{context.local(r.actual_start)} {known}, so it cannot be shown to be allowed "
                "(`skyclass assets categorize`)",
                evidence=record_evidence(context, entry) | {"ad_category": None},
                key=("asrun_hash",),
            )
