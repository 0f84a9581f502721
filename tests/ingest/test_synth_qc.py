"""Synthetic lessons look and sound like lessons; QC finds the defects put into them."""

from __future__ import annotations

import subprocess

import numpy as np

from channels.profiles import HD, SD
from ingest.analysis import analyze
from ingest.asset import AssetKind, LessonMetadata
from ingest.config import QcThresholds
from ingest.house import conforms
from ingest.pipeline import Ingester, IngestRequest
from ingest.probe import probe
from ingest.runner import ffmpeg_path
from ingest.synth import Defect, SynthFormat
from tests.ingest.conftest import Synth, decode_pcm, ebur128_true_peak, pyloudnorm_lufs


def _freezedetect_fires(path) -> bool:  # type: ignore[no-untyped-def]
    """ffmpeg's own freezedetect, run separately from ingest's analysis graph."""
    err = subprocess.run(
        [ffmpeg_path(), "-hide_banner", "-i", str(path), "-map", "0:v",
         "-vf", "freezedetect=n=-50dB:d=2", "-f", "null", "-"],
        capture_output=True, check=True,
    ).stderr.decode()  # fmt: skip
    return "freeze_start" in err


def test_house_synth_conforms_and_is_not_frozen(synth: Synth) -> None:
    lesson = synth(SynthFormat.HOUSE_SD, 12.0)
    assert conforms(probe(lesson.path), SD)
    assert not _freezedetect_fires(lesson.path)
    assert _freezedetect_fires(synth(SynthFormat.HOUSE_SD, 12.0, (Defect.FREEZE,)).path)


def test_synth_ends_on_the_frame_asked_for(synth: Synth) -> None:
    """A length off the whole second ends in a short closed GOP, still house format."""
    lesson = synth(SynthFormat.HOUSE_SD, 2.4)
    probed = probe(lesson.path)
    assert lesson.duration_frames == 60
    assert probed.video is not None and probed.video.frames == 60
    assert probed.video.keyframes == (0, 25, 50)
    assert conforms(probed, SD)


def test_synth_audio_is_speech_like_with_pauses(synth: Synth) -> None:
    samples = decode_pcm(synth(SynthFormat.HOUSE_SD, 12.0).path)[:, 0]
    blocks = samples[: len(samples) // 4800 * 4800].reshape(-1, 4800)  # 100 ms
    level = 20 * np.log10(np.sqrt(np.mean(blocks**2, axis=1)) + 1e-12)
    quiet = float(np.mean(level < -45))
    assert 0.1 < quiet < 0.6  # pauses between phrases, not a constant tone
    assert np.std(level[level > -45]) > 2  # syllables rise and fall
    assert -21.5 < pyloudnorm_lufs(synth(SynthFormat.HOUSE_SD, 12.0).path) < -18.5


def test_qc_reports_defects_as_warnings(synth: Synth, ingester: Ingester) -> None:
    source = synth(
        SynthFormat.HOUSE_SD, 16.0, (Defect.BLACK, Defect.FREEZE, Defect.SILENCE, Defect.CLIPPING)
    )
    outcome = ingester.ingest(
        IngestRequest(
            source=source.path,
            metadata=LessonMetadata(title="有问题的课", grade="g05", subject="科学"),
            profile=SD,
        )
    )
    codes = {f.code for f in outcome.qc.warnings}
    assert {"black", "freeze", "silence", "clipping"} <= codes
    black = outcome.qc.black[0]
    assert (black.start, black.end) == source.defect_spans["black"]
    assert outcome.asset.qc_warnings  # stored with the asset for the reviewer


def test_hd_keyframe_analysis_finds_black_and_freeze(synth: Synth) -> None:
    """A conforming HD source is analysed on its keyframes only (non-key packets are
    dropped before the decoder); black and freeze are still found where they are."""
    source = synth(SynthFormat.HOUSE_HD, 16.0, (Defect.BLACK, Defect.FREEZE))
    media = probe(source.path)
    assert conforms(media, HD)
    sampled = analyze(media, QcThresholds(), keyframes_only=True)
    full = analyze(media, QcThresholds(), keyframes_only=False)
    assert [(s.start, s.end) for s in sampled.black] == [source.defect_spans["black"]]
    assert sampled.freeze and full.freeze
    assert sampled.loudness == full.loudness  # the sound is measured in full either way
    assert sampled.decode_errors == 0


def test_quiet_programme_with_peaks_is_limited(synth: Synth, ingester: Ingester) -> None:
    """-34 LUFS with chalk taps: +10 dB would clip, so the true-peak limiter runs."""
    source = synth(SynthFormat.HOUSE_SD, 8.0, (Defect.QUIET,))
    outcome = ingester.ingest(
        IngestRequest(
            source=source.path,
            metadata=LessonMetadata(title="安静", grade="g03", subject="音乐"),
            profile=SD,
        )
    )
    assert outcome.asset.qc["audio_plan"]["limiter"] is True
    assert -24.5 <= pyloudnorm_lufs(outcome.asset.path) <= -23.5  # pyloudnorm
    assert ebur128_true_peak(outcome.asset.path)[1] <= -2.0  # ffmpeg ebur128 true peak


def test_loud_programme_gets_linear_gain_and_filler_kind(synth: Synth, ingester: Ingester) -> None:
    source = synth(SynthFormat.MONO44K, 4.0, (Defect.LOUD,))
    outcome = ingester.ingest(
        IngestRequest(
            source=source.path,
            metadata=LessonMetadata(title="垫片"),
            profile=SD,
            kind=AssetKind.FILLER,
        )
    )
    plan = outcome.asset.qc["audio_plan"]
    assert plan["limiter"] is False and plan["gain_db"] < -8
    assert outcome.asset.kind is AssetKind.FILLER and outcome.asset.grade is None
    assert -24.5 <= pyloudnorm_lufs(outcome.asset.path) <= -23.5
