"""PID presence (TR 101 290 1.6): every elementary PID a PMT declares keeps arriving."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from mpegts.monitor.batch import PacketBatch
from mpegts.monitor.config import TsMonitorConfig
from mpegts.monitor.findings import Check, FindingLog, OpenFindings
from mpegts.packet import I64
from mpegts.timestamp import PCR_HZ


@dataclass
class Presence:
    """A PMT-declared PID: when it was last seen."""

    declared_at: int  # packet index of the declaration; earlier packets do not count
    ref: float | None
    max_gap: float | None = None


class PresenceCheck:
    """Gaps between the packets of each declared PID, on stream time."""

    def __init__(self, config: TsMonitorConfig, log: FindingLog) -> None:
        self.config = config
        self._log = log
        self.pids: dict[int, Presence] = {}

    def declare(self, declared: set[int], t: float, index: int) -> None:
        """Start (or stop) watching the elementary PIDs the PMTs now declare."""
        for pid in list(self.pids):
            if pid not in declared:
                del self.pids[pid]
        for pid in declared:
            if pid not in self.pids:
                self.pids[pid] = Presence(declared_at=index, ref=None if math.isnan(t) else t)

    def check(self, batch: PacketBatch, order: I64, sorted_pid: I64) -> None:
        """Uses the continuity check's PID-sorted order to find each PID's packets."""
        limit = self.config.pid_timeout_s * PCR_HZ
        for pid, presence in self.pids.items():
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
                        packet_index=batch.packet_index(i),
                        byte_offset=batch.byte_offset(i),
                        pid=pid,
                    )
            presence.ref = float(times[-1])

    def open_findings(self, found: OpenFindings, end: float) -> None:
        """Declared PIDs silent for longer than the timeout up to `end`."""
        for pid, presence in self.pids.items():
            if presence.ref is not None and end - presence.ref > self.config.pid_timeout_s * PCR_HZ:
                silent = (end - presence.ref) / PCR_HZ
                found.add(Check.PID_ERROR, f"PID {pid} absent for the last {silent:.3f} s", pid)
