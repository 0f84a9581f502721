"""Loudness as it went out (播出响度), measured from the off-air recording (GY/T 282-2014).

Ingest measured every asset before air; this measures the recorded signal, so a chain
fault (a wrong gain, a re-encode, a stuck channel) shows too. The recording's MP2 audio
is decoded with PyAV and measured with ingest's BS.1770-4 meter
(`ingest.loudness.LoudnessMeter`), twice over:

* per aired item: each decoded frame goes to the as-run item on air at its
  presentation time (its PTS placed on the wall clock by `compliance.timemap`);
* per hour: everything in an hour file (the local clock hour whose bytes it holds).
  A complete hour's reading is cached beside the file (``.loudness.json``, keyed on
  size and modification time), so weekly reports do not decode a week again.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import av
import numpy as np
import numpy.typing as npt
from av.audio.codeccontext import AudioCodecContext

from compliance.retention import hour_of
from compliance.timemap import RecordingTimes

if TYPE_CHECKING:  # the meter pulls in SciPy: only when something is measured
    from ingest.loudness import LoudnessMeter, LoudnessResult

logger = logging.getLogger(__name__)

CACHE_SUFFIX = ".loudness.json"
#: Shorter than this is no reading: less than one short-term window (3 s, EBU Tech 3341)
#: of an item says nothing about its programme loudness. A channel joined a second before
#: an item ends airs such a sliver (seen: 1.1 s of filler read -28 LUFS, 4 LU under what
#: the whole file measures).
MIN_SECONDS = 3.0
#: Audio this close to an item's edges is left out of the item: playout may shift an
#: item's audio by half an MP2 frame, and the MP2 synthesis filter spreads a frame over
#: ~10 ms of its neighbour, so a loud item would otherwise lend its peak to the next.
EDGE_GUARD_S = 0.1
JUMP_TICKS = 90 * 30  # a PTS step off by more than 30 ms is a discontinuity


@dataclass(frozen=True, kw_only=True)
class LoudnessLimits:
    """GY/T 282-2014 as audited: -24 LUFS ±2 LU integrated, true peak at most -2 dBTP."""

    target_lufs: float = -24.0
    tolerance_lu: float = 2.0
    max_true_peak_dbtp: float = -2.0

    def problems(self, reading: LoudnessReading) -> list[str]:
        """What is wrong with a reading, e.g. ["integrated -12.1 LUFS"]; [] if within."""
        found = []
        lufs = reading.integrated_lufs
        if lufs is not None and abs(lufs - self.target_lufs) > self.tolerance_lu:
            found.append(
                f"integrated {lufs:.1f} LUFS (target {self.target_lufs:.0f} "
                f"±{self.tolerance_lu:.0f} LU)"
            )
        peak = reading.true_peak_dbtp
        if peak is not None and peak > self.max_true_peak_dbtp:
            found.append(f"true peak {peak:.1f} dBTP (max {self.max_true_peak_dbtp:.0f} dBTP)")
        return found


@dataclass(frozen=True, kw_only=True)
class AiredSpan:
    """An as-run item's time on air, the unit loudness is judged by."""

    event_id: str
    event_type: str
    asset_id: str | None
    start: datetime  # aware UTC
    end: datetime
    asrun_hash: str | None = None

    @property
    def key(self) -> str:
        """Unique per airing: a restart's join airs the same event id a second time."""
        return f"{self.event_id}@{self.start.isoformat()}"


@dataclass(frozen=True, kw_only=True)
class LoudnessReading:
    """One BS.1770 measurement of recorded audio: an aired item or an hour file."""

    scope: str  # "item" | "hour"
    key: str  # the event id, or the hour file's name
    start: datetime  # aware UTC
    end: datetime
    integrated_lufs: float | None  # None: silence (or too short to gate)
    true_peak_dbtp: float | None
    lra: float | None
    max_momentary_lufs: float | None
    seconds: float  # audio measured
    event_id: str | None = None
    asset_id: str | None = None
    asrun_hash: str | None = None
    file: str | None = None

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["start"] = self.start.isoformat()
        data["end"] = self.end.isoformat()
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LoudnessReading:
        fields = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        fields["start"] = datetime.fromisoformat(data["start"])
        fields["end"] = datetime.fromisoformat(data["end"])
        return cls(**fields)


@dataclass(frozen=True, kw_only=True)
class OffairLoudness:
    items: tuple[LoudnessReading, ...]
    hours: tuple[LoudnessReading, ...]


def _finite(value: float) -> float | None:
    return None if math.isinf(value) or math.isnan(value) else round(value, 2)


