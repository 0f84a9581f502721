"""The output extension point: one module per delivery (udp, hls, file), one ABC here.

An output receives the channel's TS as ``TsChunk``s from the pacer (through the
fan-out in ``playout.outputs.fanout``). Outputs that can never block the pacing
thread (a non-blocking UDP socket) say so with ``nonblocking = True`` and are
called inline; every other output gets its own bounded queue and thread, so a
slow disk or a stuck NFS mount cannot delay the satellite uplink.
"""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from typing import ClassVar

from playout.errors import OutputError, OutputUrlError
from playout.stream import TsChunk

__all__ = ["OutputError", "OutputSink", "OutputUrlError", "RateLimitedLog"]


class OutputSink(ABC):
    """One delivery of one channel's transport stream."""

    #: True when write() never blocks (safe to call on the pacing thread).
    nonblocking: ClassVar[bool] = False

    def __init__(self, name: str) -> None:
        self.name = name

    @abstractmethod
    def write(self, chunk: TsChunk) -> None:
        """Deliver the chunk's packets, in order."""

    @abstractmethod
    def close(self) -> None:
        """Flush and release the output; later writes are not allowed."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


class RateLimitedLog:
    """Logs the first occurrence of a recurring problem, then at most one summary per period.

    A dead receiver produces ~1000 send errors a second; one line every 10 s with a
    count is what an operator can read.
    """

    def __init__(self, logger: logging.Logger, *, period: float = 10.0) -> None:
        self._logger = logger
        self._period = period
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def __call__(self, level: int, key: str, message: str, *args: object) -> None:
        now = time.monotonic()
        last = self._last.get(key)
        if last is not None and now - last < self._period:
            self._suppressed[key] = self._suppressed.get(key, 0) + 1
            return
        self._last[key] = now
        suppressed = self._suppressed.pop(key, 0)
        if suppressed:
            self._logger.log(level, message + " (%d more since the last report)", *args, suppressed)
        else:
            self._logger.log(level, message, *args)
