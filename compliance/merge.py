"""Seamless protection switching (SMPTE ST 2022-7): one stream out of two identical legs.

Main and backup playout twins (``playout run --epoch``) send byte-identical RTP
datagrams, sequence numbers included, over two paths. The ``Merger`` takes every
datagram of both legs and hands on the first copy of each sequence number, in
order; the second copy is a duplicate. A datagram lost on one leg is taken from
the other, so either host can die (or a path fail) without a datagram missing.

The path-differential buffer: a sequence number missing on the leg that is ahead
is waited for, up to ``window`` seconds after a later datagram arrived, because
the other leg may still bring it (the legs can be that far apart: network paths,
and a busy twin's pacing slip). Only then is it given up: a *merged loss*, missing
on both legs. A leg that delivers in order adds no delay: output follows the
earliest copy. (The output keeps the arrival pacing of the leg it came from; it
is not re-paced on the RTP timestamps.)

Each leg is watched: no datagram for ``loss_after`` seconds is a lost leg. The
primary leg is the one the output relies on: the first leg up, until it is lost
while the other is up (a *changeover*; non-revertive: a leg that comes back is
the backup). Both lost is a stream loss. Each of these raises a ``MergeAlarm``;
``compliance.receive_cli`` writes them where the console and metrics read them.

Sequence numbers are 16-bit and wrap; they are extended on the merge's own
count. A datagram half the sequence space (or more) away from the merge is out
of step (a sender that is not a twin, or one from another epoch): counted and
dropped, unless the merge has had nothing to output for ``loss_after`` seconds,
when it resynchronises on it (both twins restarted on a new epoch).
"""

from __future__ import annotations

import heapq
import logging
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from core.clock import Clock, SystemClock

logger = logging.getLogger(__name__)

RTP_HEADER_SIZE = 12
#: Seconds a sequence number missing on the leading leg is waited for on the other.
DEFAULT_WINDOW = 0.5
#: Seconds without a datagram on a leg before it counts as lost.
DEFAULT_LOSS_AFTER = 0.3
#: Sequence distance beyond which a datagram is out of step (a quarter of 2^16).
STEP_LIMIT = 0x4000
_SKIPPED_MEMORY = 4096  # given-up sequence numbers remembered, to tell late from duplicate


class AlarmKind(StrEnum):
    LEG_LOST = "leg_lost"
    LEG_RESTORED = "leg_restored"
    CHANGEOVER = "changeover"
    STREAM_LOST = "stream_lost"
    STREAM_RESTORED = "stream_restored"
    MERGED_LOSS = "merged_loss"
    RESYNC = "resync"


_SEVERITY = {
    AlarmKind.LEG_LOST: "warning",
    AlarmKind.LEG_RESTORED: "info",
    AlarmKind.CHANGEOVER: "warning",
    AlarmKind.STREAM_LOST: "error",
    AlarmKind.STREAM_RESTORED: "info",
    AlarmKind.MERGED_LOSS: "error",
    AlarmKind.RESYNC: "warning",
}


@dataclass(frozen=True, kw_only=True)
class MergeAlarm:
    """Something an operator must see: a changeover, a leg or the stream lost, a loss."""

    kind: AlarmKind
    message: str
    at: datetime
    leg: int | None = None  # index of the leg it is about

    @property
    def severity(self) -> str:
        return _SEVERITY[self.kind]

    def as_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "severity": self.severity,
            "message": self.message,
            "at": self.at.isoformat(),
            "leg": self.leg,
        }


@dataclass(frozen=True, kw_only=True)
class LegStats:
    """One leg's counters."""

    source: str
    up: bool
    received: int  # RTP datagrams that arrived
    used: int  # first copies: what the output took from this leg
    duplicates: int  # copies of a sequence number already output or buffered
    late: int  # copies arriving after their sequence number was given up
    lost: int  # gaps in this leg's own sequence numbers (datagrams lost on the leg)
    out_of_step: int  # sequence numbers far from the merge's (not a twin): dropped
    foreign: int  # not RTP: cannot be merged, dropped

    def as_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "up": self.up,
            "received": self.received,
            "used": self.used,
            "duplicates": self.duplicates,
            "late": self.late,
            "lost": self.lost,
            "out_of_step": self.out_of_step,
            "foreign": self.foreign,
        }


@dataclass(frozen=True, kw_only=True)
class MergeStats:
    legs: tuple[LegStats, ...]
    output: int  # datagrams handed on
    merged_lost: int  # sequence numbers missing on every leg
    primary: int | None  # the leg the output relies on (None: no leg up)
    changeovers: int
    resyncs: int
    buffered: int  # datagrams waiting for an earlier sequence number

    def as_json(self) -> dict[str, Any]:
        return {
            "legs": [leg.as_json() for leg in self.legs],
            "output": self.output,
            "merged_lost": self.merged_lost,
            "primary": self.primary,
            "changeovers": self.changeovers,
            "resyncs": self.resyncs,
            "buffered": self.buffered,
        }


