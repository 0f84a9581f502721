"""The SI encoder's errors, a branch of the EPG tree (epg/errors.py).

EpgError
└── SiError
    ├── SiInputError    an event or service cannot be coded as given (exit code 2 in the CLI)
    └── SiDecodeError   bytes read off a stream are not valid SI (bad CRC, bad length, bad BCD)
"""

from __future__ import annotations

from core.errors import BadInputError
from epg.errors import EpgError


class SiError(EpgError):
    """Root of the DVB SI encoder's errors."""


class SiInputError(SiError, BadInputError):
    """An event, service or time cannot be coded into SI; fix the schedule or the registry."""


class SiDecodeError(SiError, ValueError):
    """A section or packet is malformed; the monitor reports it rather than crashing."""
