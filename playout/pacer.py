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
  buffer) and do not run fast either (a receiver locks its 27 MHz clock to the
  PCRs as they arrive; ISO/IEC 13818-1 allows it ±30 ppm, and the 2 % catch-up
  this pacer once used is 20,000 ppm). The late datagram goes now, the rest
  follow at exactly the mux rate, and the lateness becomes a permanent offset
  ("slip"), logged and handed to ``on_late``: the engine absorbs it in the
  schedule, by cutting the next filler, break or slate short by that many
  frames (playout.timeline), so the pictures come back to the wall clock while
  the bytes never leave the mux rate.

Sends are datagram-granular: a chunk is cut at 1316-byte boundaries of the
engine's byte offset (so UDP datagrams line up with pacing steps) and never
across an engine chunk, so an IDR chunk still starts a piece (HLS needs that).
The pacer writes to one sink, normally a ``FanOut``, which never blocks.

``arrival_report`` is the receiver's side: from datagram arrival times and the
PCRs they carry, the clock offset per window and the jitter (tests, bench).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np

from core.clock import Clock, SystemClock
from core.timecode import FPS
from mpegts import (
    PACKET_SIZE,
    PAT_PID,
    PCR_HZ,
    PCR_MODULUS,
    SYNC_BYTE,
    UDP_PAYLOAD,
    packet_array,
    packet_pid,
    parse_pat,
    parse_pmt,
    payload_offset,
    pcr_array,
    pcr_base,
    pcr_flag_array,
    pid_array,
    random_access_array,
)
from mpegts.psi import PAT_TABLE_ID, PMT_TABLE_ID
from playout.stream import TsChunk, TsSink

logger = logging.getLogger(__name__)

