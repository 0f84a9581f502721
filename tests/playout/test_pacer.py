"""The pacer: absolute byte-derived deadlines (fake clock), catch-up rules, never fast.

Timing is checked on a fake clock (exact); the one real-clock test checks behaviour
with margins a loaded 2-core machine meets (never faster than the mux rate, no loss).
Speed and jitter figures are measured in bench/playout.py, not asserted here.
"""

from __future__ import annotations

import itertools
import random
import time
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from core.clock import FrozenClock
from mpegts import PACKET_SIZE, UDP_PAYLOAD
from playout.pacer import Pacer
from playout.stream import TsChunk

MUX_RATE = 10_000_000
T0 = datetime(2026, 9, 1, tzinfo=UTC)


def packets(n: int, offset: int = 0) -> bytes:
    """n TS packets whose payload bytes encode their packet index (to check order)."""
    out = bytearray()
    for k in range(n):
        index = (offset // PACKET_SIZE + k) & 0xFFFFFF
        out += bytes([0x47, 0x1F, 0xFF, 0x10]) + index.to_bytes(3, "big") * 61 + b"\xff"
    return bytes(out)


def chunks(sizes: list[int], *, idr_every: int = 0) -> list[TsChunk]:
    """Engine-like chunks of the given packet counts."""
    out, offset = [], 0
    for n, size in enumerate(sizes):
        data = packets(size, offset)
        out.append(
            TsChunk(
                data=data,
                byte_offset=offset,
                frame=offset * 8 * 25 // MUX_RATE,
                idr=bool(idr_every) and n % idr_every == 0,
                pcr_90k=None,
            )
        )
        offset += len(data)
    return out


class Recorder:
    """A sink that notes the clock at every write."""

    def __init__(self, clock: FrozenClock, on_write: object = None) -> None:
        self.clock = clock
        self.writes: list[tuple[float, TsChunk]] = []
        self.on_write = on_write

    def write(self, chunk: TsChunk) -> None:
        self.writes.append((self.clock.monotonic(), chunk))
        if callable(self.on_write):
            self.on_write(len(self.writes))

    def close(self) -> None:
        pass


def test_every_datagram_goes_exactly_at_its_byte_deadline() -> None:
    clock = FrozenClock(T0)
    clock.advance(1000.0)
    sink = Recorder(clock)
    pacer = Pacer(sink, mux_rate=MUX_RATE, clock=clock, sleep=clock.advance, send_ahead=0.0)
    stats = pacer.run(chunks([7, 14, 3, 50, 7, 1, 100] * 20))
    assert stats.reanchors == 0 and stats.max_late == 0.0
    for at, piece in sink.writes:
        ideal = 1000.0 + piece.byte_offset * 8 / MUX_RATE
        assert at == pytest.approx(ideal, abs=1e-9)
    assert stats.bytes == sum(len(p.data) for _, p in sink.writes)


def test_pieces_are_datagram_aligned_and_keep_order_and_idr() -> None:
    clock = FrozenClock(T0)
    sink = Recorder(clock)
    source = chunks([3, 10, 7, 22, 5, 1], idr_every=2)
    Pacer(sink, mux_rate=MUX_RATE, clock=clock, sleep=clock.advance).run(source)
    pieces = [p for _, p in sink.writes]
    assert b"".join(p.data for p in pieces) == b"".join(c.data for c in source)
    for piece in pieces:
        start, end = piece.byte_offset, piece.byte_offset + len(piece.data)
        # never across a 1316-byte boundary of the byte count
        assert start // UDP_PAYLOAD == (end - 1) // UDP_PAYLOAD
        assert len(piece.data) % PACKET_SIZE == 0
    starts = {c.byte_offset: c.idr for c in source}
    for piece in pieces:
        assert piece.idr == (starts.get(piece.byte_offset, False))


def test_no_drift_when_every_sleep_overshoots() -> None:
    """Oversleeping never accumulates: each deadline is absolute."""
    clock = FrozenClock(T0)
    rng = random.Random(5)

    def sloppy_sleep(seconds: float) -> None:
        clock.advance(seconds + rng.uniform(0.0, 0.0004))  # a busy scheduler

    sink = Recorder(clock)
    pacer = Pacer(sink, mux_rate=MUX_RATE, clock=clock, sleep=sloppy_sleep)
    stats = pacer.run(chunks([7] * 20_000))  # ~21 s of stream
    last_at, last = sink.writes[-1]
    ideal = last.byte_offset * 8 / MUX_RATE
    assert last_at - ideal < 0.0005  # an accumulated sleep would be ~4 s late by now
    assert stats.reanchors == 0


def test_short_lateness_is_caught_up_at_once() -> None:
    clock = FrozenClock(T0)

    def stall(n: int) -> None:
        if n == 100:
            clock.advance(0.030)  # a 30 ms GC pause: inside the catch-up window

    sink = Recorder(clock, stall)
    stats = Pacer(sink, mux_rate=MUX_RATE, clock=clock, sleep=clock.advance).run(chunks([7] * 300))
    assert stats.reanchors == 0 and stats.slip == 0.0
    at, piece = sink.writes[-1]
    assert at == pytest.approx(piece.byte_offset * 8 / MUX_RATE, abs=1e-9)  # back on schedule


def test_long_stall_becomes_an_offset_at_the_exact_mux_rate() -> None:
    """No burst and no overspeed: the lateness stays, and the engine is told to absorb it."""
    clock = FrozenClock(T0)
    stall_at = 100

    def stall(n: int) -> None:
        if n == stall_at:
            clock.advance(0.5)  # half a second lost (swap, a frozen disk)

    told: list[float] = []
    sink = Recorder(clock, stall)
    pacer = Pacer(sink, mux_rate=MUX_RATE, clock=clock, sleep=clock.advance)
    stats = pacer.run(chunks([7] * 3000), on_late=told.append)
    assert stats.reanchors == 1 and told == [pytest.approx(0.5, abs=0.002)]
    assert stats.slip == pytest.approx(told[0])  # for good: the schedule absorbs it
    period = UDP_PAYLOAD * 8 / MUX_RATE
    gaps = [b[0] - a[0] for a, b in itertools.pairwise(sink.writes[stall_at + 1 :])]
    # Every datagram after the stall at exactly the nominal interval: 0 ppm, no burst.
    assert min(gaps) == pytest.approx(period, rel=1e-9)
    assert max(gaps) == pytest.approx(period, rel=1e-9)
    at, piece = sink.writes[-1]
    assert at == pytest.approx(piece.byte_offset * 8 / MUX_RATE + stats.slip, abs=1e-9)


def test_a_late_first_byte_is_an_offset_too() -> None:
    """A start that misses its first deadline by more than the window never catches up fast."""
    clock = FrozenClock(T0)
    sink = Recorder(clock)
    told: list[float] = []
    pacer = Pacer(sink, mux_rate=MUX_RATE, clock=clock, sleep=clock.advance)
    source = chunks([7] * 200)
    pacer.run(source, first_due=-0.3, on_late=told.append)  # due 0.3 s before "now"
    assert told == [pytest.approx(0.3)]
    period = UDP_PAYLOAD * 8 / MUX_RATE
    gaps = [b[0] - a[0] for a, b in itertools.pairwise(sink.writes)]
    assert min(gaps) == pytest.approx(period, rel=1e-9)


def test_first_due_anchors_the_stream_to_the_wall_clock() -> None:
    clock = FrozenClock(T0)
    sink = Recorder(clock)
    pacer = Pacer(sink, mux_rate=MUX_RATE, clock=clock, sleep=clock.advance)
    due = pacer.monotonic_at(T0 + timedelta(seconds=2))
    source = chunks([7] * 10)
    pacer.run(source, first_due=due)
    assert sink.writes[0][0] == pytest.approx(2.0)
    assert sink.writes[-1][0] == pytest.approx(2.0 + source[-1].byte_offset * 8 / MUX_RATE)


def test_stop_and_max_seconds() -> None:
    clock = FrozenClock(T0)
    sink = Recorder(clock)
    stats = Pacer(sink, mux_rate=MUX_RATE, clock=clock, sleep=clock.advance).run(
        chunks([7] * 5000), max_seconds=1.0
    )
    assert stats.bytes == pytest.approx(MUX_RATE / 8, abs=UDP_PAYLOAD)


def test_real_clock_never_faster_than_the_mux_rate() -> None:
    """On the real clock, with margins a loaded machine meets: every byte goes, none early.

    However late a wake-up is, the bytes sent by any instant never exceed what the
    mux rate allows by then (plus the 50 ms catch-up burst), and a stall turns into
    an offset rather than a faster rate. bench/playout.py measures the real jitter.
    """
    rate = 4_000_000
    received: list[tuple[float, int]] = []

    class Counter:
        def write(self, chunk: TsChunk) -> None:
            received.append((time.monotonic(), len(chunk.data)))

        def close(self) -> None:
            pass

    source = []
    offset = 0
    for _ in range(round(3.0 * rate / 8 / UDP_PAYLOAD)):
        source.append(
            TsChunk(
                data=b"\x47" + bytes(UDP_PAYLOAD - 1),
                byte_offset=offset,
                frame=0,
                idr=False,
                pcr_90k=None,
            )
        )
        offset += UDP_PAYLOAD
    stats = Pacer(Counter(), mux_rate=rate).run(source)
    assert stats.bytes == len(source) * UDP_PAYLOAD
    times = np.array([t for t, _ in received]) - received[0][0]
    sent = np.cumsum([0] + [n for _, n in received[:-1]]) * 8  # bits before each send
    # Never ahead of the byte clock (the pacer may send up to SEND_AHEAD early)...
    assert (sent / rate - times).max() <= 0.001
    # ... and behind it only by the stalls it has taken as an offset, plus a burst window.
    assert (times - sent / rate).max() <= stats.slip + 0.05 + 0.001
    assert times[-1] >= sent[-1] / rate - 0.001  # 3 s of stream never took less than 3 s


def test_burst_of_two_halves_the_wakeups_and_keeps_pcr_datagrams_on_time() -> None:
    clock = FrozenClock(T0)
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        clock.advance(seconds)

    data = bytearray(packets(7 * 200))
    pcr_packets = set(range(3, 7 * 200, 7 * 7))  # every 7th datagram, at varying slots
    for n in pcr_packets:
        data[n * PACKET_SIZE + 3 : n * PACKET_SIZE + 6] = bytes((0x30, 7, 0x10))
    sink = Recorder(clock)
    pacer = Pacer(sink, mux_rate=MUX_RATE, clock=clock, sleep=sleep, send_ahead=0.0, burst=2)
    stats = pacer.run(
        [TsChunk(data=bytes(data), byte_offset=0, frame=0, idr=True, pcr_90k=None)], prefetch=0
    )
    interval = UDP_PAYLOAD * 8 / MUX_RATE
    assert stats.datagrams == 200 and stats.reanchors == 0
    assert len(sleeps) <= 200 // 2 + len(pcr_packets)  # about one wake-up per two datagrams
    for at, piece in sink.writes:
        ideal = piece.byte_offset * 8 / MUX_RATE
        first_packet = piece.byte_offset // PACKET_SIZE
        if any(first_packet <= n < first_packet + 7 for n in pcr_packets):
            assert at == pytest.approx(ideal, abs=1e-9)  # a PCR is never early
        else:
            assert ideal - interval * 1.06 <= at <= ideal + 1e-9


def pcr_datagrams(seconds: float, rate: int, *, every: int = 2) -> tuple[list[bytes], list[float]]:
    """CBR datagrams, one packet in ``every`` datagrams carrying the PCR of its byte position;
    and each datagram's ideal send time."""
    out: list[bytes] = []
    ideal: list[float] = []
    count = int(seconds * rate / 8 / UDP_PAYLOAD)
    for n in range(count):
        data = bytearray(packets(7, n * UDP_PAYLOAD))
        position = n * UDP_PAYLOAD
        if n % every == 0:
            value = position * 8 * 27_000_000 // rate + 27_000_000  # starts at 1 s
            base, ext = divmod(value, 300)
            data[3] = 0x30
            data[4] = 7
            data[5] = 0x10
            data[6:12] = bytes(
                (
                    (base >> 25) & 0xFF,
                    (base >> 17) & 0xFF,
                    (base >> 9) & 0xFF,
                    (base >> 1) & 0xFF,
                    ((base & 1) << 7) | 0x7E | (ext >> 8),
                    ext & 0xFF,
                )
            )
        out.append(bytes(data))
        ideal.append(position * 8 / rate)
    return out, ideal


def test_arrival_report_reads_rate_offset_steps_and_jitter() -> None:
    """The receiver's view of known arrivals: a rate offset, a stall's step, some jitter."""
    from playout.pacer import arrival_report

    rate = 2_000_000
    datagrams, ideal = pcr_datagrams(31.5, rate)
    rng = np.random.default_rng(9)
    arrivals = np.array(ideal) * (1 + 40e-6)  # 40 ppm slow
    arrivals += rng.uniform(0, 0.0008, len(arrivals))  # 0.8 ms of jitter
    arrivals[len(arrivals) // 2 :] += 0.2  # a 200 ms stall taken as an offset
    report = arrival_report(arrivals.tolist(), datagrams)
    assert len(report.window_ppm) == 3  # whole 10 s windows after the first second
    assert all(p == pytest.approx(40, abs=10) for p in report.window_ppm), report.window_ppm
    assert report.steps_ms == (pytest.approx(200, abs=2),)
    assert report.jitter_ms == pytest.approx(0.8 + 31.5 * 40e-3, abs=0.3)  # jitter + drift
    # The 2 % catch-up of old reads as what it is: -20,000 ppm.
    fast = np.array(ideal) * 0.98
    assert arrival_report(fast.tolist(), datagrams).worst_ppm == pytest.approx(20_000, rel=1e-3)
