"""Test media for the off-air audits: real playout output, "received" with true arrival times.

Clips are tiny SD house-format files (720x576i25 MPEG-2, MP2 48 kHz stereo) made with
the imageio-ffmpeg binary; their tone is a 1 kHz sine at an exact amplitude, so their
loudness is known: a stereo sine of peak A reads 20*log10(A) - 0.69 + 0.69 LUFS, i.e.
A = 0.0631 gives about -24 LUFS. The playout engine renders a rundown as fast as it
can, and `feed_recorder` hands its datagrams to a `Recorder` with the arrival times a
real-time pacer would give them: playout sends the byte carrying PCR p when the
picture with PTS p is due on the wall clock (tests/playout/test_recovery.py checks
that on real runs), so arrival = day_start + (p - ORIGIN) / 90 kHz.
"""

from __future__ import annotations

import hashlib
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import imageio_ffmpeg
import numpy as np

from compliance.recording import Recorder
from epg.rundown import (
    EventType,
    MediaRef,
    Rundown,
    RundownEvent,
    RundownService,
    SiText,
    StartMode,
)
from mpegts import PACKET_SIZE, UDP_PAYLOAD, packet_array, pcr_array, pcr_flag_array
from playout.asrun.ledger import AsRunLedger, AsRunRecord, journal_path
from playout.engine import ORIGIN, PlayoutEngine

CHANNEL = "zt.skyclass.cn"  # SD, 5 Mb/s, in the sample channels.toml
DAY = date(2026, 9, 1)
DAY_START = datetime(2026, 8, 31, 16, 0, tzinfo=UTC)  # 00:00 Beijing on DAY
FPS = 25
NORMAL = 0.0631  # sine peak for about -24 LUFS (stereo)
LOUD = 0.4  # about -8 LUFS: far outside GY/T 282
MIDHOUR = (10 * 3600 + 30 * 60) * FPS  # 10:30 Beijing: short streams stay in one hour file

SERVICE = RundownService(
    channel_id=CHANNEL,
    name_zh="空中课堂 专题教育",
    name_en="Sky Classroom Thematic Education",
    provider_zh="空中课堂播控中心",
    service_id=120,
    transport_stream_id=20,
    original_network_id=8400,
    profile="sd",
    mux_rate=5_000_000,
)


