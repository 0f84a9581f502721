"""Synthetic lessons for tests, the demo and the benchmark (`skyclass synth`).

A lesson here looks and sounds like one: slides with the Chinese title that change
every 8–12 s, a pointer that moves every second (so nothing is frozen for 2 s), and
speech-like audio (voiced formant syllables at about 4 per second, in phrases with
pauses) at about -20 LUFS, so ingest has loudness work to do.

It is fast because the picture is built from 1-second closed GOPs: each distinct
second (slide x pointer position) is rendered once with Pillow and encoded once, then
the whole length is assembled by stream copy (concat demuxer). The audio is made
with numpy and muxed in the same copy step. `house-*` formats come out already in
house format (video), so ingest takes its stream-copy path.
"""

from __future__ import annotations

import logging
import math
import shutil
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from fractions import Fraction
from functools import cache
from pathlib import Path

import ffmpeg
import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw, ImageFont
from scipy import signal

from channels.profiles import HD, SD
from grading import grade_by_code
from ingest.errors import IngestInputError
from ingest.fonts import cjk_font, cjk_font_path
from ingest.house import audio_encode_options, video_encode_options
from ingest.loudness import LoudnessMeter
from ingest.runner import ProgressCallback, Stream, compile_args, run_ffmpeg

__all__ = [
    "Defect",
    "SynthFormat",
    "SynthResult",
    "SynthSpec",
    "cjk_font_path",
    "parse_defects",
    "synth_spec",
    "synthesize",
    "units_encode_command",
    "units_mux_command",
    "vfr_command",
]

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float32]


class SynthFormat(StrEnum):
    HOUSE_HD = "house-hd"  # 1080i25 TFF H.264 CBR + MP2: already house format
    HOUSE_SD = "house-sd"  # 576i25 TFF MPEG-2 4:3 + MP2: already house format
    P720_30 = "720p30"  # 1280x720 30p H.264 + AAC 48 kHz
    PORTRAIT = "portrait"  # 720x1280 phone video, 30p, AAC 44.1 kHz
    SD43 = "sd43"  # 720x576 4:3 interlaced BFF, BT.601, AAC 48 kHz
    MONO44K = "mono44k"  # 1280x720 25p, mono 44.1 kHz
    SURROUND = "surround"  # 1280x720 25p, 5.1 48 kHz
    VFR = "vfr"  # 1280x720 variable frame rate (about 30 fps), AAC 48 kHz


class Defect(StrEnum):
    BLACK = "black"  # 3 s of black picture
    FREEZE = "freeze"  # 4 s of one frozen picture
    SILENCE = "silence"  # 4 s of digital silence
    LOUD = "loud"  # the whole mix about -12 LUFS
    QUIET = "quiet"  # the mix about -34 LUFS with chalk taps near -6 dBFS (needs limiting)
    CLIPPING = "clipping"  # 2 s of hard-clipped speech


def parse_defects(text: str | Sequence[str]) -> tuple[Defect, ...]:
    items = text.split(",") if isinstance(text, str) else list(text)
    out: list[Defect] = []
    for item in (i.strip().lower() for i in items):
        if not item:
            continue
        try:
            out.append(Defect(item))
        except ValueError:
            known = ",".join(d.value for d in Defect)
            raise IngestInputError(f"--defects: unknown defect {item!r}: use {known}") from None
    return tuple(dict.fromkeys(out))


@dataclass(frozen=True, kw_only=True)
class SynthSpec:
    """What a synthetic format is made of: picture, audio, encoder options, container."""

    width: int
    height: int
    fps: int
    sar: Fraction
    fields: str | None  # "tff" | "bff" | None (progressive)
    matrix: str  # FFmpeg colorspace tag
    video_options: Mapping[str, str]  # encoder options (ffmpeg-python keywords)
    audio_rate: int
    audio_layout: str  # stereo | mono | 5.1
    audio_options: Mapping[str, str]
    container: str  # ffmpeg muxer name
    gop_is_closed: bool = True


