"""PSI/SI checks: PAT (TR 101 290 1.3), PMT (1.5), CRC (2.2), and sections for other code.

Sections are small and rare (a few per second), so this part is plain Python over the
few PSI packets of a batch; a new PAT or PMT can add PIDs to watch in mid-batch.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from mpegts.crc import crc32_mpeg2
from mpegts.monitor.batch import PacketBatch
from mpegts.monitor.config import TsMonitorConfig
from mpegts.monitor.findings import Check, FindingLog, OpenFindings
from mpegts.monitor.presence import PresenceCheck
from mpegts.packet import I64, PAT_PID, SI_PIDS
from mpegts.psi import (
    PAT_TABLE_ID,
    PMT_TABLE_ID,
    SECTION_STREAM_TYPES,
    STREAM_TYPE_NAMES,
    Program,
    parse_pat,
    parse_pmt,
)
from mpegts.section import HEADER_SIZE, SectionAssembler, section_has_crc
from mpegts.timestamp import PCR_HZ

logger = logging.getLogger(__name__)

SectionSink = Callable[[int, bytes], None]
"""Receives (pid, section) for every complete section with a good CRC on a subscribed PID."""

# The monitor judges any section the 12-bit section_length can announce: an oversized
# one then fails its CRC check and is reported instead of silently dropped.
_LARGEST_SECTION = HEADER_SIZE + 0xFFF


class SectionCollector:
    """A `SectionSink` that keeps every section it receives, per PID."""

    def __init__(self) -> None:
        self.sections: dict[int, list[bytes]] = {}

    def __call__(self, pid: int, section: bytes) -> None:
        self.sections.setdefault(pid, []).append(section)


@dataclass
class Interval:
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


class PsiCheck:
    """Reassembles sections on PSI/SI PIDs, checks their CRC and PAT/PMT repetition."""

    def __init__(self, config: TsMonitorConfig, log: FindingLog, presence: PresenceCheck) -> None:
        self.config = config
        self._log = log
        self._presence = presence
        self._assemblers: dict[int, SectionAssembler] = {}
        self.sections: dict[int, int] = {}  # complete sections per PID
        self._sinks: dict[int, list[SectionSink]] = {}
        self.pat: dict[int, int] = {}
        self.programs: dict[int, Program] = {}  # by PMT PID
        self._pat_packets = Interval()
        self.pat_sections = Interval()
        self._pmt_packets: dict[int, Interval] = {}
        self.pmt_sections: dict[int, Interval] = {}
        self._pids: I64 = np.array(sorted(SI_PIDS), np.int64)
        self._changed = False

    def subscribe(self, pids: Iterable[int], sink: SectionSink) -> None:
        for pid in pids:
            self._sinks.setdefault(pid, []).append(sink)
        self._update_pids()

    def clock_started(self, origin: float) -> None:
        """PAT repetition counts from the first timed packet, not from an unknown past."""
        self._pat_packets.ref = origin
        self.pat_sections.ref = origin

    def _update_pids(self) -> None:
        pids = set(SI_PIDS) | set(self._sinks) | set(self.programs) | set(self.pat.values())
        for program in self.programs.values():
            pids.update(s.pid for s in program.streams if s.stream_type in SECTION_STREAM_TYPES)
        self._pids = np.array(sorted(pids), np.int64)
        self._changed = True

    def check(self, batch: PacketBatch) -> None:
        """Section PIDs in packet order; a new PAT/PMT can add PIDs mid-batch, so rescan."""
        start = 0
        while True:
            self._changed = False
            rows = np.flatnonzero(np.isin(batch.pid[start:], self._pids) & batch.good[start:])
            for i in (rows + start).tolist():
                self._packet(batch, i)
                if self._changed:
                    start = i + 1
                    break
            else:
                return

    def _packet(self, batch: PacketBatch, i: int) -> None:
        pid = int(batch.pid[i])
        index = batch.packet_index(i)
        offset = batch.byte_offset(i)
        t = float(batch.times[i])
        scrambled = bool(batch.scrambled[i])
        pmt_programs = [n for n, p in self.pat.items() if p == pid and n != 0]
        if pid == PAT_PID:
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
                self._pmt_packets.setdefault(pid, Interval()),
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
            assembler = SectionAssembler(_LARGEST_SECTION)
            self._assemblers[pid] = assembler
        if batch.cc_error[i]:
            assembler.reset()
        for section in assembler.push(batch.payload(i), bool(batch.pusi[i])):
            self._section(pid, section, index, offset, t)

    def _interval_check(
        self,
        interval: Interval,
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

    def _section(self, pid: int, section: bytes, index: int, offset: int, t: float) -> None:
        """A complete section: CRC, then PAT/PMT decoding and delivery to subscribers."""
        self.sections[pid] = self.sections.get(pid, 0) + 1
        table_id = section[0]
        if section_has_crc(section) and crc32_mpeg2(section) != 0:
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
        if pid == PAT_PID:
            if table_id != PAT_TABLE_ID:
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
                self.pat_sections,
                t,
                Check.PAT_ERROR_2,
                self.config.pat_interval_s,
                index,
                offset,
                0,
                "PAT section",
            )
            self._on_pat(parse_pat(section), t, index)
        elif table_id == PMT_TABLE_ID and pid in self.pat.values():
            self._interval_check(
                self.pmt_sections.setdefault(pid, Interval()),
                t,
                Check.PMT_ERROR_2,
                self.config.pmt_interval_s,
                index,
                offset,
                pid,
                f"PMT section on PID {pid}",
            )
            program = parse_pmt(section, pid)
            if program is not None and program != self.programs.get(pid):
                self._on_pmt(pid, program, t, index)

    def _on_pat(self, pat: dict[int, int], t: float, index: int) -> None:
        if pat == self.pat:
            return
        logger.info("PAT: programs %s", {n: p for n, p in sorted(pat.items())})
        self.pat = pat
        pmt_pids = {p for n, p in pat.items() if n != 0}
        for pmt_pid in list(self.programs):
            if pmt_pid not in pmt_pids:
                del self.programs[pmt_pid]
        for tracker in (self._pmt_packets, self.pmt_sections):
            for pmt_pid in list(tracker):
                if pmt_pid not in pmt_pids:
                    del tracker[pmt_pid]
            for pmt_pid in pmt_pids:
                tracker.setdefault(pmt_pid, Interval(ref=None if math.isnan(t) else t))
        self._presence.declare(self.declared_pids(), t, index)
        self._update_pids()

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
        self.programs[pmt_pid] = program
        self._presence.declare(self.declared_pids(), t, index)
        self._update_pids()

    def declared_pids(self) -> set[int]:
        """The elementary PIDs the PMTs now declare."""
        return {s.pid for p in self.programs.values() for s in p.streams}

    def open_findings(self, found: OpenFindings, end: float | None, pat_packets: int) -> None:
        """No PAT at all, or PAT/PMT (packets or sections) silent since before `end`."""
        if pat_packets == 0:
            found.add(Check.PAT_ERROR, "no packet on PID 0 (no PAT) in the stream", PAT_PID)
        if end is None:
            return
        cfg = self.config
        trackers: list[tuple[Interval, Check, float, int, str]] = [
            (self._pat_packets, Check.PAT_ERROR, cfg.pat_interval_s, 0, "PID 0"),
            (self.pat_sections, Check.PAT_ERROR_2, cfg.pat_interval_s, 0, "PAT section"),
        ]
        for pid, tracker in self._pmt_packets.items():
            trackers.append((tracker, Check.PMT_ERROR, cfg.pmt_interval_s, pid, "PMT PID"))
        for pid, tracker in self.pmt_sections.items():
            trackers.append((tracker, Check.PMT_ERROR_2, cfg.pmt_interval_s, pid, "PMT section"))
        for tracker, check, limit, pid, what in trackers:
            if tracker.ref is not None and end - tracker.ref > limit * PCR_HZ:
                found.add(
                    check,
                    f"{what} absent for the last {(end - tracker.ref) / PCR_HZ:.3f} s",
                    pid,
                )
