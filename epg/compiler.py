"""The rundown compiler: a channel's current schedule for one day → a frame-exact Rundown.

The rundown tiles the whole broadcast day (00:00–24:00 Beijing time) so playout
never has to guess: scheduled events keep their frame positions, lesson
durations are the assets' frame counts, `break` rows and gaps are filled from
the channel's filler pool (round robin, whole clips first, the last one cut),
and a slate is the last resort when the pool is empty.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Protocol
from zoneinfo import ZoneInfo

from channels import Channel, ChannelRegistry
from core.clock import Clock
from core.timecode import FPS
from epg.errors import NoScheduleError
from epg.guidelog import GuideKind, GuideLog, publications
from epg.rundown import (
    EpgEntry,
    EventType,
    MediaRef,
    Rundown,
    RundownError,
    RundownEvent,
    RundownService,
    SiText,
    StartMode,
    rundown_path,
)
from epg.schedule import DaySchedule, ScheduledEvent, day_frames, day_start, frame_instant
from epg.store import ScheduleStore
from grading import grade_by_code, is_topic
from ingest import Asset, AssetKind, ReviewState

logger = logging.getLogger(__name__)

EPG_HORIZON_DAYS = 7
FILL_KINDS = (AssetKind.FILLER, AssetKind.IDENT, AssetKind.PSA, AssetKind.EYE_BREAK)
_EVENT_SLOTS = 1 << 12  # scheduled events per day that get their own EIT event_id


class AssetSource(Protocol):
    """The slice of ingest.AssetLibrary the compiler reads."""

    def many(self, refs: Iterable[str]) -> dict[str, Asset]: ...

    def list(
        self,
        *,
        kind: AssetKind | None = None,
        grade: str | None = None,
        state: ReviewState | None = None,
    ) -> list[Asset]: ...


def eit_event_id(day: date, seq: int) -> int:
    """A 16-bit DVB event_id, unique per service over any 16-day window.

    The top 4 bits are the day (ordinal mod 16), the low 12 the event's order in
    its day, so a recompile of the same schedule keeps the same ids (EN 300 468
    requires stable ids within the guide's span).
    """
    if not 0 <= seq < _EVENT_SLOTS:
        raise RundownError(f"{day}: more than {_EVENT_SLOTS} scheduled events on one day")
    return (day.toordinal() % 16) << 12 | seq


def media_ref(asset: Asset) -> MediaRef:
    return MediaRef(
        asset_id=asset.asset_id,
        path=str(asset.path),
        sha256=asset.sha256,
        duration_frames=asset.duration_frames,
        kind=asset.kind.value,
        title=asset.title,
        ad_category=asset.ad_category.value if asset.ad_category else None,
    )


def si_text(asset: Asset, *, rerun: bool) -> SiText:
    """What EIT and XMLTV say about a lesson (Chinese): never an empty description."""
    meta = asset.metadata
    grade_zh = grade_by_code(meta.grade).name_zh if meta.grade else None
    topic = is_topic(meta.subject or "")
    parts = [
        "重播" if rerun else None,
        grade_zh,
        meta.subject,
        "专题教育" if topic else None,
        meta.textbook_edition,
        meta.unit,
        f"第{meta.lesson_number}课" if meta.lesson_number is not None else None,
        f"主讲：{meta.teacher}" if meta.teacher else None,
        meta.school,
    ]
    summary = " · ".join(p for p in parts if p)
    description = f"{meta.description.strip()}（{summary}）" if meta.description else summary
    return SiText(
        title=meta.title.strip() or asset.asset_id,
        description=description or meta.title,
        grade=grade_zh,
        subject=meta.subject,
        topic=topic,
        textbook_edition=meta.textbook_edition,
        unit=meta.unit,
        lesson_number=meta.lesson_number,
    )


def service_of(channel: Channel, registry: ChannelRegistry) -> RundownService:
    return RundownService(
        channel_id=channel.id,
        name_zh=channel.name_zh,
        name_en=channel.name_en,
        provider_zh=registry.network.provider_zh,
        service_id=channel.service_id,
        transport_stream_id=channel.transport_stream_id,
        original_network_id=channel.original_network_id,
        profile=channel.profile.name,
        mux_rate=channel.mux_rate,
    )


def filler_pool(channel: Channel, assets: AssetSource) -> tuple[Asset, ...]:
    """The channel's filler pool: its configured ids, else every approved fill asset.

    Configured ids that are unknown, unapproved or of the wrong profile are left
    out with a warning (playout must never air them).
    """
    if channel.filler:
        found = assets.many(channel.filler)
        pool = []
        for ref in channel.filler:
            asset = found.get(ref)
            if asset is None or not asset.approved or asset.profile != channel.profile.name:
                logger.warning(
                    "%s: filler %s is unknown, unapproved or not %s: skipped",
                    channel.id,
                    ref,
                    channel.profile.name,
                )
                continue
            pool.append(asset)
        return tuple(pool)
    candidates = [
        a
        for kind in FILL_KINDS
        for a in assets.list(kind=kind, state=ReviewState.APPROVED)
        if a.profile == channel.profile.name
    ]
    return tuple(sorted(candidates, key=lambda a: (FILL_KINDS.index(a.kind), a.asset_id)))


@dataclass(kw_only=True)
class _Filler:
    """Round-robin over the pool across the day, so one ident does not repeat every gap."""

    pool: tuple[MediaRef, ...]
    day: date
    cursor: int = 0
    count: int = 0

    def fill(self, start: int, length: int, *, source_row: str | None) -> Iterator[RundownEvent]:
        position, remaining = start, length
        while remaining > 0:
            media = self._next_fitting(remaining)
            cut = media is None
            if media is None:
                media = self.pool[self.cursor % len(self.pool)] if self.pool else None
                self.cursor += 1
            duration = remaining if cut or media is None else media.duration_frames
            self.count += 1
            yield RundownEvent(
                event_id=f"{self.day.isoformat()}-fill-{self.count:05d}",
                eit_event_id=0,
                type=EventType.FILLER if media else EventType.SLATE,
                start_mode=StartMode.SEQUENTIAL,
                hard=False,
                start_frame=position,
                duration_frames=duration,
                media=media,
                gap_fill=True,
                source_row=source_row,
            )
            position += duration
            remaining -= duration

    def _next_fitting(self, remaining: int) -> MediaRef | None:
        for step in range(len(self.pool)):
            media = self.pool[(self.cursor + step) % len(self.pool)]
            if media.duration_frames <= remaining:
                self.cursor += step + 1
                return media
        return None


class RundownCompiler:
    """Compiles rundowns from the schedule store and the asset library."""

    def __init__(
        self,
        *,
        registry: ChannelRegistry,
        store: ScheduleStore,
        assets: AssetSource,
        zone: ZoneInfo,
        clock: Clock,
        guides: GuideLog | None = None,
    ) -> None:
        """``guides``: where each compiled rundown's EIT is logged (which schedule version of
        each horizon day it carries), for the compliance audit of published guides."""
        self.registry = registry
        self.store = store
        self.assets = assets
        self.zone = zone
        self.clock = clock
        self.guides = guides

    def compile(self, channel_id: str, day: date) -> Rundown:
        channel = self.registry.get(channel_id)
        schedule = self.store.current(channel.id, day)
        if schedule is None:
            raise NoScheduleError(
                f"no schedule for {channel.id} on {day}: load one with `skyclass schedule load`"
            )
        horizon = self.store.current_days(
            [channel.id], day, day + timedelta(days=EPG_HORIZON_DAYS - 1)
        )
        refs = {e.asset_id for d in horizon.values() for e in d.events if e.asset_id}
        refs |= {e.asset_id for e in schedule.events if e.asset_id}
        found = self.assets.many(refs)
        pool = tuple(media_ref(a) for a in filler_pool(channel, self.assets))
        events = tuple(self._timeline(channel, schedule, found, pool))
        rundown = Rundown(
            service=service_of(channel, self.registry),
            broadcast_date=day,
            day_start=day_start(self.zone, day),
            schedule_version=schedule.version,
            compiled_at=self.clock.now(),
            events=events,
            filler_pool=pool,
            epg_horizon=tuple(self._horizon(horizon, found)),
            timezone=self.zone.key,
        )
        rundown.check_contiguous()
        if self.guides is not None:
            self.guides.record(
                publications(
                    GuideKind.EIT,
                    {key: held.version for key, held in horizon.items()},
                    channel_ids=[channel.id],
                    first_day=day,
                    last_day=day + timedelta(days=EPG_HORIZON_DAYS - 1),
                    document=rundown.checksum(),
                    at=rundown.compiled_at,
                )
            )
        logger.info(
            "compiled %s %s: v%d, %d events", channel.id, day, schedule.version, len(events)
        )
        return rundown

    def epg_horizon(self, channel_id: str, first: date) -> tuple[EpgEntry, ...]:
        """The lessons and reruns of [first, first + 7 days) for EIT schedule."""
        channel = self.registry.get(channel_id)
        days = self.store.current_days(
            [channel.id], first, first + timedelta(days=EPG_HORIZON_DAYS - 1)
        )
        found = self.assets.many(
            {e.asset_id for d in days.values() for e in d.events if e.asset_id}
        )
        return tuple(self._horizon(days, found))

    def compile_all(self, day: date, rundown_dir: Path) -> dict[str, Path | None]:
        """Compile every channel that has a schedule for the day into rundown_dir.

        For the playout supervisor: channels without a schedule map to None (playout
        falls back to filler and slate on its own).
        """
        written: dict[str, Path | None] = {}
        for channel in self.registry:
            try:
                rundown = self.compile(channel.id, day)
            except NoScheduleError:
                logger.warning("%s %s: no schedule, no rundown written", channel.id, day)
                written[channel.id] = None
                continue
            path = rundown_path(rundown_dir, channel.id, day)
            rundown.save(path)
            written[channel.id] = path
        return written

    def _timeline(
        self,
        channel: Channel,
        schedule: DaySchedule,
        found: dict[str, Asset],
        pool: tuple[MediaRef, ...],
    ) -> Iterator[RundownEvent]:
        day = schedule.broadcast_date
        end_of_day = day_frames(self.zone, day)
        filler = _Filler(pool=pool, day=day)
        position = 0
        breaks = 0
        open_break: str | None = None
        for event in sorted(schedule.events, key=lambda e: e.start_frame):
            if event.start_frame < position:
                raise RundownError(
                    f"{channel.id} {day}: {event.source_row} starts at frame "
                    f"{event.start_frame}, inside the previous event: reload the schedule"
                )
            yield from filler.fill(position, event.start_frame - position, source_row=None)
            position = event.start_frame
            asset = found.get(event.asset_id) if event.asset_id else None
            if event.asset_id and asset is None:
                raise RundownError(
                    f"{channel.id} {day}: asset {event.asset_id} of {event.source_row} is no "
                    "longer in the library: restore it or load a new schedule"
                )
            ad_break = None
            if event.type.is_lesson:
                open_break = None
            elif event.type.is_commercial:
                if open_break is None:
                    breaks += 1
                    open_break = f"{channel.id}/{day.isoformat()}/break-{breaks:02d}"
                ad_break = open_break
            if event.type in (EventType.BREAK, EventType.FILLER) and (
                asset is None or asset.duration_frames < event.duration_frames
            ):
                played = 0
                if asset is not None:
                    yield self._event(event, asset, day, asset.duration_frames, None)
                    played = asset.duration_frames
                yield from filler.fill(
                    position + played, event.duration_frames - played, source_row=event.source_row
                )
            else:
                assert asset is not None
                yield self._event(event, asset, day, event.duration_frames, ad_break)
            position = event.end_frame
        yield from filler.fill(position, end_of_day - position, source_row=None)

    def _event(
        self,
        event: ScheduledEvent,
        asset: Asset,
        day: date,
        duration: int,
        ad_break: str | None,
    ) -> RundownEvent:
        kind = EventType.FILLER if event.type is EventType.BREAK else event.type
        return RundownEvent(
            event_id=f"{day.isoformat()}-{event.seq:04d}",
            eit_event_id=eit_event_id(day, event.seq),
            type=kind,
            start_mode=event.start_mode,
            hard=event.hard,
            start_frame=event.start_frame,
            duration_frames=duration,
            media=media_ref(asset),
            si=si_text(asset, rerun=event.type is EventType.RERUN) if kind.is_lesson else None,
            ad_break=ad_break,
            source_row=event.source_row,
        )

    def _horizon(
        self, days: dict[tuple[str, date], DaySchedule], found: dict[str, Asset]
    ) -> Iterator[EpgEntry]:
        for (_channel, day), schedule in sorted(days.items()):
            for event in schedule.events:
                asset = found.get(event.asset_id) if event.asset_id else None
                if not event.type.is_lesson or asset is None:
                    continue
                yield EpgEntry(
                    eit_event_id=eit_event_id(day, event.seq),
                    start=frame_instant(self.zone, day, event.start_frame),
                    duration_seconds=(event.duration_frames + FPS // 2) // FPS,
                    si=si_text(asset, rerun=event.type is EventType.RERUN),
                )
