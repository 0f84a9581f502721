"""Programme loudness and true peak of lesson audio (ITU-R BS.1770-4, EBU R 128 family).

GY/T 282-2014 asks for integrated loudness -24 LUFS and true peak <= -2 dBTP, measured
as BS.1770. Ingest measures every lesson once in its analysis decode, so the meter is
streaming: `LoudnessMeter.feed` takes blocks as the decoder produces them and keeps only
per-10-ms energies (about 1 MB for a 25-minute lesson), never the samples.

What is measured, and how:

- integrated loudness: BS.1770-4 gating (400 ms blocks every 100 ms, absolute gate
  -70 LUFS, relative gate -10 LU);
- loudness range: EBU Tech 3342 (3 s short-term values every 100 ms, absolute gate
  -70 LUFS, relative gate -20 LU, 10th to 95th percentile);
- true peak: BS.1770-4 Annex 2 with at least 4x oversampling (5x at 44.1 kHz);
- maximum momentary loudness at *every sample* (a running sum), because a 400 ms burst
  read only on a 100 ms grid, as ffmpeg's ebur128 filter does, can read up to 0.6 dB
  low (EBU Tech 3341 cases 13 and 14);
- maximum short-term loudness every 10 ms (the 3 s window moves by 0.33 % of its length,
  an error below 0.01 dB);
- the true peak is never reported below the sample peak (the interpolator's passband
  ends just under Nyquist, and a reading below the samples would be meaningless).

Silence reads `float("-inf")` (LUFS, dBTP, dBFS); `LoudnessResult.as_json` maps it to
None, since JSON has no infinity.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Final

import av
import numpy as np
import numpy.typing as npt
from scipy import signal

from ingest.errors import LoudnessInputError
from ingest.loudness_filters import TruePeakInterpolator, k_weighting_sos

__all__ = [
    "LoudnessInputError",
    "LoudnessMeter",
    "LoudnessResult",
    "channel_weights",
    "measure_file",
]

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]

# -0.691 dB cancels the K-weighting gain at 1 kHz, so a 1 kHz sine reads its RMS level.
_LOUDNESS_OFFSET: Final = -0.691
_ABSOLUTE_GATE_LUFS: Final = -70.0
_RELATIVE_GATE_LU: Final = -10.0
_LRA_RELATIVE_GATE_LU: Final = -20.0
_LRA_LOW_PERCENTILE: Final = 10.0
_LRA_HIGH_PERCENTILE: Final = 95.0

# Energies are kept per 10 ms sub-block; gating blocks and short-term windows are sums
# of consecutive sub-blocks.
_SUBBLOCKS_PER_SECOND: Final = 100
_GATING_BLOCK: Final = 40  # 400 ms
_GATING_STEP: Final = 10  # 100 ms, i.e. 75 % overlap
_SHORT_TERM: Final = 300  # 3 s
_SHORT_TERM_STEP: Final = 10  # 100 ms: Tech 3342 asks for at least 10 Hz
_MOMENTARY_SECONDS: Final = 0.4

# Input is processed in chunks of about this many seconds: small decoder frames are
# batched (filter calls have a fixed cost) and huge arrays are cut (bounded memory).
_CHUNK_SECONDS: Final = 1.0

# BS.1770-4 Table 3 weights for FFmpeg channel names. BL/BR are the surround pair of
# 5.1 (Ls/Rs at +-110 deg, 1.41); when side channels are also present (7.1), BL/BR sit
# at +-135 deg, outside the +-60..120 deg zone, and weigh 1.0 (see channel_weights).
_SURROUND_WEIGHT: Final = 1.41
_SIDE_NAMES: Final = frozenset({"SL", "SR"})
_BACK_NAMES: Final = frozenset({"BL", "BR"})
_LFE_NAMES: Final = frozenset({"LFE", "LFE2", "LFE1"})
_KNOWN_NAMES: Final = frozenset(
    {"FL", "FR", "FC", "BC", "FLC", "FRC", "TC", "TFL", "TFC", "TFR", "TBL", "TBC", "TBR"}
    | _SIDE_NAMES
    | _BACK_NAMES
    | _LFE_NAMES
)
# FFmpeg's default layouts for a bare channel count.
_DEFAULT_LAYOUTS: Final[dict[int, tuple[str, ...]]] = {
    1: ("FC",),
    2: ("FL", "FR"),
    3: ("FL", "FR", "FC"),
    4: ("FL", "FR", "BL", "BR"),
    5: ("FL", "FR", "FC", "BL", "BR"),
    6: ("FL", "FR", "FC", "LFE", "BL", "BR"),
    8: ("FL", "FR", "FC", "LFE", "BL", "BR", "SL", "SR"),
}


@dataclass(frozen=True, kw_only=True)
class LoudnessResult:
    """One BS.1770-4 / EBU R 128 measurement of a programme.

    Loudness in LUFS, `lra` in LU, peaks in dBTP / dBFS. Silence (or a programme
    shorter than one 400 ms gating block, for `integrated_lufs`) reads -inf; `lra`
    reads 0.0 when fewer than two short-term values pass its gates (as libebur128).
    """

    integrated_lufs: float
    lra: float
    true_peak_dbtp: float
    max_momentary_lufs: float
    max_short_term_lufs: float
    sample_peak_dbfs: float
    duration_seconds: float

    def as_json(self) -> dict[str, float | None]:
        """Every field by name; -inf (silence) becomes None because JSON has no infinity."""
        return {
            name: (None if math.isinf(value) or math.isnan(value) else value)
            for name, value in asdict(self).items()
        }


def channel_weights(layout: tuple[str, ...]) -> FloatArray:
    """BS.1770-4 weight G_i for each FFmpeg channel name in layout.

    Front and centre channels weigh 1.0, surround channels 1.41, LFE 0 (excluded).
    Names BS.1770 does not place (unknown or height channels) weigh 1.0.
    """
    has_sides = bool(_SIDE_NAMES.intersection(layout))
    weights = []
    for name in layout:
        if name in _LFE_NAMES:
            weights.append(0.0)
        elif name in _SIDE_NAMES or (name in _BACK_NAMES and not has_sides):
            weights.append(_SURROUND_WEIGHT)
        else:
            weights.append(1.0)
    return np.array(weights, dtype=np.float64)


def _lufs(mean_square: float) -> float:
    return _LOUDNESS_OFFSET + 10.0 * math.log10(mean_square) if mean_square > 0 else -math.inf


def _lufs_array(mean_squares: FloatArray) -> FloatArray:
    with np.errstate(divide="ignore"):
        return np.asarray(_LOUDNESS_OFFSET + 10.0 * np.log10(mean_squares), dtype=np.float64)


def _db(amplitude: float) -> float:
    return 20.0 * math.log10(amplitude) if amplitude > 0 else -math.inf


class LoudnessMeter:
    """Streaming BS.1770-4 meter: feed blocks as a decoder produces them.

    Any block size gives the same result: filter states, the true-peak interpolator
    history and the running momentary window all carry across `feed` calls.
    """

    def __init__(
        self, sample_rate: int, channels: int, *, layout: tuple[str, ...] | None = None
    ) -> None:
        if sample_rate <= 0 or channels <= 0:
            raise ValueError(
                f"need a positive sample rate and channel count, got "
                f"{sample_rate} Hz, {channels} channels"
            )
        if layout is None:
            if channels not in _DEFAULT_LAYOUTS:
                raise ValueError(
                    f"no default layout for {channels} channels: pass layout= with the "
                    "FFmpeg channel names (FL, FR, FC, LFE, BL, BR, SL, SR, ...)"
                )
            layout = _DEFAULT_LAYOUTS[channels]
        if len(layout) != channels:
            raise ValueError(f"layout {layout} names {len(layout)} channels, not {channels}")
        self.sample_rate = sample_rate
        self.channels = channels
        self.layout = layout
        self._weights = channel_weights(layout)
        self._sos = k_weighting_sos(sample_rate)
        self._zi: FloatArray = np.zeros((self._sos.shape[0], channels, 2))
        self._true_peak = TruePeakInterpolator(sample_rate, channels)
        self._sample_peak = 0.0
        self._samples = 0  # processed samples per channel
        self._pending: list[FloatArray] = []  # planar (channels, n) blocks not yet processed
        self._pending_samples = 0
        self._chunk = max(1, round(_CHUNK_SECONDS * sample_rate))
        # Running momentary window: the last window's per-sample weighted energies.
        self._momentary_len = round(_MOMENTARY_SECONDS * sample_rate)
        self._momentary_tail: FloatArray = np.zeros(self._momentary_len)
        self._max_momentary_energy = 0.0
        # Completed 10 ms sub-blocks (weighted energy sums) and the one being filled.
        self._subblocks: list[FloatArray] = []
        self._subblock_count = 0
        self._subblock_partial = 0.0

    def _subblock_start(self, index: int) -> int:
        """First sample of 10 ms sub-block `index` (exact for any sample rate)."""
        return index * self.sample_rate // _SUBBLOCKS_PER_SECOND

    def feed(self, samples: npt.NDArray[np.floating]) -> None:
        """Add samples, shape (n, channels) (or (n,) for mono), full scale +-1.0."""
        block = np.asarray(samples)
        if block.ndim == 1 and self.channels == 1:
            block = block[:, np.newaxis]
        if block.ndim != 2 or block.shape[1] != self.channels:
            raise ValueError(f"expected samples of shape (n, {self.channels}), got {block.shape}")
        if block.shape[0] == 0:
            return
        # One copy does both the float64 conversion and the planar layout.
        self._pending.append(np.array(block.T, dtype=np.float64, order="C"))
        self._pending_samples += block.shape[0]
        if self._pending_samples >= self._chunk:
            self._drain(keep_remainder=True)

    def _drain(self, *, keep_remainder: bool) -> None:
        """Process pending samples in chunks; keep a short remainder to batch with later."""
        # A decoder reading whole chunks leaves one block: no need to copy it.
        pending = self._pending[0] if len(self._pending) == 1 else np.concatenate(self._pending, 1)
        start = 0
        total = pending.shape[1]
        while total - start >= self._chunk or (not keep_remainder and start < total):
            stop = min(total, start + self._chunk)
            self._process(pending[:, start:stop])
            start = stop
        self._pending = [pending[:, start:]] if start < total else []
        self._pending_samples = total - start

    def _process(self, planar: FloatArray) -> None:
        """K-weight, accumulate energies and peaks of one chunk, shape (channels, n)."""
        n = planar.shape[1]
        self._sample_peak = max(self._sample_peak, float(planar.max()), -float(planar.min()))
        self._true_peak.feed(planar)

        filtered, self._zi = signal.sosfilt(self._sos, planar, axis=-1, zi=self._zi)
        weighted = np.asarray(self._weights @ (filtered * filtered), dtype=np.float64)

        # Momentary: sums over every 400 ms window ending in this chunk, at sample
        # resolution, from one cumulative sum over the carried tail plus the chunk.
        window = self._momentary_len
        extended = np.concatenate([self._momentary_tail, weighted])
        cumulative = np.concatenate([[0.0], np.cumsum(extended)])
        sums = cumulative[window + 1 :] - cumulative[1 : n + 1]
        self._max_momentary_energy = max(self._max_momentary_energy, float(np.max(sums)))
        self._momentary_tail = extended[n:]

        # 10 ms sub-blocks completed by this chunk.
        first = self._samples
        last = first + n
        end_index = (_SUBBLOCKS_PER_SECOND * (last + 1) - 1) // self.sample_rate
        chunk_cumulative = cumulative[window:] - cumulative[window]
        if end_index > self._subblock_count:
            indices = np.arange(self._subblock_count + 1, end_index + 1, dtype=np.int64)
            boundaries = indices * self.sample_rate // _SUBBLOCKS_PER_SECOND - first
            at = np.concatenate([[0.0], chunk_cumulative[boundaries]])
            energies = np.diff(at)
            energies[0] += self._subblock_partial
            self._subblocks.append(energies)
            self._subblock_count = end_index
            self._subblock_partial = float(chunk_cumulative[n] - at[-1])
        else:
            self._subblock_partial += float(chunk_cumulative[n])
        self._samples = last

    def result(self) -> LoudnessResult:
        """Measurement of everything fed so far (feeding may continue afterwards)."""
        if self._pending:
            self._drain(keep_remainder=False)
        energies = (
            np.concatenate(self._subblocks) if self._subblocks else np.zeros(0, dtype=np.float64)
        )
        self._subblocks = [energies]  # concatenate once, not again on the next call
        # Cumulative energy and sample position at every sub-block boundary.
        cumulative = np.concatenate([[0.0], np.cumsum(energies)])
        bounds = (
            np.arange(energies.size + 1, dtype=np.int64) * self.sample_rate // _SUBBLOCKS_PER_SECOND
        )
        integrated = self._integrated(cumulative, bounds)
        lra = self._loudness_range(cumulative, bounds)
        max_short_term = self._max_short_term(cumulative)
        true_peak = max(self._true_peak.flushed_peak(), self._sample_peak)
        result = LoudnessResult(
            integrated_lufs=integrated,
            lra=lra,
            true_peak_dbtp=_db(true_peak),
            max_momentary_lufs=_lufs(self._max_momentary_energy / self._momentary_len),
            max_short_term_lufs=max_short_term,
            sample_peak_dbfs=_db(self._sample_peak),
            duration_seconds=self._samples / self.sample_rate,
        )
        logger.debug("loudness of %.1f s: %s", result.duration_seconds, result)
        return result

    @staticmethod
    def _windows(
        cumulative: FloatArray, bounds: npt.NDArray[np.int64], length: int, step: int
    ) -> FloatArray:
        """Mean squares of complete windows of `length` sub-blocks starting every `step`."""
        starts = np.arange(0, cumulative.size - length, step, dtype=np.int64)
        energy = cumulative[starts + length] - cumulative[starts]
        samples = bounds[starts + length] - bounds[starts]
        return np.asarray(np.maximum(energy, 0.0) / samples, dtype=np.float64)

    def _integrated(self, cumulative: FloatArray, bounds: npt.NDArray[np.int64]) -> float:
        """BS.1770-4 gated loudness over 400 ms blocks with 75 % overlap."""
        blocks = self._windows(cumulative, bounds, _GATING_BLOCK, _GATING_STEP)
        loudness = _lufs_array(blocks)
        above_absolute = blocks[loudness > _ABSOLUTE_GATE_LUFS]
        if above_absolute.size == 0:
            return -math.inf
        relative_gate = _lufs(float(np.mean(above_absolute))) + _RELATIVE_GATE_LU
        gated = blocks[(loudness > _ABSOLUTE_GATE_LUFS) & (loudness > relative_gate)]
        return _lufs(float(np.mean(gated)))

    def _loudness_range(self, cumulative: FloatArray, bounds: npt.NDArray[np.int64]) -> float:
        """EBU Tech 3342 loudness range over 3 s short-term values every 100 ms."""
        windows = self._windows(cumulative, bounds, _SHORT_TERM, _SHORT_TERM_STEP)
        loudness = _lufs_array(windows)
        above_absolute = loudness > _ABSOLUTE_GATE_LUFS
        if np.count_nonzero(above_absolute) < 2:
            return 0.0
        relative_gate = _lufs(float(np.mean(windows[above_absolute]))) + _LRA_RELATIVE_GATE_LU
        gated = loudness[above_absolute & (loudness > relative_gate)]
        low, high = np.percentile(gated, [_LRA_LOW_PERCENTILE, _LRA_HIGH_PERCENTILE])
        return float(high - low)

    def _max_short_term(self, cumulative: FloatArray) -> float:
        """Largest 3 s loudness, every 10 ms; a programme shorter than 3 s is padded
        with the silence before it, as a meter started at its first sample reads."""
        if cumulative.size < 2:
            return -math.inf
        padded = np.concatenate([np.zeros(_SHORT_TERM - 1), cumulative])
        energy = float(np.max(padded[_SHORT_TERM:] - padded[:-_SHORT_TERM]))
        window_samples = self._subblock_start(_SHORT_TERM)
        return _lufs(energy / window_samples)


def _frame_samples(frame: av.AudioFrame) -> FloatArray:
    """A decoded frame as float64 (n, channels), full scale +-1.0, for any sample format."""
    data = frame.to_ndarray()
    channels = len(frame.layout.channels)
    samples = data.T if frame.format.is_planar else data.reshape(-1, channels)
    if np.issubdtype(samples.dtype, np.floating):
        return np.asarray(samples, dtype=np.float64)
    if samples.dtype == np.uint8:  # unsigned 8-bit is offset binary
        return (samples.astype(np.float64) - 128.0) / 128.0
    scale = float(2 ** (8 * samples.dtype.itemsize - 1))
    return samples.astype(np.float64) / scale


def _layout_names(frame: av.AudioFrame) -> tuple[str, ...] | None:
    """FFmpeg channel names of the frame, or None when the order is not a known one."""
    names = tuple(str(channel.name) for channel in frame.layout.channels)
    return names if all(name in _KNOWN_NAMES for name in names) else None


def measure_file(path: Path) -> LoudnessResult:
    """Measure the first audio stream of a media file, decoding it with PyAV.

    Raises LoudnessInputError, naming the file, when it cannot be opened or decoded or
    has no audio.
    """
    try:
        container = av.open(str(path))
    except (av.FFmpegError, OSError) as exc:
        raise LoudnessInputError(
            f"{path}: cannot open for loudness measurement ({exc}); check that the file "
            "exists and is a media file"
        ) from exc
    meter: LoudnessMeter | None = None
    with container:
        if not container.streams.audio:
            raise LoudnessInputError(
                f"{path}: has no audio stream, so its loudness cannot be measured; "
                "supply the lesson with its programme sound"
            )
        stream = container.streams.audio[0]
        try:
            for frame in container.decode(stream):
                samples = _frame_samples(frame)
                if meter is None:
                    layout = _layout_names(frame)
                    channels = samples.shape[1]
                    if layout is None and channels not in _DEFAULT_LAYOUTS:
                        layout = ("FL",) * channels  # unknown order: weigh all alike
                    meter = LoudnessMeter(frame.sample_rate, channels, layout=layout)
                elif samples.shape[1] != meter.channels or frame.sample_rate != (meter.sample_rate):
                    raise LoudnessInputError(
                        f"{path}: audio stream {stream.index} changes from "
                        f"{meter.channels} ch / {meter.sample_rate} Hz to "
                        f"{samples.shape[1]} ch / {frame.sample_rate} Hz mid-stream; "
                        "re-encode it with one format throughout"
                    )
                meter.feed(samples)
        except av.FFmpegError as exc:
            raise LoudnessInputError(
                f"{path}: audio stream {stream.index} cannot be decoded ({exc})"
            ) from exc
    if meter is None:
        raise LoudnessInputError(f"{path}: audio stream {stream.index} holds no samples")
    return meter.result()