def _x264(fps: int, *, fields: str | None = None, matrix: str = "bt709") -> dict[str, str]:
    params = [f"keyint={fps}", f"min-keyint={fps}", "scenecut=0", "open-gop=0"]
    flags: dict[str, str] = {}
    if fields:
        params += ["interlaced=1", "tff=1" if fields == "tff" else "bff=1"]
        flags = {"flags": "+ildct+ilme"}
    return {
        "c:v": "libx264", "preset": "veryfast", "crf": "23", "pix_fmt": "yuv420p",
        **flags, "x264-params": ":".join(params),
        "color_primaries": matrix, "color_trc": matrix, "colorspace": matrix,
    }  # fmt: skip


def _aac(rate: int, channels: int) -> dict[str, str]:
    return {"c:a": "aac", "b:a": f"{64 * channels}k", "ar": str(rate), "ac": str(channels)}


def synth_spec(fmt: SynthFormat) -> SynthSpec:
    if fmt is SynthFormat.HOUSE_HD or fmt is SynthFormat.HOUSE_SD:
        profile = HD if fmt is SynthFormat.HOUSE_HD else SD
        return SynthSpec(
            width=profile.width,
            height=profile.height,
            fps=profile.fps,
            sar=profile.sample_aspect,
            fields="tff",
            matrix=profile.color_matrix,
            video_options=video_encode_options(profile),
            audio_rate=profile.audio_sample_rate,
            audio_layout="stereo",
            audio_options=audio_encode_options(profile),
            container="matroska",
        )
    if fmt is SynthFormat.SD43:
        return SynthSpec(
            width=720,
            height=576,
            fps=25,
            sar=Fraction(16, 15),
            fields="bff",
            matrix="bt470bg",
            video_options={**_x264(25, fields="bff", matrix="bt470bg"), "aspect": "4:3"},
            audio_rate=48_000,
            audio_layout="stereo",
            audio_options=_aac(48_000, 2),
            container="mp4",
        )
    geometry = {
        SynthFormat.P720_30: (1280, 720, 30, "stereo", 48_000),
        SynthFormat.PORTRAIT: (720, 1280, 30, "stereo", 44_100),
        SynthFormat.MONO44K: (1280, 720, 25, "mono", 44_100),
        SynthFormat.SURROUND: (1280, 720, 25, "5.1", 48_000),
        SynthFormat.VFR: (1280, 720, 30, "stereo", 48_000),
    }
    width, height, fps, layout, rate = geometry[fmt]
    channels = {"mono": 1, "stereo": 2, "5.1": 6}[layout]
    return SynthSpec(
        width=width,
        height=height,
        fps=fps,
        sar=Fraction(1),
        fields=None,
        matrix="bt709",
        video_options=_x264(fps),
        audio_rate=rate,
        audio_layout=layout,
        audio_options=_aac(rate, channels),
        container="mp4",
    )


@dataclass(frozen=True, kw_only=True)
class SynthResult:
    path: Path
    format: SynthFormat
    title: str
    fps: int
    video_frames: int  # frames at the format's own rate (nominal for VFR)
    duration_frames: int  # at 25 fps, the house timeline
    duration_seconds: float
    width: int
    height: int
    audio_rate: int
    audio_layout: str
    defects: tuple[Defect, ...]
    defect_spans: dict[str, tuple[float, float]] = field(default_factory=dict)  # seconds


# -- fonts and slides -------------------------------------------------------------------


@cache
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    # Without the font wheel, titles fall back to Pillow's font (no Chinese glyphs).
    return cjk_font(size) or ImageFont.load_default(size)


