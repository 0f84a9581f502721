"""The TR 101 290 transport stream monitor: feed bytes, read a `TsReport`.

Live playout output goes through `TsMonitor` (the `check:` output), a recording through
`check_file`. One module per concern: `sync` (1.1, 1.2), `continuity` (1.4, 2.1), `psi`
(1.3, 1.5, 2.2), `presence` (1.6), `pcr` (2.3, 2.4), `clock` (stream time, bitrate),
`timestamps` (2.5 and the playout acceptance checks A.1-A.3), `findings` (the check
catalogue and its bounded log), `report`; `monitor` composes them.
"""

from mpegts.errors import TsFileError
from mpegts.monitor.config import TsMonitorConfig
from mpegts.monitor.findings import Check, CheckResult, Finding
from mpegts.monitor.monitor import TsMonitor, check_file
from mpegts.monitor.psi import SectionCollector, SectionSink
from mpegts.monitor.report import BitrateStats, PidStats, TsReport
from mpegts.monitor.timestamps import PesSink
from mpegts.pes import PesHeader
from mpegts.psi import Program

__all__ = [
    "BitrateStats",
    "Check",
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
