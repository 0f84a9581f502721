"""PES timestamps: PTS repetition (TR 101 290 2.5) and the playout acceptance checks.

Video timing (checks A.2/A.3) uses DTS deltas in decode order: with B-frames PTS order
differs from arrival order, while DTS advances by exactly one frame duration per frame.
A PES without a DTS has DTS = PTS. All 33-bit values are unwrapped, so a stream running
across the 2^33 wrap (26.5 h) is judged on true differences.

Only PES headers (one per frame) go through Python; the packets that start one are
found with numpy. A header split across packets waits for the rest of its bytes.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from mpegts.monitor.batch import PacketBatch
from mpegts.monitor.config import TsMonitorConfig
from mpegts.monitor.findings import Check, FindingLog, OpenFindings
from mpegts.packet import NULL_PID, PACKET_SIZE, PAT_PID
from mpegts.pes import PesHeader, parse_pes_header, pes_header_size
from mpegts.timestamp import PCR_HZ, TimestampUnwrapper

PesSink = Callable[[int, PesHeader, int], None]
"""Receives (pid, header, packet_index) for every PES header, e.g. to follow video PTS."""


@dataclass
class PesState:
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


class TimestampCheck:
    """Parses every PES header and judges its PTS and DTS against the previous ones."""

    def __init__(
        self, config: TsMonitorConfig, log: FindingLog, on_pes: PesSink | None = None
    ) -> None:
        self.config = config
        self._log = log
        self._on_pes = on_pes
        self.pids: dict[int, PesState] = {}
        self._pending: dict[int, _Pending] = {}

    def check(self, batch: PacketBatch) -> None:
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
            & (batch.pid != PAT_PID)
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
            payload = batch.payload(i)
            pending = _Pending(
                data=payload,
                packet_index=batch.packet_index(i),
                byte_offset=batch.byte_offset(i),
                t=float(batch.times[i]),
            )
            needed = pes_header_size(payload)
            if needed is not None and len(payload) < needed:
                self._pending[pid] = pending
                self._continue_pending(batch, pid, pending, after=i + 1)
            else:
                self._header(pid, pending)

    def _continue_pending(
        self, batch: PacketBatch, pid: int, pending: _Pending, after: int = 0
    ) -> None:
        """Complete a header split across packets with the next payloads of its PID."""
        rows = np.flatnonzero(batch.pid[after:] == pid) + after
        for i in rows.tolist():
            if not batch.good[i] or batch.cc_error[i] or batch.pusi[i]:
                del self._pending[pid]  # the header cannot be completed
                return
            if not batch.has_payload[i] or batch.repeat[i]:
                continue
            pending.data += batch.payload(i)
            needed = pes_header_size(pending.data)
            if needed is None or len(pending.data) >= needed:
                del self._pending[pid]
                self._header(pid, pending)
                return

    def _header(self, pid: int, pending: _Pending) -> None:
        header = parse_pes_header(pending.data)
        if header is None:
            return
        state = self.pids.setdefault(pid, PesState())
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

    def open_findings(self, found: OpenFindings, end: float, declared: set[int]) -> None:
        """PES PIDs without a PTS for too long up to `end` (a PID the PMT dropped may stop)."""
        limit = self.config.pts_interval_ms * PCR_HZ / 1000
        for pid, pes in self.pids.items():
            if declared and pid not in declared:
                continue
            last = pes.last_pts_t
            if last is not None and end - last > limit:
                silent_ms = (end - last) * 1000 / PCR_HZ
                found.add(
                    Check.PTS_ERROR, f"no PTS on PID {pid} for the last {silent_ms:.0f} ms", pid
                )
