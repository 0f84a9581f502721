"""Real-time pacing: send the engine's bytes at exactly the channel mux rate.

Every datagram has an absolute deadline computed from its byte count,
``t0 + (byte_offset - base) * 8 / mux_rate``, on a monotonic clock. Nothing is
accumulated (no ``sleep(interval)`` in a loop), so the rate is exact over days:
the only error is the monotonic clock's own, and that is the machine's
oscillator, which NTP-disciplined ``CLOCK_MONOTONIC`` slews with the wall clock.
This also gives ``--start`` its meaning: the offset between rundown position and
wall clock stays what it was at launch.

What a headend wants when we fall behind (a GC pause, a slow disk read, the
machine swapping):

* A little late (up to ``catchup_window``, 50 ms by default): send the backlog
  at once. A burst of at most 50 ms of data fits any IP receiver's de-jitter
  buffer and restores exact timing immediately.
* Later than that: do not burst (a 2 s burst at 10 Mb/s overflows an IRD's
  buffer and shows as PCR jitter and TS packet loss downstream). Re-anchor: the
  late datagram goes now and the schedule is pushed back by the lateness
  ("slip"). The slip is then worked off at ``catchup_overspeed`` (2 %: 1 s of
  slip in 50 s), a rate change every receiver's PCR recovery follows, so the
  channel returns to its wall-clock position without a burst and without
  dropping a single packet. Each re-anchor is logged with its size.

Sends are datagram-granular: a chunk is cut at 1316-byte boundaries of the
engine's byte offset (so UDP datagrams line up with pacing steps) and never
across an engine chunk, so an IDR chunk still starts a piece (HLS needs that).
The pacer writes to one sink, normally a ``FanOut``, which never blocks.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np

from core.clock import Clock, SystemClock
from core.timecode import FPS
from mpegts import (
    PACKET_SIZE,
    PAT_PID,
    SYNC_BYTE,
    UDP_PAYLOAD,
    packet_array,
    packet_pid,
    parse_pat,
    parse_pmt,
    payload_offset,
    pcr_base,
    pcr_flag_array,
    pid_array,
    random_access_array,
)
from mpegts.psi import PAT_TABLE_ID, PMT_TABLE_ID
from playout.stream import TsChunk, TsSink

logger = logging.getLogger(__name__)

CATCHUP_WINDOW = 0.050
CATCHUP_OVERSPEED = 0.02
SEND_AHEAD = 0.0005  # send without sleeping when the deadline is this close
PREFETCH_SECONDS = 0.5
SWITCH_INTERVAL = 0.002  # seconds: bounds a GIL wait (CPython's 5 ms); 0.5 ms cost handoffs


@dataclass(frozen=True, kw_only=True)
class PacerStats:
    datagrams: int  # pieces handed to the sink
    bytes: int
    max_late: float  # seconds, the worst lateness seen at a send
    late_sends: int  # sends more than catchup_window / 10 after their deadline
    reanchors: int
    slip: float  # seconds the schedule is currently behind the byte clock
    elapsed: float  # monotonic seconds since the first send


class Pacer:
    """Feeds a sink at the mux rate against absolute, byte-derived deadlines."""

    def __init__(
        self,
        sink: TsSink,
        *,
        mux_rate: int,
        clock: Clock | None = None,
        sleep: Callable[[float], None] = time.sleep,
        catchup_window: float = CATCHUP_WINDOW,
        catchup_overspeed: float = CATCHUP_OVERSPEED,
        send_ahead: float = SEND_AHEAD,
        burst: int = 1,
    ) -> None:
        """``burst`` > 1: a datagram without a PCR may leave with the one before it,
        up to ``burst - 1`` datagram intervals early, so the pacer wakes once per
        ``burst`` datagrams; a datagram carrying a PCR always goes on its deadline,
        so PCR arrival jitter is unchanged (an early non-PCR datagram only fills
        the receiver's buffer ~1 ms sooner).
        """
        if mux_rate <= 0:
            raise ValueError("mux_rate must be positive")
        if burst < 1:
            raise ValueError("burst must be at least 1")
        self.sink = sink
        self.mux_rate = mux_rate
        self.clock: Clock = clock or SystemClock()
        self._sleep = sleep
        self.catchup_window = catchup_window
        self.catchup_overspeed = catchup_overspeed
        self.send_ahead = send_ahead
        # How early a PCR-free datagram may go when the pacer is awake anyway (5 % slack
        # so the datagram right after one sent on time always qualifies).
        self._early = max(send_ahead, (burst - 1) * UDP_PAYLOAD * 8 / mux_rate * 1.05)
        self._t0: float | None = None
        self._base = 0
        self._slip = 0.0
        self._datagrams = 0
        self._bytes = 0
        self._max_late = 0.0
        self._late_sends = 0
        self._reanchors = 0
        self._first_pending = False
        self._on_sent: Callable[[TsChunk], None] | None = None
        # The datagram fast path (playout.stream.PacedSink), if the sink has one.
        self._paced: Callable[[TsChunk], Callable[[memoryview, int], None]] | None = getattr(
            sink, "paced", None
        )
        # time.monotonic itself when the clock is the system's: no wrapper call per datagram.
        self._monotonic: Callable[[], float] = (
            time.monotonic if isinstance(self.clock, SystemClock) else self.clock.monotonic
        )

    def monotonic_at(self, instant: datetime) -> float:
        """The reading of our monotonic clock at a wall-clock instant (for ``first_due``)."""
        return self.clock.monotonic() + (instant - self.clock.now()).total_seconds()

    def deadline(self, byte_offset: int) -> float:
        """The monotonic instant a byte at this engine offset is due (after the first send)."""
        if self._t0 is None:
            raise RuntimeError("the pacer has not started")
        return self._t0 + (byte_offset - self._base) * 8 / self.mux_rate + self._slip

    def run(
        self,
        chunks: Iterable[TsChunk],
        *,
        stop: threading.Event | None = None,
        max_seconds: float | None = None,
        first_due: float | None = None,
        prefetch: float = PREFETCH_SECONDS,
        on_sent: Callable[[TsChunk], None] | None = None,
    ) -> PacerStats:
        """Pace every chunk to the sink; return at the end, on ``stop`` or after max_seconds.

        ``first_due`` is the monotonic instant the first chunk's first byte is due
        (``monotonic_at(wall_clock(start) - lead)`` keeps the timeline on the wall clock);
        by default it is when that chunk arrives. A first byte already late by more
        than the catch-up window becomes slip and is worked off at the overspeed.
        ``on_sent(chunk)`` runs on the pacing thread once a chunk's last byte has gone
        to the sink: the as-run is journaled from there (playout.asrun). Keep it short.

        With ``prefetch`` > 0 the chunks are produced on a read-ahead thread (up to that
        many seconds of stream in hand), so the time the engine spends muxing never delays a
        datagram; the GIL switch interval is lowered meanwhile so the pacing thread
        gets the interpreter back within 2 ms of its deadline (in practice the engine
        rarely holds it: p99 − p1 jitter was the same at 0.5 and 5 ms).
        """
        self._on_sent = on_sent
        if prefetch > 0:
            previous = sys.getswitchinterval()
            sys.setswitchinterval(SWITCH_INTERVAL)
            reader = _ReadAhead(chunks, max(1, round(prefetch * self.mux_rate / 8)))
            try:
                return self._run(reader, stop=stop, max_seconds=max_seconds, first_due=first_due)
            finally:
                reader.close()
                sys.setswitchinterval(previous)
        return self._run(chunks, stop=stop, max_seconds=max_seconds, first_due=first_due)

    def _run(
        self,
        chunks: Iterable[TsChunk],
        *,
        stop: threading.Event | None,
        max_seconds: float | None,
        first_due: float | None,
    ) -> PacerStats:
        if first_due is not None and self._t0 is None:
            self._t0 = first_due
            self._first_pending = True
        limit = None if max_seconds is None else round(max_seconds * self.mux_rate / 8)
        for chunk in chunks:
            if stop is not None and stop.is_set():
                break
            if (
                limit is not None
                and self._t0 is not None
                and chunk.byte_offset - self._base >= limit
            ):
                break
            self.send(chunk)
        return self.stats

    def send(self, chunk: TsChunk) -> None:
        """Pace one engine chunk, datagram by datagram.

        The loop runs ~1000 times a second per channel, so it keeps to locals: one
        clock read, at most one sleep and one call to the sink per datagram, pieces
        are memoryview slices (no copies), and stats are counted once per chunk.
        """
        if self._t0 is None:
            self._t0 = self._monotonic()
            self._base = chunk.byte_offset
        elif self._first_pending:
            self._base = chunk.byte_offset
        self._first_pending = False
        paced = self._paced
        transmit = paced(chunk) if paced is not None else self._generic(chunk)
        data = memoryview(chunk.data)
        offset = chunk.byte_offset
        end = len(data)
        base = self._base
        t0 = self._t0
        slip = self._slip
        rate = self.mux_rate
        send_ahead = self.send_ahead
        monotonic = self._monotonic
        sleep = self._sleep
        early = self._early
        pcrs = _pcr_positions(chunk.data) if early > send_ahead else []
        pcrs.append(end)  # sentinel
        next_pcr = pcrs[0]
        k = 0
        # Cut at 1316-byte boundaries of the engine's byte count (so datagrams line up
        # with pacing steps), never across chunks: the first piece may be short.
        position = 0
        step = UDP_PAYLOAD - (offset - base) % UDP_PAYLOAD
        pieces = 0
        while position < end:
            piece_end = position + step
            if piece_end > end:
                piece_end = end
            step = UDP_PAYLOAD
            absolute = offset + position
            limit = early
            if next_pcr < piece_end:  # carries a PCR: never early
                limit = send_ahead
                while next_pcr < piece_end:
                    k += 1
                    next_pcr = pcrs[k]
            ahead = t0 + (absolute - base) * 8 / rate + slip - monotonic()
            if ahead > limit:
                sleep(ahead)
            elif ahead < 0.0:
                slip = self._late(-ahead)
            transmit(data[position:piece_end], absolute)
            if slip > 0.0:
                slip -= (piece_end - position) * 8 / rate * self.catchup_overspeed
                if slip < 0.0:
                    slip = 0.0
                self._slip = slip
            pieces += 1
            position = piece_end
        self._datagrams += pieces
        self._bytes += end
        if self._on_sent is not None:
            self._on_sent(chunk)

    def _generic(self, chunk: TsChunk) -> Callable[[memoryview, int], None]:
        """For a plain TsSink: each piece as a TsChunk (the chunk itself if it is one piece)."""
        write = self.sink.write
        start = chunk.byte_offset
        whole = len(chunk.data)

        def transmit(piece: memoryview, absolute: int) -> None:
            if absolute != start:
                piece_chunk = TsChunk(
                    data=bytes(piece),
                    byte_offset=absolute,
                    frame=chunk.frame,
                    idr=False,
                    pcr_90k=None,
                )
            elif len(piece) == whole:
                piece_chunk = chunk
            else:
                piece_chunk = TsChunk(
                    data=bytes(piece),
                    byte_offset=absolute,
                    frame=chunk.frame,
                    idr=chunk.idr,
                    pcr_90k=chunk.pcr_90k,
                )
            write(piece_chunk)

        return transmit

    def _late(self, late: float) -> float:
        """Account a send after its deadline; past the catch-up window, re-anchor. Returns slip."""
        self._max_late = max(self._max_late, late)
        if late > self.catchup_window / 10:
            self._late_sends += 1
        if late > self.catchup_window:
            self._slip += late
            self._reanchors += 1
            logger.warning(
                "pacing %.3f s behind: re-anchored instead of bursting; slip now %.3f s, "
                "recovered at %.0f %% overspeed",
                late,
                self._slip,
                self.catchup_overspeed * 100,
            )
        return self._slip

    @property
    def stats(self) -> PacerStats:
        elapsed = 0.0 if self._t0 is None else self._monotonic() - self._t0
        return PacerStats(
            datagrams=self._datagrams,
            bytes=self._bytes,
            max_late=self._max_late,
            late_sends=self._late_sends,
            reanchors=self._reanchors,
            slip=self._slip,
            elapsed=elapsed,
        )


def _pcr_positions(data: bytes) -> list[int]:
    """Byte positions of the packets that carry a PCR (adaptation field with PCR_flag)."""
    if len(data) < PACKET_SIZE:
        return []
    has_pcr = pcr_flag_array(packet_array(data))
    positions: list[int] = (np.flatnonzero(has_pcr) * PACKET_SIZE).tolist()
    return positions


class _ReadAhead:
    """Iterates a chunk source on its own thread, at most ``limit`` bytes ahead.

    Bounded in bytes (time), not chunks, so memory stays small; the as-run rides on
    the chunks and is journaled only once they are sent, so read-ahead costs it nothing.
    """

    _END = object()

    def __init__(self, source: Iterable[TsChunk], limit: int) -> None:
        self._items: deque[object] = deque()
        self._bytes = 0
        self._limit = limit
        self._cond = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(
            target=self._fill, args=(source,), name="playout read-ahead", daemon=True
        )
        self._thread.start()

    def _put(self, item: object, size: int) -> bool:
        with self._cond:
            while self._bytes >= self._limit and not self._closed:
                self._cond.wait(0.2)
            if self._closed:
                return False
            self._items.append(item)
            self._bytes += size
            self._cond.notify_all()
            return True

    def _fill(self, source: Iterable[TsChunk]) -> None:
        try:
            for chunk in source:
                if not self._put(chunk, len(chunk.data)):
                    return
        except BaseException as exc:  # handed to the pacing thread, which re-raises it
            self._put(exc, 0)
            return
        self._put(self._END, 0)

    def __iter__(self) -> Iterator[TsChunk]:
        while True:
            with self._cond:
                while not self._items:
                    self._cond.wait()
                item = self._items.popleft()
                if isinstance(item, TsChunk):
                    self._bytes -= len(item.data)
                self._cond.notify_all()
            if item is self._END:
                return
            if isinstance(item, BaseException):
                raise item
            assert isinstance(item, TsChunk)
            yield item

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join(1.0)


# -- replaying a recorded TS ------------------------------------------------------


def _psi_section(data: bytes, at: int) -> bytes | None:
    """The section a PSI packet at byte ``at`` starts, to the packet's end; None if none."""
    if not data[at + 1] & 0x40:  # payload_unit_start_indicator
        return None
    start = at + payload_offset(data, at)
    if start >= at + PACKET_SIZE:
        return None
    start += 1 + data[start]  # pointer_field
    return data[start : at + PACKET_SIZE]


def _video_pid(data: bytes) -> int | None:
    """The first video PID of the first programme (from PAT and PMT in the first packets)."""
    pmt_pid = None
    for at in range(0, min(len(data), 2000 * PACKET_SIZE), PACKET_SIZE):
        pid = packet_pid(data, at)
        section = _psi_section(data, at)
        if section is None:
            continue
        if pid == PAT_PID and pmt_pid is None and section[0] == PAT_TABLE_ID:
            pmt_pid = next((p for n, p in parse_pat(section).items() if n != 0), None)
        elif pid == pmt_pid and section[0] == PMT_TABLE_ID:
            program = parse_pmt(section, pmt_pid)
            streams = () if program is None else program.streams
            return next((s.pid for s in streams if s.kind == "video"), None)
    return None


def replay_chunks(
    source: Path | bytes,
    *,
    mux_rate: int,
    packets_per_chunk: int = 7,
    start_frame: int = 0,
    byte_offset: int = 0,
    loops: int = 1,
) -> Iterator[TsChunk]:
    """A recorded CBR TS as engine-like chunks, to rehearse outputs without the engine.

    Chunks are ``packets_per_chunk`` packets, cut additionally before every IDR
    packet of the video PID so IDR chunks start on the IDR; frames follow from
    the byte position at the mux rate (CBR). ``loops`` repeats the recording
    (timestamps then jump, which is fine for pacing and output tests).
    """
    data = source if isinstance(source, bytes) else source.read_bytes()
    if len(data) % PACKET_SIZE or (data and data[0] != SYNC_BYTE):
        raise ValueError("not a 188-byte-packet transport stream")
    video_pid = _video_pid(data)
    total = len(data) // PACKET_SIZE
    idr_packets: set[int] = set()
    if video_pid is not None and total:
        packets = packet_array(data)
        idr = (pid_array(packets) == video_pid) & random_access_array(packets)
        idr_packets = set(np.flatnonzero(idr).tolist())
    offset = byte_offset
    for _ in range(loops):
        n = 0
        while n < total:
            stop = min(total, n + packets_per_chunk)
            cut = next((k for k in range(n + 1, stop) if k in idr_packets), stop)
            chunk_data = data[n * PACKET_SIZE : cut * PACKET_SIZE]
            pcr = None
            for k in range(n, cut):
                pcr = pcr_base(data, k * PACKET_SIZE)
                if pcr is not None:
                    break
            yield TsChunk(
                data=chunk_data,
                byte_offset=offset,
                frame=start_frame + (offset - byte_offset) * 8 * FPS // mux_rate,
                idr=n in idr_packets,
                pcr_90k=pcr,
            )
            offset += len(chunk_data)
            n = cut
