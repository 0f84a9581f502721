"""In-band SI (EIT p/f + schedule, SDT, TDT, TOT) and cues, placed into null-packet slots.

The CBR muxer pads with null packets (PID 0x1FFF). Replacing some of them with
SI packets leaves the byte rate, every PCR and every PES exactly where the
muxer put them. Each table has a period in stream time (90 kHz, the PCR of the
slot); when a table is due its packets queue up, highest priority first, and
take the next free slots. SCTE-35 cues can be timed: they wait for their due
stream time (the splice time minus the pre-roll) and then go first. "Now" for
EIT and TDT is the wall-clock instant of the timeline position at that slot,
never the host clock, so the output is a pure function of the rundown and the
start position.
"""

from __future__ import annotations

import bisect
import heapq
import logging
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from channels.profiles import profile_by_name
from epg.rundown import Rundown, RundownService
from epg.si.events import SiEvent
from epg.si.services import SiService, service_type_for
from epg.si.tables import ZoneTot, eit_present_following, eit_schedule, sdt, tdt
from mpegts import EIT_PID, SDT_PID, TDT_PID, SectionPacketizer
from playout.cues import SCTE35_PID, splice_null

logger = logging.getLogger(__name__)

SECOND = 90_000
EIT_PF_PERIOD = SECOND  # EN 300 468 / TR 101 290 3.x: at least every 2 s
SDT_PERIOD = SECOND  # at least every 2 s
TDT_PERIOD = 5 * SECOND  # at least every 30 s
TOT_PERIOD = 10 * SECOND
EIT_SCHEDULE_PERIOD = 10 * SECOND  # TS 101 211: first days about every 10 s
CUE_HEARTBEAT_PERIOD = SECOND  # splice_null on the cue PID (TR 101 290 1.6: PID present)
CUE_LATE_TICKS = SECOND // 10  # a timed cue placed later than this after its due time is late

# One FIFO per PID, so a section's packets stay contiguous and in continuity order;
# priority is only between PIDs.
PRIORITY_CUE, PRIORITY_EIT, PRIORITY_TIME, PRIORITY_SDT = range(4)


@dataclass(frozen=True, kw_only=True)
class _Table:
    name: str
    period: int
    priority: int
    pid: int