CATCHUP_WINDOW = 0.050
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
    slip: float  # seconds the sends are behind the first deadline's schedule, for good
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
        send_ahead: float = SEND_AHEAD,
        burst: int = 1,
        nice: int | None = None,
    ) -> None:
        """``burst`` > 1: a datagram without a PCR may leave with the one before it,
        up to ``burst - 1`` datagram intervals early, so the pacer wakes once per
        ``burst`` datagrams; a datagram carrying a PCR always goes on its deadline,
        so PCR arrival jitter is unchanged (an early non-PCR datagram only fills
        the receiver's buffer ~1 ms sooner).

        ``nice``: the pacing thread's nice value while ``run`` runs (Linux sets it
        per thread), if the process may (CAP_SYS_NICE for a negative one): on a
        busy machine a send is then rarely late. Not allowed: normal priority.
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
        self.send_ahead = send_ahead
        self.nice = nice
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
        self._on_late: Callable[[float], None] | None = None
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
        on_late: Callable[[float], None] | None = None,
    ) -> PacerStats:
        """Pace every chunk to the sink; return at the end, on ``stop`` or after max_seconds.

        ``first_due`` is the monotonic instant the first chunk's first byte is due
        (``monotonic_at(wall_clock(start) - lead)`` keeps the timeline on the wall clock);
        by default it is when that chunk arrives. A send later than the catch-up
        window (the first one included) becomes slip: the schedule moves back by
        that much for good and ``on_late(seconds)`` is told (the engine absorbs it
        in the schedule); the rate never changes. ``on_sent(chunk)`` runs on the
        pacing thread once a chunk's last byte has gone to the sink: the as-run is
        journaled from there (playout.asrun). Keep both short.

        With ``prefetch`` > 0 the chunks are produced on a read-ahead thread (up to that
        many seconds of stream in hand), so the time the engine spends muxing never delays a
        datagram; the GIL switch interval is lowered meanwhile so the pacing thread
        gets the interpreter back within 2 ms of its deadline (in practice the engine
        rarely holds it: p99 − p1 jitter was the same at 0.5 and 5 ms).
        """
        self._on_sent = on_sent
        self._on_late = on_late
        with _thread_nice(self.nice) as before:
            return self._run_prefetched(chunks, stop, max_seconds, first_due, prefetch, before)

    def _run_prefetched(
        self,
        chunks: Iterable[TsChunk],
        stop: threading.Event | None,
        max_seconds: float | None,
        first_due: float | None,
        prefetch: float,
        engine_nice: int | None,
    ) -> PacerStats:
        if prefetch > 0:
            previous = sys.getswitchinterval()
            sys.setswitchinterval(SWITCH_INTERVAL)
            limit = max(1, round(prefetch * self.mux_rate / 8))
            reader = _ReadAhead(chunks, limit, nice=engine_nice)
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
                "pacing %.3f s behind: re-anchored at the mux rate (no burst, no overspeed); "
                "slip now %.3f s, left to the schedule to absorb",
                late,
                self._slip,
            )
            if self._on_late is not None:
                self._on_late(late)
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


@contextlib.contextmanager
def _thread_nice(nice: int | None) -> Iterator[int | None]:
    """The calling thread at ``nice`` if allowed, restored afterwards; yields the old value
    (for threads started meanwhile, which would inherit the new one), or None."""
    if nice is None:
        yield None
        return
    try:
        tid = threading.get_native_id()
        before = os.getpriority(os.PRIO_PROCESS, tid)
        os.setpriority(os.PRIO_PROCESS, tid, nice)
    except (AttributeError, OSError) as exc:  # not Linux, or no CAP_SYS_NICE
        logger.info("pacing at normal priority (nice %d not allowed: %s)", nice, exc)
        yield None
        return
    try:
        yield before
    finally:
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, tid, before)


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

    def __init__(self, source: Iterable[TsChunk], limit: int, *, nice: int | None = None) -> None:
        """``nice``: the engine thread's own (it would inherit the pacing thread's)."""
        self._nice = nice
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
        if self._nice is not None:
            with contextlib.suppress(OSError):
                os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), self._nice)
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


# -- the receiver's view ------------------------------------------------------------

STEP_SECONDS = 0.025  # a lasting rise of arrival − PCR above this is a step (a re-anchor)
_STEP_CONFIRM = 25  # PCRs on each side whose medians must differ by a step (~0.5 s)
_BIN = 0.5  # seconds of PCRs whose earliest arrival stands for them in the rate fit
_MIN_FIT = 3  # bins a stretch of a window needs to count in its slope


@dataclass(frozen=True, kw_only=True)
class ArrivalReport:
    """How a receiver sees a paced stream: when each PCR arrived against its value.

    ``window_ppm``: the arrival − PCR frequency offset of each whole window after
    the first ``skip`` seconds (positive: the bytes arrive slower than the PCRs
    advance). Delay is one-sided (a datagram can be late, never early), so the
    rate is fitted through the earliest arrival of every half second, as a
    receiver's clock recovery filters it (NTP and PTP do the same); a burst of
    scheduling delay on a busy machine then reads as jitter, not as a rate. A
    lasting step (a stall longer than the catch-up window, which the pacer turns
    into an offset instead of running fast) is a phase change, not a rate: the
    slope is fitted with one intercept per stretch between steps. ``jitter_ms``:
    p99 − p1 of arrival − PCR over the whole run from the first PCR, the steps
    taken out (a burst after a short stall stays in).
    """

    pcrs: int
    seconds: float  # PCR time from the first PCR to the last
    window_ppm: tuple[float, ...]
    jitter_ms: float
    steps_ms: tuple[float, ...]

    @property
    def worst_ppm(self) -> float:
        return max((abs(p) for p in self.window_ppm), default=0.0)


def arrival_report(
    arrivals: Sequence[float],
    datagrams: Sequence[bytes],
    *,
    window: float = 10.0,
    skip: float = 1.0,
    step: float = STEP_SECONDS,
) -> ArrivalReport:
    """``arrivals[i]`` (seconds, any monotonic clock) is when ``datagrams[i]`` arrived."""
    sizes = np.fromiter((len(d) // PACKET_SIZE for d in datagrams), np.int64, len(datagrams))
    packets = packet_array(b"".join(d[: len(d) - len(d) % PACKET_SIZE] for d in datagrams))
    arrival_of = np.repeat(np.asarray(arrivals, np.float64), sizes)
    flags = pcr_flag_array(packets)
    at = arrival_of[flags]
    if at.size < 2:
        return ArrivalReport(
            pcrs=int(at.size), seconds=0.0, window_ppm=(), jitter_ms=0.0, steps_ms=()
        )
    value = np.unwrap(pcr_array(packets[flags]).astype(np.float64), period=float(PCR_MODULUS))
    t = (value - value[0]) / PCR_HZ
    dev = (at - at[0]) - t
    # Jumps closer together than the confirmation span are one event (a stall, and the
    # late sends around it): its size is the level after the last against before the first.
    clusters: list[list[int]] = []
    for i in np.flatnonzero(np.diff(dev) > step).tolist():
        if clusters and i - clusters[-1][-1] < _STEP_CONFIRM:
            clusters[-1].append(i)
        else:
            clusters.append([i])
    steps: list[tuple[int, float]] = []  # (first PCR after the step, its size)
    for cluster in clusters:
        first, last = cluster[0] + 1, cluster[-1] + 1
        floor = steps[-1][0] if steps else 0
        before = dev[max(floor, first - _STEP_CONFIRM) : first]
        after = dev[last : last + _STEP_CONFIRM]
        size = float(np.median(after) - np.median(before))
        if size > step:
            steps.append((last, size))
    segment = np.zeros(dev.size, np.int64)
    level = np.zeros(dev.size)
    for n, (first, size) in enumerate(steps, start=1):
        segment[first:] = n
        level[first:] += size
    flat = dev - level
    ppm: list[float] = []
    begin = skip
    while begin + window <= t[-1]:
        inside = (t >= begin) & (t < begin + window)
        num = den = 0.0
        for seg in np.unique(segment[inside]).tolist():
            pick = np.flatnonzero(inside & (segment == seg))
            # The earliest arrival in each bin of this stretch.
            bins = ((t[pick] - begin) // _BIN).astype(np.int64)
            lows = [pick[bins == b][np.argmin(dev[pick[bins == b]])] for b in np.unique(bins)]
            if len(lows) < _MIN_FIT:
                continue
            x = t[lows] - t[lows].mean()
            y = dev[lows] - dev[lows].mean()
            num += float((x * y).sum())
            den += float((x * x).sum())
        if den > 0:
            ppm.append(num / den * 1e6)
        begin += window
    return ArrivalReport(
        pcrs=int(t.size),
        seconds=float(t[-1]),
        window_ppm=tuple(ppm),
        jitter_ms=float(np.percentile(flat, 99) - np.percentile(flat, 1)) * 1000,
        steps_ms=tuple(size * 1000 for _, size in steps),
    )
