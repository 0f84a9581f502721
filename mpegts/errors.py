"""The transport stream layer's errors, under core's tree.

TsError
├── TsInputError    a caller asked for something the stream cannot carry (bad PID, bad
│   │               counter, bad monitor limits): exit code 2 in the CLI
│   └── TsFileError a transport stream file cannot be read
└── TsDecodeError   bytes handed in as TS packets are not TS packets
"""

from __future__ import annotations

from core.errors import BadInputError, SkyclassError


class TsError(SkyclassError):
    """Root of the MPEG-TS layer's errors."""


class TsInputError(TsError, BadInputError):
    """A PID, counter or monitor limit out of range; fix the caller's input."""


class TsFileError(TsInputError, OSError):
    """The file to check cannot be read."""


class TsDecodeError(TsError, ValueError):
    """Bytes handed in as a TS packet are not one (wrong size, no sync byte)."""
