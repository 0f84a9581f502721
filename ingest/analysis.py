"""QC analysis in one decode: picture detectors in ffmpeg, sound detectors in Python.

One ffmpeg process decodes the file once. Its video goes through idet, blackdetect and
freezedetect (their reports come back on stderr); its audio, already resampled and
downmixed exactly as the encode will do it (48 kHz stereo), comes back on stdout as
float PCM and is fed to the same streaming BS.1770-4 meter that `skyclass loudness`
uses, plus the silence and clipping detectors below. The gain decision is therefore
taken on the very signal that will be encoded.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import ffmpeg
import numpy as np
import numpy.typing as npt

from ingest.config import QcThresholds
from ingest.loudness import LoudnessMeter, LoudnessResult
from ingest.probe import MediaProbe
from ingest.runner import FfmpegPipe, Stream, compile_args

__all__ = [
    "Analysis",
    "ClipDetector",
    "QcFinding",
    "QcReport",
    "Segment",
    "Severity",
    "SilenceDetector",
    "analysis_command",
    "analyze",
    "house_audio_mix",
    "measure_stream",
    "measure_stream_command",
    "parse_blackdetect",
    "parse_freezedetect",
    "parse_idet",
]

logger = logging.getLogger(__name__)

ANALYSIS_RATE = 48_000
ANALYSIS_CHANNELS = 2
IDET_SAMPLE_FRAMES = 500


def house_audio_mix(stream: Stream) -> Stream:
    """Resample to 48 kHz float stereo (swresample's default matrix: centre and surrounds
    at -3 dB, LFE dropped, mono to both sides); the encode uses the same chain."""
    return stream.filter("aresample", ANALYSIS_RATE, resampler="soxr", precision=20).filter(
        "aformat", sample_fmts="flt", channel_layouts="stereo"
    )


FloatArray = npt.NDArray[np.float32]


class Severity(StrEnum):
    ERROR = "error"  # reject the file
    WARNING = "warning"  # accept, flag for review


@dataclass(frozen=True, kw_only=True)
class Segment:
    start: float  # seconds from the start of the programme
    end: float

    @property
    def duration(self) -> float:
        return self.end - self.start

    def as_json(self) -> dict[str, float]:
        return {"start": round(self.start, 3), "end": round(self.end, 3)}


@dataclass(frozen=True, kw_only=True)
class QcFinding:
    severity: Severity
    code: str  # black | freeze | silence | clipping | interlace | loudness | decode
    message: str
    start: float | None = None
    end: float | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "severity": self.severity.value,
            "code": self.code,
            "message": self.message,
            "start": None if self.start is None else round(self.start, 3),
            "end": None if self.end is None else round(self.end, 3),
        }


@dataclass(frozen=True, kw_only=True)
class QcReport:
    """What the analysis pass found; stored with the asset (Asset.qc)."""

    findings: tuple[QcFinding, ...]
    black: tuple[Segment, ...]
    freeze: tuple[Segment, ...]
    silence: tuple[Segment, ...]
    clip_events: int
    clipped_samples: int
    interlace: dict[str, int]  # idet multi-frame counts: tff, bff, progressive, undetermined
    detected_field_order: str  # tff | bff | progressive | unknown
    decode_errors: int
    loudness: LoudnessResult
    thresholds: QcThresholds

    @property
    def errors(self) -> tuple[QcFinding, ...]:
        return tuple(f for f in self.findings if f.severity is Severity.ERROR)

    @property
    def warnings(self) -> tuple[QcFinding, ...]:
        return tuple(f for f in self.findings if f.severity is Severity.WARNING)

    @property
    def passed(self) -> bool:
        return not self.errors

    def as_json(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "findings": [f.as_json() for f in self.findings],
            "black": [s.as_json() for s in self.black],
            "freeze": [s.as_json() for s in self.freeze],
            "silence": [s.as_json() for s in self.silence],
            "clipping": {"events": self.clip_events, "samples": self.clipped_samples},
            "interlace": dict(self.interlace) | {"detected": self.detected_field_order},
            "decode_errors": self.decode_errors,
            "loudness": self.loudness.as_json(),
            "thresholds": self.thresholds.model_dump(),
        }


# -- parsers for ffmpeg's filter reports (pure; tested on saved text) -------------------

_FLOAT = r"(-?\d+(?:\.\d+)?(?:e[-+]?\d+)?)"
_BLACK = re.compile(rf"black_start:\s*{_FLOAT}\s+black_end:\s*{_FLOAT}")
_FREEZE_START = re.compile(rf"lavfi\.freezedetect\.freeze_start:\s*{_FLOAT}")
_FREEZE_END = re.compile(rf"lavfi\.freezedetect\.freeze_end:\s*{_FLOAT}")
_IDET = re.compile(
    r"Multi frame detection:\s*TFF:\s*(\d+)\s+BFF:\s*(\d+)\s+Progressive:\s*(\d+)"
    r"\s+Undetermined:\s*(\d+)"
)


def parse_blackdetect(lines: Iterable[str]) -> list[Segment]:
    out = []
    for line in lines:
        match = _BLACK.search(line)
        if match:
            out.append(Segment(start=float(match.group(1)), end=float(match.group(2))))
    return out


def parse_freezedetect(lines: Iterable[str], duration: float) -> list[Segment]:
    """freeze_start/freeze_end pairs; a freeze still open at the end runs to `duration`."""
    out = []
    start: float | None = None
    for line in lines:
        if match := _FREEZE_START.search(line):
            start = float(match.group(1))
        elif (match := _FREEZE_END.search(line)) and start is not None:
            out.append(Segment(start=start, end=float(match.group(1))))
            start = None
    if start is not None:
        out.append(Segment(start=start, end=max(start, duration)))
    return out


def parse_idet(lines: Iterable[str]) -> dict[str, int]:
    """The last multi-frame idet summary: tff, bff, progressive, undetermined counts."""
    counts = {"tff": 0, "bff": 0, "progressive": 0, "undetermined": 0}
    for line in lines:
        if match := _IDET.search(line):
            tff, bff, prog, und = (int(g) for g in match.groups())
            counts = {"tff": tff, "bff": bff, "progressive": prog, "undetermined": und}
    return counts


def field_order_from_idet(counts: dict[str, int], min_share: float) -> str:
    decided = counts["tff"] + counts["bff"] + counts["progressive"]
    if decided == 0:
        return "unknown"
    if counts["tff"] / decided >= min_share:
        return "tff"
    if counts["bff"] / decided >= min_share:
        return "bff"
    if counts["progressive"] / decided >= min_share:
        return "progressive"
    return "unknown"


# -- sound detectors fed with the analysis PCM -----------------------------------------


class SilenceDetector:
    """Runs of 10 ms blocks whose RMS (loudest channel) stays below a dBFS threshold."""

    def __init__(self, sample_rate: int, threshold_dbfs: float, min_seconds: float) -> None:
        self.block = max(1, sample_rate // 100)
        self.rate = sample_rate
        self.threshold = 10 ** (threshold_dbfs / 20)
        self.min_blocks = math.ceil(min_seconds * 100)
        self._carry = np.zeros((0, 1), dtype=np.float32)
        self._index = 0  # blocks seen
        self._run_start: int | None = None
        self.segments: list[Segment] = []

    def feed(self, samples: FloatArray) -> None:
        if self._carry.shape[1] != samples.shape[1]:
            self._carry = np.zeros((0, samples.shape[1]), dtype=np.float32)
        data = np.concatenate([self._carry, samples])
        whole = len(data) // self.block * self.block
        self._carry = data[whole:]
        if whole == 0:
            return
        blocks = data[:whole].reshape(-1, self.block, data.shape[1])
        # Mean square per block and channel, accumulated in float64 without a temporary.
        energy = np.einsum("ijk,ijk->ik", blocks, blocks, dtype=np.float64) / self.block
        quiet = np.sqrt(energy).max(axis=1) < self.threshold
        # Only the blocks where quiet flips matter: a run opens or closes there.
        was_quiet = 1 if self._run_start is not None else 0
        for offset in np.flatnonzero(np.diff(quiet.astype(np.int8), prepend=was_quiet)).tolist():
            if quiet[offset]:
                self._run_start = self._index + offset
            else:
                self._close(self._index + offset)
        self._index += len(quiet)

    def _close(self, index: int) -> None:
        assert self._run_start is not None
        if index - self._run_start >= self.min_blocks:
            self.segments.append(Segment(start=self._run_start / 100, end=index / 100))
        self._run_start = None

    def finish(self) -> list[Segment]:
        if self._run_start is not None:
            self._close(self._index)
        return self.segments


class ClipDetector:
    """Counts clips: runs of at least `min_run` consecutive samples at full scale."""

    def __init__(self, level: float, min_run: int) -> None:
        self.level = level
        self.min_run = min_run
        self.events = 0
        self.samples = 0
        self._run: npt.NDArray[np.int64] | None = None  # open run length per channel

    def feed(self, samples: FloatArray) -> None:
        hot = np.abs(samples) >= self.level
        if self._run is None:
            self._run = np.zeros(samples.shape[1], dtype=np.int64)
        self.samples += int(hot.sum())
        if not hot.any():
            self._run[:] = 0
            return
        for ch in range(samples.shape[1]):
            column = hot[:, ch]
            carry = int(self._run[ch])
            if not column.any():
                self._run[ch] = 0
                continue
            padded = np.concatenate([[False], column, [False]]).astype(np.int8)
            edges = np.flatnonzero(np.diff(padded))
            starts, stops = edges[::2], edges[1::2]
            lengths = (stops - starts).astype(np.int64)
            if starts[0] == 0 and carry:
                # This run continues one left open by the previous block: count it once,
                # when it first reaches min_run.
                total = carry + int(lengths[0])
                if carry < self.min_run <= total:
                    self.events += 1
                lengths[0] = total
                self.events += int((lengths[1:] >= self.min_run).sum())
            else:
                self.events += int((lengths >= self.min_run).sum())
            self._run[ch] = int(lengths[-1]) if stops[-1] == len(column) else 0


@dataclass(kw_only=True)
class Analysis:
    """The raw results of the pass before they are judged into a QcReport."""

    loudness: LoudnessResult
    black: list[Segment] = field(default_factory=list)
    freeze: list[Segment] = field(default_factory=list)
    silence: list[Segment] = field(default_factory=list)
    clip_events: int = 0
    clipped_samples: int = 0
    idet: dict[str, int] = field(default_factory=dict)
    decode_errors: int = 0
    audio_seconds: float = 0.0
    elapsed_seconds: float = 0.0


_DECODE_ERROR = re.compile(
    r"\[(error|fatal)\].*(invalid|corrupt|error while decoding|concealing|missing|damaged"
    r"|no frame|truncat)",
    re.IGNORECASE,
)


def analysis_command(
    source: MediaProbe, thresholds: QcThresholds, *, keyframes_only: bool = False
) -> list[str]:
    """The one-decode ffmpeg argv: detectors on video to null, audio PCM to stdout.

    keyframes_only decodes only the IDR of each GOP: for a house-format source (a closed
    GOP every second) the picture detectors then see one frame per second, which finds
    black and freezes of 2 s and more at a 25th of the decoding cost. The other packets
    are dropped before the decoder (the `noise` bitstream filter on the input), not
    only skipped inside it: a skipped packet still occupies a frame thread in turn, so
    one keyframe being decoded stalled the others, and the decode ran on one core. With
    only keyframes queued, consecutive keyframes decode in parallel.
    """
    assert source.video is not None and source.audio is not None
    t = thresholds
    sampling = {"skip_frame": "nokey", "bsf:v": "noise=drop=not(key)"} if keyframes_only else {}
    # Skipping H.264 deblocking (not the decode) speeds the one decode by about a quarter
    # and changes nothing black/freeze can see.
    media = ffmpeg.input(str(source.path), skip_loop_filter="all", flags2="fast", **sampling)
    picture = media[str(source.video.index)].split()
    # idet needs only a sample to tell the field order: the first 20 s. Its frames end
    # in a null output of their own (ffmpeg-python compiles no sink filter such as
    # nullsink); a muxer of one stream, so it holds back nothing of the others.
    idet = picture[0].filter("select", f"lt(n,{IDET_SAMPLE_FRAMES})").filter("idet")
    # The picture detectors see every frame (every keyframe with keyframes_only).
    detectors = (
        picture[1]
        .filter("blackdetect", d=t.black_min_seconds, pix_th=t.black_pixel_threshold,
                pic_th=t.black_picture_ratio)
        .filter("freezedetect", n=f"{t.freeze_noise_db}dB", d=t.freeze_min_seconds)
    )  # fmt: skip
    pcm = house_audio_mix(media[str(source.audio.index)])
    return compile_args(
        ffmpeg.merge_outputs(
            detectors.output("-", f="null"),
            idet.output("-", f="null"),
            pcm.output("pipe:1", f="f32le", **{"c:a": "pcm_f32le"}),
        )
    )


def analyze(
    source: MediaProbe,
    thresholds: QcThresholds,
    *,
    keyframes_only: bool = False,
    progress: Callable[[float], None] | None = None,
) -> Analysis:
    """Run the single analysis decode over a probed file."""
    frame_bytes = 4 * ANALYSIS_CHANNELS
    chunk = ANALYSIS_RATE * frame_bytes  # one second of PCM per read
    meter = LoudnessMeter(ANALYSIS_RATE, ANALYSIS_CHANNELS)
    silence = SilenceDetector(
        ANALYSIS_RATE, thresholds.silence_threshold_dbfs, thresholds.silence_min_seconds
    )
    clips = ClipDetector(thresholds.clip_level, thresholds.clip_min_run)
    total = 0
    expected = max(source.duration_seconds, 1e-3)
    pending = b""
    with FfmpegPipe(analysis_command(source, thresholds, keyframes_only=keyframes_only)) as pipe:
        while True:
            data = pipe.read(chunk)
            if not data:
                break
            data = pending + data
            usable = len(data) // frame_bytes * frame_bytes
            pending = data[usable:]
            samples = np.frombuffer(data[:usable], dtype="<f4").reshape(-1, ANALYSIS_CHANNELS)
            meter.feed(samples)
            silence.feed(samples)
            clips.feed(samples)
            total += len(samples)
            if progress is not None:
                progress(min(1.0, total / ANALYSIS_RATE / expected))
    assert pipe.result is not None
    lines = pipe.result.stderr.splitlines()
    audio_seconds = total / ANALYSIS_RATE
    return Analysis(
        loudness=meter.result(),
        black=parse_blackdetect(lines),
        freeze=parse_freezedetect(lines, source.duration_seconds),
        silence=silence.finish(),
        clip_events=clips.events,
        clipped_samples=clips.samples,
        idet=parse_idet(lines),
        decode_errors=sum(1 for line in lines if _DECODE_ERROR.search(line)),
        audio_seconds=audio_seconds,
        elapsed_seconds=pipe.result.elapsed_seconds,
    )


def judge(analysis: Analysis, source: MediaProbe, thresholds: QcThresholds) -> QcReport:
    """Turn detector output into findings: errors reject the file, warnings flag it."""
    t = thresholds
    findings: list[QcFinding] = []

    def spans(code: str, segments: list[Segment], error_after: float, what: str) -> None:
        for seg in segments:
            severity = (
                Severity.ERROR
                if error_after > 0 and seg.duration >= error_after
                else Severity.WARNING
            )
            findings.append(
                QcFinding(
                    severity=severity,
                    code=code,
                    message=f"{what} for {seg.duration:.1f} s at {seg.start:.1f} s"
                    + (f" (rejects at {error_after:g} s)" if severity is Severity.ERROR else ""),
                    start=seg.start,
                    end=seg.end,
                )
            )

    spans("black", analysis.black, t.black_error_seconds, "black picture")
    spans("freeze", analysis.freeze, t.freeze_error_seconds, "frozen picture")
    spans("silence", analysis.silence, t.silence_error_seconds, "silence")
    if analysis.clip_events >= t.clip_warning_events:
        severity = (
            Severity.ERROR
            if t.clip_error_events and analysis.clip_events >= t.clip_error_events
            else Severity.WARNING
        )
        findings.append(
            QcFinding(
                severity=severity,
                code="clipping",
                message=f"audio clipped {analysis.clip_events} times "
                f"({analysis.clipped_samples} samples at full scale)",
            )
        )
    loud = analysis.loudness
    if not math.isfinite(loud.integrated_lufs) or loud.integrated_lufs < -70:
        findings.append(
            QcFinding(
                severity=Severity.ERROR,
                code="loudness",
                message="no programme sound: the audio is silent, so it cannot be "
                "normalized; supply the lesson with its sound track",
            )
        )
    if analysis.decode_errors:
        findings.append(
            QcFinding(
                severity=Severity.ERROR,
                code="decode",
                message=f"{analysis.decode_errors} decode errors: the file is corrupt; "
                "re-export it from the editing system",
            )
        )
    if source.duration_seconds > 1 and analysis.audio_seconds < 0.9 * source.duration_seconds:
        findings.append(
            QcFinding(
                severity=Severity.ERROR,
                code="decode",
                message=f"only {analysis.audio_seconds:.1f} s of audio could be decoded of "
                f"{source.duration_seconds:.1f} s: the file is truncated or corrupt",
            )
        )
    detected = field_order_from_idet(analysis.idet, t.interlace_min_share)
    tagged = source.video.field_order if source.video else "unknown"
    if detected in ("tff", "bff") and tagged != detected:
        findings.append(
            QcFinding(
                severity=Severity.WARNING,
                code="interlace",
                message=f"picture looks {detected.upper()} interlaced but is tagged {tagged}: "
                "treated as interlaced",
            )
        )
    return QcReport(
        findings=tuple(findings),
        black=tuple(analysis.black),
        freeze=tuple(analysis.freeze),
        silence=tuple(analysis.silence),
        clip_events=analysis.clip_events,
        clipped_samples=analysis.clipped_samples,
        interlace=dict(analysis.idet),
        detected_field_order=detected,
        decode_errors=analysis.decode_errors,
        loudness=analysis.loudness,
        thresholds=thresholds,
    )


def measure_stream_command(path: Path, audio_index: int | None = None) -> list[str]:
    """ffmpeg argv: one audio stream (default the first) as the house mix, PCM to stdout."""
    sound = ffmpeg.input(str(path))[str(audio_index) if audio_index is not None else "a:0"]
    pcm = house_audio_mix(sound).output("pipe:1", f="f32le", **{"c:a": "pcm_f32le"})
    return compile_args(pcm)


def measure_stream(path: Path, *, audio_index: int | None = None) -> LoudnessResult:
    """The project's meter on a file's audio, decoded by ffmpeg and piped as PCM.

    Same meter as `measure_file` (which decodes with PyAV frame by frame); for long
    MP2 programmes the piped decode is several times faster, so verify uses it.
    """
    frame_bytes = 4 * ANALYSIS_CHANNELS
    meter = LoudnessMeter(ANALYSIS_RATE, ANALYSIS_CHANNELS)
    pending = b""
    with FfmpegPipe(measure_stream_command(path, audio_index), loglevel="error") as pipe:
        while data := pipe.read(ANALYSIS_RATE * frame_bytes * 4):
            data = pending + data
            usable = len(data) // frame_bytes * frame_bytes
            pending = data[usable:]
            meter.feed(np.frombuffer(data[:usable], dtype="<f4").reshape(-1, ANALYSIS_CHANNELS))
    return meter.result()