@dataclass(kw_only=True)
class _Leg:
    source: str
    up: bool = False
    ever_up: bool = False
    last_arrival: float = 0.0
    last_seq: int | None = None
    received: int = 0
    used: int = 0
    duplicates: int = 0
    late: int = 0
    lost: int = 0
    out_of_step: int = 0
    foreign: int = 0

    def stats(self) -> LegStats:
        return LegStats(
            source=self.source,
            up=self.up,
            received=self.received,
            used=self.used,
            duplicates=self.duplicates,
            late=self.late,
            lost=self.lost,
            out_of_step=self.out_of_step,
            foreign=self.foreign,
        )


@dataclass(frozen=True)
class _Held:
    data: bytes
    arrival: float
    leg: int


def _signed16(delta: int) -> int:
    return (delta + 0x8000) % 0x10000 - 0x8000


@dataclass(kw_only=True)
class _Window:
    """Sequence numbers held until the one before them is out (a min-heap over a dict)."""

    held: dict[int, _Held] = field(default_factory=dict)
    order: list[int] = field(default_factory=list)

    def put(self, seq: int, item: _Held) -> None:
        self.held[seq] = item
        heapq.heappush(self.order, seq)

    def first(self) -> int | None:
        while self.order and self.order[0] not in self.held:
            heapq.heappop(self.order)
        return self.order[0] if self.order else None

    def clear(self) -> None:
        self.held.clear()
        self.order.clear()


