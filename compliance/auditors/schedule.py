"""What aired against the schedule version in force: timing and differences.

| code | when |
|---|---|
| ``late_start`` / ``early_start`` | the event started more than 1 frame after / before its time |
| ``missing`` | a scheduled lesson, rerun, ad or promo never took the air |
| ``substituted`` | filler or slate aired in its place, or another asset aired |
| ``truncated`` | it was cut short (hard start, damaged media, playout stopped) |
| ``extra`` | it aired but no schedule version in force had it |
"""

from __future__ import annotations

from collections.abc import Iterator

from compliance.audit import AuditContext
from compliance.auditors.aired import (
    AUDITED_TYPES,
    LESSON_TYPES,
    EventKey,
    aired_events,
    ends,
    in_force,
    record_evidence,
    title_of,
)
from compliance.findings import Finding, Severity
from core.timecode import FPS
from playout.asrun.ledger import AsRunOutcome

TOLERANCE_FRAMES = 1  # "more than 1 frame off its scheduled time"
_EVENT_KEY = ("event_id", "scheduled_start")


def schedule_findings(context: AuditContext) -> Iterator[Finding]:
    for channel_id in context.channel_ids:
        events = aired_events(context, channel_id)
        by_key = {e.key: e for e in events}
        # Past the end of what the channel has aired, an event is not late: it is to come.
        horizon = max([context.now, *(ends(e.record) for ev in events for e in ev.entries)])
        if context.until is not None:
            horizon = min(horizon, context.until)
        scheduled: set[EventKey] = set()
        for item in in_force(context, channel_id):
            if item.event.type.value not in AUDITED_TYPES:
                continue
            scheduled.add(item.key)
            event = by_key.get(item.key)
            title = title_of(context, item.event.asset_id)
            planned = {
                "event_type": item.event.type.value,
                "scheduled_start": context.local(item.start),
                "scheduled_frames": item.event.duration_frames,
                "scheduled_asset_id": item.event.asset_id,
                "title": title,
                "schedule_version": item.version,
                "source_row": item.event.source_row,
            }
            played = event.played if event is not None else []
            if not played:
                if item.end > horizon:
                    continue
                skipped = event.entries[0] if event is not None else None
                yield Finding(
                    code="missing",
                    severity=Severity.MAJOR,
                    channel_id=channel_id,
                    at=item.start,
                    message=f"漏播 missing: {item.event.type.value} {title} scheduled at "
                    f"{context.local(item.start)} did not air"
                    + (f" ({skipped.record.reason})" if skipped and skipped.record.reason else ""),
                    evidence=planned
                    | (record_evidence(context, skipped) if skipped else {})
                    | {"scheduled_start": context.local(item.start)},
                    key=("scheduled_start", "event_type"),
                )
                continue
            assert event is not None
            first = event.first
            evidence = (
                planned
                | record_evidence(context, first)
                | {"scheduled_start": context.local(item.start)}
            )
            replaced = [e for e in played if e.record.outcome is AsRunOutcome.SUBSTITUTED]
            other = [
                e
                for e in event.with_media
                if item.event.asset_id is not None and e.record.asset_id != item.event.asset_id
            ]
            if replaced or other:
                bad = (replaced or other)[0]
                why = (
                    bad.record.reason
                    if replaced
                    else f"aired asset {bad.record.asset_id} instead of {item.event.asset_id}"
                )
                yield Finding(
                    code="substituted",
                    severity=Severity.MAJOR,
                    channel_id=channel_id,
                    at=item.start,
                    message=f"替换播出 substituted: {item.event.type.value} {title} at "
                    f"{context.local(item.start)}: {why}",
                    evidence=evidence | record_evidence(context, bad),
                    key=_EVENT_KEY,
                )
            cut = [e for e in played if e.record.outcome is AsRunOutcome.TRUNCATED]
            if context.until is not None and item.end > context.until:
                cut = []  # on air when the audited run ended: its end is not in the record
            if cut:
                aired = sum(e.record.duration_frames for e in event.with_media)
                yield Finding(
                    code="truncated",
                    severity=Severity.MAJOR
                    if item.event.type.value in LESSON_TYPES
                    else Severity.MINOR,
                    channel_id=channel_id,
                    at=item.start,
                    message=f"未播完 truncated: {item.event.type.value} {title} at "
                    f"{context.local(item.start)} aired {aired} of "
                    f"{item.event.duration_frames} frames ({cut[0].record.reason})",
                    evidence=evidence | record_evidence(context, cut[0]) | {"aired_frames": aired},
                    key=_EVENT_KEY,
                )
            delta = first.record.actual_frame - item.event.start_frame
            if abs(delta) > TOLERANCE_FRAMES:
                late = delta > 0
                yield Finding(
                    code="late_start" if late else "early_start",
                    severity=Severity.MAJOR if abs(delta) >= FPS else Severity.MINOR,
                    channel_id=channel_id,
                    at=item.start,
                    message=f"{'迟播 late' if late else '早播 early'} start: "
                    f"{item.event.type.value} {title} started {abs(delta) / FPS:.2f} s "
                    f"({abs(delta)} frames) {'after' if late else 'before'} "
                    f"{context.local(item.start)}",
                    evidence=evidence | {"offset_frames": delta},
                    key=_EVENT_KEY,
                )
        for event in events:
            if event.type not in AUDITED_TYPES or event.key in scheduled or not event.played:
                continue
            first = event.first
            title = title_of(context, first.record.asset_id)
            yield Finding(
                code="extra",
                severity=Severity.MAJOR,
                channel_id=channel_id,
                at=first.record.actual_start,
                message=f"计划外播出 extra: {event.type} {title} "
                f"aired at {context.local(first.record.actual_start)}, but no schedule version "
                "in force had it",
                evidence=record_evidence(context, first) | {"title": title},
                key=("asrun_hash",),
            )
