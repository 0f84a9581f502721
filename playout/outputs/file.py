"""TS file output: a recording of exactly what went to air.

Runs behind the fan-out's queue (disk writes may block). The file is truncated
at open: a recording is one run; a restarted channel records into a new name if
the operator wants both (``file:var/rec/g03-{date}.ts`` is the operator's choice).
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

from playout.outputs.base import OutputError, OutputSink
from playout.stream import TsChunk

logger = logging.getLogger(__name__)

BUFFER = 1 << 20


class FileOutput(OutputSink):
    def __init__(self, path: Path, *, name: str | None = None) -> None:
        super().__init__(name or f"file:{path}")
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = path.open("wb", buffering=BUFFER)
        except OSError as exc:
            raise OutputError(f"{self.name}: cannot open for writing: {exc}") from exc
        self.bytes_written = 0

    def write(self, chunk: TsChunk) -> None:
        self._fh.write(chunk.data)
        self.bytes_written += len(chunk.data)

    def close(self) -> None:
        """Flush and fsync, so a recording that says it ended is on disk.

        Only a regular file is synced: ``file:/dev/null`` (a rehearsal that keeps
        nothing) or a pipe cannot be, and that is no error.
        """
        if self._fh.closed:
            return
        self._fh.flush()
        if stat.S_ISREG(os.fstat(self._fh.fileno()).st_mode):
            os.fsync(self._fh.fileno())
        self._fh.close()
        logger.info("%s: closed, %d bytes", self.name, self.bytes_written)
