"""What airs when: the rundown turned into plays at air time, and the as-run of each event.

Positions are integer frames on one channel timeline counted from the launch
day's 00:00 Beijing; later days' rundowns follow at multiples of DAY_FRAMES.
Rules (ARCHITECTURE.md, issues #5, #9, #10):

* Every *anchor* starts on the frame the rundown (and so the guide) gives it: a
  fixed-start event, and every event listed in the guide (a lesson, anything
  with SI). Items between anchors (filler, ads, promos, slate) are the slack.
* An anchor never starts early: the gap is filled from the filler pool (each
  item cut at a GOP boundary), then slate to the exact frame.
* What is not a lesson is cut for the next anchor: at an IDR, then slate to
  the exact frame (a filler event whose media is longer than its slot, a break
  running late). A lesson is never cut: if one overruns, the items after it
  that no longer fit before the next anchor are truncated or skipped, and the
  as-run says why.
* Lateness of the sender (``owed``: frames the wall clock is ahead of the
  timeline, from pacing stalls) is absorbed in the same slack: everything
  before the next anchor is fitted to end ``owed`` frames early and the
  timeline then jumps those frames (a SKIP play, nothing airs), so the anchor
  still starts on its frame. Where the slack is too short the anchor starts
  late, and the as-run says by how much (engine.as_aired).
* Bad media (missing, unreadable, wrong checksum, not house format) is replaced
  by filler, else slate, for the event's duration: never off air.
* After the last rundown, slate plays (a minute at a time, so a rundown file
  that appears later is picked up).
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from channels.profiles import HouseProfile
from epg.rundown import DAY_FRAMES, MediaRef, Rundown, RundownEvent, StartMode
from playout.asrun.ledger import AsRunOutcome, AsRunRecord
from playout.clip import Clip, verify_later
from playout.errors import UnplayableMedia
from playout.reload import merge_future

logger = logging.getLogger(__name__)

END_SLATE_FRAMES = 60 * 25  # slate after the last rundown, re-checked every minute
VERIFY_AHEAD = 4  # events whose files are hashed ahead of air time (lazy verification)


class PlayRole(StrEnum):
    EVENT = "event"  # the event's own media
    SUBSTITUTE = "substitute"  # filler/slate instead of the event's bad media
    FILL = "fill"  # absorbs an early arrival before an anchor
    PAD = "pad"  # slate up to an exact frame (after a cut or a mid-event join)
    END = "end"  # nothing scheduled
    SKIP = "skip"  # frames that do not air: the sender's lateness, absorbed


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

    @property
    def anchor(self) -> bool:
        """Must start on its rundown frame: fixed, or listed in the guide (lessons are)."""
        return self.fixed or self.event.si is not None or self.event.type.is_lesson

    @property
    def cuttable(self) -> bool:
        return not self.event.type.is_lesson


@dataclass(frozen=True, kw_only=True)
class Play:
    """One instruction for the engine: air up to ``frames`` frames of ``clip`` (None: slate)."""

    frames: int
    clip: Clip | None
    role: PlayRole
    first_gop: int = 0
    slot: Slot | None = None
    ad_break: str | None = None  # set while inside an ad break (SCTE-35 edges)
    fit: bool = False  # slack: may end early so the next anchor keeps its frame

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
    cut: bool = False  # cut for the next anchor: slate pads up to it


@dataclass(frozen=True, kw_only=True)
class Forecast:
    """Where an event airs (or will air) on the timeline, as the engine now knows it."""

    event: RundownEvent
    start: int
    end: int


RundownLoader = Callable[[int], Rundown | None]  # day index from launch → rundown
Owed = Callable[[], int]  # frames the wall clock is ahead of the timeline (sender lateness)


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
        owed: Owed | None = None,
        verify: bool = True,
        quiet: bool = False,
    ) -> None:
        """``on_record`` gets each event's finished as-run; ``on_open`` the same record,
        without a duration yet, when an event starts airing. ``join_note`` replaces the
        reason of a mid-event join (e.g. "restart after interruption ..."). ``owed``
        tells how many frames the sender is behind the wall clock, to absorb. With
        ``verify`` False a file's SHA-256 is checked off the air path (playout.clip).
        ``quiet``: no as-run log lines (a warm-up run that is thrown away).
        """
        self.channel_id = channel_id
        self.profile = profile
        self.first = first
        self._loader = loader
        self._on_record = on_record
        self._on_open = on_open
        self._join_note = join_note
        self._owed: Owed = owed or (lambda: 0)
        self._verify = verify
        self._quiet = quiet
        self._absorbed_note: str | None = None  # for the next anchor: slack it lost
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
        previous item ends (an anchor still cuts what is not a lesson).
        """
        out: list[Forecast] = []
        floor: int | None = None  # where the previous item ends
        after_lessons: int | None = None  # where the last lesson ends: even anchors wait
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
            if floor is not None and not slot.anchor:
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
        while self._pending:
            play = self._fitted(self._pending.popleft(), pos)
            if play is not None:
                return play
        pad = self._pad_to_anchor(pos)
        if pad is not None:
            return pad
        owed = self._owed()
        if owed > 0 and self._slots and self._next_anchor() is None:
            return self._skip(owed)  # slack with no anchor after it: absorb at once
        while True:
            if not self._slots and not self._more():
                self._finish(pos)
                owed = self._owed()
                if owed > 0:  # nothing to keep on time: absorb it at once
                    return self._skip(owed)
                return Play(frames=END_SLATE_FRAMES, clip=None, role=PlayRole.END, fit=True)
            slot = self._slots[0]
            join, self._join = self._join, None
            joining = join is not None and join > slot.start
            if slot.anchor and pos < slot.start and not joining:
                owed = min(self._owed(), slot.start - pos)
                if pos < slot.start - owed:
                    self._finish(pos)
                    return self._fill_play(pos, slot.start - owed - pos)
                play = self._skip(owed)  # the slack before the anchor ends here
                self._finish(pos)
                return play
            self._slots.popleft()
            self._finish(pos)
            play = self._start(slot, pos, join)
            if play is not None:
                return play

    def budget(self, play: Play, start: int) -> int:
        """Frames ``play``, begun at ``start``, may air in all, with what is owed now.

        The engine asks between GOPs (and slate blocks): a pacing delay reported
        while slack airs shortens it at once, so the next anchor keeps its frame.
        """
        if not play.fit:
            return play.frames
        room = self._room(start, load=False)  # per GOP: never a disk read
        if room is None:  # nothing ahead to keep on time: end slate stops to skip at once
            return 0 if play.role is PlayRole.END and self._owed() > 0 else play.frames
        return max(0, min(play.frames, room))

    def _room(self, pos: int, *, load: bool = True) -> int | None:
        """Frames from ``pos`` to the next anchor, less what is owed (None: no anchor)."""
        anchor = self._next_anchor(load=load)
        if anchor is None:
            return None
        return anchor.start - self._owed() - pos

    def _next_anchor(self, *, load: bool = True) -> Slot | None:
        """The first anchor still ahead (with ``load``, loading tomorrow if needed)."""
        while True:
            for slot in self._slots:
                if slot.anchor:
                    return slot
            if not load or not self._more():
                return None

    def _fitted(self, play: Play, pos: int) -> Play | None:
        """A queued play shortened (at a GOP boundary for media) or dropped to fit the slack."""
        if not play.fit:
            return play
        room = self._room(pos)
        if room is None or play.frames <= room:
            return play
        gop = self.profile.gop_frames
        frames = max(0, room if play.clip is None else room // gop * gop)
        current = self._open
        if current is not None and play.slot is current.slot:
            current.cut = True
            if play.role is PlayRole.EVENT and current.outcome is AsRunOutcome.AIRED:
                current.outcome = AsRunOutcome.TRUNCATED if frames else AsRunOutcome.SKIPPED
                current.notes.append(self._cut_reason(pos))
        return dataclasses.replace(play, frames=frames) if frames else None

    def _pad_to_anchor(self, pos: int) -> Play | None:
        """Slate after an event cut for the next anchor, up to the anchor's frame."""
        current = self._open
        if current is None or not current.cut:
            return None
        room = self._room(pos)
        if room is None or room <= 0:
            return None
        return self._pad(room, current.slot, fit=True)

    def _skip(self, frames: int) -> Play:
        """Jump ``frames`` of slack so the timeline is back on the wall clock."""
        why = "a pacing delay absorbed"
        current = self._open
        if current is not None and current.slot.cuttable:
            current.notes.append(f"ended {frames} frames early: {why}")
        else:
            self._absorbed_note = f"{frames} frames of slack before it skipped: {why}"
        logger.info("%s: %d frames skipped: %s", self.channel_id, frames, why)
        return Play(frames=frames, clip=None, role=PlayRole.SKIP)

    def _cut_reason(self, pos: int) -> str:
        anchor = self._next_anchor()
        name = anchor.event.event_id if anchor else "?"
        return f"cut at an IDR to start {name} on its frame{self._late_reason(anchor, pos)}"

    def _start(self, slot: Slot, pos: int, join: int | None) -> Play | None:
        event = slot.event
        gop = self.profile.gop_frames
        anchor = self._next_anchor()
        limit = self._room(pos)
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
        for note in (self._reload_note, self._absorbed_note if slot.anchor else None):
            if note is not None:
                self._open.notes.append(note)
        self._reload_note = None
        if slot.anchor:
            self._absorbed_note = None
        cuttable = slot.cuttable
        if cuttable and limit is not None and limit < gop:
            why = self._late_reason(anchor, pos)
            self._open.outcome = AsRunOutcome.SKIPPED
            self._open.reason = (
                f"no time before {anchor.event.event_id if anchor else '?'} "
                f"(it starts on its frame){why}"
            )
            self._finish(pos)
            return None
        clip: Clip | None = None
        problem = ""
        if media is None:
            problem = "event has no media"
        else:
            try:
                clip = Clip(media, self.profile, verify=self._verify)
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
        if cuttable and limit is not None and pad + frames > limit:
            frames = max(0, (limit - pad) // gop * gop)
            self._open.cut = True
            self._open.outcome = AsRunOutcome.TRUNCATED if frames else AsRunOutcome.SKIPPED
            self._open.reason = self._cut_reason(pos)
        self._verify_ahead()
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
                    fit=cuttable,
                )
            )
        if not sequence:
            self._finish(pos)
            return None
        self._open.expected_end = pos + (
            limit if self._open.cut and limit is not None else sum(p.frames for p in sequence)
        )
        self._pending.extend(sequence[1:])
        self._opened()
        return sequence[0]

    def _verify_ahead(self) -> None:
        """Lazy verification: hash the next items' files now, well before they air."""
        if self._verify:
            return
        for slot in itertools.islice(self._slots, VERIFY_AHEAD):
            if slot.event.media is not None:
                verify_later(slot.event.media)
        for media in self.filler_pool:
            verify_later(media)

    def _late_reason(self, anchor: Slot | None, pos: int) -> str:
        if self._last_lesson_overrun is None:
            return ""
        lesson, frames = self._last_lesson_overrun
        return f"; lesson {lesson} overran by {frames} frames"

    def _pad(self, frames: int, slot: Slot | None, *, fit: bool = False) -> Play:
        return Play(
            frames=frames,
            clip=None,
            role=PlayRole.PAD,
            slot=slot,
            ad_break=slot.event.ad_break if slot else None,
            fit=fit,
        )

    def _fill_play(
        self, pos: int, gap: int, role: PlayRole = PlayRole.FILL, slot: Slot | None = None
    ) -> Play:
        """The next filler-pool item (rotating, cut at a GOP boundary), else slate to the frame."""
        gop = self.profile.gop_frames
        pool = self.filler_pool
        ad_break = slot.event.ad_break if slot else None
        fit = slot is None or slot.cuttable
        tried = 0
        while gap >= gop and pool and tried < len(pool):
            media = pool[self._filler_index % len(pool)]
            self._filler_index += 1
            tried += 1
            try:
                clip = Clip(media, self.profile, verify=self._verify)
            except UnplayableMedia as exc:
                logger.warning("%s: filler %s unplayable: %s", self.channel_id, media.asset_id, exc)
                continue
            frames = min(media.duration_frames // gop * gop, gap // gop * gop)
            if frames > 0:
                return Play(
                    frames=frames, clip=clip, role=role, slot=slot, ad_break=ad_break, fit=fit
                )
        return Play(frames=gap, clip=None, role=role, slot=slot, ad_break=ad_break, fit=fit)

    def _fill_plays(self, pos: int, gap: int, role: PlayRole, slot: Slot | None) -> list[Play]:
        """Filler-pool items, then slate to the frame, for ``gap`` frames."""
        plays: list[Play] = []
        while gap > 0:
            play = self._fill_play(pos, gap, role, slot)
            plays.append(play)
            gap -= play.frames
            pos += play.frames
        return plays

    # --------------------------------------------------------------- as-run

    def played(self, play: Play, frames: int, note: str = "") -> None:
        """The engine aired ``frames`` of ``play`` (fewer if media was damaged or it was cut)."""
        current = self._open
        if current is None or play.slot is not current.slot:
            return
        current.frames += frames
        if note:
            current.notes.append(note)
        if frames < play.frames:
            if play.fit:
                current.cut = True  # slate pads up to the next anchor
            if play.role is PlayRole.EVENT:
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
        logger.log(
            logging.DEBUG if self._quiet else logging.INFO,
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
