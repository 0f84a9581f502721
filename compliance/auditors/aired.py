"""What aired and what was scheduled, in the shape every auditor compares.

* ``AiredEvent``: the as-run records of one rundown event (a restart can split an
  event into a cut record and a joined one), keyed by (broadcast day, scheduled
  frame, event type), which is also how a schedule event is keyed;
* ``ScheduledItem``: an event of the schedule version in force at its start. A
  version is in force from its creation until the next version of that channel-day;
  the first version of a day also stands for any time before it was made (a day
  loaded after it aired is audited against its first version).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from compliance.audit import AuditContext
from core.timecode import FPS
from epg.schedule import ScheduledEvent, frame_instant
from playout.asrun.ledger import AsRunOutcome, AsRunRecord, JournalEntry

#: The event types the schedule audit compares (filler and slate fill whatever is left).
AUDITED_TYPES = frozenset({"lesson", "rerun", "ad", "promo"})
LESSON_TYPES = frozenset({"lesson", "rerun"})
COMMERCIAL_TYPES = frozenset({"ad", "promo"})

EventKey = tuple[date, int, str]  # (broadcast day, frame of its scheduled start, type)


def ends(record: AsRunRecord) -> datetime:
    """When a record's air time ended."""
    return record.actual_start + timedelta(microseconds=record.duration_frames * 1_000_000 // FPS)


def media_aired(record: AsRunRecord) -> bool:
    """Whether the event's own media went out (not skipped, not replaced by filler)."""
    return (
        record.asset_id is not None
        and record.duration_frames > 0
        and record.outcome in (AsRunOutcome.AIRED, AsRunOutcome.TRUNCATED)
    )


@dataclass(frozen=True, kw_only=True)
class AiredEvent:
    channel_id: str
    key: EventKey
    entries: tuple[JournalEntry, ...]  # in sequence order

    @property
    def type(self) -> str:
        return self.key[2]

    @property
    def played(self) -> list[JournalEntry]:
        """Records of the event that took air time (its media or a substitute)."""
        return [e for e in self.entries if e.record.outcome is not AsRunOutcome.SKIPPED]

    @property
    def with_media(self) -> list[JournalEntry]:
        return [e for e in self.entries if media_aired(e.record)]

    @property
    def first(self) -> JournalEntry:
        """The record that started it on air (earliest actual start; else the first)."""
        played = self.played
        if not played:
            return self.entries[0]
        return min(played, key=lambda e: (e.record.actual_start, e.seq))


def aired_events(context: AuditContext, channel_id: str) -> list[AiredEvent]:
    """The channel's as-run in the window, one AiredEvent per rundown event, by first record."""
    grouped: dict[EventKey, list[JournalEntry]] = {}
    for entry in context.asrun.get(channel_id, []):
        r = entry.record
        key = (context.day_of(r.scheduled_start), r.scheduled_frame, r.event_type)
        grouped.setdefault(key, []).append(entry)
    events = [
        AiredEvent(channel_id=channel_id, key=key, entries=tuple(entries))
        for key, entries in grouped.items()
    ]
    events.sort(key=lambda e: (e.first.record.actual_start, e.first.seq))
    return events


@dataclass(frozen=True, kw_only=True)
class ScheduledItem:
    channel_id: str
    day: date
    version: int
    created_at: datetime
    event: ScheduledEvent
    start: datetime  # aware UTC

    @property
    def key(self) -> EventKey:
        return (self.day, self.event.start_frame, self.event.type.value)

    @property
    def end(self) -> datetime:
        return self.start + timedelta(microseconds=self.event.duration_frames * 1_000_000 // FPS)


def in_force(context: AuditContext, channel_id: str) -> Iterator[ScheduledItem]:
    """The scheduled events of the channel in the window, each from the version in force
    at its start."""
    for day in context.days:
        versions = context.schedules.get((channel_id, day), [])
        for index, version in enumerate(versions):
            since = version.created_at if index else None
            until = versions[index + 1].created_at if index + 1 < len(versions) else None
            for event in version.schedule.events:
                start = frame_instant(context.zone, day, event.start_frame)
                if (since is None or start >= since) and (until is None or start < until):
                    yield ScheduledItem(
                        channel_id=channel_id,
                        day=day,
                        version=version.schedule.version,
                        created_at=version.created_at,
                        event=event,
                        start=start,
                    )


def record_evidence(context: AuditContext, entry: JournalEntry) -> dict[str, Any]:
    """The facts of one as-run record, for a finding's evidence."""
    r = entry.record
    return {
        "event_id": r.event_id,
        "event_type": r.event_type,
        "scheduled_start": context.local(r.scheduled_start),
        "actual_start": context.local(r.actual_start),
        "scheduled_frames": r.scheduled_frames,
        "duration_frames": r.duration_frames,
        "asset_id": r.asset_id,
        "outcome": r.outcome.value,
        "reason": r.reason,
        "asrun_seq": entry.seq,
        "asrun_hash": entry.hash,
    }


def title_of(context: AuditContext, asset_id: str | None) -> str:
    """What the guide would call an asset (its title), or its id if the library lacks it."""
    if asset_id is None:
        return "(no media)"
    asset = context.assets.get(asset_id)
    return asset.title.strip() or asset_id if asset is not None else asset_id
