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

import ffmpeg

from channels.profiles import HouseProfile
from core.timecode import FPS
from ingest.analysis import house_audio_mix, measure_stream
from ingest.config import IngestConfig
from ingest.errors import NormalizeError
from ingest.house import (
    audio_encode_options,
    conformance_problems,
    house_video_chain,
    video_encode_options,
)
from ingest.loudness import LoudnessResult
from ingest.probe import MediaProbe, VideoInfo, probe
from ingest.runner import Stream, compile_args, run_ffmpeg

__all__ = [
    "AudioPlan",
    "NormalizeError",
    "VerifyReport",
    "audio_chain",
    "encode",
    "encode_command",
    "plan_audio",
    "reaudio",
    "reaudio_command",
    "remux_command",
    "target_frames",
    "verify",
]

logger = logging.getLogger(__name__)

OVERSAMPLED_RATE = 192_000


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


def audio_chain(stream: Stream, plan: AudioPlan, profile: HouseProfile, frames: int) -> Stream:
    """Mix to 48 kHz stereo, apply gain (and limiter), pad/trim to exactly `frames`."""
    samples = frames * profile.audio_sample_rate // FPS
    sound = house_audio_mix(stream).filter("volume", f"{plan.gain_db:.3f}dB", precision="double")
    if plan.limit:
        ceiling = 10 ** (plan.ceiling_dbtp / 20)
        sound = (
            sound.filter("aresample", OVERSAMPLED_RATE, resampler="soxr")
            .filter("alimiter", limit=f"{ceiling:.5f}", attack=1, release=60,
                    level="false", latency="true")
            .filter("aresample", profile.audio_sample_rate, resampler="soxr")
        )  # fmt: skip
    return sound.filter("apad").filter("atrim", end_sample=samples).filter("asetpts", "N/SR/TB")


def encode_command(
    source: MediaProbe,
    out: Path,
    *,
    profile: HouseProfile,
    plan: AudioPlan,
    copy_video: bool,
    frames: int,
    config: IngestConfig,
    video: VideoInfo | None = None,
) -> list[str]:
    """The one encode pass as ffmpeg argv: house video (or a copy) and the sound, `frames`
    long, to `out` as Matroska (copy) or MPEG-TS (re-encode, see `encode`)."""
    assert source.video is not None and source.audio is not None
    video = video or source.video
    media = ffmpeg.input(str(source.path))
    picture = media[str(video.index)]
    options: dict[str, object]
    if copy_video:
        options = {"c:v": "copy"}
    else:
        picture = house_video_chain(picture, video, profile)
        options = {
            "fps_mode": "cfr",
            **video_encode_options(profile, preset=config.x264_preset),
        }
    sound = audio_chain(media[str(source.audio.index)], plan, profile, frames)
    output = ffmpeg.output(
        picture,
        sound,
        str(out),
        f="matroska" if copy_video else "mpegts",
        **options,
        **{"frames:v": frames},
        **audio_encode_options(profile),
        map_metadata=-1,
        map_chapters=-1,
    )
    return compile_args(output, overwrite=True)


def remux_command(source: Path, out: Path) -> list[str]:
    """Every stream of `source` copied into Matroska."""
    remux = ffmpeg.input(str(source)).output(str(out), f="matroska", c="copy", map=0)
    return compile_args(remux, overwrite=True)


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
    # FFmpeg 9's encoders tag interlaced TFF output as "top coded first (swapped)" in
    # the stream parameters, which Matroska would store; the MPEG-TS parser reads the
    # field order from the bitstream instead. So a re-encode goes to TS first and is
    # then remuxed (stream copy, cheap) into the Matroska file that is stored.
    first = out if copy_video else out.with_name(out.stem + ".ts")
    args = encode_command(
        source, first, profile=profile, plan=plan, copy_video=copy_video, frames=frames,
        config=config, video=video,
    )  # fmt: skip
    try:
        run_ffmpeg(args, duration_seconds=frames / FPS, progress=progress)
        if not copy_video:
            run_ffmpeg(remux_command(first, out))
    finally:
        if first != out:
            first.unlink(missing_ok=True)
    return frames


def reaudio_command(
    encoded: Path,
    source: MediaProbe,
    out: Path,
    *,
    profile: HouseProfile,
    plan: AudioPlan,
    frames: int,
) -> list[str]:
    """ffmpeg argv of the corrective pass (see `reaudio`)."""
    assert source.audio is not None
    house = ffmpeg.input(str(encoded))
    original = ffmpeg.input(str(source.path))
    sound = audio_chain(original[str(source.audio.index)], plan, profile, frames)
    output = ffmpeg.output(
        house["v:0"], sound, str(out), f="matroska", **{"c:v": "copy"},
        **audio_encode_options(profile),
    )  # fmt: skip
    return compile_args(output, overwrite=True)


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
    run_ffmpeg(reaudio_command(encoded, source, out, profile=profile, plan=plan, frames=frames))


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
