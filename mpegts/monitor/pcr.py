"""PCR checks (TR 101 290 2.3a repetition, 2.3b discontinuity, 2.4 accuracy), per PCR PID.

PCR accuracy fits PCR against byte offset by least squares over windows of
`pcr_accuracy_window_s` of PCR time (restarting at a discontinuity): the slope is the
constant mux rate, the largest residual is the PCR error in ns. It assumes a CBR
stream; set `cbr=False` for a VBR recording.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from mpegts.monitor.config import TsMonitorConfig
from mpegts.monitor.findings import Check, Finding, FindingLog, OpenFindings, make_finding
from mpegts.psi import Program
from mpegts.timestamp import PCR_HZ, PCR_MODULUS, TimestampUnwrapper, signed_delta


@dataclass
class PcrState:
    """Per PCR PID: the previous PCR and the open accuracy window."""

    last_raw: int | None = None
    count: int = 0
    max_interval: int | None = None
    unwrap: TimestampUnwrapper = field(default_factory=lambda: TimestampUnwrapper(PCR_MODULUS))
    window_offsets: list[int] = field(default_factory=list)
    window_pcrs: list[int] = field(default_factory=list)
    window_indices: list[int] = field(default_factory=list)
    max_accuracy_ns: float | None = None


class PcrCheck:
    """Follows every PID that carries a PCR."""

    def __init__(self, config: TsMonitorConfig, log: FindingLog) -> None:
        self.config = config
        self._log = log
        self.pids: dict[int, PcrState] = {}

    def arrive(self, pid: int, value: int, disc: bool, index: int, offset: int) -> None:
        """One PCR (27 MHz) of `pid` at packet `index`, byte `offset`."""
        state = self.pids.setdefault(pid, PcrState())
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
            self._close_window(pid, state)
            state.unwrap = TimestampUnwrapper(PCR_MODULUS)
        state.window_offsets.append(offset)
        state.window_pcrs.append(state.unwrap.unwrap(value))
        state.window_indices.append(index)
        span = state.window_pcrs[-1] - state.window_pcrs[0]
        if span >= self.config.pcr_accuracy_window_s * PCR_HZ:
            self._close_window(pid, state)
            # the closing PCR starts the next window, so no stretch goes unmeasured
            state.window_offsets.append(offset)
            state.window_pcrs.append(state.unwrap.unwrap(value))
            state.window_indices.append(index)

    def _close_window(self, pid: int, state: PcrState) -> None:
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

    def _accuracy(self, pid: int, state: PcrState) -> tuple[float | None, list[Finding]]:
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

    def max_accuracy_ns(self, state: PcrState) -> float | None:
        """The worst PCR error of a PID so far, the open window included."""
        open_worst, _ = self._accuracy(0, state)
        known = [v for v in (state.max_accuracy_ns, open_worst) if v is not None]
        return max(known) if known else None

    def open_findings(self, found: OpenFindings, programs: Iterable[Program]) -> None:
        """No PCR where one is declared, and the bad PCRs of every open accuracy window."""
        programs = list(programs)
        if not self.pids and not any(p.pcr_pid is not None for p in programs):
            found.add(Check.PCR_REPETITION_ERROR, "no PCR in the stream")
        for program in programs:
            if program.pcr_pid is not None and program.pcr_pid not in self.pids:
                found.add(
                    Check.PCR_REPETITION_ERROR,
                    f"PCR PID {program.pcr_pid} of program {program.program_number} carries no PCR",
                    program.pcr_pid,
                )
        for pid, state in self.pids.items():
            _, findings = self._accuracy(pid, state)
            found.items.extend((Check.PCR_ACCURACY_ERROR, finding) for finding in findings)