def _samples(frame: av.AudioFrame) -> npt.NDArray[np.float64]:
    """A decoded frame as float64 (n, channels) at full scale ±1.0."""
    data = frame.to_ndarray()
    channels = len(frame.layout.channels)
    samples = data.T if frame.format.is_planar else data.reshape(-1, channels)
    if np.issubdtype(samples.dtype, np.floating):
        return np.asarray(samples, dtype=np.float64)
    return samples.astype(np.float64) / float(2 ** (8 * samples.dtype.itemsize - 1))


class _Meters:
    """A lazily created meter per key, all of one sample rate and channel count."""

    def __init__(self) -> None:
        self.meters: dict[str, LoudnessMeter] = {}
        self.samples: dict[str, int] = {}

    def feed(self, key: str, samples: npt.NDArray[np.float64], rate: int) -> None:
        meter = self.meters.get(key)
        if meter is None or meter.sample_rate != rate or meter.channels != samples.shape[1]:
            if meter is not None:
                logger.warning("%s: audio format changed mid-item; measuring the rest", key)
            channels = samples.shape[1]
            layout = None if channels in (1, 2, 6, 8) else ("FL",) * channels
            from ingest.loudness import LoudnessMeter

            meter = self.meters[key] = LoudnessMeter(rate, channels, layout=layout)
        meter.feed(samples)
        self.samples[key] = self.samples.get(key, 0) + samples.shape[0]

    def result(self, key: str) -> tuple[LoudnessResult, float] | None:
        meter = self.meters.get(key)
        if meter is None:
            return None
        seconds = self.samples[key] / meter.sample_rate
        return meter.result(), seconds


def _reading(
    scope: str,
    key: str,
    start: datetime,
    end: datetime,
    measured: tuple[LoudnessResult, float],
    **extra: Any,
) -> LoudnessReading:
    result, seconds = measured
    return LoudnessReading(
        scope=scope,
        key=key,
        start=start,
        end=end,
        integrated_lufs=_finite(result.integrated_lufs),
        true_peak_dbtp=_finite(result.true_peak_dbtp),
        lra=_finite(result.lra),
        max_momentary_lufs=_finite(result.max_momentary_lufs),
        seconds=round(seconds, 3),
        **extra,
    )


def _read_cache(path: Path) -> LoudnessReading | None:
    cache = path.with_name(path.name + CACHE_SUFFIX)
    try:
        data = json.loads(cache.read_text(encoding="utf-8"))
        stat = path.stat()
        if data["size"] != stat.st_size or data["mtime_ns"] != stat.st_mtime_ns:
            return None
        return LoudnessReading.from_json(data["hour"])
    except (FileNotFoundError, ValueError, KeyError, TypeError):
        return None


def _write_cache(path: Path, reading: LoudnessReading) -> None:
    stat = path.stat()
    body = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "hour": reading.as_json()}
    cache = path.with_name(path.name + CACHE_SUFFIX)
    try:
        cache.write_text(json.dumps(body, ensure_ascii=False), encoding="utf-8")
    except OSError as exc:
        logger.warning("cannot cache the loudness of %s: %s", path, exc)


@dataclass(frozen=True)
class _Decoded:
    samples: npt.NDArray[np.float64]
    rate: int
    pts: int | None  # 90 kHz PTS of the frame's first sample
    offset: int | None  # byte offset of the PES that carried it (for the stream clock)
    jump: bool  # first frame after a discontinuity


def _decoder(name: str) -> AudioCodecContext:
    return cast(AudioCodecContext, av.CodecContext.create(name, "r"))


def _from_pes(times: RecordingTimes) -> Iterator[_Decoded]:
    """Decode the audio PES packets the scan collected (no demuxing of the whole file)."""
    assert times.audio is not None and times.audio_codec is not None
    name = times.audio_codec
    codec = _decoder(name)
    expected: int | None = None
    for pes in times.audio:
        jump = pes.pts is not None and expected is not None and abs(pes.pts - expected) > JUMP_TICKS
        if jump:  # a gap or a restart: the decoder's overlap belongs to the old audio
            codec = _decoder(name)
        emitted = 0
        rate = 0
        for packet in codec.parse(pes.payload):
            for frame in codec.decode(packet):
                samples = _samples(frame)
                if not len(samples):
                    continue
                rate = frame.sample_rate
                pts = None if pes.pts is None else pes.pts + emitted * 90_000 // rate
                emitted += len(samples)
                yield _Decoded(samples, rate, pts, pes.offset, jump)
                jump = False
        if pes.pts is not None and rate:
            expected = pes.pts + round(emitted * 90_000 / rate)


