"""What airs when: the rundown turned into plays at air time, and the as-run of each event.

Positions are integer frames on one channel timeline counted from the launch
day's 00:00 Beijing; later days' rundowns follow at multiples of DAY_FRAMES.
Rules (ARCHITECTURE.md, issue #5):

* A fixed-start event never starts early: the gap is filled from the filler
  pool (each item cut at a GOP boundary), then slate to the exact frame.
* A hard start cuts filler or the tail of a non-lesson item at an IDR and pads
  with slate to the exact frame. A soft start waits for the item on air.
* A lesson is never cut. If one overruns into a hard-start ad break, the break's
  items that no longer fit before the next hard start are truncated or skipped,
  and the as-run says why.
* Bad media (missing, unreadable, wrong checksum, not house format) is replaced
  by filler, else slate, for the event's duration: never off air.
* After the last rundown, slate plays (a minute at a time, so a rundown file
  that appears later is picked up).
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from channels.profiles import HouseProfile
from epg.rundown import DAY_FRAMES, MediaRef, Rundown, RundownEvent, StartMode
from playout.asrun.ledger import AsRunOutcome, AsRunRecord
from playout.clip import Clip
from playout.errors import UnplayableMedia
from playout.reload import merge_future

logger = logging.getLogger(__name__)

END_SLATE_FRAMES = 60 * 25  # slate after the last rundown, re-checked every minute


class PlayRole(StrEnum):
    EVENT = "event"  # the event's own media
    SUBSTITUTE = "substitute"  # filler/slate instead of the event's bad media
    FILL = "fill"  # absorbs an early arrival before a fixed start
    PAD = "pad"  # slate up to an exact frame (after a cut or a mid-event join)
    END = "end"  # nothing scheduled


@dataclass(frozen=True, kw_only=True)
class Slot:
    """A rundown event placed on the channel timeline."""

    event: RundownEvent
    rundown: Rundown
    offset: int  # timeline frame of the rundown's day start

    @property
    def start(self) -> int:
        return self.offset + self.event.start_frame

    @property
    def end(self) -> int:
        return self.offset + self.event.end_frame

    @property
    def fixed(self) -> bool:
        return self.event.start_mode is StartMode.FIXED

    @property
    def hard_fixed(self) -> bool:
        return self.fixed and self.event.hard


@dataclass(frozen=True, kw_only=True)
class Play:
    """One instruction for the engine: air up to ``frames`` frames of ``clip`` (None: slate)."""

    frames: int
    clip: Clip | None
    role: PlayRole
    first_gop: int = 0
    slot: Slot | None = None
    ad_break: str | None = None  # set while inside an ad break (SCTE-35 edges)

    @property
    def is_slate(self) -> bool:
        return self.clip is None


@dataclass
class _Open:
    """The as-run of the event on air, filled in as its plays finish."""

    slot: Slot
    actual: int
    outcome: AsRunOutcome
    reason: str
    media: MediaRef | None
    frames: int = 0
    notes: list[str] = field(default_factory=list)
    expected_end: int = 0  # timeline frame where its plays end, once they are known
    joined: bool = False  # joined mid-event (start or restart), not from its first frame


@dataclass(frozen=True, kw_only=True)
class Forecast:
    """Where an event airs (or will air) on the timeline, as the engine now knows it."""

    event: RundownEvent
    start: int
    end: int


RundownLoader = Callable[[int], Rundown | None]  # day index from launch → rundown


class Timeline:
    """Hands the engine one Play at a time and keeps the as-run of every event."""

    def __init__(
        self,
        *,
        channel_id: str,
        profile: HouseProfile,
        first: Rundown,
        loader: RundownLoader | None = None,
        on_record: Callable[[AsRunRecord], None] | None = None,
        on_open: Callable[[AsRunRecord], None] | None = None,
        join_note: str = "",
    ) -> None:
        """``on_record`` gets each event's finished as-run; ``on_open`` the same record,
        without a duration yet, when an event starts airing. ``join_note`` replaces the
        reason of a mid-event join (e.g. "restart after interruption ...").
        """
        self.channel_id = channel_id
        self.profile = profile
        self.first = first
        self._loader = loader
        self._on_record = on_record
        self._on_open = on_open
        self._join_note = join_note
        self._slots: deque[Slot] = deque()
        self._loaded_days = 0
        self._pending: deque[Play] = deque()
        self._filler_index = 0
        self._open: _Open | None = None
        self._join: int | None = None
        self._last_lesson_overrun: tuple[str, int] | None = None
        self._reload_note: str | None = None
        self.filler_pool: tuple[MediaRef, ...] = first.filler_pool
        self.days: dict[int, Rundown] = {}  # day index from launch → the rundown playing it
        self._load_day(first, 0)

    # ------------------------------------------------------------- rundowns

    def _load_day(self, rundown: Rundown, day: int) -> None:
        offset = day * DAY_FRAMES
        self._slots.extend(Slot(event=e, rundown=rundown, offset=offset) for e in rundown.events)
        if rundown.filler_pool:
            self.filler_pool = rundown.filler_pool
        self.days[day] = rundown
        self._loaded_days = day + 1

    def _more(self) -> bool:
        """Load the next day's rundown if one exists."""
        if self._loader is None:
            return False
        rundown = self._loader(self._loaded_days)
        if rundown is None:
            return False
        logger.info("%s: rundown for %s loaded", self.channel_id, rundown.broadcast_date)
        self._load_day(rundown, self._loaded_days)
        return True

    def reload(self, day: int, new: Rundown, pos: int) -> Rundown:
        """Play ``new`` for day ``day`` from the end of the item on air (playout.reload).

        Events that already started stay as they are (the one on air is never
        cut); pending filler before a fixed start is recomputed against the new
        version. Returns the merged rundown now playing that day.
        """
        current = self.days[day]
        offset = day * DAY_FRAMES
        remaining = [s for s in self._slots if s.offset == offset]
        consumed = len(current.events) - len(remaining)
        on_air = pos - offset
        if consumed > 0:
            # Never hand back an event that already started, even if it started early.
            on_air = max(on_air, current.events[consumed - 1].start_frame)
        merged = merge_future(current, new, on_air_frame=on_air)
        fresh = [Slot(event=e, rundown=merged, offset=offset) for e in merged.events[consumed:]]
        self._slots = deque(
            [s for s in self._slots if s.offset < offset]
            + fresh
            + [s for s in self._slots if s.offset > offset]
        )
        self._pending = deque(p for p in self._pending if p.role is not PlayRole.FILL)
        self.days[day] = merged
        if day == 0:
            self.first = merged
        if merged.filler_pool:
            self.filler_pool = merged.filler_pool
        note = (
            f"schedule version {new.schedule_version} loaded at frame {on_air}: "
            "future events from it"
        )
        if self._open is not None:
            self._open.notes.append(note)
        else:
            self._reload_note = note
        logger.info(
            "%s: %s reloaded to schedule version %d (%d future events)",
            self.channel_id,
            current.broadcast_date,
            new.schedule_version,
            len(fresh),
        )
        return merged

    @property
    def on_air(self) -> Slot | None:
        """The event whose plays are airing (None between events: fill or end slate)."""
        return self._open.slot if self._open is not None else None

    def forecast(self, count: int = 2) -> list[Forecast]:
        """The event on air and the next ``count`` EPG events, where they actually air.

        The event on air runs to the end of its plays (a lesson is never cut);
        what follows starts at its schedule or, after an overrun, when the
        previous item ends (a hard start still cuts what is not a lesson).
        """
        out: list[Forecast] = []
        floor: int | None = None  # where the previous item ends
        after_lessons: int | None = None  # where the last lesson ends: even hard starts wait
        current = self._open
        if current is not None:
            joined = current.actual > current.slot.start and current.joined
            start = current.slot.start if joined else current.actual
            out.append(Forecast(event=current.slot.event, start=start, end=current.expected_end))
            floor = current.expected_end
            if current.slot.event.type.is_lesson:
                after_lessons = floor
        found = 0
        for slot in self._slots:
            if found >= count:
                break
            start = slot.start
            if floor is not None and not slot.hard_fixed:
                start = max(start, floor)
            if after_lessons is not None:
                start = max(start, after_lessons)
            end = start + slot.event.duration_frames
            if slot.event.si is not None:
                out.append(Forecast(event=slot.event, start=start, end=end))
                found += 1
            floor = end
            if slot.event.type.is_lesson:
                after_lessons = end
        return out

    def rundowns(self) -> list[Rundown]:
        seen: dict[int, Rundown] = {}
        for slot in self._slots:
            seen.setdefault(id(slot.rundown), slot.rundown)
        return [self.first, *(r for r in seen.values() if r is not self.first)]

    def wall_clock(self, frame: int) -> datetime:
        return self.first.day_start + timedelta(seconds=frame / self.profile.fps)

    def seek(self, frame: int) -> None:
        """Start at ``frame``: events that ended are dropped; the one on air is joined."""
        while True:
            while self._slots and self._slots[0].end <= frame:
                self._slots.popleft()
            if self._slots or not self._more():
                break
        self._join = frame

    # ---------------------------------------------------------------- plays

    def next(self, pos: int) -> Play:
        """The next thing to air at timeline frame ``pos``."""
        if self._pending:
            return self._pending.popleft()
        while True:
            if not self._slots and not self._more():
                self._finish(pos)
                return Play(frames=END_SLATE_FRAMES, clip=None, role=PlayRole.END)
            slot = self._slots[0]
            join, self._join = self._join, None
            if slot.fixed and pos < slot.start and not (join is not None and join > slot.start):
                self._finish(pos)
                return self._fill(pos, slot.start - pos, PlayRole.FILL, slot=None)
            self._slots.popleft()
            self._finish(pos)
            play = self._start(slot, pos, join)
            if play is not None:
                return play

    def _next_hard(self) -> Slot | None:
        """The first hard fixed start still ahead (loading tomorrow if needed)."""
        for slot in self._slots:
            if slot.hard_fixed:
                return slot
        if self._more():
            return self._next_hard()
        return None

    def _start(self, slot: Slot, pos: int, join: int | None) -> Play | None:
        event = slot.event
        gop = self.profile.gop_frames
        hard = self._next_hard()
        limit = None if hard is None else hard.start - pos
        in_frames = 0
        pad = 0
        if join is not None and join > slot.start:
            offset = join - slot.start
            in_frames = -(-offset // gop) * gop  # next IDR at or after the join point
            pad = in_frames - offset
        joined = bool(pad or in_frames)
        reason = ""
        if joined:
            reason = f"joined mid-event at frame {pos - slot.offset}"
            reason = f"{self._join_note}: {reason}" if self._join_note else f"{reason} (start)"
        media = event.media
        self._open = _Open(
            slot=slot,
            actual=pos,
            outcome=AsRunOutcome.AIRED,
            reason=reason,
            media=media,
            joined=joined,
        )
        if self._reload_note is not None:
            self._open.notes.append(self._reload_note)
            self._reload_note = None
        cuttable = not event.type.is_lesson
        if cuttable and limit is not None and limit < gop:
            why = self._late_reason(hard, pos)
            self._open.outcome = AsRunOutcome.SKIPPED
            self._open.reason = (
                f"no time before the hard start of {hard.event.event_id if hard else '?'}{why}"
            )
            self._finish(pos)
            return None
        clip: Clip | None = None
        problem = ""
        if media is None:
            problem = "event has no media"
        else:
            try:
                clip = Clip(media, self.profile)
            except UnplayableMedia as exc:
                problem = str(exc)
        remaining = max(0, (media.duration_frames if media else event.duration_frames) - in_frames)
        if clip is None:
            logger.warning("%s: %s: substituting (%s)", self.channel_id, event.event_id, problem)
            self._open.outcome = AsRunOutcome.SUBSTITUTED
            self._open.reason = problem
            self._open.media = None
            target = max(0, event.duration_frames - in_frames)
            if limit is not None:
                target = min(target, max(0, limit - pad))
            plays = self._fill_plays(pos + pad, target, PlayRole.SUBSTITUTE, slot)
            if pad:
                plays.insert(0, self._pad(pad, slot))
            if not plays:
                self._open.outcome = AsRunOutcome.SKIPPED
                self._finish(pos)
                return None
            self._open.expected_end = pos + sum(p.frames for p in plays)
            self._pending.extend(plays[1:])
            self._opened()
            return plays[0]
        frames = remaining
        cut_pad = 0
        if cuttable and limit is not None and pad + frames > limit:
            frames = max(0, (limit - pad) // gop * gop)
            cut_pad = limit - pad - frames
            self._open.outcome = AsRunOutcome.TRUNCATED if frames else AsRunOutcome.SKIPPED
            self._open.reason = (
                f"cut at an IDR for the hard start of {hard.event.event_id if hard else '?'}"
                f"{self._late_reason(hard, pos)}"
            )
        sequence: list[Play] = []
        if pad:
            sequence.append(self._pad(pad, slot))
        if frames:
            sequence.append(
                Play(
                    frames=frames,
                    clip=clip,
                    role=PlayRole.EVENT,
                    first_gop=in_frames // gop,
                    slot=slot,
                    ad_break=event.ad_break,
                )
            )
        if cut_pad:
            sequence.append(self._pad(cut_pad, slot))
        if not sequence:
            self._finish(pos)
            return None
        self._open.expected_end = pos + sum(p.frames for p in sequence)
        self._pending.extend(sequence[1:])
        self._opened()
        return sequence[0]

    def _late_reason(self, hard: Slot | None, pos: int) -> str:
        if self._last_lesson_overrun is None:
            return ""
        lesson, frames = self._last_lesson_overrun
        return f"; lesson {lesson} overran by {frames} frames"

    def _pad(self, frames: int, slot: Slot | None) -> Play:
        return Play(
            frames=frames,
            clip=None,
            role=PlayRole.PAD,
            slot=slot,
            ad_break=slot.event.ad_break if slot else None,
        )

    def _fill(self, pos: int, gap: int, role: PlayRole, slot: Slot | None) -> Play:
        plays = self._fill_plays(pos, gap, role, slot)
        self._pending.extend(plays[1:])
        return plays[0]

    def _fill_plays(self, pos: int, gap: int, role: PlayRole, slot: Slot | None) -> list[Play]:
        """Filler-pool items (rotating, each cut at a GOP boundary), then slate to the frame."""
        gop = self.profile.gop_frames
        plays: list[Play] = []
        bad: set[str] = set()
        pool = self.filler_pool
        ad_break = slot.event.ad_break if slot else None
        while gap >= gop and pool and len(bad) < len(pool):
            media = pool[self._filler_index % len(pool)]
            self._filler_index += 1
            if media.asset_id in bad:
                continue
            try:
                clip = Clip(media, self.profile)
            except UnplayableMedia as exc:
                logger.warning("%s: filler %s unplayable: %s", self.channel_id, media.asset_id, exc)
                bad.add(media.asset_id)
                continue
            frames = min(media.duration_frames // gop * gop, gap // gop * gop)
            if frames <= 0:
                bad.add(media.asset_id)
                continue
            plays.append(Play(frames=frames, clip=clip, role=role, slot=slot, ad_break=ad_break))
            gap -= frames
        if gap > 0:
            plays.append(Play(frames=gap, clip=None, role=role, slot=slot, ad_break=ad_break))
        return plays

    # --------------------------------------------------------------- as-run

    def played(self, play: Play, frames: int, note: str = "") -> None:
        """The engine aired ``frames`` of ``play`` (fewer if media was damaged)."""
        current = self._open
        if current is None or play.slot is not current.slot:
            return
        current.frames += frames
        if note:
            current.notes.append(note)
        if play.role is PlayRole.EVENT and frames < play.frames:
            if current.outcome is AsRunOutcome.AIRED:
                current.outcome = AsRunOutcome.TRUNCATED
            current.notes.append(f"{play.frames - frames} frames of media did not air")

    def close(self, pos: int, reason: str) -> None:
        """The run ends: the event on air is recorded as cut short."""
        current = self._open
        if (
            current is not None
            and current.outcome is AsRunOutcome.AIRED
            and current.frames < current.slot.event.duration_frames
        ):
            current.outcome = AsRunOutcome.TRUNCATED
            current.notes.append(reason)
        self._pending.clear()
        self._finish(pos)

    def _opened(self) -> None:
        if self._on_open is not None and self._open is not None:
            self._on_open(self._record_of(self._open))

    def _finish(self, pos: int) -> None:
        current, self._open = self._open, None
        if current is None:
            return
        slot = current.slot
        event = slot.event
        if event.type.is_lesson:
            overrun = pos - slot.end
            self._last_lesson_overrun = (event.event_id, overrun) if overrun > 0 else None
        record = self._record_of(current)
        logger.info(
            "as-run %s %s %s at %d (scheduled %d) %d frames %s",
            self.channel_id,
            event.event_id,
            record.outcome.value,
            record.actual_frame,
            record.scheduled_frame,
            record.duration_frames,
            record.reason,
        )
        if self._on_record is not None:
            self._on_record(record)

    def _record_of(self, current: _Open) -> AsRunRecord:
        slot = current.slot
        event = slot.event
        reason = "; ".join(x for x in [current.reason, *current.notes] if x)
        return AsRunRecord(
            channel_id=self.channel_id,
            event_id=event.event_id,
            event_type=event.type.value,
            scheduled_frame=event.start_frame,
            actual_frame=current.actual - slot.offset,
            scheduled_start=slot.rundown.wall_clock(event.start_frame),
            actual_start=slot.rundown.wall_clock(current.actual - slot.offset),
            scheduled_frames=event.duration_frames,
            duration_frames=current.frames,
            asset_id=current.media.asset_id if current.media else None,
            sha256=current.media.sha256 if current.media else None,
            outcome=current.outcome,
            reason=reason,
            ad_break=event.ad_break,
        )
