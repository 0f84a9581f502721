"""Every exception playout raises, in one tree.

SkyclassError
└── PlayoutError                 playout could not do what was asked
    ├── PlayoutInputError        (BadInputError: exit 2) unknown channel, bad --start
    │   └── OutputUrlError       an output URL we cannot open
    ├── OutputError              an output could not be opened or written (the machine)
    ├── UnplayableMedia          an asset cannot air: missing, unreadable, wrong checksum
    └── LedgerError              the as-run journal is unreadable or its hash chain is broken

The engine itself never stops on bad media: ``UnplayableMedia`` makes it fall back
to filler or the slate. The others end a command with one clear line.
"""

from __future__ import annotations

from core.errors import BadInputError, SkyclassError


class PlayoutError(SkyclassError):
    """Playout could not do what was asked (the engine itself never stops on bad media)."""


class PlayoutInputError(PlayoutError, BadInputError):
    """The operator asked for something impossible (unknown channel, bad --start, no rundown)."""


class OutputUrlError(PlayoutInputError):
    """An output URL the operator gave is not one we can open."""


class OutputError(PlayoutError):
    """An output could not be opened or written (the machine, not the operator)."""


class UnplayableMedia(PlayoutError):
    """The asset cannot be aired: missing, unreadable, wrong checksum or not house format."""


class LedgerError(PlayoutError):
    """The as-run journal is unreadable or its hash chain is broken."""
