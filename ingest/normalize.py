"""The one encode pass to house format, and the verification of its result.

The loudness decision is taken from the analysis pass (measured on the same 48 kHz
stereo mix the encode makes): linear gain when the predicted true peak stays under
the maximum with codec headroom, otherwise the gain followed by a true-peak limiter
that runs at 4x oversampling (192 kHz) and comes back to 48 kHz. Verification
re-probes the output and re-measures it with the project's meter; a second, audio
only pass corrects a residual loudness error (the video is copied from the first).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from channels.profiles import HouseProfile
from core.errors import SkyclassError
from core.timecode import FPS
from ingest.analysis import HOUSE_AUDIO_FILTER, measure_stream
from ingest.config import IngestConfig
from ingest.house import audio_encode_args, conformance_problems, house_video_filter
from ingest.loudness import LoudnessResult
from ingest.probe import MediaProbe, VideoInfo, probe
from ingest.runner import run_ffmpeg

__all__ = [
    "AudioPlan",
    "NormalizeError",
    "VerifyReport",
    "audio_filter",
    "encode",
    "plan_audio",
    "target_frames",
    "verify",
]

logger = logging.getLogger(__name__)

OVERSAMPLED_RATE = 192_000


class NormalizeError(SkyclassError):
    """The output does not meet the house spec: nothing is registered."""


@dataclass(frozen=True, kw_only=True)
class AudioPlan:
    gain_db: float
    limit: bool  # true-peak limiter after the gain
    ceiling_dbtp: float

    def as_json(self) -> dict[str, object]:
        return {
            "gain_db": round(self.gain_db, 2),
            "limiter": self.limit,
            "ceiling_dbtp": self.ceiling_dbtp,
        }


def plan_audio(
    measured: LoudnessResult, config: IngestConfig, *, trim_db: float = 0.0
) -> AudioPlan:
    """Linear gain to the target when it fits under the true-peak maximum, else gain+limit."""
    gain = config.target_lufs - measured.integrated_lufs + trim_db
    predicted_peak = measured.true_peak_dbtp + gain
    fits = predicted_peak <= config.max_true_peak_dbtp - config.codec_headroom_db
    return AudioPlan(gain_db=gain, limit=not fits, ceiling_dbtp=config.limiter_ceiling_dbtp)


def target_frames(video: VideoInfo) -> int:
    """The programme length on the 25 fps house timeline, in whole frames."""
    return max(1, round(video.duration_seconds * FPS))


def audio_filter(plan: AudioPlan, profile: HouseProfile, frames: int) -> str:
    """Mix to 48 kHz stereo, apply gain (and limiter), pad/trim to exactly `frames`."""
    samples = frames * profile.audio_sample_rate // FPS
    steps = [HOUSE_AUDIO_FILTER, f"volume={plan.gain_db:.3f}dB:precision=double"]
    if plan.limit:
        ceiling = 10 ** (plan.ceiling_dbtp / 20)
        steps += [
            f"aresample={OVERSAMPLED_RATE}:resampler=soxr",
            f"alimiter=limit={ceiling:.5f}:attack=1:release=60:level=false:latency=true",
            f"aresample={profile.audio_sample_rate}:resampler=soxr",
        ]
    steps += ["apad", f"atrim=end_sample={samples}", "asetpts=N/SR/TB"]
    return ",".join(steps)


def encode(
    source: MediaProbe,
    out: Path,
    *,
    profile: HouseProfile,
    plan: AudioPlan,
    copy_video: bool,
    config: IngestConfig,
    field_order: str | None = None,
    progress: Callable[[float], None] | None = None,
) -> int:
    """Write the house-format file; returns its length in frames."""
    assert source.video is not None and source.audio is not None
    video = source.video
    if field_order and field_order != video.field_order:
        video = VideoInfo(**{**video.__dict__, "field_order": field_order})
    frames = video.frames if copy_video else target_frames(video)
    if copy_video:
        video_args = ["-c:v", "copy"]
    else:
        video_args = [
            "-vf", house_video_filter(video, profile),
            "-fps_mode", "cfr",
            *_video_encoder(profile, config),
        ]  # fmt: skip
    # FFmpeg 9's encoders tag interlaced TFF output as "top coded first (swapped)" in
    # the stream parameters, which Matroska would store; the MPEG-TS parser reads the
    # field order from the bitstream instead. So a re-encode goes to TS first and is
    # then remuxed (stream copy, cheap) into the Matroska file that is stored.
    first = out if copy_video else out.with_name(out.stem + ".ts")
    args = [
        "-y", "-i", str(source.path),
        "-map", f"0:{video.index}", "-map", f"0:{source.audio.index}",
        *video_args, "-frames:v", str(frames),
        "-af", audio_filter(plan, profile, frames), *audio_encode_args(profile),
        "-map_metadata", "-1", "-map_chapters", "-1",
        "-f", "matroska" if copy_video else "mpegts", str(first),
    ]  # fmt: skip
    try:
        run_ffmpeg(args, duration_seconds=frames / FPS, progress=progress)
        if not copy_video:
            run_ffmpeg(
                ["-y", "-i", str(first), "-map", "0", "-c", "copy", "-f", "matroska", str(out)]
            )
    finally:
        if first != out:
            first.unlink(missing_ok=True)
    return frames


def _video_encoder(profile: HouseProfile, config: IngestConfig) -> list[str]:
    from ingest.house import video_encode_args

    return video_encode_args(profile, preset=config.x264_preset)


def reaudio(
    encoded: Path,
    source: MediaProbe,
    out: Path,
    *,
    profile: HouseProfile,
    plan: AudioPlan,
    frames: int,
) -> None:
    """A corrective pass: the house video copied from `encoded`, the sound made again
    from the source's audio with a corrected plan (never gain on top of gain)."""
    assert source.audio is not None
    args = [
        "-y", "-i", str(encoded), "-i", str(source.path),
        "-map", "0:v:0", "-map", f"1:{source.audio.index}", "-c:v", "copy",
        "-af", audio_filter(plan, profile, frames), *audio_encode_args(profile),
        "-f", "matroska", str(out),
    ]  # fmt: skip
    run_ffmpeg(args)