def _from_container(path: Path) -> Iterator[_Decoded]:
    """Demux and decode the first audio stream with PyAV (a file scanned without audio)."""
    with av.open(str(path)) as container:
        if not container.streams.audio:
            logger.warning("%s has no audio stream", path)
            return
        stream = container.streams.audio[0]
        pos: int | None = None
        expected: int | None = None
        for packet in container.demux(stream):
            # Frames split out of one PES by the parser carry no position: they sit in
            # the PES of the last packet that had one.
            pos = packet.pos if packet.pos is not None else pos
            pts = packet.pts
            jump = pts is not None and expected is not None and abs(pts - expected) > JUMP_TICKS
            if jump:
                stream.codec_context.flush_buffers()
            if pts is not None and packet.duration:
                expected = pts + packet.duration
            for frame in packet.decode():
                samples = _samples(frame)
                if len(samples):
                    yield _Decoded(samples, frame.sample_rate, pts, pos, jump)
                    jump = False


def measure_file(
    path: Path,
    times: RecordingTimes | None,
    spans: Sequence[AiredSpan],
    item_meters: _Meters,
    *,
    complete: bool,
) -> LoudnessReading | None:
    """Decode one hour file: feed the item meters and return the hour's reading.

    ``times`` (the file's clock, scanned with ``audio=True`` to skip demuxing) is needed
    only when ``spans`` are given. A cached hour reading is used when no item needs
    this file's audio.
    """
    cached = _read_cache(path) if complete else None
    if cached is not None and not spans:
        return cached
    hour = _Meters()
    starts = [s.start.timestamp() for s in spans]
    guard_until = -math.inf  # no item audio before (just after a discontinuity)
    frames = (
        _from_pes(times)
        if times is not None and times.audio is not None and times.audio_codec
        else _from_container(path)
    )
    try:
        for frame in frames:
            if cached is None:  # a cached hour needs no second meter
                hour.feed("hour", frame.samples, frame.rate)
            if not spans or frame.pts is None or frame.offset is None or times is None:
                continue
            at = times.on_air_unix(frame.pts, frame.offset)
            if at is None:
                continue
            if frame.jump:
                guard_until = at + EDGE_GUARD_S
            until = at + len(frame.samples) / frame.rate
            k = int(np.searchsorted(starts, at - EDGE_GUARD_S, side="right")) - 1
            inside = k >= 0 and until + EDGE_GUARD_S <= spans[k].end.timestamp()
            if inside and at >= guard_until:
                item_meters.feed(spans[k].key, frame.samples, frame.rate)
    except (av.FFmpegError, OSError) as exc:  # a damaged recording: measure what decoded
        logger.warning("%s: audio decoding stopped (%s)", path, exc)
    if cached is not None:
        return cached
    measured = hour.result("hour")
    start = hour_of(path)
    if measured is None or start is None or measured[1] < MIN_SECONDS:
        return None
    start = start.astimezone(UTC)
    end = start + timedelta(hours=1)
    reading = _reading("hour", path.name, start, end, measured, file=str(path))
    if complete:
        _write_cache(path, reading)
    return reading


class LoudnessAudit:
    """Loudness per aired item and per hour file, fed one hour file at a time (so only
    one file's audio is in memory), in time order; ``result()`` when all are in."""

    def __init__(self, spans: Sequence[AiredSpan]) -> None:
        self.spans = sorted(spans, key=lambda s: s.start)  # others are ignored
        self._items = _Meters()
        self._hours: list[LoudnessReading] = []

    def add_file(self, path: Path, times: RecordingTimes | None, *, complete: bool) -> None:
        """``times``: the file's scanned clock; ``complete``: its hour is over (cacheable)."""
        reading = measure_file(path, times, self.spans, self._items, complete=complete)
        if reading is not None:
            self._hours.append(reading)

    def result(self) -> OffairLoudness:
        readings = []
        for span in self.spans:
            measured = self._items.result(span.key)
            if measured is None or measured[1] < MIN_SECONDS:
                continue
            readings.append(
                _reading(
                    "item",
                    span.key,
                    span.start,
                    span.end,
                    measured,
                    event_id=span.event_id,
                    asset_id=span.asset_id,
                    asrun_hash=span.asrun_hash,
                )
            )
        return OffairLoudness(items=tuple(readings), hours=tuple(self._hours))


def measure_offair_loudness(
    files: Sequence[tuple[Path, RecordingTimes | None, bool]],
    spans: Sequence[AiredSpan],
) -> OffairLoudness:
    """Loudness per aired item and per hour file: ``files`` are (hour file, its scanned
    clock, whether its hour is complete) in time order."""
    audit = LoudnessAudit(spans)
    for path, times, complete in files:
        audit.add_file(path, times, complete=complete)
    return audit.result()