def si_events(rundowns: Sequence[Rundown]) -> list[SiEvent]:
    """EIT events: the rundowns' lessons plus the EPG horizon, one per eit_event_id."""
    seen: dict[int, SiEvent] = {}
    for rundown in rundowns:
        for event in rundown.events:
            if event.si is None or event.eit_event_id in seen:
                continue
            seen[event.eit_event_id] = SiEvent(
                event_id=event.eit_event_id,
                start=rundown.wall_clock(event.start_frame),
                duration_seconds=max(1, event.duration_frames // rundown.fps),
                title=event.si.title,
                description=event.si.description,
                content_nibbles=event.si.content_nibbles,
            )
        for entry in rundown.epg_horizon:
            if entry.eit_event_id not in seen:
                seen[entry.eit_event_id] = SiEvent(
                    event_id=entry.eit_event_id,
                    start=entry.start,
                    duration_seconds=max(1, entry.duration_seconds),
                    title=entry.si.title,
                    description=entry.si.description,
                    content_nibbles=entry.si.content_nibbles,
                )
    return sorted(seen.values(), key=lambda e: (e.start, e.event_id))


def si_service(service: RundownService) -> SiService:
    return SiService(
        service_id=service.service_id,
        transport_stream_id=service.transport_stream_id,
        original_network_id=service.original_network_id,
        name=service.name_zh,
        provider=service.provider_zh,
        service_type=service_type_for(profile_by_name(service.profile)),
    )


class SiScheduler:
    """Decides which SI packets are due at a stream time; the muxer places them in slots."""

    def __init__(
        self,
        service: RundownService,
        events: Sequence[SiEvent],
        wall_clock: Callable[[int], datetime],
        start_90k: int,
        zone: ZoneInfo,
    ) -> None:
        self._service = si_service(service)
        self._tot = ZoneTot(zone)  # local time offset of the rundown's (settings') zone
        self._events = list(events)
        self._starts = [e.start for e in self._events]
        self._pf_events = self._events
        self._pf_starts = self._starts
        self._wall = wall_clock
        self._queues: list[deque[bytes]] = [deque() for _ in range(4)]
        self._packetizers = {
            pid: SectionPacketizer(pid) for pid in (SDT_PID, EIT_PID, TDT_PID, SCTE35_PID)
        }
        self._tables = (
            _Table(
                name="heartbeat",
                pid=SCTE35_PID,
                period=CUE_HEARTBEAT_PERIOD,
                priority=PRIORITY_CUE,
            ),
            _Table(name="pf", pid=EIT_PID, period=EIT_PF_PERIOD, priority=PRIORITY_EIT),
            _Table(name="sdt", pid=SDT_PID, period=SDT_PERIOD, priority=PRIORITY_SDT),
            _Table(name="tdt", pid=TDT_PID, period=TDT_PERIOD, priority=PRIORITY_TIME),
            _Table(name="tot", pid=TDT_PID, period=TOT_PERIOD, priority=PRIORITY_TIME),
            _Table(name="schedule", pid=EIT_PID, period=EIT_SCHEDULE_PERIOD, priority=PRIORITY_EIT),
        )
        self._due = {table.name: start_90k for table in self._tables}
        self._sdt = sdt(
            [self._service],
            self._service.transport_stream_id,
            self._service.original_network_id,
        )
        self._null = splice_null()
        self._pf_cache: tuple[datetime, datetime, list[bytes]] | None = None
        self._schedule_cache: tuple[date, list[bytes]] | None = None
        self._timed: list[tuple[int, int, bytes]] = []  # heap of (due, sequence, cue section)
        self._timed_seq = 0
        self.late_packets = 0
        self.late_cues = 0

    def set_events(self, events: Sequence[SiEvent]) -> None:
        """New rundown days arrived (or a reload): EIT follows from the next emission."""
        self._events = list(events)
        self._starts = [e.start for e in self._events]
        self._pf_events = self._events
        self._pf_starts = self._starts
        self._pf_cache = None
        self._schedule_cache = None

    def set_present_following(self, events: Sequence[SiEvent]) -> None:
        """What EIT p/f says: the events as they actually air (the schedule keeps the plan)."""
        ordered = sorted(events, key=lambda e: (e.start, e.event_id))
        if ordered == self._pf_events:
            return
        self._pf_events = ordered
        self._pf_starts = [e.start for e in ordered]
        self._pf_cache = None

    def cue(self, section: bytes, *, due: int | None = None) -> None:
        """Queue an SCTE-35 section ahead of everything else, now or at stream time ``due``.

        Timed cues are packetized only when due, so the cue PID's continuity
        counter follows the order the packets go out in.
        """
        if due is None:
            self._queues[PRIORITY_CUE].extend(self._packetizers[SCTE35_PID].packetize([section]))
            return
        heapq.heappush(self._timed, (due, self._timed_seq, section))
        self._timed_seq += 1

    @property
    def pending(self) -> bool:
        return any(self._queues)

    def next_due(self) -> int:
        due = min(self._due.values())
        return min(due, self._timed[0][0]) if self._timed else due

    def advance(self, t: int) -> None:
        """Queue every table (and timed cue) due at stream time ``t`` (90 kHz, unwrapped)."""
        while self._timed and self._timed[0][0] <= t:
            due, _seq, section = heapq.heappop(self._timed)
            if t - due > CUE_LATE_TICKS:
                self.late_cues += 1
                logger.warning(
                    "SCTE-35 cue %.3f s later than its pre-roll asked (%d late so far)",
                    (t - due) / SECOND,
                    self.late_cues,
                )
            self._queues[PRIORITY_CUE].extend(self._packetizers[SCTE35_PID].packetize([section]))
        for table in self._tables:
            due = self._due[table.name]
            if due > t:
                continue
            sections = self._sections(table.name, self._wall(t))
            self._queues[table.priority].extend(self._packetizers[table.pid].packetize(sections))
            # Next due one period after this one (not after t): no drift, no burst catch-up.
            self._due[table.name] = max(due + table.period, t - table.period + 1)

    def pop(self) -> bytes | None:
        for queue in self._queues:
            if queue:
                return queue.popleft()
        return None

    def _sections(self, name: str, now: datetime) -> list[bytes]:
        if name == "sdt":
            return self._sdt
        if name == "heartbeat":
            return [self._null]
        if name == "tdt":
            return [tdt(now)]
        if name == "tot":
            return [self._tot(now)]
        if name == "pf":
            return self._present_following(now)
        return self._schedule(now)

    def _present_following(self, now: datetime) -> list[bytes]:
        cache = self._pf_cache
        if cache is not None and cache[0] <= now < cache[1]:
            return cache[2]
        events = self._pf_events
        sections = eit_present_following(self._service, events, now)
        # Valid until the next event boundary (a start or an end) after now.
        index = bisect.bisect_right(self._pf_starts, now)
        bounds = [e.start for e in events[index : index + 1]] + [
            e.end for e in events[max(0, index - 3) : index] if e.end > now
        ]
        until = min(bounds, default=now + timedelta(hours=1))
        self._pf_cache = (now, until, sections)
        return sections

    def _schedule(self, now: datetime) -> list[bytes]:
        today = now.astimezone(UTC).date()
        if self._schedule_cache is not None and self._schedule_cache[0] == today:
            return self._schedule_cache[1]
        sections = eit_schedule(self._service, self._events, now) if self._events else []
        self._schedule_cache = (today, sections)
        return sections
