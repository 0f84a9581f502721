"""The pacer: absolute byte-derived deadlines (fake clock), catch-up rules, real-clock rate."""

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


def test_long_stall_reanchors_and_recovers_without_a_burst() -> None:
    clock = FrozenClock(T0)
    stall_at = 100

    def stall(n: int) -> None:
        if n == stall_at:
            clock.advance(0.5)  # half a second lost (swap, a frozen disk)

    sink = Recorder(clock, stall)
    pacer = Pacer(sink, mux_rate=MUX_RATE, clock=clock, sleep=clock.advance, catchup_overspeed=0.02)
    stats = pacer.run(chunks([7] * 30_000))  # ~32 s: long enough to work off 0.5 s at 2 %
    assert stats.reanchors == 1
    period = UDP_PAYLOAD * 8 / MUX_RATE
    gaps = [b[0] - a[0] for a, b in itertools.pairwise(sink.writes[stall_at:])]
    # No burst: while slipping, datagrams go 2 % faster than nominal, never back to back.
    assert min(gaps[:1000]) == pytest.approx(period * 0.98, rel=1e-6)
    assert stats.slip == 0.0  # worked off: the wall-clock offset is what it was at launch
    at, piece = sink.writes[-1]
    assert at == pytest.approx(piece.byte_offset * 8 / MUX_RATE, abs=1e-6)


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


def test_real_clock_rate_within_half_a_percent() -> None:
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
    # The slope of bytes against send time (a fit, so one late wake-up on a busy
    # machine does not decide the result).
    times = np.array([t for t, _ in received]) - received[0][0]
    sent = np.cumsum([0] + [n for _, n in received[:-1]]) * 8
    slope = np.polyfit(times, sent, 1)[0]
    assert slope == pytest.approx(rate, rel=0.005)
    assert times[-1] == pytest.approx(sent[-1] / rate, abs=0.05)
    assert stats.bytes == len(source) * UDP_PAYLOAD


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
