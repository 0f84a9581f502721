"""A streaming MPEG-TS checker: ETSI TR 101 290 priority 1 and 2 plus playout acceptance.

The playout engine feeds its live output straight in (a day at 10 Mb/s is ~100 GB, so
nothing is ever kept whole), the CLI feeds a file through `check_file`. Work per packet
is done with numpy over batches of packets (sync, PID, CC, adaptation field, PCR); only
PES headers (one per frame) and PSI/SI sections (a few per second) go through Python.

Time. Intervals (PAT every 0.5 s, PID silence, PTS repetition, bitrate windows) are
measured on the stream's own clock: the PCRs of the first PID that carries one. A packet
is timed from the last PCR before it plus the packet count times the rate between the
two PCRs before that, so timing depends only on the past and the report is identical
whatever chunk sizes the bytes arrive in. Packets before the second PCR are untimed.

Video timing (checks A.2/A.3) uses DTS deltas in decode order: with B-frames PTS order
differs from arrival order, while DTS advances by exactly one frame duration per frame.
A PES without a DTS has DTS = PTS. All 33-bit values are unwrapped, so a stream running
across the 2^33 wrap (26.5 h) is judged on true differences.

PCR accuracy (2.4) fits PCR against byte offset by least squares over windows of
`pcr_accuracy_window_s` of PCR time (restarting at a discontinuity): the slope is the
constant mux rate, the largest residual is the PCR error in ns. It assumes a CBR
stream; set `cbr=False` for a VBR recording.
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from compliance.pes import (
    PCR_MODULUS,
    PesHeader,
    TimestampUnwrapper,
    parse_pes_header,
    pes_header_size,
    signed_delta,
)
from compliance.tr101290 import Check, CheckResult, Finding, FindingLog, make_finding
from compliance.tsmonitor_psi import (
    SECTION_STREAM_TYPES,
    STREAM_TYPE_NAMES,
    Program,
    SectionAssembler,
    crc32_mpeg,
    parse_pat,
    parse_pmt,
    section_has_crc,
    stream_kind,
)
from compliance.tsmonitor_report import BitrateStats, PidStats, TsReport
from core.errors import BadInputError

__all__ = [
    "CheckResult",
    "Finding",
    "PesHeader",
    "PesSink",
    "PidStats",
    "Program",
    "SectionCollector",
    "SectionSink",
    "TsFileError",
    "TsMonitor",
    "TsMonitorConfig",
    "TsReport",
    "check_file",
]

logger = logging.getLogger(__name__)

PACKET_SIZE = 188
SYNC_BYTE = 0x47
NULL_PID = 0x1FFF
PCR_HZ = 27_000_000
_SYNC_RUN = 5  # consecutive sync bytes that (re)acquire sync, as TR 101 290 1.1 suggests
# PSI/SI PIDs whose sections are CRC-checked even when no table declares them.
_SI_PIDS = frozenset({0x0000, 0x0001, 0x0010, 0x0011, 0x0012, 0x0013, 0x0014})

SectionSink = Callable[[int, bytes], None]
"""Receives (pid, section) for every complete section with a good CRC on a subscribed PID."""

PesSink = Callable[[int, PesHeader, int], None]
"""Receives (pid, header, packet_index) for every PES header, e.g. to follow video PTS."""

U8 = npt.NDArray[np.uint8]
I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
Bools = npt.NDArray[np.bool_]
Ints = npt.NDArray[np.integer[Any]]


class TsFileError(BadInputError, OSError):
    """The file to check cannot be read."""


@dataclass(frozen=True, kw_only=True)
class TsMonitorConfig:
    """Limits of the checks; the defaults are TR 101 290's and the house format's."""

    pat_interval_s: float = 0.5
    pmt_interval_s: float = 0.5
    pid_timeout_s: float = 5.0
    pcr_interval_ms: float = 40.0
    pcr_discontinuity_ms: float = 100.0
    pcr_accuracy_ns: float = 500.0
    pcr_accuracy_window_s: float = 10.0
    cbr: bool = True
    pts_interval_ms: float = 700.0
    frame_ticks: int = 3600  # 90 kHz ticks per video frame (25 fps)
    video_tolerance_ticks: int = 180  # 2 ms either way before a frame step is an error
    bitrate_window_s: float = 1.0
    max_examples: int = 5
    batch_bytes: int = PACKET_SIZE * 2048  # bytes buffered before a numpy pass

    def __post_init__(self) -> None:
        if self.batch_bytes < 0 or self.max_examples < 0 or self.frame_ticks <= 0:
            raise BadInputError(
                "TsMonitorConfig: batch_bytes and max_examples must be >= 0 and frame_ticks "
                f"> 0 (got {self.batch_bytes}, {self.max_examples}, {self.frame_ticks})"
            )


class SectionCollector:
    """A `SectionSink` that keeps every section it receives, per PID."""

    def __init__(self) -> None:
        self.sections: dict[int, list[bytes]] = {}

    def __call__(self, pid: int, section: bytes) -> None:
        self.sections.setdefault(pid, []).append(section)


@dataclass
class _Interval:
    """Arrival interval of one repeating thing, in 27 MHz ticks of stream time."""

    ref: float | None = None
    max: float | None = None

    def arrive(self, t: float) -> float | None:
        """Record an arrival at `t`; return the gap before it (None if unknown)."""
        if math.isnan(t):
            return None
        gap = None if self.ref is None else t - self.ref
        if gap is not None and (self.max is None or gap > self.max):
            self.max = gap
        self.ref = t
        return gap


@dataclass
class _PcrState:
    """Per PCR PID: the previous PCR and the open accuracy window."""

    last_raw: int | None = None
    count: int = 0
    max_interval: int | None = None
    unwrap: TimestampUnwrapper = field(default_factory=lambda: TimestampUnwrapper(PCR_MODULUS))
    window_offsets: list[int] = field(default_factory=list)
    window_pcrs: list[int] = field(default_factory=list)
    window_indices: list[int] = field(default_factory=list)
    max_accuracy_ns: float | None = None


@dataclass
class _PesState:
    """Per PES PID: timestamps seen so far."""

    pes_packets: int = 0
    pts_count: int = 0
    dts_count: int = 0
    first_dts: int | None = None
    last_dts: int | None = None
    last_pts_t: float | None = None
    max_pts_interval: float | None = None
    unwrap: TimestampUnwrapper = field(default_factory=TimestampUnwrapper)


@dataclass
class _Pending:
    """A PES header split across packets, waiting for the rest of its bytes."""

    data: bytes
    packet_index: int
    byte_offset: int
    t: float


@dataclass
class _Presence:
    """A PMT-declared PID: when it was last seen (for 1.6)."""

    declared_at: int
    ref: float | None
    max_gap: float | None = None


@dataclass
class _Batch:
    """One numpy pass: the packets and the header fields decoded from them."""

    data: bytes
    arr: U8
    base: int  # global index of the first packet
    offset: int  # byte offset of the first packet
    pid: npt.NDArray[np.int64]
    good: Bools  # transport_error_indicator clear
    pusi: Bools
    scrambled: Bools
    has_payload: Bools
    payload_start: I64
    cc_error: Bools
    repeat: Bools  # an allowed duplicate packet: counted, but its payload is not used again
    times: F64


class TsMonitor:
    """Feed it transport stream bytes in any chunk sizes; ask for `report()` at any time.

    `on_section` with `section_pids` (or `subscribe_sections`) hands complete, CRC-valid
    PSI/SI sections to other code, such as an EIT decoder, without this module knowing
    their tables; `on_pes` hands over every PES header (stream_id, PTS, DTS).
    """

    def __init__(
        self,
        config: TsMonitorConfig | None = None,
        *,
        on_section: SectionSink | None = None,
        section_pids: Iterable[int] = (),
        on_pes: PesSink | None = None,
    ) -> None:
        self.config = config or TsMonitorConfig()
        self._log = FindingLog(self.config.max_examples)
        self._buffer = bytearray()
        self._offset = 0  # byte offset of _buffer[0] in the stream
        self._bytes_fed = 0
        self._skipped = 0
        self._synced = False
        self._packets = 0
        self._pid_packets: I64 = np.zeros(8192, np.int64)
        self._pid_scrambled: I64 = np.zeros(8192, np.int64)
        self._pid_cc_errors: I64 = np.zeros(8192, np.int64)
        self._last_cc = np.full(8192, -1, np.int16)
        self._last_dup = np.zeros(8192, np.bool_)
        # stream clock, from the first PID that carries a PCR
        self._clock_pid: int | None = None
        self._clock_index: int | None = None  # packet index of the last reference PCR
        self._clock_t = 0.0  # its time in ticks (monotonic, first reference PCR = 0)
        self._clock_raw = 0
        self._clock_dur: float | None = None  # ticks per packet
        self._clock_first: tuple[int, float] | None = None  # (byte offset, t) first ref PCR
        self._clock_last: tuple[int, float] | None = None
        self._origin: float | None = None  # time of the first timed packet
        self._last_t: float | None = None  # time of the last timed packet
        self._windows: list[int] = []  # bytes per bitrate window
        self._pcr: dict[int, _PcrState] = {}
        # PSI
        self._assemblers: dict[int, SectionAssembler] = {}
        self._sections: dict[int, int] = {}
        self._sinks: dict[int, list[SectionSink]] = {}
        self._pat: dict[int, int] = {}
        self._programs: dict[int, Program] = {}  # by PMT PID
        self._pat_packets = _Interval()
        self._pat_sections = _Interval()
        self._pmt_packets: dict[int, _Interval] = {}
        self._pmt_sections: dict[int, _Interval] = {}
        self._presence: dict[int, _Presence] = {}
        self._psi_pids: npt.NDArray[np.int64] = np.array(sorted(_SI_PIDS), np.int64)
        self._psi_changed = False
        self._current: tuple[int, int, float] = (0, 0, math.nan)  # packet index, offset, t
        # PES
        self._pes: dict[int, _PesState] = {}
        self._pending: dict[int, _Pending] = {}
        self._on_pes = on_pes
        if on_section is not None:
            self.subscribe_sections(section_pids, on_section)

    # ------------------------------------------------------------------ input

    def subscribe_sections(self, pids: Iterable[int], sink: SectionSink) -> None:
        """Deliver every complete, CRC-valid section on `pids` to `sink(pid, section)`."""
        for pid in pids:
            self._sinks.setdefault(pid, []).append(sink)
        self._update_psi_pids()

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        """Take the next bytes of the stream; analysis runs once a batch has gathered."""
        self._buffer += data
        self._bytes_fed += len(data)
        if len(self._buffer) >= self.config.batch_bytes:
            self._drain()

    def report(self) -> TsReport:
        """Analyse every whole packet fed so far and return a snapshot of the results."""
        self._drain()
        return self._build_report()

    # ------------------------------------------------------------------ sync layer

    def _drain(self) -> None:
        """Split the buffer into aligned packets, tracking sync as TR 101 290 1.1/1.2 do."""
        while True:
            if not self._synced and not self._hunt():
                return
            n = len(self._buffer) // PACKET_SIZE
            if n == 0:
                return
            data = bytes(self._buffer[: n * PACKET_SIZE])
            arr = np.frombuffer(data, np.uint8).reshape(n, PACKET_SIZE)
            bad = arr[:, 0] != SYNC_BYTE
            if bad.any():
                pairs = np.flatnonzero(bad[:-1] & bad[1:])
                if len(pairs):
                    lost = int(pairs[0])
                    self._analyse(data[: lost * PACKET_SIZE], arr[:lost])
                    self._consume(lost * PACKET_SIZE)
                    self._log.add(
                        Check.TS_SYNC_LOSS,
                        "two consecutive packets without sync byte 0x47: sync lost",
                        packet_index=self._packets,
                        byte_offset=self._offset,
                    )
                    logger.warning("TS sync lost at byte %d", self._offset)
                    self._synced = False
                    continue
                if bad[-1]:
                    n -= 1  # the next packet decides between a sync byte error and a loss
                    if n == 0:
                        return
            self._analyse(data[: n * PACKET_SIZE], arr[:n])
            self._consume(n * PACKET_SIZE)
            return

    def _hunt(self) -> bool:
        """Find _SYNC_RUN sync bytes a packet apart; drop the bytes before them."""
        span = (_SYNC_RUN - 1) * PACKET_SIZE
        limit = len(self._buffer) - span
        if limit <= 0:
            return False
        buf = np.frombuffer(bytes(self._buffer), np.uint8)
        candidates = np.flatnonzero(buf[:limit] == SYNC_BYTE)
        aligned = np.ones(len(candidates), np.bool_)
        for step in range(1, _SYNC_RUN):
            aligned &= buf[candidates + step * PACKET_SIZE] == SYNC_BYTE
        if not aligned.any():
            self._skipped += limit
            self._consume(limit)
            return False
        start = int(candidates[int(np.argmax(aligned))])
        self._skipped += start
        self._consume(start)
        self._synced = True
        logger.debug("TS sync acquired at byte %d", self._offset)
        return True

    def _consume(self, size: int) -> None:
        del self._buffer[:size]
        self._offset += size

    # ------------------------------------------------------------------ packet layer

    def _analyse(self, data: bytes, arr: U8) -> None:
        """Run every check over a batch of aligned packets."""
        n = len(arr)
        if n == 0:
            return
        base, offset = self._packets, self._offset
        bad_sync = np.flatnonzero(arr[:, 0] != SYNC_BYTE)
        for i in bad_sync.tolist():
            self._log.add(
                Check.SYNC_BYTE_ERROR,
                f"sync byte 0x{arr[i, 0]:02X} instead of 0x47",
                packet_index=base + i,
                byte_offset=offset + i * PACKET_SIZE,
            )
        b1 = arr[:, 1]
        b3 = arr[:, 3]
        pid = ((b1 & 0x1F).astype(np.int64) << 8) | arr[:, 2]
        good = (b1 & 0x80) == 0
        afc = (b3 >> 4) & 3
        has_af = (afc & 2) != 0
        af_len = np.where(has_af, arr[:, 4], 0).astype(np.int64)
        af_flags = np.where(has_af & (af_len > 0), arr[:, 5], 0)
        payload_start = np.where(has_af, 5 + af_len, 4)
        batch = _Batch(
            data=data,
            arr=arr,
            base=base,
            offset=offset,
            pid=pid,
            good=good,
            pusi=(b1 & 0x40) != 0,
            scrambled=(b3 >> 6) != 0,
            has_payload=((afc & 1) != 0) & (payload_start < PACKET_SIZE),
            payload_start=payload_start,
            cc_error=np.zeros(n, np.bool_),
            repeat=np.zeros(n, np.bool_),
            times=np.full(n, np.nan),
        )
        self._pid_packets += np.bincount(pid, minlength=8192)
        if batch.scrambled.any():
            self._pid_scrambled += np.bincount(pid[batch.scrambled], minlength=8192)
        self._check_tei(batch)
        order, sorted_pid = self._check_cc(batch, b3 & 0x0F, (af_flags & 0x80) != 0)
        pcr_mask = good & has_af & (af_len >= 7) & ((af_flags & 0x10) != 0)
        self._clock_segments(batch, np.flatnonzero(pcr_mask), (af_flags & 0x80) != 0)
        self._count_windows(batch)
        self._psi_pass(batch)
        self._pes_pass(batch)
        self._presence_pass(batch, order, sorted_pid)
        self._packets += n

    def _check_tei(self, batch: _Batch) -> None:
        tei = np.flatnonzero(~batch.good)
        if not len(tei):
            return
        self._log.add_count(Check.TRANSPORT_ERROR, len(tei))
        for i in tei[: self._log.wants_examples(Check.TRANSPORT_ERROR)].tolist():
            self._log.add_example(
                Check.TRANSPORT_ERROR,
                "transport_error_indicator set",
                packet_index=batch.base + i,
                byte_offset=batch.offset + i * PACKET_SIZE,
                pid=int(batch.pid[i]),
            )

    def _check_cc(self, batch: _Batch, cc_all: Ints, discontinuity: Bools) -> tuple[I64, I64]:
        """1.4 on every PID at once: sort packets by PID (stable), compare neighbours.

        Returns the sort order (batch indices grouped by PID, in arrival order within a
        PID) and the sorted PIDs, reused by the 1.6 presence check.
        """
        rows = np.flatnonzero(batch.good & (batch.pid != NULL_PID))
        order = rows[np.argsort(batch.pid[rows], kind="stable")]
        spid = batch.pid[order]
        if not len(order):
            return order, spid
        cc = cc_all[order].astype(np.int16)
        payload = batch.has_payload[order]
        first = np.empty(len(order), np.bool_)
        first[0] = True
        first[1:] = spid[1:] != spid[:-1]
        prev = np.empty_like(cc)
        prev[1:] = cc[:-1]
        prev[first] = self._last_cc[spid[first]]
        duplicate = payload & (cc == prev)
        prev_duplicate = np.empty_like(duplicate)
        prev_duplicate[1:] = duplicate[:-1]
        prev_duplicate[first] = self._last_dup[spid[first]]
        expected = np.where(payload, (prev + 1) & 0x0F, prev)
        allowed_repeat = duplicate & ~prev_duplicate  # one repeat of a packet is allowed
        error = (prev >= 0) & ~discontinuity[order] & (cc != expected) & ~allowed_repeat
        batch.repeat[order[allowed_repeat]] = True
        last = np.empty(len(order), np.bool_)
        last[:-1] = first[1:]
        last[-1] = True
        self._last_cc[spid[last]] = cc[last]
        self._last_dup[spid[last]] = duplicate[last]
        if error.any():
            where = order[error]
            batch.cc_error[where] = True
            self._pid_cc_errors += np.bincount(spid[error], minlength=8192)
            self._log.add_count(Check.CONTINUITY_COUNT_ERROR, len(where))
            wanted = self._log.wants_examples(Check.CONTINUITY_COUNT_ERROR)
            if wanted > 0:
                firsts = np.argsort(where, kind="stable")[:wanted]
                got, was = cc[error], prev[error]
                for k in firsts.tolist():
                    i = int(where[k])
                    self._log.add_example(
                        Check.CONTINUITY_COUNT_ERROR,
                        f"continuity_counter {int(got[k])} after {int(was[k])}"
                        f" (expected {(int(was[k]) + 1) & 0x0F})",
                        packet_index=batch.base + i,
                        byte_offset=batch.offset + i * PACKET_SIZE,
                        pid=int(batch.pid[i]),
                    )
        return order, spid

    # ------------------------------------------------------------------ PCR and clock

    def _clock_segments(self, batch: _Batch, rows: I64, discontinuity: Bools) -> None:
        """2.3a/2.3b/2.4 per PCR, then time every packet of the batch from the clock PID."""
        seg_index: list[int] = []
        seg_t: list[float] = []
        seg_dur: list[float] = []
        if self._clock_index is not None and self._clock_dur is not None:
            seg_index.append(self._clock_index)
            seg_t.append(self._clock_t)
            seg_dur.append(self._clock_dur)
        if len(rows):
            raw = batch.arr[rows, 6:12].astype(np.int64)
            pcr_base = (
                (raw[:, 0] << 25) | (raw[:, 1] << 17) | (raw[:, 2] << 9) | (raw[:, 3] << 1)
            ) | (raw[:, 4] >> 7)
            pcrs = pcr_base * 300 + (((raw[:, 4] & 1) << 8) | raw[:, 5])
            for i, value, disc in zip(
                rows.tolist(), pcrs.tolist(), discontinuity[rows].tolist(), strict=True
            ):
                pid = int(batch.pid[i])
                index = batch.base + i
                offset = batch.offset + i * PACKET_SIZE
                self._on_pcr(pid, value, disc, index, offset)
                if self._clock_pid is None:
                    self._clock_pid = pid
                if pid == self._clock_pid:
                    self._clock_step(value, disc, index, offset)
                    if self._clock_dur is not None:
                        seg_index.append(index)
                        seg_t.append(self._clock_t)
                        seg_dur.append(self._clock_dur)
        if not seg_index:
            return
        starts = np.array(seg_index, np.int64)
        packets = batch.base + np.arange(len(batch.arr), dtype=np.int64)
        k = np.searchsorted(starts, packets, side="right") - 1
        timed = k >= 0
        kk = k[timed]
        batch.times[timed] = (
            np.array(seg_t)[kk] + (packets[timed] - starts[kk]) * np.array(seg_dur)[kk]
        )
        if timed.any():
            if self._origin is None:
                self._origin = float(batch.times[timed][0])
                self._pat_packets.ref = self._origin
                self._pat_sections.ref = self._origin
            self._last_t = float(batch.times[-1])

    def _clock_step(self, value: int, disc: bool, index: int, offset: int) -> None:
        """Advance the monotonic stream clock to a PCR of the clock PID.

        A PCR step is believed if it is forward and within 8x of what the packet count at
        the last rate predicts; otherwise (a discontinuity, a splice) the clock runs on at
        the last rate, so one bad PCR never makes time jump.
        """
        if self._clock_index is None:
            self._clock_index, self._clock_raw = index, value
            self._clock_first = self._clock_last = (offset, 0.0)
            return
        packets = index - self._clock_index
        delta = signed_delta(value, self._clock_raw, PCR_MODULUS)
        predicted = None if self._clock_dur is None else packets * self._clock_dur
        believable = (
            not disc
            and delta > 0
            and packets > 0
            and (predicted is None or predicted / 8 <= delta <= predicted * 8)
        )
        if believable:
            self._clock_t += delta
            self._clock_dur = delta / packets
            self._clock_last = (offset, self._clock_t)
        elif predicted is not None:
            self._clock_t += predicted
        self._clock_index, self._clock_raw = index, value

    def _on_pcr(self, pid: int, value: int, disc: bool, index: int, offset: int) -> None:
        state = self._pcr.setdefault(pid, _PcrState())
        state.count += 1
        limit_rep = self.config.pcr_interval_ms * PCR_HZ / 1000
        limit_jump = self.config.pcr_discontinuity_ms * PCR_HZ / 1000
        restart_window = disc
        if state.last_raw is not None and not disc:
            delta = signed_delta(value, state.last_raw, PCR_MODULUS)
            ms = delta * 1000 / PCR_HZ
            if delta >= 0 and (state.max_interval is None or delta > state.max_interval):
                state.max_interval = delta
            if delta > limit_rep:
                self._log.add(
                    Check.PCR_REPETITION_ERROR,
                    f"{ms:.1f} ms since the previous PCR (limit {self.config.pcr_interval_ms} ms)",
                    packet_index=index,
                    byte_offset=offset,
                    pid=pid,
                )
            if delta < 0 or delta > limit_jump:
                self._log.add(
                    Check.PCR_DISCONTINUITY_INDICATOR_ERROR,
                    f"PCR stepped {ms:.1f} ms without discontinuity_indicator",
                    packet_index=index,
                    byte_offset=offset,
                    pid=pid,
                )
                restart_window = True
        state.last_raw = value
        if not self.config.cbr:
            return
        if restart_window:
            self._close_accuracy_window(pid, state)
            state.unwrap = TimestampUnwrapper(PCR_MODULUS)
        state.window_offsets.append(offset)
        state.window_pcrs.append(state.unwrap.unwrap(value))
        state.window_indices.append(index)
        span = state.window_pcrs[-1] - state.window_pcrs[0]
        if span >= self.config.pcr_accuracy_window_s * PCR_HZ:
            self._close_accuracy_window(pid, state)
            # the closing PCR starts the next window, so no stretch goes unmeasured
            state.window_offsets.append(offset)
            state.window_pcrs.append(state.unwrap.unwrap(value))
            state.window_indices.append(index)

    def _close_accuracy_window(self, pid: int, state: _PcrState) -> None:
        worst, findings = self._accuracy(pid, state)
        if worst is not None:
            state.max_accuracy_ns = max(worst, state.max_accuracy_ns or 0.0)
        for finding in findings:
            self._log.add(
                Check.PCR_ACCURACY_ERROR,
                finding.message,
                packet_index=finding.packet_index,
                byte_offset=finding.byte_offset,
                pid=pid,
            )
        state.window_offsets.clear()
        state.window_pcrs.clear()
        state.window_indices.clear()

    def _accuracy(self, pid: int, state: _PcrState) -> tuple[float | None, list[Finding]]:
        """Largest |PCR - fit| in ns over the open window, and one finding per bad PCR."""
        if len(state.window_pcrs) < 3:
            return None, []
        x = np.array(state.window_offsets, np.float64) - state.window_offsets[0]
        y = np.array(state.window_pcrs, np.float64) - state.window_pcrs[0]
        slope, intercept = np.polyfit(x, y, 1)
        residual_ns = (y - (slope * x + intercept)) * 1e9 / PCR_HZ
        magnitude = np.abs(residual_ns)
        bad = np.flatnonzero(magnitude > self.config.pcr_accuracy_ns)
        rate = 8 * PCR_HZ / slope if slope > 0 else math.nan
        findings = [
            make_finding(
                Check.PCR_ACCURACY_ERROR,
                f"PCR off by {residual_ns[k]:+.0f} ns from the constant rate "
                f"{rate / 1e6:.6f} Mb/s (limit ±{self.config.pcr_accuracy_ns:.0f} ns)",
                packet_index=state.window_indices[k],
                byte_offset=state.window_offsets[k],
                pid=pid,
            )
            for k in bad.tolist()
        ]
        return float(magnitude.max()), findings

    def _count_windows(self, batch: _Batch) -> None:
        """Bytes per bitrate window of stream time (for CBR constancy)."""
        if self._origin is None:
            return
        times = batch.times[~np.isnan(batch.times)]
        if not len(times):
            return
        width = self.config.bitrate_window_s * PCR_HZ
        window = np.maximum(((times - self._origin) // width).astype(np.int64), 0)
        low = int(window[0])
        counts = np.bincount(window - low) * PACKET_SIZE
        need = low + len(counts)
        if need > len(self._windows):
            self._windows.extend([0] * (need - len(self._windows)))
        for k, size in enumerate(counts.tolist()):
            self._windows[low + k] += size

    # ------------------------------------------------------------------ PSI/SI

    def _update_psi_pids(self) -> None:
        pids = set(_SI_PIDS) | set(self._sinks) | set(self._programs) | set(self._pat.values())
        for program in self._programs.values():
            pids.update(s.pid for s in program.streams if s.stream_type in SECTION_STREAM_TYPES)
        self._psi_pids = np.array(sorted(pids), np.int64)
        self._psi_changed = True

    def _psi_pass(self, batch: _Batch) -> None:
        """Section PIDs in packet order; a new PAT/PMT can add PIDs mid-batch, so rescan."""
        start = 0
        while True:
            self._psi_changed = False
            rows = np.flatnonzero(np.isin(batch.pid[start:], self._psi_pids) & batch.good[start:])
            for i in (rows + start).tolist():
                self._psi_packet(batch, i)
                if self._psi_changed:
                    start = i + 1
                    break
            else:
                return

    def _psi_packet(self, batch: _Batch, i: int) -> None:
        pid = int(batch.pid[i])
        index = batch.base + i
        offset = batch.offset + i * PACKET_SIZE
        t = float(batch.times[i])
        scrambled = bool(batch.scrambled[i])
        pmt_programs = [n for n, p in self._pat.items() if p == pid and n != 0]
        if pid == 0:
            self._interval_check(
                self._pat_packets,
                t,
                Check.PAT_ERROR,
                self.config.pat_interval_s,
                index,
                offset,
                pid,
                "PID 0",
            )
            if scrambled:
                for check in (Check.PAT_ERROR, Check.PAT_ERROR_2):
                    self._log.add(
                        check, "PID 0 scrambled", packet_index=index, byte_offset=offset, pid=0
                    )
        elif pmt_programs:
            self._interval_check(
                self._pmt_packets.setdefault(pid, _Interval()),
                t,
                Check.PMT_ERROR,
                self.config.pmt_interval_s,
                index,
                offset,
                pid,
                f"PMT PID {pid}",
            )
            if scrambled:
                self._log.add(
                    Check.PMT_ERROR,
                    "PMT PID scrambled",
                    packet_index=index,
                    byte_offset=offset,
                    pid=pid,
                )
        if scrambled or not batch.has_payload[i] or batch.repeat[i]:
            return
        assembler = self._assemblers.get(pid)
        if assembler is None:
            assembler = SectionAssembler(functools.partial(self._section, pid))
            self._assemblers[pid] = assembler
        if batch.cc_error[i]:
            assembler.reset()
        self._current = (index, offset, t)
        start = int(batch.payload_start[i])
        assembler.push(
            batch.data[i * PACKET_SIZE + start : (i + 1) * PACKET_SIZE], bool(batch.pusi[i])
        )

    def _interval_check(
        self,
        interval: _Interval,
        t: float,
        check: Check,
        limit_s: float,
        index: int,
        offset: int,
        pid: int,
        what: str,
    ) -> None:
        gap = interval.arrive(t)
        if gap is not None and gap > limit_s * PCR_HZ:
            self._log.add(
                check,
                f"{what} absent for {gap / PCR_HZ:.3f} s (limit {limit_s} s)",
                packet_index=index,
                byte_offset=offset,
                pid=pid,
            )

    def _section(self, pid: int, section: bytes) -> None:
        """A complete section: CRC, then PAT/PMT decoding and delivery to subscribers."""
        index, offset, t = self._current
        self._sections[pid] = self._sections.get(pid, 0) + 1
        table_id = section[0]
        if section_has_crc(section) and crc32_mpeg(section) != 0:
            self._log.add(
                Check.CRC_ERROR,
                f"CRC_32 wrong in section table_id 0x{table_id:02X} ({len(section)} bytes)",
                packet_index=index,
                byte_offset=offset,
                pid=pid,
            )
            return
        for sink in self._sinks.get(pid, ()):
            sink(pid, section)
        if pid == 0:
            if table_id != 0x00:
                for check in (Check.PAT_ERROR, Check.PAT_ERROR_2):
                    self._log.add(
                        check,
                        f"table_id 0x{table_id:02X} on PID 0",
                        packet_index=index,
                        byte_offset=offset,
                        pid=0,
                    )
                return
            self._interval_check(
                self._pat_sections,
                t,
                Check.PAT_ERROR_2,
                self.config.pat_interval_s,
                index,
                offset,
                0,
                "PAT section",
            )
            self._on_pat(parse_pat(section), t, index)
        elif table_id == 0x02 and pid in self._pat.values():
            self._interval_check(
                self._pmt_sections.setdefault(pid, _Interval()),
                t,
                Check.PMT_ERROR_2,
                self.config.pmt_interval_s,
                index,
                offset,
                pid,
                f"PMT section on PID {pid}",
            )
            program = parse_pmt(section, pid)
            if program is not None and program != self._programs.get(pid):
                self._on_pmt(pid, program, t, index)

    def _on_pat(self, pat: dict[int, int], t: float, index: int) -> None:
        if pat == self._pat:
            return
        logger.info("PAT: programs %s", {n: p for n, p in sorted(pat.items())})
        self._pat = pat
        pmt_pids = {p for n, p in pat.items() if n != 0}
        for pmt_pid in list(self._programs):
            if pmt_pid not in pmt_pids:
                del self._programs[pmt_pid]
        for tracker in (self._pmt_packets, self._pmt_sections):
            for pmt_pid in list(tracker):
                if pmt_pid not in pmt_pids:
                    del tracker[pmt_pid]
            for pmt_pid in pmt_pids:
                tracker.setdefault(pmt_pid, _Interval(ref=None if math.isnan(t) else t))
        self._declare_es(t, index)
        self._update_psi_pids()

    def _on_pmt(self, pmt_pid: int, program: Program, t: float, index: int) -> None:
        logger.info(
            "PMT PID %d: program %d, PCR PID %s, streams %s",
            pmt_pid,
            program.program_number,
            program.pcr_pid,
            [
                (s.pid, STREAM_TYPE_NAMES.get(s.stream_type, hex(s.stream_type)))
                for s in program.streams
            ],
        )
        self._programs[pmt_pid] = program
        self._declare_es(t, index)
        self._update_psi_pids()

    def _declare_es(self, t: float, index: int) -> None:
        """Start (or stop) watching the elementary PIDs the PMTs now declare (1.6)."""
        declared = {s.pid for p in self._programs.values() for s in p.streams}
        for pid in list(self._presence):
            if pid not in declared:
                del self._presence[pid]
        for pid in declared:
            if pid not in self._presence:
                self._presence[pid] = _Presence(declared_at=index, ref=None if math.isnan(t) else t)

    # ------------------------------------------------------------------ PES

    def _pes_pass(self, batch: _Batch) -> None:
        """Parse the PES header of every payload unit start (one per frame)."""
        for pid, pending in list(self._pending.items()):
            self._continue_pending(batch, pid, pending)
        start = batch.payload_start
        rows = np.flatnonzero(
            batch.good
            & batch.pusi
            & batch.has_payload
            & ~batch.scrambled
            & ~batch.repeat
            & (batch.pid != NULL_PID)
            & (batch.pid != 0)
            & (start <= PACKET_SIZE - 3)
        )
        if not len(rows):
            return
        at = np.minimum(start[rows], PACKET_SIZE - 3)
        arr = batch.arr
        prefix = (arr[rows, at] == 0) & (arr[rows, at + 1] == 0) & (arr[rows, at + 2] == 1)
        for i in rows[prefix].tolist():
            pid = int(batch.pid[i])
            self._pending.pop(pid, None)  # a new unit start abandons an unfinished header
            payload = batch.data[i * PACKET_SIZE + int(start[i]) : (i + 1) * PACKET_SIZE]
            pending = _Pending(
                data=payload,
                packet_index=batch.base + i,
                byte_offset=batch.offset + i * PACKET_SIZE,
                t=float(batch.times[i]),
            )
            needed = pes_header_size(payload)
            if needed is not None and len(payload) < needed:
                self._pending[pid] = pending
                self._continue_pending(batch, pid, pending, after=i + 1)
            else:
                self._pes_header(pid, pending)

    def _continue_pending(self, batch: _Batch, pid: int, pending: _Pending, after: int = 0) -> None:
        """Complete a header split across packets with the next payloads of its PID."""
        rows = np.flatnonzero(batch.pid[after:] == pid) + after
        for i in rows.tolist():
            if not batch.good[i] or batch.cc_error[i] or batch.pusi[i]:
                del self._pending[pid]  # the header cannot be completed
                return
            if not batch.has_payload[i] or batch.repeat[i]:
                continue
            pending.data += batch.data[
                i * PACKET_SIZE + int(batch.payload_start[i]) : (i + 1) * PACKET_SIZE
            ]
            needed = pes_header_size(pending.data)
            if needed is None or len(pending.data) >= needed:
                del self._pending[pid]
                self._pes_header(pid, pending)
                return

    def _pes_header(self, pid: int, pending: _Pending) -> None:
        header = parse_pes_header(pending.data)
        if header is None:
            return
        state = self._pes.setdefault(pid, _PesState())
        state.pes_packets += 1
        if self._on_pes is not None:
            self._on_pes(pid, header, pending.packet_index)
        if header.pts is None:
            return
        index, offset, t = pending.packet_index, pending.byte_offset, pending.t
        state.pts_count += 1
        if not math.isnan(t):
            if state.last_pts_t is not None:
                gap = t - state.last_pts_t
                if state.max_pts_interval is None or gap > state.max_pts_interval:
                    state.max_pts_interval = gap
                if gap > self.config.pts_interval_ms * PCR_HZ / 1000:
                    self._log.add(
                        Check.PTS_ERROR,
                        f"{gap * 1000 / PCR_HZ:.0f} ms since the previous PTS "
                        f"(limit {self.config.pts_interval_ms:.0f} ms)",
                        packet_index=index,
                        byte_offset=offset,
                        pid=pid,
                    )
            state.last_pts_t = t
        if header.dts is not None:
            state.dts_count += 1
        raw = header.dts if header.dts is not None else header.pts
        dts = state.unwrap.unwrap(raw)
        if state.first_dts is None:
            state.first_dts = dts
        if state.last_dts is not None:
            step = dts - state.last_dts
            if step <= 0:
                self._log.add(
                    Check.DTS_ORDER_ERROR,
                    f"DTS {raw} is {-step} ticks behind the previous one"
                    if step < 0
                    else f"DTS {raw} repeats the previous one",
                    packet_index=index,
                    byte_offset=offset,
                    pid=pid,
                )
            if header.is_video:
                self._video_step(step, raw, index, offset, pid)
        state.last_dts = dts

    def _video_step(self, step: int, raw: int, index: int, offset: int, pid: int) -> None:
        frame = self.config.frame_ticks
        excess = step - frame
        if abs(excess) <= self.config.video_tolerance_ticks:
            return
        check = Check.VIDEO_TIMESTAMP_GAP if excess > 0 else Check.VIDEO_TIMESTAMP_OVERLAP
        self._log.add(
            check,
            f"video DTS {raw} is {step} ticks after the previous frame "
            f"(expected {frame} ± {self.config.video_tolerance_ticks}; "
            f"{excess / frame:+.2f} frames)",
            packet_index=index,
            byte_offset=offset,
            pid=pid,
        )

    # ------------------------------------------------------------------ 1.6 presence

    def _presence_pass(self, batch: _Batch, order: I64, sorted_pid: I64) -> None:
        limit = self.config.pid_timeout_s * PCR_HZ
        for pid, presence in self._presence.items():
            low = int(np.searchsorted(sorted_pid, pid, side="left"))
            high = int(np.searchsorted(sorted_pid, pid, side="right"))
            rows = order[low:high]
            if presence.declared_at >= batch.base:
                rows = rows[batch.base + rows > presence.declared_at]
            times = batch.times[rows]
            timed = ~np.isnan(times)
            rows, times = rows[timed], times[timed]
            if not len(times):
                continue
            if presence.ref is None:
                presence.ref = float(times[0])
            gaps = np.diff(times, prepend=presence.ref)
            worst = float(gaps.max())
            if presence.max_gap is None or worst > presence.max_gap:
                presence.max_gap = worst
            late = np.flatnonzero(gaps > limit)
            if len(late):
                self._log.add_count(Check.PID_ERROR, len(late))
                for k in late[: self._log.wants_examples(Check.PID_ERROR)].tolist():
                    i = int(rows[k])
                    self._log.add_example(
                        Check.PID_ERROR,
                        f"PID {pid} absent for {gaps[k] / PCR_HZ:.3f} s "
                        f"(limit {self.config.pid_timeout_s} s)",
                        packet_index=batch.base + i,
                        byte_offset=batch.offset + i * PACKET_SIZE,
                        pid=pid,
                    )
            presence.ref = float(times[-1])

    # ------------------------------------------------------------------ report

    def _open_findings(self) -> list[tuple[Check, Finding]]:
        """Conditions still open now: silences not yet ended by an arrival."""
        found: list[tuple[Check, Finding]] = []

        def add(check: Check, message: str, pid: int | None = None) -> None:
            found.append(
                (
                    check,
                    make_finding(
                        check,
                        message,
                        packet_index=self._packets,
                        byte_offset=self._offset,
                        pid=pid,
                    ),
                )
            )

        if self._packets == 0:
            add(Check.TS_SYNC_LOSS, f"no transport stream sync found in {self._bytes_fed} bytes")
            return found
        if self._pid_packets[0] == 0:
            add(Check.PAT_ERROR, "no packet on PID 0 (no PAT) in the stream", 0)
        if not self._pcr and not any(p.pcr_pid is not None for p in self._programs.values()):
            add(Check.PCR_REPETITION_ERROR, "no PCR in the stream")
        end = self._last_t
        if end is not None:
            cfg = self.config
            trackers: list[tuple[_Interval, Check, float, int, str]] = [
                (self._pat_packets, Check.PAT_ERROR, cfg.pat_interval_s, 0, "PID 0"),
                (self._pat_sections, Check.PAT_ERROR_2, cfg.pat_interval_s, 0, "PAT section"),
            ]
            for pid, tracker in self._pmt_packets.items():
                trackers.append((tracker, Check.PMT_ERROR, cfg.pmt_interval_s, pid, "PMT PID"))
            for pid, tracker in self._pmt_sections.items():
                trackers.append(
                    (tracker, Check.PMT_ERROR_2, cfg.pmt_interval_s, pid, "PMT section")
                )
            for tracker, check, limit, pid, what in trackers:
                if tracker.ref is not None and end - tracker.ref > limit * PCR_HZ:
                    add(
                        check,
                        f"{what} absent for the last {(end - tracker.ref) / PCR_HZ:.3f} s",
                        pid,
                    )
            for pid, presence in self._presence.items():
                if presence.ref is not None and end - presence.ref > cfg.pid_timeout_s * PCR_HZ:
                    silent = (end - presence.ref) / PCR_HZ
                    add(Check.PID_ERROR, f"PID {pid} absent for the last {silent:.3f} s", pid)
            declared = {s.pid for p in self._programs.values() for s in p.streams}
            for pid, pes in self._pes.items():
                if declared and pid not in declared:
                    continue  # a stream the PMT has dropped is allowed to stop
                last = pes.last_pts_t
                if last is not None and end - last > cfg.pts_interval_ms * PCR_HZ / 1000:
                    silent_ms = (end - last) * 1000 / PCR_HZ
                    add(
                        Check.PTS_ERROR, f"no PTS on PID {pid} for the last {silent_ms:.0f} ms", pid
                    )
        for program in self._programs.values():
            if program.pcr_pid is not None and program.pcr_pid not in self._pcr:
                add(
                    Check.PCR_REPETITION_ERROR,
                    f"PCR PID {program.pcr_pid} of program {program.program_number} carries no PCR",
                    program.pcr_pid,
                )
        for pid, state in self._pcr.items():
            _, findings = self._accuracy(pid, state)
            found.extend((Check.PCR_ACCURACY_ERROR, finding) for finding in findings)
        return found

    def _build_report(self) -> TsReport:
        open_findings = self._open_findings()
        checks = tuple(self._log.results(open_findings))
        duration = None
        if self._origin is not None and self._last_t is not None:
            duration = (self._last_t - self._origin) / PCR_HZ
        pids = tuple(self._pid_stats(pid, duration) for pid in np.flatnonzero(self._pid_packets))
        total_bps = None
        if self._clock_first and self._clock_last and self._clock_last[1] > self._clock_first[1]:
            span_bytes = self._clock_last[0] - self._clock_first[0]
            total_bps = span_bytes * 8 * PCR_HZ / (self._clock_last[1] - self._clock_first[1])
        complete = self._windows[:-1]
        window_s = self.config.bitrate_window_s
        bitrate = BitrateStats(
            total_bps=total_bps,
            window_s=window_s,
            windows=len(complete),
            window_min_bps=min(complete) * 8 / window_s if complete else None,
            window_max_bps=max(complete) * 8 / window_s if complete else None,
        )
        pcr_intervals = [s.max_interval for s in self._pcr.values() if s.max_interval is not None]
        accuracies = [self._pcr_accuracy(state) for state in self._pcr.values()]
        accuracy_known = [a for a in accuracies if a is not None]
        pmt_max = [i.max for i in self._pmt_sections.values() if i.max is not None]
        return TsReport(
            bytes_fed=self._bytes_fed,
            packets=self._packets,
            skipped_bytes=self._skipped,
            pending_bytes=len(self._buffer),
            duration_s=duration,
            clock_pid=self._clock_pid,
            bitrate=bitrate,
            null_share=(
                float(self._pid_packets[NULL_PID]) / self._packets if self._packets else None
            ),
            pcr_max_interval_ms=_ms(max(pcr_intervals)) if pcr_intervals else None,
            pcr_max_accuracy_ns=max(accuracy_known) if accuracy_known else None,
            pat_max_interval_ms=_ms(self._pat_sections.max),
            pmt_max_interval_ms=_ms(max(pmt_max)) if pmt_max else None,
            programs=tuple(self._programs[pid] for pid in sorted(self._programs)),
            pids=pids,
            checks=checks,
        )

    def _pcr_accuracy(self, state: _PcrState) -> float | None:
        open_worst, _ = self._accuracy(0, state)
        known = [v for v in (state.max_accuracy_ns, open_worst) if v is not None]
        return max(known) if known else None

    def _pid_stats(self, pid_value: np.int64, duration: float | None) -> PidStats:
        pid = int(pid_value)
        packets = int(self._pid_packets[pid])
        declared = {s.pid: s for p in self._programs.values() for s in p.streams}
        stream = declared.get(pid)
        pes = self._pes.get(pid)
        pcr = self._pcr.get(pid)
        presence = self._presence.get(pid)
        pts_interval = pes.max_pts_interval if pes else None
        if stream is not None:
            kind = stream_kind(stream.stream_type)
        elif pid == 0:
            kind = "pat"
        elif pid in self._programs or pid in self._pat.values():
            kind = "pmt"
        elif pid == NULL_PID:
            kind = "null"
        elif pid in _SI_PIDS:
            kind = "si"
        elif pes is not None:
            kind = "pes"
        else:
            kind = "unknown"
        return PidStats(
            pid=pid,
            kind=kind,
            stream_type=stream.stream_type if stream else None,
            stream_type_name=stream.stream_type_name if stream else None,
            packets=packets,
            bitrate_bps=packets * PACKET_SIZE * 8 / duration if duration else None,
            scrambled_packets=int(self._pid_scrambled[pid]),
            cc_errors=int(self._pid_cc_errors[pid]),
            sections=self._sections.get(pid, 0),
            pes_packets=pes.pes_packets if pes else 0,
            pts_count=pes.pts_count if pes else 0,
            dts_count=pes.dts_count if pes else 0,
            first_dts=pes.first_dts if pes else None,
            last_dts=pes.last_dts if pes else None,
            max_pts_interval_ms=_ms(pts_interval),
            max_gap_ms=_ms(presence.max_gap) if presence else None,
            pcr_count=pcr.count if pcr else 0,
            pcr_max_interval_ms=_ms(pcr.max_interval) if pcr else None,
            pcr_max_accuracy_ns=self._pcr_accuracy(pcr) if pcr else None,
        )


def _ms(ticks: float | None) -> float | None:
    """27 MHz ticks as milliseconds, rounded to the microsecond."""
    return None if ticks is None else round(ticks * 1000 / PCR_HZ, 3)


def check_file(
    path: str | Path,
    config: TsMonitorConfig | None = None,
    *,
    chunk_bytes: int = 1 << 20,
) -> TsReport:
    """Check a recorded transport stream file; raises TsFileError if it cannot be read."""
    source = Path(path)
    monitor = TsMonitor(config)
    try:
        with source.open("rb") as stream:
            while chunk := stream.read(chunk_bytes):
                monitor.feed(chunk)
    except OSError as exc:
        raise TsFileError(
            f"cannot read transport stream {source}: {exc.strerror or exc}; "
            "give the path of a recorded .ts file"
        ) from exc
    return monitor.report()
