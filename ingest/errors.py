"""Every exception ingest raises, in one tree under core's root.

SkyclassError
└── IngestError                     root of ingest's errors (exit 1 unless below)
    ├── IngestInputError            (BadInputError: exit 2) the operator's file, metadata or
    │   │                           option is wrong; nothing was stored
    │   ├── ProbeError              the file cannot be read as media
    │   ├── LoudnessInputError      a file cannot be measured: missing, undecodable, no audio
    │   ├── QcRejectedError         QC found errors (carries the QcReport)
    │   ├── PackageError            a resource package document is misnamed or not what it says
    │   ├── UnknownAssetError       no asset with that id
    │   └── DuplicateAssetError     the lesson id or file is already in the library
    ├── FfmpegError                 ffmpeg/ffprobe ran and failed: command, exit code, stderr tail
    ├── FfmpegNotFoundError         (also FileNotFoundError) no ffmpeg/ffprobe could be started:
    │                               fix FFMPEG_PATH / FFPROBE_PATH or install the wheel
    └── NormalizeError              the encoded output misses the house spec: nothing registered

The modules that raise these re-export them (`ingest.runner.FfmpegError`,
`ingest.probe.ProbeError`, …), so either import path works.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from typing import TYPE_CHECKING

from core.errors import BadInputError, SkyclassError

if TYPE_CHECKING:
    from ingest.analysis import QcReport

__all__ = [
    "DuplicateAssetError",
    "FfmpegError",
    "FfmpegNotFoundError",
    "IngestError",
    "IngestInputError",
    "LoudnessInputError",
    "NormalizeError",
    "PackageError",
    "ProbeError",
    "QcRejectedError",
    "UnknownAssetError",
]


class IngestError(SkyclassError):
    """Root of ingest's errors."""


class IngestInputError(IngestError, BadInputError):
    """The operator's input breaks an ingest rule; fixing the input fixes it."""


class ProbeError(IngestInputError):
    """The file cannot be read as media (unreadable, truncated or corrupt)."""


class LoudnessInputError(IngestInputError):
    """A file cannot be measured: it is missing, undecodable, or has no audio."""


class QcRejectedError(IngestInputError):
    """QC found errors in the file; `report` holds every finding."""

    def __init__(self, message: str, report: QcReport) -> None:
        super().__init__(message)
        self.report = report


class PackageError(IngestInputError):
    """A resource package document is misnamed, broken, or not what its extension says."""


class UnknownAssetError(IngestInputError):
    """No asset with that id in the library."""


class DuplicateAssetError(IngestInputError):
    """The lesson id (or the same file) is already in the library."""


DISK_FULL = "No space left on device"  # strerror(ENOSPC), as ffmpeg prints it


class FfmpegError(IngestError):
    """ffmpeg or ffprobe failed; carries the command and the last lines of stderr."""

    def __init__(
        self, message: str, *, command: Sequence[str], returncode: int, stderr_tail: str
    ) -> None:
        self.command = tuple(command)
        self.returncode = returncode
        self.stderr_tail = stderr_tail
        self.disk_full = DISK_FULL in stderr_tail
        if self.disk_full:
            # One line that says what to do; the command is in the log (run: …).
            outputs = [
                arg
                for previous, arg in zip(self.command, self.command[1:], strict=False)
                if "/" in arg and previous != "-i" and not arg.startswith("-")
            ]
            where = outputs[-1] if outputs else "the output"
            super().__init__(
                f"{message}: the disk is full writing {where}: free space there "
                "and run the command again"
            )
            return
        tail = stderr_tail.strip().splitlines()[-5:]
        detail = (" | ".join(tail)) if tail else "(no stderr)"
        super().__init__(f"{message} (exit {returncode}): {detail}\ncommand: {self.cmdline}")

    @property
    def cmdline(self) -> str:
        return shlex.join(self.command)


class FfmpegNotFoundError(IngestError, FileNotFoundError):
    """No ffmpeg/ffprobe binary could be started (a setup problem, not a media one)."""


class NormalizeError(IngestError):
    """The output does not meet the house spec: nothing is registered."""
