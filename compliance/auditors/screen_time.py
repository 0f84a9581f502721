"""The screen-time policy (grading), as aired.

``screen_time``: a channel-day aired more lesson minutes than the policy of its
grade band allows, or two lessons aired with less rest between them than its
minimum break (眼保健操). The band is the channel's (the 专题 channel takes the
strictest, 小学), as schedule validation does.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import datetime

from compliance.audit import AuditContext
from compliance.auditors.aired import LESSON_TYPES, aired_events, ends, record_evidence, title_of
from compliance.findings import Finding, Severity
from core.timecode import FPS
from epg.validation import policy_grade


def screen_time_findings(context: AuditContext) -> Iterator[Finding]:
    for channel in context.channels:
        policy = context.grading.screen_time_for(policy_grade(channel))
        cap = policy.max_lesson_minutes_per_day * 60 * FPS
        min_break = policy.min_break_minutes * 60 * FPS
        lessons = [
            e for e in aired_events(context, channel.id) if e.type in LESSON_TYPES and e.with_media
        ]
        for day, group in itertools.groupby(lessons, key=lambda e: e.key[0]):
            total = 0
            previous_end: datetime | None = None
            previous_title = ""
            for event in group:
                media = sorted(event.with_media, key=lambda e: e.record.actual_start)
                first = media[0]
                end = max(ends(e.record) for e in media)
                title = title_of(context, first.record.asset_id)
                if previous_end is not None:
                    rest = round((first.record.actual_start - previous_end).total_seconds() * FPS)
                    if 0 <= rest < min_break:
                        yield Finding(
                            code="screen_time",
                            severity=Severity.MAJOR,
                            channel_id=channel.id,
                            at=first.record.actual_start,
                            message=f"用眼时间 screen time: {title} aired "
                            f"{rest / FPS / 60:.1f} min after {previous_title} ended; the policy "
                            f"needs at least {policy.min_break_minutes} min between lessons",
                            evidence=record_evidence(context, first)
                            | {
                                "rule": "min_break",
                                "rest_frames": rest,
                                "min_break_minutes": policy.min_break_minutes,
                            },
                            key=("asrun_hash", "rule"),
                        )
                total += sum(e.record.duration_frames for e in media)
                if total > cap and total - sum(e.record.duration_frames for e in media) <= cap:
                    yield Finding(
                        code="screen_time",
                        severity=Severity.MAJOR,
                        channel_id=channel.id,
                        at=first.record.actual_start,
                        message=f"用眼时间 screen time: {title} brings {day} to "
                        f"{total / FPS / 60:.1f} lesson minutes, over the "
                        f"{policy.max_lesson_minutes_per_day} min a day the policy allows",
                        evidence=record_evidence(context, first)
                        | {
                            "rule": "max_lesson_minutes_per_day",
                            "lesson_frames": total,
                            "max_lesson_minutes_per_day": policy.max_lesson_minutes_per_day,
                        },
                        key=("asrun_hash", "rule"),
                    )
                previous_end, previous_title = end, title
