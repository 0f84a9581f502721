"""The ``check:`` output: the stream goes straight into the project's TS checker, no file.

A 24 h day at 10 Mb/s is about 100 GB; checking it on the fly needs no disk.
``check:`` alone only checks; ``check:PATH`` also writes the JSON report there
when the sink is closed.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from mpegts.monitor import TsMonitor, TsMonitorConfig, TsReport
from playout.outputs.base import OutputSink
from playout.stream import TsChunk

logger = logging.getLogger(__name__)


class CheckSink(OutputSink):
    """A TsSink that feeds mpegts.monitor.TsMonitor; ``report()`` at any time."""

    def __init__(
        self, report_path: Path | None = None, config: TsMonitorConfig | None = None
    ) -> None:
        super().__init__(f"check:{report_path or ''}")
        self.monitor = TsMonitor(config)
        self.report_path = report_path
        self.bytes = 0
        self.final: TsReport | None = None

    def write(self, chunk: TsChunk) -> None:
        self.monitor.feed(chunk.data)
        self.bytes += len(chunk.data)

    def report(self) -> TsReport:
        return self.monitor.report()

    def close(self) -> None:
        self.final = self.monitor.report()
        if self.report_path is not None:
            self.report_path.parent.mkdir(parents=True, exist_ok=True)
            self.report_path.write_text(
                json.dumps(self.final.as_json(), ensure_ascii=False, indent=2), encoding="utf-8"
            )
        level = logging.INFO if self.final.ok_priority1 else logging.ERROR
        logger.log(
            level,
            "check: %d bytes, priority 1 %s, priority 2 %s",
            self.bytes,
            "ok" if self.final.ok_priority1 else "FAILED",
            "ok" if self.final.ok_priority2 else "FAILED",
        )


def open_check_output(url: str) -> CheckSink:
    """``check:`` or ``check:REPORT.json``."""
    path = url[len("check:") :]
    return CheckSink(Path(path) if path else None)
