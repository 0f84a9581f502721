"""The per-channel playout engine: rundown + house assets → one continuous CBR MPEG-TS.

Everything is remuxed in-process (no ffmpeg per clip, no re-encoding). Video
is anchored on the channel timeline: timeline frame f is shown at wire PTS
W(f) = ORIGIN + pts_offset + f·3600, so joins are frame-exact by construction.
Audio follows an AudioLane: MP2 frames laid back to back, each item shifted by
at most half an audio frame to stay continuous, silence where there is none, so
A/V never drifts however many items air.

The output is a pure function of the rundowns, the assets and the start
position: SI times come from the timeline, never the host clock, and FFmpeg's
mpegts muxer is deterministic given identical input. The one exception is by
design: a sender that falls behind the wall clock (``absorb_late``) makes the
timeline skip that many frames of slack before the next anchor (playout.timeline),
so the stream stays continuous (``wire_pts`` counts aired frames) while the
pictures come back onto the wall clock.

Real time starts in two steps (``playout run``): ``warm_up`` does once what
costs time before a first byte (slate, opening the first items, muxing the
first GOPs: what a start would do, thrown away), then ``join_frame`` picks the
earliest frame whose bytes can still leave on time, from the wall clock at that
moment and the measured start-up.
"""

from __future__ import annotations

import bisect
import dataclasses
import logging
import math
import threading
import time
from collections.abc import Callable, Generator, Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import av

from channels.ads import AdPolicy
from channels.profiles import HouseProfile, profile_by_name
from core.timecode import FPS, FRAME_TICKS
from epg.rundown import DAY_FRAMES, Rundown, RundownError, rundown_path
from epg.si.events import SiEvent
from mpegts import signed_delta
from playout.adrules import AdRules
from playout.asrun.ledger import AsRunLedger, AsRunRecord
from playout.clip import Gop
from playout.cues import splice_event_id, splice_insert
from playout.mux import MUX_SHIFT_TICKS, TsMuxer
from playout.reload import RundownWatcher
from playout.si_inject import SiScheduler, si_events
from playout.slate import MP2_FRAME_TICKS, Slate, build_slate, house_decode_delay
from playout.stream import AsRunMark, PlayoutError, PlayoutInputError, TsChunk
from playout.timeline import Play, PlayRole, Slot, Timeline

logger = logging.getLogger(__name__)

ORIGIN = 2 * 90_000  # wire PTS of timeline frame 0 (before any test offset)
HALF_AUDIO = MP2_FRAME_TICKS // 2
CUE_PREROLL_SECONDS = 4.0  # SCTE-35 cues arrive this long before their splice (SCTE 67 typical)
CUE_HOLD_SLACK = 1.5  # seconds of output held beyond the pre-roll (the mux lead is 0.5 s)
RELOAD_POLL_FRAMES = 50  # look for a new rundown at least every 2 s of timeline
SLATE_BLOCK = 25  # slate frames muxed between looks at the budget (and reloads)


@dataclasses.dataclass(frozen=True, kw_only=True)
class WarmUp:
    """What a thrown-away start measured: how long the first chunk took, and its lead."""

    seconds: float  # from chunks() to the first chunk, everything already imported
    lead: timedelta  # how long before its first frame's wall clock the first byte is due


class AudioLane:
    """Continuous MP2 audio: at most half a frame of correction per item, silence in gaps."""

    def __init__(self, silence: bytes) -> None:
        self.silence = silence
        self.cursor: int | None = None

    def place(self, ideal: int) -> tuple[list[int], int | None]:
        """Silence frames to insert before, and where a frame meant for ``ideal`` goes."""
        if self.cursor is None:
            self.cursor = ideal
        if ideal + HALF_AUDIO < self.cursor:
            return [], None  # would overlap what already aired: drop it
        gaps: list[int] = []
        while ideal - self.cursor > HALF_AUDIO:
            gaps.append(self.cursor)
            self.cursor += MP2_FRAME_TICKS
        at = self.cursor
        self.cursor += MP2_FRAME_TICKS
        return gaps, at

    def fill_to(self, end: int) -> list[int]:
        """Silence up to a video end (within half a frame)."""
        if self.cursor is None:
            self.cursor = end
        out: list[int] = []
        while end - self.cursor > HALF_AUDIO:
            out.append(self.cursor)
            self.cursor += MP2_FRAME_TICKS
        return out


