"""What the TS monitor found: frozen report records and their JSON form.

The report is a snapshot: `TsMonitor.report()` may be called at any time on a live
stream, and conditions still open at that moment (a PID silent since 6 s) are counted
in it without changing the monitor's state.
"""

from __future__ import annotations

from dataclasses import dataclass

from mpegts.monitor.findings import CheckResult, Finding
from mpegts.psi import Program
from mpegts.timestamp import PCR_HZ


@dataclass(frozen=True, kw_only=True)
class PidStats:
    """Everything the monitor counted on one PID."""

    pid: int
    kind: str  # pat, pmt, video, audio, scte35, sections, data, si, null, pes, unknown
    stream_type: int | None
    stream_type_name: str | None
    packets: int
    bitrate_bps: float | None
    scrambled_packets: int
    cc_errors: int
    sections: int
    pes_packets: int
    pts_count: int
    dts_count: int
    first_dts: int | None  # unwrapped 90 kHz ticks (DTS, or PTS when a PES has no DTS)
    last_dts: int | None
    max_pts_interval_ms: float | None
    max_gap_ms: float | None  # longest silence of a PID declared in a PMT
    pcr_count: int
    pcr_max_interval_ms: float | None
    pcr_max_accuracy_ns: float | None

    def as_json(self) -> dict[str, object]:
        return {
            "pid": self.pid,
            "kind": self.kind,
            "stream_type": self.stream_type,
            "stream_type_name": self.stream_type_name,
            "packets": self.packets,
            "bitrate_bps": self.bitrate_bps,
            "scrambled_packets": self.scrambled_packets,
            "cc_errors": self.cc_errors,
            "sections": self.sections,
            "pes_packets": self.pes_packets,
            "pts_count": self.pts_count,
            "dts_count": self.dts_count,
            "first_dts": self.first_dts,
            "last_dts": self.last_dts,
            "max_pts_interval_ms": self.max_pts_interval_ms,
            "max_gap_ms": self.max_gap_ms,
            "pcr_count": self.pcr_count,
            "pcr_max_interval_ms": self.pcr_max_interval_ms,
            "pcr_max_accuracy_ns": self.pcr_max_accuracy_ns,
        }


@dataclass(frozen=True, kw_only=True)
class BitrateStats:
    """Total rate and its constancy over fixed windows of stream (PCR) time."""

    total_bps: float | None  # bytes between the first and last reference PCR over their time
    window_s: float
    windows: int  # complete windows measured (the partial last one is left out)
    window_min_bps: float | None
    window_max_bps: float | None

    def as_json(self) -> dict[str, object]:
        return {
            "total_bps": self.total_bps,
            "window_s": self.window_s,
            "windows": self.windows,
            "window_min_bps": self.window_min_bps,
            "window_max_bps": self.window_max_bps,
        }


@dataclass(frozen=True, kw_only=True)
class TsReport:
    """The outcome of every check plus the measurements an operator asks for."""

    bytes_fed: int
    packets: int
    skipped_bytes: int  # discarded while (re)acquiring sync
    pending_bytes: int  # fed but not yet a whole packet
    duration_s: float | None
    clock_pid: int | None  # the PCR PID that times the stream
    bitrate: BitrateStats
    null_share: float | None
    pcr_max_interval_ms: float | None
    pcr_max_accuracy_ns: float | None
    pat_max_interval_ms: float | None  # between complete PAT sections
    pmt_max_interval_ms: float | None  # between complete PMT sections, worst PMT PID
    programs: tuple[Program, ...]
    pids: tuple[PidStats, ...]
    checks: tuple[CheckResult, ...]

    @property
    def ok_priority1(self) -> bool:
        return all(check.ok for check in self.checks if check.priority == 1)

    @property
    def ok_priority2(self) -> bool:
        return all(check.ok for check in self.checks if check.priority == 2)

    @property
    def ok_acceptance(self) -> bool:
        """The playout acceptance checks beyond TR 101 290 (DTS order, video timing)."""
        return all(check.ok for check in self.checks if check.priority == 3)

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks)

    @property
    def errors(self) -> list[CheckResult]:
        """The checks that failed, in catalogue order."""
        return [check for check in self.checks if not check.ok]

    @property
    def findings(self) -> list[Finding]:
        """The recorded examples of every failed check."""
        return [finding for check in self.checks for finding in check.examples]

    def check(self, key: str) -> CheckResult:
        """A check by TR 101 290 id ("1.4") or name ("Continuity_count_error")."""
        for check in self.checks:
            if key in (check.check_id, check.name):
                return check
        raise KeyError(f"no check {key!r}; known: {', '.join(c.name for c in self.checks)}")

    def count(self, key: str) -> int:
        return self.check(key).count

    def pid(self, pid: int) -> PidStats | None:
        for stats in self.pids:
            if stats.pid == pid:
                return stats
        return None

    def pids_with_stream_type(self, stream_type: int) -> tuple[int, ...]:
        """PIDs a PMT declares with `stream_type` (e.g. 0x86 for SCTE-35)."""
        return tuple(
            stream.pid
            for program in self.programs
            for stream in program.streams
            if stream.stream_type == stream_type
        )

    def as_json(self) -> dict[str, object]:
        return {
            "ok": self.ok,
            "ok_priority1": self.ok_priority1,
            "ok_priority2": self.ok_priority2,
            "ok_acceptance": self.ok_acceptance,
            "bytes_fed": self.bytes_fed,
            "packets": self.packets,
            "skipped_bytes": self.skipped_bytes,
            "pending_bytes": self.pending_bytes,
            "duration_s": self.duration_s,
            "clock_pid": self.clock_pid,
            "bitrate": self.bitrate.as_json(),
            "null_share": self.null_share,
            "pcr_max_interval_ms": self.pcr_max_interval_ms,
            "pcr_max_accuracy_ns": self.pcr_max_accuracy_ns,
            "pat_max_interval_ms": self.pat_max_interval_ms,
            "pmt_max_interval_ms": self.pmt_max_interval_ms,
            "errors": [check.name for check in self.errors],
            "programs": [program.as_json() for program in self.programs],
            "pids": [stats.as_json() for stats in self.pids],
            "checks": [check.as_json() for check in self.checks],
        }


def ms(ticks: float | None) -> float | None:
    """27 MHz ticks as milliseconds, rounded to the microsecond."""
    return None if ticks is None else round(ticks * 1000 / PCR_HZ, 3)
