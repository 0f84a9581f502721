"""A streaming MPEG-TS checker: ETSI TR 101 290 priority 1 and 2 plus playout acceptance.

The playout engine feeds its live output straight in (a day at 10 Mb/s is ~100 GB, so
nothing is ever kept whole), the CLI feeds a file through `check_file`. Work per packet
is done with numpy over batches of packets; only PES headers (one per frame) and PSI/SI
sections (a few per second) go through Python. `TsMonitor` only composes the checks,
one module per concern: sync, continuity, pcr, clock, psi, presence, timestamps.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from mpegts.errors import TsFileError
from mpegts.monitor.batch import PacketBatch
from mpegts.monitor.clock import StreamClock
from mpegts.monitor.config import TsMonitorConfig
from mpegts.monitor.continuity import PIDS, ContinuityCheck
from mpegts.monitor.findings import FindingLog, OpenFindings
from mpegts.monitor.pcr import PcrCheck
from mpegts.monitor.presence import PresenceCheck
from mpegts.monitor.psi import PsiCheck, SectionSink
from mpegts.monitor.report import PidStats, TsReport, ms
from mpegts.monitor.sync import PacketSync
from mpegts.monitor.timestamps import PesSink, TimestampCheck
from mpegts.packet import I64, NULL_PID, PACKET_SIZE, PAT_PID, SI_PIDS, pcr_array
from mpegts.psi import stream_kind

logger = logging.getLogger(__name__)


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
        self._sync = PacketSync(self._log)
        self._pid_packets: I64 = np.zeros(PIDS, np.int64)
        self._pid_scrambled: I64 = np.zeros(PIDS, np.int64)
        self._continuity = ContinuityCheck(self._log)
        self._pcr = PcrCheck(self.config, self._log)
        self._clock = StreamClock(self.config.bitrate_window_s)
        self._presence = PresenceCheck(self.config, self._log)
        self._psi = PsiCheck(self.config, self._log, self._presence)
        self._timestamps = TimestampCheck(self.config, self._log, on_pes)
        if on_section is not None:
            self.subscribe_sections(section_pids, on_section)

    def subscribe_sections(self, pids: Iterable[int], sink: SectionSink) -> None:
        """Deliver every complete, CRC-valid section on `pids` to `sink(pid, section)`."""
        self._psi.subscribe(pids, sink)

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        """Take the next bytes of the stream; analysis runs once a batch has gathered."""
        self._sync.feed(data)
        if self._sync.pending >= self.config.batch_bytes:
            self._drain()

    def report(self) -> TsReport:
        """Analyse every whole packet fed so far and return a snapshot of the results."""
        self._drain()
        return self._build_report()

    def _drain(self) -> None:
        for batch in self._sync.batches():
            self._analyse(batch)

    def _analyse(self, batch: PacketBatch) -> None:
        """Run every check over a batch of aligned packets, in dependency order."""
        self._pid_packets += np.bincount(batch.pid, minlength=PIDS)
        if batch.scrambled.any():
            self._pid_scrambled += np.bincount(batch.pid[batch.scrambled], minlength=PIDS)
        self._continuity.check_transport_errors(batch)
        order, sorted_pid = self._continuity.check(batch)  # marks cc_error, repeat
        rows = np.flatnonzero(batch.pcr)
        pcrs: list[int] = pcr_array(batch.arr[rows]).tolist()
        discs: list[bool] = batch.discontinuity[rows].tolist()
        for i, value, disc in zip(rows.tolist(), pcrs, discs, strict=True):
            self._pcr.arrive(
                int(batch.pid[i]), value, disc, batch.packet_index(i), batch.byte_offset(i)
            )
        had_origin = self._clock.origin is not None
        self._clock.time(batch, rows, pcrs, discs)  # fills batch.times
        if not had_origin and self._clock.origin is not None:
            self._psi.clock_started(self._clock.origin)
        self._psi.check(batch)
        self._timestamps.check(batch)
        self._presence.check(batch, order, sorted_pid)

    # ------------------------------------------------------------------ report

    def _open_findings(self) -> OpenFindings:
        """Conditions still open now: silences not yet ended by an arrival."""
        found = OpenFindings(packet_index=self._sync.packets, byte_offset=self._sync.offset)
        if self._sync.open_findings(found):
            return found
        programs = list(self._psi.programs.values())
        end = self._clock.last_t
        self._psi.open_findings(found, end, int(self._pid_packets[PAT_PID]))
        if end is not None:
            self._presence.open_findings(found, end)
            self._timestamps.open_findings(found, end, self._psi.declared_pids())
        self._pcr.open_findings(found, programs)
        return found

    def _build_report(self) -> TsReport:
        checks = tuple(self._log.results(self._open_findings().items))
        duration = self._clock.duration_s
        packets = self._sync.packets
        pids = tuple(
            self._pid_stats(int(pid), duration) for pid in np.flatnonzero(self._pid_packets)
        )
        pcr_states = self._pcr.pids.values()
        pcr_intervals = [s.max_interval for s in pcr_states if s.max_interval is not None]
        accuracies = [self._pcr.max_accuracy_ns(state) for state in pcr_states]
        accuracy_known = [a for a in accuracies if a is not None]
        pmt_max = [i.max for i in self._psi.pmt_sections.values() if i.max is not None]
        programs = self._psi.programs
        return TsReport(
            bytes_fed=self._sync.bytes_fed,
            packets=packets,
            skipped_bytes=self._sync.skipped,
            pending_bytes=self._sync.pending,
            duration_s=duration,
            clock_pid=self._clock.pid,
            bitrate=self._clock.bitrate(),
            null_share=float(self._pid_packets[NULL_PID]) / packets if packets else None,
            pcr_max_interval_ms=ms(max(pcr_intervals)) if pcr_intervals else None,
            pcr_max_accuracy_ns=max(accuracy_known) if accuracy_known else None,
            pat_max_interval_ms=ms(self._psi.pat_sections.max),
            pmt_max_interval_ms=ms(max(pmt_max)) if pmt_max else None,
            programs=tuple(programs[pid] for pid in sorted(programs)),
            pids=pids,
            checks=checks,
        )

    def _pid_kind(self, pid: int, stream_type: int | None) -> str:
        if stream_type is not None:
            return stream_kind(stream_type)
        if pid == PAT_PID:
            return "pat"
        if pid in self._psi.programs or pid in self._psi.pat.values():
            return "pmt"
        if pid == NULL_PID:
            return "null"
        if pid in SI_PIDS:
            return "si"
        if pid in self._timestamps.pids:
            return "pes"
        return "unknown"

    def _pid_stats(self, pid: int, duration: float | None) -> PidStats:
        packets = int(self._pid_packets[pid])
        declared = {s.pid: s for p in self._psi.programs.values() for s in p.streams}
        stream = declared.get(pid)
        pes = self._timestamps.pids.get(pid)
        pcr = self._pcr.pids.get(pid)
        presence = self._presence.pids.get(pid)
        return PidStats(
            pid=pid,
            kind=self._pid_kind(pid, stream.stream_type if stream else None),
            stream_type=stream.stream_type if stream else None,
            stream_type_name=stream.stream_type_name if stream else None,
            packets=packets,
            bitrate_bps=packets * PACKET_SIZE * 8 / duration if duration else None,
            scrambled_packets=int(self._pid_scrambled[pid]),
            cc_errors=int(self._continuity.errors[pid]),
            sections=self._psi.sections.get(pid, 0),
            pes_packets=pes.pes_packets if pes else 0,
            pts_count=pes.pts_count if pes else 0,
            dts_count=pes.dts_count if pes else 0,
            first_dts=pes.first_dts if pes else None,
            last_dts=pes.last_dts if pes else None,
            max_pts_interval_ms=ms(pes.max_pts_interval if pes else None),
            max_gap_ms=ms(presence.max_gap) if presence else None,
            pcr_count=pcr.count if pcr else 0,
            pcr_max_interval_ms=ms(pcr.max_interval) if pcr else None,
            pcr_max_accuracy_ns=self._pcr.max_accuracy_ns(pcr) if pcr else None,
        )


def check_file(
    path: str | Path,
    config: TsMonitorConfig | None = None,
    *,
    chunk_bytes: int = 1 << 20,
    start: int = 0,
    stop: int | None = None,
) -> TsReport:
    """Check a recorded transport stream file, or its bytes [start, stop) as a stream of
    their own (byte offsets in the report count from ``start``); raises TsFileError if it
    cannot be read."""
    source = Path(path)
    monitor = TsMonitor(config)
    left = None if stop is None else max(0, stop - start)
    try:
        with source.open("rb") as stream:
            stream.seek(start)
            while left is None or left > 0:
                chunk = stream.read(chunk_bytes if left is None else min(chunk_bytes, left))
                if not chunk:
                    break
                monitor.feed(chunk)
                if left is not None:
                    left -= len(chunk)
    except OSError as exc:
        raise TsFileError(
            f"cannot read transport stream {source}: {exc.strerror or exc}; "
            "give the path of a recorded .ts file"
        ) from exc
    return monitor.report()
