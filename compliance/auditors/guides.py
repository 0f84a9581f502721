"""What the guides said against what aired (节目指南与实际播出).

``guide_mismatch``: the last guide published before a lesson aired (XMLTV served to
a partner, or the EIT of a compiled rundown) listed another title at that time, or
listed the nearest lesson more than 1 min off.

The guide log (``epg.guidelog``) records which schedule version each guide showed
for each day; versions are immutable, so what the guide listed is that version's
lessons and reruns, titled as XMLTV and EIT title them (the asset's title).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from datetime import date, datetime, timedelta

from compliance.audit import AuditContext
from compliance.auditors.aired import LESSON_TYPES, aired_events, record_evidence, title_of
from compliance.findings import Finding, Severity
from epg.guidelog import GuidePublication
from epg.schedule import frame_instant

START_TOLERANCE = timedelta(minutes=1)


def guide_findings(context: AuditContext) -> Iterator[Finding]:
    for channel_id in context.channel_ids:
        published = context.guides.get(channel_id, [])
        if not published:
            continue
        times = [p.published_at for p in published]
        listings: dict[tuple[date, int], list[tuple[datetime, str, str | None]]] = {}
        for event in aired_events(context, channel_id):
            if event.type not in LESSON_TYPES or not event.with_media:
                continue
            entry = min(event.with_media, key=lambda e: e.record.actual_start)
            aired_at = entry.record.actual_start
            day = event.key[0]
            guide = _last_before(published, times, aired_at, day)
            if guide is None:
                continue
            version = guide.versions[day]
            listing = listings.get((day, version))
            if listing is None:
                listing = listings[(day, version)] = _programmes(context, channel_id, day, version)
            aired_title = title_of(context, entry.record.asset_id)
            evidence = record_evidence(context, entry) | {
                "aired_title": aired_title,
                "guide_kind": guide.kind.value,
                "guide_partner": guide.partner,
                "guide_published_at": context.local(guide.published_at),
                "guide_schedule_version": version,
                "guide_document": guide.document,
            }
            said = min(listing, key=lambda p: abs(p[0] - aired_at), default=None)
            if said is None:
                what = "listed no lesson that day"
            else:
                evidence |= {
                    "guide_title": said[1],
                    "guide_start": context.local(said[0]),
                    "guide_asset_id": said[2],
                }
                if abs(said[0] - aired_at) > START_TOLERANCE:
                    what = (
                        f"listed the nearest lesson ({said[1]}) at {context.local(said[0])}, "
                        f"{abs(said[0] - aired_at).total_seconds() / 60:.1f} min off"
                    )
                elif said[1] != aired_title:
                    what = f"listed {said[1]} at that time"
                else:
                    continue
            yield Finding(
                code="guide_mismatch",
                severity=Severity.MAJOR,
                channel_id=channel_id,
                at=aired_at,
                message=f"节目指南不符 guide mismatch: {aired_title} aired at "
                f"{context.local(aired_at)}, but the last guide before it ({guide.kind.value}"
                f"{' to ' + guide.partner if guide.partner else ''}, schedule v{version}, "
                f"published {context.local(guide.published_at)}) {what}",
                evidence=evidence,
                key=("asrun_hash",),
            )


def _last_before(
    published: list[GuidePublication], times: list[datetime], instant: datetime, day: date
) -> GuidePublication | None:
    """The newest publication before ``instant`` that listed ``day``."""
    for index in range(bisect.bisect_left(times, instant) - 1, -1, -1):
        if day in published[index].versions:
            return published[index]
    return None


def _programmes(
    context: AuditContext, channel_id: str, day: date, version: int
) -> list[tuple[datetime, str, str | None]]:
    """(start, title, asset id) of the lessons and reruns a schedule version listed that day."""
    for held in context.schedules.get((channel_id, day), []):
        if held.schedule.version != version:
            continue
        return [
            (
                frame_instant(context.zone, day, e.start_frame),
                title_of(context, e.asset_id),
                e.asset_id,
            )
            for e in held.schedule.events
            if e.type.is_lesson and e.asset_id
        ]
    return []
