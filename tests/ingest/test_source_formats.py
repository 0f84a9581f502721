"""Every source format comes out in house format (checked by tools independent of ingest).

Where each check comes from:
- size, field order, codecs, keyframe positions, sample rate/channels, durations:
  the ffprobe 6.0 static build (test extra), not ingest's ffmpeg 9 or PyAV;
- integrated loudness: pyloudnorm; true peak: ffmpeg's ebur128 filter (peak=true).
"""

from __future__ import annotations

import pytest

from channels.profiles import HD, SD, HouseProfile
from ingest.asset import LessonMetadata
from ingest.pipeline import Ingester, IngestRequest
from ingest.synth import SynthFormat
from tests.ingest.conftest import (
    Synth,
    ebur128_true_peak,
    ffprobe_facts,
    pyloudnorm_lufs,
    stream_seconds,
)

FRAME = 1 / 25


def _check_house(path, profile: HouseProfile, frames: int) -> None:  # type: ignore[no-untyped-def]
    facts = ffprobe_facts(path)
    v, a = facts.video, facts.audio
    assert (v["width"], v["height"]) == (profile.width, profile.height)
    assert v["codec_name"] == profile.video_codec
    assert v["field_order"] == "tt"
    assert v["display_aspect_ratio"] == (
        f"{profile.display_aspect.numerator}:{profile.display_aspect.denominator}"
    )
    assert len(facts.frames) == frames
    assert facts.keyframe_positions == list(range(0, frames, profile.gop_frames))
    assert a["codec_name"] == "mp2"
    assert int(a["sample_rate"]) == 48_000
    assert a["channels"] == 2
    assert abs(stream_seconds(path, "a") - stream_seconds(path, "v")) <= FRAME + 1e-3
    assert abs(stream_seconds(path, "v") - frames * FRAME) <= FRAME + 1e-3
    lufs = pyloudnorm_lufs(path)
    assert -24.5 <= lufs <= -23.5, lufs
    _, true_peak = ebur128_true_peak(path)
    assert true_peak <= -2.0, true_peak


@pytest.mark.parametrize(
    "fmt",
    [
        SynthFormat.HOUSE_SD,
        SynthFormat.P720_30,
        SynthFormat.PORTRAIT,
        SynthFormat.SD43,
        SynthFormat.MONO44K,
        SynthFormat.SURROUND,
        SynthFormat.VFR,
    ],
)
def test_every_source_format_to_house_sd(
    fmt: SynthFormat, synth: Synth, ingester: Ingester
) -> None:
    source = synth(fmt, 4.0)
    outcome = ingester.ingest(
        IngestRequest(
            source=source.path,
            metadata=LessonMetadata(title="两位数乘法", grade="g03", subject="数学"),
            profile=SD,
        )
    )
    assert outcome.stream_copied is (fmt is SynthFormat.HOUSE_SD)
    assert outcome.asset.duration_frames == 100
    _check_house(outcome.asset.path, SD, 100)


@pytest.mark.slow
def test_house_hd_source_is_stream_copied(synth: Synth, ingester: Ingester) -> None:
    source = synth(SynthFormat.HOUSE_HD, 4.0)
    outcome = ingester.ingest(
        IngestRequest(
            source=source.path,
            metadata=LessonMetadata(title="古诗两首", grade="g08", subject="语文"),
            profile=HD,
        )
    )
    assert outcome.stream_copied
    _check_house(outcome.asset.path, HD, 100)


@pytest.mark.slow
def test_sd_4_3_interlaced_source_to_hd_is_pillarboxed(synth: Synth, ingester: Ingester) -> None:
    """BFF 4:3 BT.601 in, TFF 16:9 BT.709 HD out with black bars left and right."""
    import subprocess

    import numpy as np

    from ingest.runner import ffmpeg_path

    source = synth(SynthFormat.SD43, 3.0)
    outcome = ingester.ingest(
        IngestRequest(
            source=source.path,
            metadata=LessonMetadata(title="认识图形", grade="g01", subject="数学"),
            profile=HD,
        )
    )
    assert not outcome.stream_copied
    _check_house(outcome.asset.path, HD, 75)
    assert ffprobe_facts(outcome.asset.path).video.get("color_space") == "bt709"
    gray = subprocess.run(
        [ffmpeg_path(), "-v", "error", "-ss", "1", "-i", str(outcome.asset.path),
         "-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "gray", "pipe:1"],
        capture_output=True, check=True,
    ).stdout  # fmt: skip
    picture = np.frombuffer(gray, dtype=np.uint8).reshape(1080, 1920)
    # 4:3 inside 16:9: 1440 px of picture, 240 px bars either side.
    assert picture[:, :230].max() <= 20 and picture[:, -230:].max() <= 20
    assert picture[:, 300:1600].mean() > 40