_PALETTE = (
    ((18, 52, 86), (255, 255, 255), (255, 196, 0)),
    ((240, 240, 232), (20, 30, 40), (200, 40, 40)),
    ((24, 90, 60), (250, 250, 240), (255, 230, 120)),
    ((250, 246, 230), (60, 40, 20), (30, 110, 200)),
    ((60, 30, 80), (245, 240, 255), (120, 220, 160)),
    ((230, 240, 250), (10, 40, 80), (230, 120, 30)),
)
_POINTS = (
    ("复习导入", "回顾上节课的内容", "想一想：生活中哪里用到了它？"),
    ("新知探究", "观察例题，找出规律", "小组讨论，说一说你的方法"),
    ("例题讲解", "第一步：读题，圈出关键词", "第二步：列式计算，检查结果"),
    ("动手练习", "完成学习任务单第1题", "同桌互相检查，订正错误"),
    ("拓展提升", "挑战题：还有别的解法吗？", "把你的想法写在练习本上"),
    ("课堂小结", "今天我们学会了什么？", "课后练习：完成第2、3题"),
)
_SLIDE_SECONDS = (10, 8, 12, 9, 11, 10)
_POINTER_STEPS = 12


def _slide_image(
    spec: SynthSpec, title: str, byline: str, slide: int, phase: int, *, black: bool
) -> Image.Image:
    """One second of picture: slide `slide` with the pointer at step `phase`."""
    # Draw in square pixels at the display aspect, then squeeze to the coded raster.
    display_w = round(spec.width * spec.sar)
    w, h = display_w, spec.height
    if black:
        return Image.new("RGB", (spec.width, spec.height), (0, 0, 0))
    bg, fg, accent = _PALETTE[slide % len(_PALETTE)]
    image = Image.new("RGB", (w, h), bg)
    draw = ImageDraw.Draw(image)
    unit = min(w, h)
    margin = unit // 14
    draw.rectangle((0, 0, w, unit // 6), fill=accent)
    draw.text((margin, unit // 40), title, font=_font(unit // 11), fill=bg)
    heading, *lines = _POINTS[slide % len(_POINTS)]
    y = unit // 6 + margin
    draw.text(
        (margin, y), f"{slide % len(_POINTS) + 1}. {heading}", font=_font(unit // 13), fill=fg
    )
    y += unit // 8
    for line in lines:
        draw.text((margin * 2, y), f"• {line}", font=_font(unit // 18), fill=fg)
        y += unit // 11
    draw.text((margin, h - unit // 9), byline, font=_font(unit // 24), fill=fg)
    # The teacher's pointer: a disc that moves every second along a path over the text.
    t = phase / _POINTER_STEPS
    px = int(margin * 2 + (w - 5 * margin) * t)
    py = int(unit // 6 + margin + (h - unit // 3 - 2 * margin) * (0.5 + 0.4 * math.sin(6.3 * t)))
    r = unit // 18
    draw.ellipse((px - r, py - r, px + r, py + r), fill=accent, outline=fg, width=max(2, r // 6))
    bar_y = h - unit // 40
    draw.rectangle((0, bar_y, w, h), fill=fg)
    draw.rectangle((0, bar_y, int(w * (phase + 1) / _POINTER_STEPS), h), fill=accent)
    if display_w != spec.width:
        image = image.resize((spec.width, spec.height), Image.Resampling.BICUBIC)
    return image


# -- the timeline -----------------------------------------------------------------------

_Unit = tuple[int, int]  # (slide, phase); (-1, 0) is black


def _timeline(
    seconds: int, defects: Iterable[Defect]
) -> tuple[list[_Unit], dict[str, tuple[float, float]]]:
    """Which 1-second unit plays in each second, with the defect spans (seconds)."""
    units: list[_Unit] = []
    slide = 0
    while len(units) < seconds:
        length = _SLIDE_SECONDS[slide % len(_SLIDE_SECONDS)]
        for phase in range(length):
            units.append((slide % len(_SLIDE_SECONDS), phase % _POINTER_STEPS))
        slide += 1
    units = units[:seconds]
    spans: dict[str, tuple[float, float]] = {}
    defects = set(defects)
    if Defect.FREEZE in defects:
        start = min(max(1, seconds // 4), max(0, seconds - 4))
        stop = min(seconds, start + 4)
        for i in range(start, stop):
            units[i] = units[start]
        spans[Defect.FREEZE.value] = (float(start), float(stop))
    if Defect.BLACK in defects:
        start = min(max(1, seconds // 2), max(0, seconds - 3))
        stop = min(seconds, start + 3)
        for i in range(start, stop):
            units[i] = (-1, 0)
        spans[Defect.BLACK.value] = (float(start), float(stop))
    return units, spans


# -- speech-like audio ------------------------------------------------------------------

_VOWELS = (
    (730, 1090, 2440),
    (270, 2290, 3010),
    (300, 870, 2240),
    (530, 1840, 2480),
    (570, 840, 2410),
)


def _phrase(rng: np.random.Generator, rate: int) -> FloatArray:
    """One spoken phrase: 6–16 syllables of voiced formants with noisy onsets."""
    syllables = int(rng.integers(6, 17))
    pieces: list[FloatArray] = []
    f0 = float(rng.uniform(110, 220))
    for _ in range(syllables):
        length = int(rate * rng.uniform(0.14, 0.26))
        t = np.arange(length) / rate
        pitch = f0 * (1 + 0.08 * np.sin(2 * np.pi * rng.uniform(1, 3) * t))
        phase = np.cumsum(pitch / rate)
        pulses = (np.diff(np.floor(phase), prepend=0.0) > 0).astype(np.float32)
        excitation = pulses + 0.05 * rng.standard_normal(length).astype(np.float32)
        onset = int(length * 0.2)
        excitation[:onset] += 0.3 * rng.standard_normal(onset).astype(np.float32)
        voice = np.zeros(length, dtype=np.float32)
        for i, formant in enumerate(_VOWELS[int(rng.integers(len(_VOWELS)))]):
            bandwidth = 80 + 40 * i
            low = max(50.0, formant - bandwidth) / (rate / 2)
            high = min(rate / 2 - 100, formant + bandwidth) / (rate / 2)
            sos = signal.butter(2, [low, high], btype="band", output="sos")
            voice += signal.sosfilt(sos, excitation).astype(np.float32) / (i + 1)
        envelope = np.sin(np.pi * np.linspace(0, 1, length)) ** 0.6
        pieces.append((voice * envelope).astype(np.float32))
        gap = int(rate * rng.uniform(0.02, 0.08))
        pieces.append(np.zeros(gap, dtype=np.float32))
    return np.concatenate(pieces)


def _speech(total: int, rate: int, rng: np.random.Generator) -> FloatArray:
    """Phrases from a small bank, separated by pauses of 0.3–1.2 s, with a faint room tone."""
    bank = [_phrase(rng, rate) for _ in range(16)]
    out = np.zeros(total, dtype=np.float32)
    pos = int(rate * 0.5)
    while pos < total:
        phrase = bank[int(rng.integers(len(bank)))]
        stop = min(total, pos + len(phrase))
        out[pos:stop] = phrase[: stop - pos]
        pos = stop + int(rate * rng.uniform(0.3, 1.2))
    # Room tone around -66 dBFS keeps pauses from being digital silence.
    out += (0.0005 * rng.standard_normal(total)).astype(np.float32)
    return out


def _loudness(samples: FloatArray, rate: int) -> float:
    meter = LoudnessMeter(rate, 1)
    meter.feed(samples.reshape(-1, 1).astype(np.float64))
    return meter.result().integrated_lufs


def _audio(
    spec: SynthSpec, total: int, defects: set[Defect], rng: np.random.Generator
) -> tuple[FloatArray, dict[str, tuple[float, float]]]:
    rate = spec.audio_rate
    mono = _speech(total, rate, rng)
    probe_len = min(total, rate * 60)
    level = _loudness(mono[:probe_len], rate)
    target = -20.0
    if Defect.LOUD in defects:
        target = -12.0
    if Defect.QUIET in defects:
        target = -34.0
    # The mono speech is spread over the layout below; take off what that adds (BS.1770
    # channel weights: stereo 1 + 0.81, 5.1 centre 1 + fronts 2 x 0.09).
    target -= {"mono": 0.0, "stereo": 10 * math.log10(1.81), "5.1": 10 * math.log10(1.18)}[
        spec.audio_layout
    ]
    if math.isfinite(level):
        mono *= np.float32(10 ** ((target - level) / 20))
    spans: dict[str, tuple[float, float]] = {}
    seconds = total / rate
    if Defect.QUIET in defects:
        # Chalk taps on the blackboard: short transients far above the quiet speech.
        tap = np.exp(-np.arange(int(rate * 0.01)) / (rate * 0.0015)).astype(np.float32)
        tap *= np.sign(np.sin(2 * np.pi * 2500 * np.arange(len(tap)) / rate)).astype(np.float32)
        for start in np.arange(1.3, seconds - 0.1, 3.7):
            i = int(start * rate)
            mono[i : i + len(tap)] += 0.5 * tap[: len(mono) - i]
    if Defect.CLIPPING in defects:
        start = min(max(0.5, seconds * 0.6), max(0.0, seconds - 2))
        i, j = int(start * rate), int(min(seconds, start + 2) * rate)
        peak = float(np.abs(mono[i:j]).max()) or 1.0
        mono[i:j] = np.clip(mono[i:j] * (2.5 / peak), -1.0, 1.0)  # 8 dB into the clip
        spans[Defect.CLIPPING.value] = (start, min(seconds, start + 2))
    if Defect.SILENCE in defects:
        start = min(max(1.0, seconds * 0.4), max(0.0, seconds - 4))
        i, j = int(start * rate), int(min(seconds, start + 4) * rate)
        mono[i:j] = 0.0
        spans[Defect.SILENCE.value] = (start, min(seconds, start + 4))
    if spec.audio_layout == "mono":
        return mono.reshape(-1, 1), spans
    if spec.audio_layout == "5.1":
        # Speech in the centre, a little ambience in the others (FL FR FC LFE BL BR).
        ambience = (0.001 * rng.standard_normal(total)).astype(np.float32)
        channels = [0.3 * mono + ambience, 0.3 * mono - ambience, mono, 0.05 * mono]
        channels += [ambience, -ambience]
        return np.stack(channels, axis=1).astype(np.float32), spans
    # Stereo: a speaker slightly left of centre.
    return np.stack([mono, 0.9 * mono], axis=1).astype(np.float32), spans


# -- assembly ---------------------------------------------------------------------------


def _default_title(grade: str, subject: str) -> str:
    return f"{grade_by_code(grade).name_zh}{subject} 第3课 两位数乘两位数"


def synthesize(
    out: Path,
    *,
    grade: str = "g03",
    subject: str = "数学",
    seconds: float,
    fmt: SynthFormat = SynthFormat.HOUSE_HD,
    defects: Sequence[Defect] = (),
    title: str | None = None,
    seed: int = 3,
    progress: ProgressCallback | None = None,
) -> SynthResult:
    """Write a synthetic lesson of `seconds` (rounded to whole frames) to `out`."""
    grade_by_code(grade)
    if seconds <= 0:
        raise IngestInputError(f"--seconds/--minutes must be positive, got {seconds}")
    spec = synth_spec(fmt)
    title = title or _default_title(grade, subject)
    frames = max(1, round(seconds * spec.fps))
    whole, remainder = divmod(frames, spec.fps)
    defect_set = set(defects)
    units, spans = _timeline(whole + (1 if remainder else 0), defect_set)
    rng = np.random.default_rng(seed)
    audio_samples = round(frames / spec.fps * spec.audio_rate)
    audio, audio_spans = _audio(spec, audio_samples, defect_set, rng)
    spans |= audio_spans
    out.parent.mkdir(parents=True, exist_ok=True)
    byline = f"空中课堂 · {grade_by_code(grade).name_zh} · {subject}"
    work = Path(tempfile.mkdtemp(prefix="skyclass-synth-", dir=out.parent))
    try:
        audio_file = work / "audio.f32"
        audio.astype("<f4").tofile(audio_file)
        unique = list(dict.fromkeys(units))
        images: dict[_Unit, Path] = {}
        for n, unit in enumerate(unique):
            path = work / f"u{n:04d}.png"
            _slide_image(spec, title, byline, unit[0], unit[1], black=unit[0] < 0).save(
                path, compress_level=1
            )
            images[unit] = path
        if progress:
            progress(0.1)
        if fmt is SynthFormat.VFR:
            _direct_vfr(spec, units, images, frames, audio_file, out, work)
        else:
            _by_units(spec, units, images, frames, remainder, audio_file, out, work, progress)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if progress:
        progress(1.0)
    duration = frames / spec.fps
    logger.info("synthesized %s: %s, %.2f s, defects %s", out, fmt.value, duration, defects)
    return SynthResult(
        path=out,
        format=fmt,
        title=title,
        fps=spec.fps,
        video_frames=frames,
        duration_frames=round(duration * 25),
        duration_seconds=duration,
        width=spec.width,
        height=spec.height,
        audio_rate=spec.audio_rate,
        audio_layout=spec.audio_layout,
        defects=tuple(defects),
        defect_spans=spans,
    )


def _audio_input(spec: SynthSpec, audio_file: Path) -> Stream:
    """The numpy-made audio: raw float PCM at the format's rate and layout."""
    raw = ffmpeg.input(str(audio_file), f="f32le", ar=spec.audio_rate, ch_layout=spec.audio_layout)
    return raw.audio


def _concat_input(listing: Path) -> Stream:
    return ffmpeg.input(str(listing), f="concat", safe=0).video


_MUXERS = {".ts": "mpegts", ".mkv": "matroska", ".mp4": "mp4", ".mov": "mov", ".mxf": "mxf"}


def _muxer_options(out: Path, spec: SynthSpec) -> dict[str, str]:
    """The container follows the file name (.mkv, .ts, .mp4, …), else the format's default."""
    muxer = _MUXERS.get(out.suffix.lower(), spec.container)
    return {"f": muxer, **({"movflags": "+faststart"} if muxer in ("mp4", "mov") else {})}


def units_encode_command(
    spec: SynthSpec, listing: Path, *, seconds: int, remainder: int, segments: Path
) -> list[str]:
    """Encode the stills of `listing` (one per second) into one closed GOP each, cut into
    MPEG-TS segments at every second (`segments` is the %04d file name pattern)."""
    sar = f"{spec.sar.numerator}/{spec.sar.denominator}"
    picture = (
        _concat_input(listing)
        .filter("fps", spec.fps)
        .filter("setsar", sar)
        .filter("format", "yuv420p")
    )
    if spec.fields:
        picture = picture.filter("setfield", spec.fields)
    boundaries = range(1, seconds + (1 if remainder else 0))
    segment_frames = ",".join(str(spec.fps * i) for i in boundaries)
    output = picture.output(
        str(segments),
        f="segment",
        **{"frames:v": spec.fps * seconds + remainder},
        **spec.video_options,
        an=None,
        segment_format="mpegts",
        reset_timestamps=1,
        **({"segment_frames": segment_frames} if segment_frames else {}),
    )
    return compile_args(output, overwrite=True)


def units_mux_command(
    spec: SynthSpec, playlist: Path, audio_file: Path, out: Path, *, frames: int
) -> list[str]:
    """Join the segments of `playlist` by stream copy and add the audio."""
    output = ffmpeg.output(
        _concat_input(playlist),
        _audio_input(spec, audio_file),
        str(out),
        **{"c:v": "copy"},
        **spec.audio_options,
        **{"frames:v": frames},
        **_muxer_options(out, spec),
    )
    return compile_args(output, overwrite=True)


def vfr_command(
    spec: SynthSpec, listing: Path, audio_file: Path, out: Path, *, frames: int
) -> list[str]:
    """A phone-style VFR encode: frame intervals alternate between 1.4 and 0.6 frame."""
    picture = (
        _concat_input(listing)
        .filter("fps", spec.fps)
        .filter("format", "yuv420p")
        .filter("settb", "1/90000")
        .filter("setpts", f"(N+0.4*mod(N,2))/{spec.fps}/TB")
    )
    output = ffmpeg.output(
        picture,
        _audio_input(spec, audio_file),
        str(out),
        **{"enc_time_base:v": "filter"},
        fps_mode="passthrough",
        **{"frames:v": frames},
        **{**spec.video_options, "bf": "0"},
        **spec.audio_options,
        **_muxer_options(out, spec),
    )
    return compile_args(output, overwrite=True)


def _by_units(
    spec: SynthSpec,
    units: list[_Unit],
    images: dict[_Unit, Path],
    frames: int,
    remainder: int,
    audio_file: Path,
    out: Path,
    work: Path,
    progress: ProgressCallback | None,
) -> None:
    """Encode each distinct second once (one ffmpeg run), then concatenate by copy."""
    unique = list(images)
    listing = work / "stills.txt"
    lines = ["ffconcat version 1.0"]
    for unit in unique:
        lines += [f"file '{images[unit].name}'", "duration 1"]
    if remainder:
        # The last, partial second is a segment of its own: a short closed GOP, so the
        # lesson ends on exactly the frame asked for (stream copy cannot cut inside a GOP).
        lines += [f"file '{images[units[-1]].name}'", "duration 1"]
    lines += [f"file '{images[unique[-1]].name}'", "duration 1"]  # the concat demuxer's last
    listing.write_text("\n".join(lines) + "\n", encoding="utf-8")
    encode = units_encode_command(
        spec, listing, seconds=len(unique), remainder=remainder, segments=work / "seg%04d.ts"
    )
    run_ffmpeg(
        encode, loglevel="error", duration_seconds=len(unique), progress=_scaled(progress, 0.1, 0.8)
    )
    seg_of = {unit: work / f"seg{n:04d}.ts" for n, unit in enumerate(unique)}
    playlist = ["ffconcat version 1.0"]
    for unit in units[:-1] if remainder else units:
        playlist.append(f"file '{seg_of[unit].name}'")
    if remainder:
        playlist.append(f"file 'seg{len(unique):04d}.ts'")
    (work / "play.txt").write_text("\n".join(playlist) + "\n", encoding="utf-8")
    run_ffmpeg(
        units_mux_command(spec, work / "play.txt", audio_file, out, frames=frames),
        loglevel="error",
        duration_seconds=frames / spec.fps,
        progress=_scaled(progress, 0.8, 1.0),
    )


def _direct_vfr(
    spec: SynthSpec,
    units: list[_Unit],
    images: dict[_Unit, Path],
    frames: int,
    audio_file: Path,
    out: Path,
    work: Path,
) -> None:
    listing = work / "vfr.txt"
    lines = ["ffconcat version 1.0"]
    for unit in [*units, units[-1]]:
        lines += [f"file '{images[unit].name}'", "duration 1"]
    listing.write_text("\n".join(lines) + "\n", encoding="utf-8")
    run_ffmpeg(vfr_command(spec, listing, audio_file, out, frames=frames), loglevel="error")


def _scaled(progress: ProgressCallback | None, low: float, high: float) -> ProgressCallback | None:
    if progress is None:
        return None
    callback = progress

    def report(fraction: float) -> None:
        callback(low + (high - low) * fraction)

    return report