@dataclass(frozen=True, kw_only=True)
class VerifyReport:
    probe: MediaProbe
    loudness: LoudnessResult
    frames: int
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


def verify(path: Path, *, profile: HouseProfile, frames: int, config: IngestConfig) -> VerifyReport:
    """Re-probe and re-measure an encoded file against the house spec.

    The probe (a PyAV packet walk) runs in a thread while ffmpeg decodes the audio for
    the meter: both read the whole file, and neither needs the other's result.
    """
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="verify-probe") as pool:
        probed = pool.submit(probe, path)
        # The house file is already 48 kHz stereo, so the piped mix is the file itself.
        loud = measure_stream(path)
        result = probed.result()
    problems = list(conformance_problems(result, profile))
    audio = result.audio
    if audio is None:
        problems.append("no audio in the output")
    else:
        if audio.codec != profile.audio_codec:
            problems.append(f"audio codec {audio.codec}, needs {profile.audio_codec}")
        if audio.sample_rate != profile.audio_sample_rate:
            problems.append(f"audio at {audio.sample_rate} Hz, needs {profile.audio_sample_rate}")
        if audio.channels != profile.audio_channels:
            problems.append(f"{audio.channels} audio channels, needs {profile.audio_channels}")
    video = result.video
    if video is not None:
        if video.frames != frames:
            problems.append(f"{video.frames} video frames, expected {frames}")
        if audio is not None and abs(audio.duration_seconds - frames / FPS) > 1 / FPS + 1e-3:
            problems.append(
                f"audio lasts {audio.duration_seconds:.3f} s, video {frames / FPS:.3f} s"
            )
    if not math.isfinite(loud.integrated_lufs) or (
        abs(loud.integrated_lufs - config.target_lufs) > config.tolerance_lu
    ):
        problems.append(
            f"integrated loudness {loud.integrated_lufs:.2f} LUFS, target "
            f"{config.target_lufs} ±{config.tolerance_lu} LU"
        )
    if loud.true_peak_dbtp > config.max_true_peak_dbtp:
        problems.append(
            f"true peak {loud.true_peak_dbtp:.2f} dBTP above {config.max_true_peak_dbtp} dBTP"
        )
    return VerifyReport(probe=result, loudness=loud, frames=frames, problems=tuple(problems))