def _no_overlap(events: list[SiEvent]) -> list[SiEvent]:
    """Sorted, with an event that would run into the next one ended where that one starts.

    EIT must never list overlapping events (the encoder refuses them); a forecast
    that still disagrees with the schedule somewhere gives way to the later event.
    """
    ordered = sorted(events, key=lambda e: (e.start, e.event_id))
    out: list[SiEvent] = []
    for event in ordered:
        if out and out[-1].end > event.start:
            seconds = int((event.start - out[-1].start).total_seconds())
            if seconds < 1:
                out.pop()
            else:
                out[-1] = dataclasses.replace(out[-1], duration_seconds=seconds)
        out.append(event)
    return out


def _started_late(record: AsRunRecord, frames: int) -> AsRunRecord:
    return dataclasses.replace(
        record,
        actual_frame=record.actual_frame + frames,
        actual_start=record.actual_start + timedelta(seconds=frames / FPS),
        reason="; ".join(
            x
            for x in (
                record.reason,
                f"started {frames} frames late: the sender had fallen behind the wall "
                "clock, not yet absorbed in the slack",
            )
            if x
        ),
    )


class PlayoutEngine:
    """Plays a channel's rundowns; ``chunks()`` yields the transport stream."""

    def __init__(
        self,
        rundown: Rundown,
        *,
        rundown_dir: Path | None = None,
        ledger: AsRunLedger | None = None,
        on_record: Callable[[AsRunRecord], None] | None = None,
        pts_offset: int = 0,
        rundown_file: Path | None = None,
        hot_reload: bool = True,
        cue_preroll: float = CUE_PREROLL_SECONDS,
        verify: bool = True,
        ad_policy: AdPolicy | None = None,
    ) -> None:
        """``rundown_file`` is where ``rundown`` came from (default: its place under
        ``rundown_dir``); with ``hot_reload`` a new version there is spliced in
        (future events only, playout.reload). SCTE-35 cues reach the stream
        ``cue_preroll`` seconds before their splice time.

        ``ledger`` and ``on_record`` get each record when the event is muxed, seconds
        before its bytes leave (the cue hold); a sender that wants the as-run to
        follow the bytes journals ``TsChunk.asrun`` when it has sent the chunk
        (``playout run`` does, see playout.asrun). ``verify=False`` checks files'
        SHA-256 off the air path (playout.clip): real time; ``--fast`` verifies first.
        ``ad_policy`` (default: the rules for minors) withholds commercials that break it
        from every rundown loaded or reloaded (playout.adrules).
        """
        if not 0 <= cue_preroll <= 30:
            raise PlayoutInputError(f"cue pre-roll {cue_preroll} s: use 0 to 30 seconds")
        self.ad_rules = AdRules(ad_policy)
        self.rundown = self.ad_rules.apply(rundown)
        self.service = rundown.service
        self.profile: HouseProfile = profile_by_name(rundown.service.profile)
        self.rundown_dir = rundown_dir
        self.ledger = ledger
        self._on_record = on_record
        self.pts_offset = pts_offset
        self.records: list[AsRunRecord] = []
        self.slate: Slate = build_slate(self.profile, rundown.slate_text)
        self.hot_reload = hot_reload
        self.cue_preroll_ticks = round(cue_preroll * 90_000)
        self._rundown_file = rundown_file
        self._watchers: dict[int, RundownWatcher] = {}
        self._next_poll = 0
        self.reloads: list[tuple[int, int]] = []  # (timeline frame, schedule version) applied
        self._si_base: list[SiEvent] = []  # EIT events as scheduled
        self._aired: dict[int, tuple[int, int]] = {}  # eit_event_id → frames it actually aired
        self._pf_slot: Slot | None = None
        self._pf_start = 0
        self._first = 0  # timeline frame the stream started at
        self._at = 0  # timeline frame the timeline is being asked about (for as-run marks)
        self._muxer: TsMuxer | None = None
        self.verify = verify
        # Sender lateness (pacer thread) and the frames skipped to absorb it (engine thread).
        self._late_lock = threading.Lock()
        self._late = 0.0  # seconds the sender has fallen behind, in all
        self._shift = 0  # timeline frames skipped so far
        self._shifts: list[tuple[int, int]] = []  # (first frame after a skip, shift from it)
        self._start_late: dict[tuple[str, int], int] = {}  # event → frames it started late
        self._warming = False
        self._rejoin = False  # a rundown replaced the empty start-up one: join it now

    # ------------------------------------------------------------ helpers

    def wire_pts(self, frame: int) -> int:
        """Unwrapped 90 kHz PTS at which timeline frame ``frame`` is shown.

        Frames skipped to absorb sender lateness never aired, so they take no time.
        """
        return ORIGIN + self.pts_offset + (frame - self._shift) * FRAME_TICKS

    def wall_clock(self, frame: int) -> datetime:
        return self.rundown.wall_clock(frame)

    def frame_of(self, start: datetime | int | None) -> int:
        if start is None:
            return self.rundown.events[0].start_frame if self.rundown.events else 0
        if isinstance(start, int):
            return start
        if start.tzinfo is None:
            raise PlayoutInputError(f"--start {start.isoformat()} has no UTC offset: add +08:00")
        frame = self.rundown.frame_at(start)
        if not -DAY_FRAMES < frame < 2 * DAY_FRAMES:
            raise PlayoutInputError(
                f"--start {start.isoformat()} is not on the rundown's day "
                f"{self.rundown.broadcast_date}: pass that day's rundown"
            )
        return frame

    def _load_day(self, day: int) -> Rundown | None:
        if self.rundown_dir is None:
            return None
        when: date = self.rundown.broadcast_date + timedelta(days=day)
        path = rundown_path(self.rundown_dir, self.service.channel_id, when)
        if not path.exists():
            return None
        try:
            loaded = self.ad_rules.apply(Rundown.load(path))
        except RundownError as exc:
            logger.error("%s: next day's rundown unusable: %s", self.service.channel_id, exc)
            return None
        if self.hot_reload:
            self._watchers[day] = RundownWatcher(path, current=loaded)
        return loaded

    def _day_file(self, day: int) -> Path | None:
        if day == 0 and self._rundown_file is not None:
            return self._rundown_file
        if self.rundown_dir is None:
            return None
        when: date = self.rundown.broadcast_date + timedelta(days=day)
        return rundown_path(self.rundown_dir, self.service.channel_id, when)

    def _poll_reload(self, pos: int) -> None:
        """Splice in any new rundown version (between items, and between GOPs of long ones)."""
        self._next_poll = pos + RELOAD_POLL_FRAMES
        if self._warming:
            return  # a new version is for the run that airs, not for the warm-up
        timeline = self._timeline
        today = pos // DAY_FRAMES
        for day in sorted(self._watchers):
            if day < today:
                del self._watchers[day]  # that day is over: its file no longer matters
                continue
            new = self._watchers[day].changed()
            if new is None:
                continue
            current = timeline.days.get(day)
            if current is None:
                continue
            if (new.channel_id, new.broadcast_date) != (
                current.channel_id,
                current.broadcast_date,
            ):
                logger.error(
                    "%s: %s holds the rundown of %s %s, not %s %s: ignored",
                    self.service.channel_id,
                    self._watchers[day].path,
                    new.channel_id,
                    new.broadcast_date,
                    current.channel_id,
                    current.broadcast_date,
                )
                continue
            new = self.ad_rules.apply(new, current=current, on_air_frame=pos - day * DAY_FRAMES)
            try:
                timeline.reload(day, new, pos)
            except RundownError as exc:
                logger.error(
                    "%s: reload failed, keeping the rundown: %s", self.service.channel_id, exc
                )
                continue
            self.reloads.append((pos, new.schedule_version))
            # Started with no readable rundown (slate): join the event on air now.
            self._rejoin = self._rejoin or not current.events
            self._set_si_events()
            self._update_pf(pos, force=True)

    def _record(self, record: AsRunRecord) -> None:
        record = self.ad_rules.explain(record)  # a withheld ad's as-run says which rule
        self.records.append(record)
        if self._warming:
            return
        if self._muxer is not None:
            self._muxer.mark(AsRunMark(record=record, final=True, frame=self._at))
        if self.ledger is not None:
            self.ledger.append(record)
        if self._on_record is not None:
            self._on_record(record)

    def _opened(self, record: AsRunRecord) -> None:
        record = self.ad_rules.explain(record)
        if self._muxer is not None:
            self._muxer.mark(AsRunMark(record=record, final=False, frame=self._at))

    def due_at(self, chunk: TsChunk) -> datetime:
        """When ``chunk``'s first byte must leave for every frame to show at its wall clock.

        Frame f is presented when the PCR reaches ``wire_pts(f)``, so the byte that
        carries PCR p is due at ``wall_clock(first) - (wire_pts(first) - p) / 90 kHz``
        (for the first chunk the lead is the T-STD delay, ~0.55 s; any later chunk is
        due after the first frame's wall clock: the difference is signed, modulo 2^33
        for the PCR wrap).
        """
        if self._muxer is None:
            raise PlayoutError("the engine has not produced a chunk yet")
        pcr = self._muxer.stream_time(chunk.byte_offset)
        first_pts = ORIGIN + self.pts_offset + self._first * FRAME_TICKS
        lead = signed_delta(first_pts, pcr)
        return self.wall_clock(self._first) - timedelta(microseconds=lead * 100 // 9)

    # ------------------------------------------------- real time: start, lateness

    def warm_up(self, start: datetime | int | None = None) -> WarmUp:
        """Start at ``start`` and throw it away once the first chunk is out.

        Everything a start pays for once happens here (the slate, FFmpeg's muxer,
        opening and probing the first items, their first GOPs read from disk), so
        the real start after it is quick and ``seconds`` measures it with margin.
        """
        began = time.perf_counter()
        self._warming = True  # its as-run goes nowhere
        stream = self.chunks(start)
        try:
            first = next(stream)
            seconds = time.perf_counter() - began
            lead = self.wall_clock(self._first) - self.due_at(first)
        finally:
            stream.close()
            self._warming = False
        self.records.clear()
        self.reloads.clear()
        return WarmUp(seconds=seconds, lead=lead)

    def join_frame(self, now: datetime, *, ready_in: float, lead: timedelta) -> int:
        """The earliest frame whose first byte, due ``lead`` before it airs, is due no
        sooner than ``ready_in`` seconds after ``now``: a start with no backlog.

        Any frame will do: a join between IDRs pads with slate to the next one.
        """
        earliest = now + timedelta(seconds=ready_in) + lead
        return self.rundown.frame_at(earliest) + 1

    def absorb_late(self, seconds: float) -> None:
        """The sender fell ``seconds`` behind the wall clock for good (the pacer's ``on_late``).

        Called on the pacing thread. The timeline skips as many frames of slack
        before the next anchor, so it starts on its frame.
        """
        with self._late_lock:
            self._late += seconds
        logger.warning(
            "%s: %.3f s of sender lateness to absorb in the schedule",
            self.service.channel_id,
            seconds,
        )

    def _owed(self) -> int:
        """Frames the wall clock is ahead of the timeline (lateness not yet skipped)."""
        with self._late_lock:
            return max(0, math.floor(self._late * self.profile.fps + 0.5) - self._shift)

    def as_aired(self, chunk: TsChunk) -> TsChunk:
        """``chunk`` with its as-run corrected for lateness not absorbed when it was sent.

        Called on the pacing thread right after the chunk went out: an event
        that started while the sender was behind (and the slack before it could
        not absorb that) started late on the wall clock, and the as-run says so.
        """
        if not chunk.asrun:
            return chunk
        with self._late_lock:
            late = self._late * self.profile.fps
        shifts = self._shifts
        at = bisect.bisect_right(shifts, chunk.frame, key=lambda shift: shift[0]) - 1
        frames = math.floor(late - (shifts[at][1] if at >= 0 else 0) + 0.5)
        marks: list[AsRunMark] = []
        for mark in chunk.asrun:
            key = (mark.record.event_id, mark.record.scheduled_frame)
            if mark.final:
                late_by = self._start_late.pop(key, frames)
            else:
                late_by = self._start_late[key] = frames
            if late_by > 0:
                mark = dataclasses.replace(mark, record=_started_late(mark.record, late_by))
            marks.append(mark)
        return dataclasses.replace(chunk, asrun=tuple(marks))

    # -------------------------------------------------------------- engine

    def chunks(
        self,
        start: datetime | int | None = None,
        *,
        duration_frames: int | None = None,
        join_note: str = "",
    ) -> Generator[TsChunk, None, None]:
        """The stream from ``start`` (a frame or an instant); endless unless a duration is set.

        The bytes lead the pictures by the T-STD delay: frame f is shown when the
        PCR reaches ``wire_pts(f)``, so a pacer that wants frame ``start`` on screen
        at ``wall_clock(start)`` sends the first PCR (``chunk.pcr_90k``) at
        ``wall_clock(start) - (wire_pts(start) - pcr_90k) / 90000`` (about 0.55 s);
        ``due_at(chunk)`` computes it. ``join_note`` is the as-run reason of a
        mid-event join (a restart says why it joined late).
        """
        first = self.frame_of(start)
        self._first = first
        with self._late_lock:
            self._late = 0.0
            self._shift = 0
        self._shifts = []
        self._start_late = {}
        end = None if duration_frames is None else first + duration_frames
        timeline = Timeline(
            channel_id=self.service.channel_id,
            profile=self.profile,
            first=self.rundown,
            loader=self._load_day,
            on_record=self._record,
            on_open=self._opened,
            join_note=join_note,
            owed=self._owed,
            verify=self.verify,
            quiet=self._warming,
        )
        self._timeline = timeline
        if self.hot_reload:
            path = self._day_file(0)
            if path is not None:
                self._watchers[0] = RundownWatcher(path, current=self.rundown)
        timeline.seek(first)
        scheduler = SiScheduler(
            self.service,
            si_events(timeline.rundowns()),
            wall_clock=lambda t: (
                self.wall_clock(0) + timedelta(microseconds=(t - self.wire_pts(0)) * 100 // 9)
            ),
            start_90k=self.wire_pts(first) - MUX_SHIFT_TICKS,
            zone=self.rundown.zone,
        )
        self._scheduler = scheduler
        self._si_base = si_events(timeline.rundowns())
        self._aired.clear()
        self._pf_slot = None
        hold_seconds = self.cue_preroll_ticks / 90_000 + CUE_HOLD_SLACK
        muxer = TsMuxer(
            service=self.service,
            slate=self.slate,
            scheduler=scheduler,
            hold_bytes=round(hold_seconds * self.service.mux_rate / 8),
        )
        self._muxer = muxer
        try:
            yield from self._run(timeline, scheduler, muxer, first, end)
        finally:
            muxer.discard()  # a no-op after close(); frees FFmpeg if the caller stopped early

    def _run(
        self,
        timeline: Timeline,
        scheduler: SiScheduler,
        muxer: TsMuxer,
        first: int,
        end: int | None,
    ) -> Iterator[TsChunk]:
        known_days = len(timeline.rundowns())
        lane = AudioLane(self.slate.silence)
        self._last_video_dts: int | None = None
        self._delay = house_decode_delay(self.profile)
        pos = first
        in_break: str | None = None
        # ``end`` counts aired frames: skipped ones extend it.
        while end is None or pos < end + self._shift:
            if self._watchers:
                self._poll_reload(pos)
            if self._rejoin:
                self._rejoin = False
                timeline.seek(pos)
            self._at = pos
            play = timeline.next(pos)
            if play.role is PlayRole.SKIP:
                with self._late_lock:
                    self._shift += play.frames
                pos += play.frames
                self._shifts.append((pos, self._shift))
                continue
            if len(timeline.rundowns()) != known_days:
                known_days = len(timeline.rundowns())
                self._set_si_events()
                self._update_pf(pos, force=True)
            else:
                self._update_pf(pos)
            if play.ad_break != in_break:
                # SCTE-35 only at break edges: out where a break starts, in where it ends.
                # Each is due its pre-roll (and a frame, for slot spacing) before the splice.
                due = self.wire_pts(pos) - self.cue_preroll_ticks - FRAME_TICKS
                if in_break is not None:
                    scheduler.cue(self._cue(in_break, pos, out=False), due=due)
                if play.ad_break is not None:
                    scheduler.cue(self._cue(play.ad_break, pos, out=True), due=due)
                in_break = play.ad_break
            limit = play.frames if end is None else min(play.frames, end + self._shift - pos)
            if play.clip is None:
                played = yield from self._air_slate(muxer, lane, play, pos, limit)
                note = ""
            else:
                played, note = yield from self._air_clip(muxer, lane, play, pos, limit)
            timeline.played(play, played, note)
            pos += played
        self._at = pos
        timeline.close(pos, "playout run ended")
        for at in lane.fill_to(self.wire_pts(pos)):
            muxer.mux(av.Packet(self.slate.silence), pts=at, dts=at, video=False)
        yield from muxer.close()

    def _set_si_events(self) -> None:
        self._si_base = si_events(self._timeline.rundowns())
        self._scheduler.set_events(self._si_base)

    def _update_pf(self, pos: int, *, force: bool = False) -> None:
        """EIT p/f from what actually airs: the event on air and the next ones, as forecast.

        Called when the event on air changes. An overrun shifts the following
        event; an event that ended keeps the frames it really aired. Everything
        comes from the timeline, so the output stays deterministic.
        """
        timeline = self._timeline
        slot = timeline.on_air
        if slot is self._pf_slot and not force:
            return
        previous = self._pf_slot
        if previous is not None and previous is not slot and previous.event.si is not None:
            self._aired[previous.event.eit_event_id] = (self._pf_start, pos)
            while len(self._aired) > 16:
                del self._aired[next(iter(self._aired))]
        self._pf_slot = slot
        adjusted = dict(self._aired)
        for forecast in timeline.forecast():
            if forecast.event.si is None:
                continue
            adjusted[forecast.event.eit_event_id] = (forecast.start, forecast.end)
            if forecast.event is (slot.event if slot else None):
                self._pf_start = forecast.start
        events = [
            e
            if e.event_id not in adjusted
            else dataclasses.replace(
                e,
                start=self.wall_clock(adjusted[e.event_id][0]),
                duration_seconds=max(
                    1, (adjusted[e.event_id][1] - adjusted[e.event_id][0]) // self.profile.fps
                ),
            )
            for e in self._si_base
        ]
        self._scheduler.set_present_following(_no_overlap(events))

    def _cue(self, ad_break: str, frame: int, *, out: bool) -> bytes:
        logger.info(
            "%s: SCTE-35 cue-%s %s at frame %d",
            self.service.channel_id,
            "out" if out else "in",
            ad_break,
            frame,
        )
        return splice_insert(
            event_id=splice_event_id(ad_break, out),
            pts_90k=self.wire_pts(frame),
            out_of_network=out,
        )

    def _video(
        self, muxer: TsMuxer, packet: av.Packet[Any], pts: int, dts: int, frame: int
    ) -> None:
        muxer.mux(packet, pts=pts, dts=dts, video=True, frame=frame)
        self._last_video_dts = dts

    def _slate_frames(
        self, muxer: TsMuxer, lane: AudioLane, pos: int, count: int, *, cut: bool = False
    ) -> Generator[TsChunk, None, int]:
        """``count`` slate frames; with ``cut``, fewer if a rundown replaced the empty one."""
        frames = self.slate.video_frames
        for k in range(count):
            pts = self.wire_pts(pos + k)
            packet = av.Packet(frames[(pos + k) % len(frames)])
            packet.is_keyframe = True
            self._video(muxer, packet, pts, pts - self._delay * FRAME_TICKS, pos + k)
            for at in lane.fill_to(pts + FRAME_TICKS):
                muxer.mux(av.Packet(self.slate.silence), pts=at, dts=at, video=False)
            if k % 25 == 24:
                yield from muxer.drain()
                if self._watchers and pos + k + 1 >= self._next_poll:
                    self._poll_reload(pos + k + 1)
                    if cut and self._rejoin:
                        return k + 1
        yield from muxer.drain()
        return count

    def _air_slate(
        self, muxer: TsMuxer, lane: AudioLane, play: Play, pos: int, frames: int
    ) -> Generator[TsChunk, None, int]:
        """Slate in blocks; slack slate stops frame-exactly when lateness shortens it."""
        done = 0
        while done < frames:
            allowed = frames if not play.fit else min(frames, self._timeline.budget(play, pos))
            count = min(SLATE_BLOCK, allowed - done)
            if count <= 0:
                break
            aired = yield from self._slate_frames(muxer, lane, pos + done, count, cut=True)
            done += aired
            if aired < count or self._rejoin:
                break
        return done

    def _air_clip(
        self, muxer: TsMuxer, lane: AudioLane, play: Play, pos: int, limit: int
    ) -> Generator[TsChunk, None, tuple[int, str]]:
        assert play.clip is not None
        done = 0
        damaged = 0
        note = ""
        carry: list[tuple[int, av.Packet[Any]]] = []  # audio at a GOP's very end, for the next GOP
        for gop in play.clip.gops(play.first_gop):
            if done >= limit:
                break
            if play.fit and done + gop.frames > self._timeline.budget(play, pos):
                break  # lateness reported meanwhile: end at this IDR, slate fits the rest
            mismatch = play.clip.mismatch()
            if mismatch is not None:
                logger.error("%s: %s: cut while airing", self.service.channel_id, mismatch)
                note = f"{mismatch}: cut after {done} frames, found while airing"
                break
            if gop.damaged:
                damaged += 1
                logger.warning(
                    "%s: %s GOP %d damaged (%s): skipped to the next IDR",
                    self.service.channel_id,
                    play.clip.media.asset_id,
                    gop.index,
                    gop.damaged,
                )
                continue
            done += yield from self._air_gop(muxer, lane, gop, pos + done, carry)
            if self._watchers and pos + done >= self._next_poll:
                self._poll_reload(pos + done)
        notes = [f"{damaged} damaged GOPs skipped" if damaged else "", note]
        return done, "; ".join(n for n in notes if n)

    def _air_gop(
        self,
        muxer: TsMuxer,
        lane: AudioLane,
        gop: Gop,
        pos: int,
        carry: list[tuple[int, av.Packet[Any]]],
    ) -> Generator[TsChunk, None, int]:
        # Frame numbers, not container timestamps: whatever the time base (1/1000 in
        # Matroska), picture n of the GOP shows at W(pos + n) exactly.
        delay = gop.decode_delay
        shim = 0
        start_dts = self.wire_pts(pos) - delay * FRAME_TICKS
        if self._last_video_dts is not None and start_dts <= self._last_video_dts:
            # This item reorders deeper than what came before: slate frames keep DTS rising.
            shim = -(-(self._last_video_dts - start_dts + 1) // FRAME_TICKS)
            yield from self._slate_frames(muxer, lane, pos, shim)
            pos += shim
        self._delay = delay
        base = self.wire_pts(pos)
        for k, (packet, shown) in enumerate(zip(gop.video, gop.frame_pts, strict=True)):
            pts = base + shown * FRAME_TICKS
            self._video(muxer, packet, pts, base + (k - delay) * FRAME_TICKS, pos + shown)
        end = self.wire_pts(pos + gop.frames)
        audio = [(ideal, p) for ideal, p in carry]
        carry.clear()
        audio += [(base + at, p) for at, p in gop.audio]
        for ideal, packet in audio:
            if ideal > end - HALF_AUDIO:
                carry.append((ideal, packet))  # belongs to the next GOP, if this item has one
                continue
            gaps, at = lane.place(ideal)
            for gap in gaps:
                muxer.mux(av.Packet(self.slate.silence), pts=gap, dts=gap, video=False)
            if at is not None:
                muxer.mux(packet, pts=at, dts=at, video=False)
        yield from muxer.drain()
        return shim + gop.frames
