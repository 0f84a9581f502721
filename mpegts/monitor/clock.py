"""Stream time: every packet timed from the PCRs of one PID, and the bitrate it gives.

Intervals (PAT every 0.5 s, PID silence, PTS repetition, bitrate windows) are
measured on the stream's own clock: the PCRs of the first PID that carries one. A packet
is timed from the last PCR before it plus the packet count times the rate between the
two PCRs before that, so timing depends only on the past and the report is identical
whatever chunk sizes the bytes arrive in. Packets before the second PCR are untimed.
"""

from __future__ import annotations

import numpy as np

from mpegts.monitor.batch import PacketBatch
from mpegts.monitor.report import BitrateStats
from mpegts.packet import I64, PACKET_SIZE
from mpegts.timestamp import PCR_HZ, PCR_MODULUS, signed_delta


class StreamClock:
    """A monotonic 27 MHz clock (first reference PCR = 0) that one bad PCR cannot make jump."""

    def __init__(self, bitrate_window_s: float) -> None:
        self.pid: int | None = None  # the PCR PID that times the stream
        self._index: int | None = None  # packet index of the last reference PCR
        self._t = 0.0  # its time in ticks
        self._raw = 0
        self._dur: float | None = None  # ticks per packet
        self._first: tuple[int, float] | None = None  # (byte offset, t) first reference PCR
        self._last: tuple[int, float] | None = None
        self.origin: float | None = None  # time of the first timed packet
        self.last_t: float | None = None  # time of the last timed packet
        self._window_s = bitrate_window_s
        self._windows: list[int] = []  # bytes per bitrate window

    def time(self, batch: PacketBatch, rows: I64, pcrs: list[int], discs: list[bool]) -> None:
        """Advance on this batch's PCRs (`rows`, their values) and time every packet."""
        seg_index: list[int] = []
        seg_t: list[float] = []
        seg_dur: list[float] = []
        if self._index is not None and self._dur is not None:
            seg_index.append(self._index)
            seg_t.append(self._t)
            seg_dur.append(self._dur)
        for i, value, disc in zip(rows.tolist(), pcrs, discs, strict=True):
            pid = int(batch.pid[i])
            if self.pid is None:
                self.pid = pid
            if pid == self.pid:
                index = batch.packet_index(i)
                self._step(value, disc, index, batch.byte_offset(i))
                if self._dur is not None:
                    seg_index.append(index)
                    seg_t.append(self._t)
                    seg_dur.append(self._dur)
        if not seg_index:
            return
        starts = np.array(seg_index, np.int64)
        packets = batch.base + np.arange(len(batch), dtype=np.int64)
        k = np.searchsorted(starts, packets, side="right") - 1
        timed = k >= 0
        kk = k[timed]
        batch.times[timed] = (
            np.array(seg_t)[kk] + (packets[timed] - starts[kk]) * np.array(seg_dur)[kk]
        )
        if timed.any():
            if self.origin is None:
                self.origin = float(batch.times[timed][0])
            self.last_t = float(batch.times[-1])
        self._count_windows(batch)

    def _step(self, value: int, disc: bool, index: int, offset: int) -> None:
        """Advance to a PCR of the clock PID.

        A PCR step is believed if it is forward and within 8x of what the packet count at
        the last rate predicts; otherwise (a discontinuity, a splice) the clock runs on at
        the last rate, so one bad PCR never makes time jump.
        """
        if self._index is None:
            self._index, self._raw = index, value
            self._first = self._last = (offset, 0.0)
            return
        packets = index - self._index
        delta = signed_delta(value, self._raw, PCR_MODULUS)
        predicted = None if self._dur is None else packets * self._dur
        believable = (
            not disc
            and delta > 0
            and packets > 0
            and (predicted is None or predicted / 8 <= delta <= predicted * 8)
        )
        if believable:
            self._t += delta
            self._dur = delta / packets
            self._last = (offset, self._t)
        elif predicted is not None:
            self._t += predicted
        self._index, self._raw = index, value

    def _count_windows(self, batch: PacketBatch) -> None:
        """Bytes per bitrate window of stream time (for CBR constancy)."""
        if self.origin is None:
            return
        times = batch.times[~np.isnan(batch.times)]
        if not len(times):
            return
        width = self._window_s * PCR_HZ
        window = np.maximum(((times - self.origin) // width).astype(np.int64), 0)
        low = int(window[0])
        counts = np.bincount(window - low) * PACKET_SIZE
        need = low + len(counts)
        if need > len(self._windows):
            self._windows.extend([0] * (need - len(self._windows)))
        for k, size in enumerate(counts.tolist()):
            self._windows[low + k] += size

    @property
    def duration_s(self) -> float | None:
        if self.origin is None or self.last_t is None:
            return None
        return (self.last_t - self.origin) / PCR_HZ

    def bitrate(self) -> BitrateStats:
        """Total rate between the first and last reference PCR, and per complete window."""
        total_bps = None
        if self._first and self._last and self._last[1] > self._first[1]:
            span_bytes = self._last[0] - self._first[0]
            total_bps = span_bytes * 8 * PCR_HZ / (self._last[1] - self._first[1])
        complete = self._windows[:-1]
        window_s = self._window_s
        return BitrateStats(
            total_bps=total_bps,
            window_s=window_s,
            windows=len(complete),
            window_min_bps=min(complete) * 8 / window_s if complete else None,
            window_max_bps=max(complete) * 8 / window_s if complete else None,
        )
