"""Batched sends: the datagrams the burst rule lets go at one wake-up leave in one call.

Timing is checked on a fake clock against the one-datagram-per-call pacer (the
behaviour before batching is the judge: every datagram must leave at the same
instant); the UDP side on real loopback sockets, where the kernel's own UDP
segmentation cuts a run into datagrams and a plain receiving socket is the judge.
"""

from __future__ import annotations

import errno
import socket
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest

from core.clock import FrozenClock
from mpegts import PACKET_SIZE, UDP_PAYLOAD
from playout.outputs import FanOut, FileOutput, UdpOutput
from playout.pacer import Pacer
from playout.stream import DatagramSend, TsChunk

MUX_RATE = 10_000_000
INTERVAL = UDP_PAYLOAD * 8 / MUX_RATE
T0 = datetime(2026, 9, 1, tzinfo=UTC)


def packets(n: int, offset: int = 0) -> bytes:
    """n TS packets whose payload bytes encode their packet index (to check order)."""
    out = bytearray()
    for k in range(n):
        index = (offset // PACKET_SIZE + k) & 0xFFFFFF
        out += bytes([0x47, 0x1F, 0xFF, 0x10]) + index.to_bytes(3, "big") * 61 + b"\xff"
    return bytes(out)


def with_pcrs(data: bytes, every: int) -> bytes:
    """Marks every ``every``-th packet (from packet 3) as carrying a PCR."""
    out = bytearray(data)
    for n in range(3, len(data) // PACKET_SIZE, every):
        out[n * PACKET_SIZE + 3 : n * PACKET_SIZE + 6] = bytes((0x30, 7, 0x10))
    return bytes(out)


def engine_chunks(sizes: list[int], *, pcr_every: int = 37) -> list[TsChunk]:
    """Engine-like chunks of the given packet counts (not datagram-aligned)."""
    out, offset = [], 0
    for size in sizes:
        data = with_pcrs(packets(size, offset), pcr_every)
        out.append(TsChunk(data=data, byte_offset=offset, frame=0, idr=False, pcr_90k=None))
        offset += len(data)
    return out


class PacedRecorder:
    """A PacedSink noting the fake clock at every call (``paced_batch`` datagrams a call)."""

    def __init__(self, clock: FrozenClock, batch: int) -> None:
        self.clock = clock
        self.paced_batch = batch
        self.calls: list[tuple[float, int, bytes]] = []  # (time, byte offset, piece)

    def paced(self, chunk: TsChunk) -> DatagramSend:
        def send(piece: memoryview, byte_offset: int) -> None:
            self.calls.append((self.clock.monotonic(), byte_offset, bytes(piece)))

        return send

    def write(self, chunk: TsChunk) -> None:
        raise AssertionError("the pacer uses the fast path")

    def close(self) -> None:
        pass

    def datagram_times(self) -> dict[int, float]:
        """When each datagram (by its engine byte offset, on the 1316-byte grid) left."""
        out: dict[int, float] = {}
        for at, offset, piece in self.calls:
            for start in range(0, len(piece), UDP_PAYLOAD):
                out[offset + start] = at
        return out


def pace(
    batch: int, source: list[TsChunk], *, stall: Callable[[int], float] = lambda n: 0.0
) -> tuple[PacedRecorder, list[float], Pacer]:
    clock = FrozenClock(T0)
    clock.advance(100.0)
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        clock.advance(seconds + stall(len(sleeps)))

    sink = PacedRecorder(clock, batch)
    pacer = Pacer(sink, mux_rate=MUX_RATE, clock=clock, sleep=sleep, send_ahead=0.0, burst=4)
    pacer.run(source, prefetch=0)
    return sink, sleeps, pacer


def test_a_batch_leaves_each_datagram_when_one_by_one_sends_did() -> None:
    # Judge: the same pacer one datagram per call (the behaviour before batching).
    source = engine_chunks([150, 7, 293, 1, 54, 410, 3] * 5)
    single, single_sleeps, single_pacer = pace(1, source)
    batched, batched_sleeps, batched_pacer = pace(8, source)
    assert b"".join(p for _, _, p in batched.calls) == b"".join(c.data for c in source)
    assert batched.datagram_times() == single.datagram_times()
    assert batched_sleeps == single_sleeps
    assert batched_pacer.stats.datagrams == single_pacer.stats.datagrams
    # One call per wake-up (plus the chunks' short heads and tails), not one per datagram.
    assert len(batched.calls) <= len(batched_sleeps) + 2 * len(source)
    assert len(batched.calls) < len(single.calls) / 2
    for _, _, piece in batched.calls:
        assert len(piece) % PACKET_SIZE == 0 and len(piece) <= 8 * UDP_PAYLOAD


def test_a_pcr_datagram_is_never_sent_early_inside_a_batch() -> None:
    source = engine_chunks([700], pcr_every=11)
    sink, _, _ = pace(8, source)
    for at, offset, piece in sink.calls:
        for start in range(0, len(piece), UDP_PAYLOAD):
            ideal = 100.0 + (offset + start) * 8 / MUX_RATE
            datagram = piece[start : start + UDP_PAYLOAD]
            pcr = any(
                datagram[p + 3] & 0x20 and datagram[p + 5] & 0x10
                for p in range(0, len(datagram), PACKET_SIZE)
            )
            if pcr:
                assert at == pytest.approx(ideal, abs=1e-9)
            else:  # the burst rule: at most 3 intervals early (burst=4), never late
                assert ideal - 3 * INTERVAL * 1.06 <= at <= ideal + 1e-9


def test_a_backlog_goes_in_batches_with_the_same_lateness_accounting() -> None:
    """A 30 ms stall (inside the 50 ms catch-up window) and a 120 ms one (a re-anchor)."""
    source = engine_chunks([140] * 40)

    def stall(n: int) -> float:
        return {20: 0.030, 150: 0.120}.get(n, 0.0)

    single, _, single_pacer = pace(1, source, stall=stall)
    batched, _, batched_pacer = pace(8, source, stall=stall)
    one, many = single_pacer.stats, batched_pacer.stats
    assert many.reanchors == one.reanchors == 1
    assert many.slip == pytest.approx(one.slip, abs=1e-9)
    assert many.max_late == pytest.approx(one.max_late, abs=1e-9)
    assert many.late_sends == one.late_sends > 0
    assert batched.datagram_times() == single.datagram_times()
    assert max(len(p) for _, _, p in batched.calls) == 8 * UDP_PAYLOAD  # the backlog batched


@pytest.fixture
def receiver() -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(1.0)
    yield sock
    sock.close()


def drain(sock: socket.socket, count: int) -> list[bytes]:
    return [sock.recv(4096) for _ in range(count)]


def test_a_run_of_datagrams_arrives_as_1316_byte_datagrams_in_order(
    receiver: socket.socket,
) -> None:
    # Judge: the kernel segments the run; a plain socket sees each datagram.
    out = UdpOutput("127.0.0.1", receiver.getsockname()[1], mux_rate=MUX_RATE)
    data = packets(7 * 20)
    chunk = TsChunk(data=data, byte_offset=0, frame=0, idr=True, pcr_90k=None)
    send = out.paced(chunk)
    view = memoryview(data)
    send(view[: 13 * UDP_PAYLOAD], 0)
    send(view[13 * UDP_PAYLOAD : 14 * UDP_PAYLOAD], 13 * UDP_PAYLOAD)
    send(view[14 * UDP_PAYLOAD :], 14 * UDP_PAYLOAD)
    got = drain(receiver, 20)
    assert [len(d) for d in got] == [UDP_PAYLOAD] * 20
    assert b"".join(got) == data
    assert out.stats.datagrams == 20 and out.stats.dropped == 0
    out.close()


class RefusesSegmentation:
    """A connected socket whose route cannot segment (as without checksum offload)."""

    def __init__(self, inner: socket.socket) -> None:
        self.inner = inner
        self.refused = 0

    def send(self, data: memoryview) -> int:
        if len(data) > UDP_PAYLOAD:
            self.refused += 1
            raise OSError(errno.EIO, "Input/output error")
        return self.inner.send(data)


def test_a_refused_segmentation_falls_back_to_one_send_per_datagram(
    receiver: socket.socket,
) -> None:
    # Judge: a plain receiving socket; the refusal is simulated (a route without offload).
    out = UdpOutput("127.0.0.1", receiver.getsockname()[1], mux_rate=MUX_RATE)
    assert out._fast is not None
    fake = RefusesSegmentation(out._fast)
    out._fast = fake  # type: ignore[assignment]
    data = packets(7 * 12)
    send = out.paced(TsChunk(data=data, byte_offset=0, frame=0, idr=True, pcr_90k=None))
    send(memoryview(data)[: 6 * UDP_PAYLOAD], 0)
    send(memoryview(data)[6 * UDP_PAYLOAD :], 6 * UDP_PAYLOAD)
    got = drain(receiver, 12)
    assert b"".join(got) == data and {len(d) for d in got} == {UDP_PAYLOAD}
    assert fake.refused == 1  # tried once, then one by one for good
    assert out.stats.datagrams == 12 and out.stats.dropped == 0
    out._fast = fake.inner
    out.close()


def test_fanout_batches_only_when_every_inline_output_takes_runs(tmp_path: object) -> None:
    from pathlib import Path

    assert isinstance(tmp_path, Path)
    udp = UdpOutput("127.0.0.1", 9, mux_rate=MUX_RATE)
    file = FileOutput(tmp_path / "out.ts")  # queued: gets whole chunks, whatever the batch
    assert FanOut([udp, file]).paced_batch == UdpOutput.paced_batch > 1

    class InlineWithoutRuns(FileOutput):
        nonblocking = True  # inline, and its write wants one datagram at a time

    inline = InlineWithoutRuns(tmp_path / "inline.ts")
    assert FanOut([udp, inline]).paced_batch == 1
    udp.close()
    inline.close()


def test_paced_udp_in_real_time_delivers_every_datagram(receiver: socket.socket) -> None:
    """1 s at 10 Mb/s through FanOut → UDP with batching on: all there, in order, whole."""
    # Judge: a plain receiving socket; loose timing bounds a loaded machine meets.
    source = engine_chunks([67] * 80, pcr_every=40)
    out = UdpOutput("127.0.0.1", receiver.getsockname()[1], mux_rate=MUX_RATE)
    fan = FanOut([out])
    started = time.monotonic()
    stats = Pacer(fan, mux_rate=MUX_RATE, burst=4).run(source)
    took = time.monotonic() - started
    fan.close()
    total = sum(len(c.data) for c in source)
    got = drain(receiver, -(-total // UDP_PAYLOAD))
    assert b"".join(got)[:total] == b"".join(c.data for c in source)
    assert all(len(d) == UDP_PAYLOAD for d in got)
    assert stats.datagrams >= total // UDP_PAYLOAD
    assert took >= total * 8 / MUX_RATE - 4 * INTERVAL  # never faster than the mux rate


def test_the_burst_is_a_time_window_whatever_the_rate() -> None:
    """`playout run` lets non-PCR datagrams leave at most 7.5 ms early at any mux rate."""
    from playout.cli import PACING_BURST_SECONDS, pacing_burst

    for rate, expected in ((10_000_000, 8), (5_000_000, 4), (4_000_000, 3), (1_000_000, 1)):
        burst = pacing_burst(rate)
        assert burst == expected, rate
        assert (burst - 1) * UDP_PAYLOAD * 8 / rate <= PACING_BURST_SECONDS