def make_clip(
    path: Path, seconds: int, *, amplitude: float = NORMAL, pattern: str = "testsrc"
) -> Path:
    """An SD house-format clip: closed 25-frame GOPs, MP2 stereo sine of peak ``amplitude``."""
    if path.exists():
        return path
    tone = f"{amplitude}*sin(2*PI*1000*t)"
    cmd = [
        imageio_ffmpeg.get_ffmpeg_exe(),
        *("-hide_banner", "-loglevel", "error", "-y"),
        *("-f", "lavfi", "-i", f"{pattern}=size=720x576:rate=25:duration={seconds}"),
        *("-f", "lavfi", "-i", f"aevalsrc={tone}|{tone}:s=48000:d={seconds}"),
        *("-vf", "setfield=tff", "-c:v", "mpeg2video", "-g", "25", "-bf", "2"),
        *("-flags", "+ildct+ilme+cgop", "-sc_threshold", "1000000000"),
        *("-b:v", "3M", "-minrate", "3M", "-maxrate", "3M", "-bufsize", "1835k"),
        *("-c:a", "mp2", "-b:a", "192k", "-ar", "48000", "-ac", "2"),
        *("-f", "mpegts", str(path)),
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


@dataclass(frozen=True)
class Clips:
    lesson: MediaRef  # 8 s, -24 LUFS
    short: MediaRef  # 4 s, -24 LUFS
    ad: MediaRef  # 3 s, -24 LUFS
    loud: MediaRef  # 4 s lesson at about -8 LUFS


def make_clips(root: Path) -> Clips:
    root.mkdir(parents=True, exist_ok=True)
    return Clips(
        lesson=media_ref(make_clip(root / "lesson.ts", 8), "lesson8", 200),
        short=media_ref(make_clip(root / "short.ts", 4, pattern="smptebars"), "short4", 100),
        ad=media_ref(make_clip(root / "ad.ts", 3, pattern="rgbtestsrc"), "ad3", 75, "ad"),
        loud=media_ref(make_clip(root / "loud.ts", 4, amplitude=LOUD), "loud4", 100),
    )


def build_rundown(
    specs: Sequence[tuple[str, EventType, MediaRef, int]],
    *,
    start: int,
    ad_break: dict[str, str] | None = None,
    day_start: datetime = DAY_START,
    day: date = DAY,
) -> Rundown:
    """Contiguous events from timeline frame ``start`` of the broadcast day."""
    ad_break = ad_break or {}
    events = []
    frame = start
    for n, (event_id, kind, media, frames) in enumerate(specs):
        events.append(
            RundownEvent(
                event_id=event_id,
                eit_event_id=1000 + n,
                type=kind,
                start_mode=StartMode.SEQUENTIAL,
                hard=False,
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
        broadcast_date=day,
        day_start=day_start,
        schedule_version=1,
        compiled_at=day_start - timedelta(days=1),
        events=tuple(events),
    )


@dataclass(frozen=True)
class Aired:
    data: bytes
    records: list[AsRunRecord]


def render(rundown: Rundown, frames: int | None = None) -> Aired:
    """The whole rundown as playout sends it (fast), and its as-run records."""
    engine = PlayoutEngine(rundown, hot_reload=False)
    first = rundown.events[0].start_frame
    total = frames or (rundown.events[-1].end_frame - first)
    data = b"".join(c.data for c in engine.chunks(first, duration_frames=total))
    return Aired(data=data, records=list(engine.records))


def arrival_times(data: bytes, day_start: datetime = DAY_START) -> np.ndarray:
    """Unix arrival time of every 1316-byte datagram, as a real-time pacer sends it."""
    arr = packet_array(data)
    rows = np.flatnonzero(pcr_flag_array(arr))
    pcr_base = pcr_array(arr[rows]) // 300
    wall = day_start.timestamp() + (pcr_base - ORIGIN) / 90_000
    offsets = rows * PACKET_SIZE
    starts = np.arange(0, len(data), UDP_PAYLOAD)
    # Linear between PCRs (CBR), extended at the ends with the first/last rate.
    slope = (wall[-1] - wall[0]) / (offsets[-1] - offsets[0])
    times = np.interp(starts, offsets, wall)
    times = np.where(starts < offsets[0], wall[0] - (offsets[0] - starts) * slope, times)
    return np.where(starts > offsets[-1], wall[-1] + (starts - offsets[-1]) * slope, times)


def feed_recorder(
    recorder: Recorder,
    data: bytes,
    *,
    day_start: datetime = DAY_START,
    drop: tuple[float, float] | None = None,
    rtp: bool = False,
) -> None:
    """Send ``data`` through ``recorder`` as received datagrams; ``drop`` is a (from, to)
    window in seconds after the first datagram during which nothing arrives."""
    times = arrival_times(data, day_start)
    first = times[0]
    for n, at in enumerate(times):
        if drop is not None and drop[0] <= at - first < drop[1]:
            continue
        chunk = data[n * UDP_PAYLOAD : (n + 1) * UDP_PAYLOAD]
        if rtp:
            header = bytes((0x80, 33)) + (n & 0xFFFF).to_bytes(2, "big") + bytes(8)
            chunk = header + chunk
        recorder.feed(chunk, datetime.fromtimestamp(float(at), UTC))


def finish(recorder: Recorder, data: bytes, *, day_start: datetime = DAY_START) -> None:
    """Stop ``recorder`` just after the last datagram of ``data`` (no gap at the stop)."""
    last = float(arrival_times(data, day_start)[-1])
    recorder.close(datetime.fromtimestamp(last, UTC) + timedelta(milliseconds=10))


def write_asrun(var_dir: Path, records: Sequence[AsRunRecord]) -> AsRunLedger:
    ledger = AsRunLedger(journal_path(var_dir, records[0].channel_id))
    for record in records:
        ledger.append(record)
    return ledger


def shifted(rundown: Rundown, day_start: datetime, day: date) -> Rundown:
    return replace(rundown, day_start=day_start, broadcast_date=day)