class Merger:
    """Merges the legs' datagrams; ``feed`` each one, ``poll`` often (timeouts, silence)."""

    def __init__(
        self,
        sources: Sequence[str],
        *,
        output: Callable[[bytes], None],
        window: float = DEFAULT_WINDOW,
        loss_after: float = DEFAULT_LOSS_AFTER,
        on_alarm: Callable[[MergeAlarm], None] | None = None,
        clock: Clock | None = None,
    ) -> None:
        """``output`` gets each merged datagram (RTP header included) in sequence order.
        Times given to ``feed`` and ``poll`` are monotonic seconds; alarms are dated
        with ``clock.now()``."""
        if len(sources) < 2:
            raise ValueError("a merge needs at least two legs")
        if window <= 0 or loss_after <= 0:
            raise ValueError("window and loss_after must be positive")
        self._legs = [_Leg(source=s) for s in sources]
        self._output = output
        self.window = window
        self.loss_after = loss_after
        self._on_alarm = on_alarm
        self._clock = clock or SystemClock()
        self._next: int | None = None  # extended sequence number due out next
        self._buffer = _Window()
        self._skipped: deque[int] = deque(maxlen=_SKIPPED_MEMORY)
        self._skipped_set: set[int] = set()
        self._last_output = 0.0
        self._outputs = 0
        self._merged_lost = 0
        self._primary: int | None = None
        self._changeovers = 0
        self._resyncs = 0
        self._stream_lost = False

    # ------------------------------------------------------------------ input

    def feed(self, leg: int, datagram: bytes | memoryview, arrival: float) -> None:
        """One datagram of leg ``leg`` (an index into ``sources``), arrived at ``arrival``."""
        state = self._legs[leg]
        if len(datagram) < RTP_HEADER_SIZE or datagram[0] >> 6 != 2:
            state.foreign += 1
            return
        seq = int.from_bytes(datagram[2:4], "big")
        state.received += 1
        state.last_arrival = arrival
        if state.last_seq is not None:
            step = (seq - state.last_seq) & 0xFFFF
            if 1 < step < STEP_LIMIT:
                state.lost += step - 1
        if state.last_seq is None or 0 < (seq - state.last_seq) & 0xFFFF < 0x8000:
            state.last_seq = seq
        if not state.up:
            self._leg_up(leg)
        if self._next is None:
            self._next = seq
            self._last_output = arrival
        ext = self._next + _signed16(seq - self._next)
        distance = ext - self._next
        if distance >= STEP_LIMIT or distance <= -STEP_LIMIT:
            state.out_of_step += 1
            if arrival - self._last_output < self.loss_after:
                return
            self._resync(leg, seq, arrival)
            ext = self._next
        if ext < self._next:
            if ext in self._skipped_set:
                state.late += 1
            else:
                state.duplicates += 1
            return
        if ext in self._buffer.held:
            state.duplicates += 1
            return
        self._buffer.put(ext, _Held(bytes(datagram), arrival, leg))
        self._drain(arrival)

    def poll(self, now: float) -> None:
        """Give up sequence numbers waited for too long; notice legs gone silent."""
        self._expire(now)
        for index, state in enumerate(self._legs):
            if state.up and now - state.last_arrival >= self.loss_after:
                self._leg_down(index, now - state.last_arrival)

    def flush(self) -> None:
        """The end: hand on everything still held (gaps in it count as merged losses)."""
        self._expire(float("inf"))

    # ----------------------------------------------------------------- output

    def _drain(self, now: float) -> None:
        held = self._buffer.held
        assert self._next is not None
        while self._next in held:
            item = held.pop(self._next)
            self._output(item.data)
            self._legs[item.leg].used += 1
            self._outputs += 1
            self._next += 1
            self._last_output = now

    def _expire(self, now: float) -> None:
        while self._next is not None:
            first = self._buffer.first()
            if first is None:
                return
            if first > self._next:
                item = self._buffer.held[first]
                if now - item.arrival < self.window:
                    return
                missing = first - self._next
                self._merged_lost += missing
                for seq in range(self._next, first):
                    if len(self._skipped) == self._skipped.maxlen:
                        self._skipped_set.discard(self._skipped[0])
                    self._skipped.append(seq)
                    self._skipped_set.add(seq)
                self._alarm(
                    AlarmKind.MERGED_LOSS,
                    f"{missing} datagram(s) missing on every leg (RTP seq "
                    f"{self._next & 0xFFFF}-{(first - 1) & 0xFFFF}): not received within "
                    f"{self.window:.3f} s",
                )
                self._next = first
            self._drain(now)

    def _resync(self, leg: int, seq: int, arrival: float) -> None:
        assert self._next is not None
        dropped = len(self._buffer.held)
        self._buffer.clear()
        self._skipped.clear()
        self._skipped_set.clear()
        self._resyncs += 1
        self._alarm(
            AlarmKind.RESYNC,
            f"{self._legs[leg].source}: RTP seq {seq} is out of step with the merge "
            f"(expected {self._next & 0xFFFF}) and nothing else arrives: following it "
            f"({dropped} held datagram(s) dropped)",
            leg,
        )
        self._next = self._next + _signed16(seq - self._next)
        self._last_output = arrival

    # ------------------------------------------------------------------- legs

    def _leg_up(self, leg: int) -> None:
        state = self._legs[leg]
        state.up = True
        if state.ever_up:
            self._alarm(AlarmKind.LEG_RESTORED, f"{state.source}: receiving again", leg)
        state.ever_up = True
        if self._primary is None:
            self._primary = leg
            if self._stream_lost:
                self._stream_lost = False
                self._alarm(AlarmKind.STREAM_RESTORED, f"stream restored from {state.source}", leg)

    def _leg_down(self, leg: int, silent: float) -> None:
        state = self._legs[leg]
        state.up = False
        self._alarm(
            AlarmKind.LEG_LOST, f"{state.source}: no datagram for {silent:.2f} s (leg lost)", leg
        )
        if self._primary != leg:
            return
        backup = next((i for i, s in enumerate(self._legs) if s.up), None)
        self._primary = backup
        if backup is not None:
            self._changeovers += 1
            self._alarm(
                AlarmKind.CHANGEOVER,
                f"changeover: {state.source} lost, output from {self._legs[backup].source}",
                backup,
            )
        else:
            self._stream_lost = True
            self._alarm(AlarmKind.STREAM_LOST, "stream lost: no leg is receiving")

    def _alarm(self, kind: AlarmKind, message: str, leg: int | None = None) -> None:
        alarm = MergeAlarm(kind=kind, message=message, at=self._clock.now(), leg=leg)
        level = {"error": logging.ERROR, "warning": logging.WARNING}.get(
            alarm.severity, logging.INFO
        )
        logger.log(level, "2022-7 merge: %s", message)
        if self._on_alarm is not None:
            self._on_alarm(alarm)

    # ------------------------------------------------------------------ state

    @property
    def stats(self) -> MergeStats:
        return MergeStats(
            legs=tuple(leg.stats() for leg in self._legs),
            output=self._outputs,
            merged_lost=self._merged_lost,
            primary=self._primary,
            changeovers=self._changeovers,
            resyncs=self._resyncs,
            buffered=len(self._buffer.held),
        )


__all__ = [
    "DEFAULT_LOSS_AFTER",
    "DEFAULT_WINDOW",
    "AlarmKind",
    "LegStats",
    "MergeAlarm",
    "MergeStats",
    "Merger",
]
