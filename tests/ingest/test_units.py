"""Pure parts of ingest: runner parsing, house arguments, picture fit, QC parsers, detectors."""

from __future__ import annotations

import logging
from fractions import Fraction

import numpy as np
import pytest

from channels.profiles import HD, SD
from ingest.analysis import (
    ClipDetector,
    SilenceDetector,
    field_order_from_idet,
    parse_blackdetect,
    parse_freezedetect,
    parse_idet,
)
from ingest.config import IngestConfig
from ingest.house import fit_picture, video_encode_args
from ingest.loudness import LoudnessResult
from ingest.normalize import plan_audio
from ingest.runner import (
    FfmpegError,
    iter_ffmpeg,
    log_level_of,
    parse_progress_block,
    run_ffmpeg,
)


def test_progress_block_and_log_levels() -> None:
    block = parse_progress_block(["frame=25", "out_time_us=1000000", "progress=continue"])
    assert block["out_time_us"] == "1000000"
    assert log_level_of("[h264 @ 0x1] [error] corrupt") == logging.ERROR
    assert log_level_of("[out#0] [warning] something") == logging.WARNING
    assert log_level_of("[info] Stream mapping:") == logging.DEBUG


def test_ffmpeg_error_carries_command_and_stderr_tail() -> None:
    with pytest.raises(FfmpegError) as caught:
        run_ffmpeg(["-i", "/nonexistent/input.mkv", "-f", "null", "-"])
    assert "/nonexistent/input.mkv" in caught.value.cmdline
    assert "No such file" in caught.value.stderr_tail
    assert caught.value.returncode != 0


def test_iter_ffmpeg_yields_progress_to_one() -> None:
    runner = iter_ffmpeg(
        ["-f", "lavfi", "-i", "testsrc=d=2:s=160x120", "-f", "null", "-"], duration_seconds=2
    )
    seen = []
    while True:
        try:
            seen.append(next(runner))
        except StopIteration as stop:
            assert stop.value.returncode == 0
            break
    assert seen and seen[-1] == 1.0 and seen == sorted(seen)


def test_hd_encode_args_are_the_house_format() -> None:
    args = video_encode_args(HD)
    joined = " ".join(args)
    for expected in ("+ildct+ilme", "tff=1", "keyint=25:min-keyint=25:scenecut=0:open-gop=0",
                     "nal-hrd=cbr", "-profile:v high", "-level:v 4.0", "-colorspace bt709",
                     "-b:v 8000k -minrate 8000k -maxrate 8000k"):  # fmt: skip
        assert expected in joined


def test_sd_encode_args_are_the_house_format() -> None:
    joined = " ".join(video_encode_args(SD))
    expected_args = (
        "-g 25", "-bf 2", "+ildct+ilme+cgop", "-sc_threshold 1000000000",
        "-b:v 4000k -minrate 4000k -maxrate 4000k", "-colorspace bt470bg",
    )  # fmt: skip
    for expected in expected_args:
        assert expected in joined


@pytest.mark.parametrize(
    ("dar", "profile", "size", "boxed"),
    [
        (Fraction(9, 16), HD, (608, 1080), "pillarbox"),  # phone portrait
        (Fraction(4, 3), HD, (1440, 1080), "pillarbox"),
        (Fraction(16, 9), HD, (1920, 1080), "none"),
        (Fraction(239, 100), HD, (1920, 804), "letterbox"),
        (Fraction(16, 9), SD, (720, 432), "letterbox"),  # SAR 16:15 pixels
        (Fraction(4, 3), SD, (720, 576), "none"),
    ],
)
def test_fit_keeps_the_display_aspect(dar, profile, size, boxed) -> None:  # type: ignore[no-untyped-def]
    fit = fit_picture(dar, profile)
    assert (fit.width, fit.height) == size
    assert fit.boxed == boxed
    shown = Fraction(fit.width, fit.height) * profile.sample_aspect
    assert abs(float(shown - dar)) < 0.01


BLACK_LOG = """
[blackdetect @ 0x5581] [info] black_start:30 black_end:33 black_duration:3
[Parsed_blackdetect_2 @ 0x5] [info] black_start:40.04 black_end:41.2 black_duration:1.16
"""
FREEZE_LOG = """
[freezedetect @ 0x1] [info] lavfi.freezedetect.freeze_start: 15.04
[freezedetect @ 0x1] [info] lavfi.freezedetect.freeze_duration: 3.96
[freezedetect @ 0x1] [info] lavfi.freezedetect.freeze_end: 19
[freezedetect @ 0x1] [info] lavfi.freezedetect.freeze_start: 55
"""
IDET_LOG = """
[Parsed_idet_1 @ 0x2] [info] Repeated Fields: Neither:   501 Top:     0 Bottom:     0
[Parsed_idet_1 @ 0x2] [info] Single frame detection: TFF:   300 BFF:     0 Progressive:   200
[Parsed_idet_1 @ 0x2] [info] Multi frame detection: TFF:   480 BFF:     0 \
Progressive:    20 Undetermined:     1
"""


def test_filter_report_parsers() -> None:
    black = parse_blackdetect(BLACK_LOG.splitlines())
    assert [(s.start, s.end) for s in black] == [(30.0, 33.0), (40.04, 41.2)]
    freeze = parse_freezedetect(FREEZE_LOG.splitlines(), duration=60.0)
    assert [(s.start, s.end) for s in freeze] == [(15.04, 19.0), (55.0, 60.0)]
    counts = parse_idet(IDET_LOG.splitlines())
    assert counts == {"tff": 480, "bff": 0, "progressive": 20, "undetermined": 1}
    assert field_order_from_idet(counts, 0.5) == "tff"


def test_silence_and_clip_detectors_across_blocks() -> None:
    rate = 48_000
    rng = np.random.default_rng(1)
    audio = (0.1 * rng.standard_normal((rate * 6, 2))).astype(np.float32)
    audio[rate * 2 : rate * 5] = 0.0  # 3 s silence
    audio[100:110, 0] = 1.0  # one clip of 10 samples
    audio[rate - 2 : rate + 3, 1] = -1.0  # one clip straddling the block edge
    silence = SilenceDetector(rate, -50.0, 2.0)
    clips = ClipDetector(0.999, 3)
    for start in range(0, len(audio), rate):
        silence.feed(audio[start : start + rate])
        clips.feed(audio[start : start + rate])
    assert [(s.start, s.end) for s in silence.finish()] == [(2.0, 5.0)]
    assert clips.events == 2 and clips.samples == 15


def _measured(lufs: float, peak: float) -> LoudnessResult:
    return LoudnessResult(integrated_lufs=lufs, lra=5.0, true_peak_dbtp=peak,
                          max_momentary_lufs=lufs + 5, max_short_term_lufs=lufs + 3,
                          sample_peak_dbfs=peak, duration_seconds=10.0)  # fmt: skip


def test_linear_gain_when_it_fits_else_true_peak_limiter() -> None:
    config = IngestConfig()
    linear = plan_audio(_measured(-20.0, -6.0), config)  # -4 dB: peak -10 dBTP
    assert not linear.limit and linear.gain_db == pytest.approx(-4.0)
    limited = plan_audio(_measured(-34.0, -6.0), config)  # +10 dB: peak would be +4 dBTP
    assert limited.limit and limited.gain_db == pytest.approx(10.0)
    # The chains each plan becomes: tests/ingest/test_commands.py.
