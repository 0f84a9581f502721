"""A time limit per run: the hung ffmpeg that heartbeats cannot reveal.

A worker whose ffmpeg hangs (a stuck read of the shared store, a decoder that never
returns) keeps heartbeating, so the stalled-job recovery (farm.recovery) never takes
its job back. Each run therefore gets ``floor + multiple × source duration``
(``[farm] time_limit_*``); once that has passed, a watchdog thread SIGKILLs the
processes the run's thread started (the pipeline then fails with an FfmpegError)
and keeps killing any it starts until the run ends. The worker turns the failure
into a JobTimeLimitError, which retries like any unexpected error.

Which processes are the run's: Linux lists, per thread, the children it forked
(``/proc/PID/task/TID/children``), and the pipeline starts every ffmpeg from the
thread that runs the job, so with ``--concurrency`` above 1 the other jobs' ffmpegs
are left alone. A hang inside the worker process itself (not in a child) cannot be
killed this way; the watchdog logs it every interval until the run ends.
"""

from __future__ import annotations

import logging
import math
import os
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from farm.config import FarmConfig

__all__ = ["JobWatchdog", "TimeLimit", "children_of_thread", "time_limit"]

logger = logging.getLogger(__name__)

#: How often an expired watchdog looks for (and kills) processes the run started.
KILL_INTERVAL = 0.5
#: How often a run stuck inside the worker (nothing to kill) is logged again.
STUCK_LOG_INTERVAL = 60.0


@dataclass(frozen=True, kw_only=True)
class TimeLimit:
    seconds: float
    floor_seconds: float
    per_source_second: float
    source_seconds: float

    def describe(self) -> str:
        return (
            f"{self.seconds:g} s ({self.floor_seconds:g} s + {self.per_source_second:g}× "
            f"the {self.source_seconds:.1f} s source)"
        )


def time_limit(config: FarmConfig, source_seconds: float) -> TimeLimit:
    """The limit of one run of a source lasting ``source_seconds`` (0 when unknown)."""
    source = max(0.0, source_seconds)
    return TimeLimit(
        seconds=config.time_limit_floor_seconds + config.time_limit_per_source_second * source,
        floor_seconds=config.time_limit_floor_seconds,
        per_source_second=config.time_limit_per_source_second,
        source_seconds=source,
    )


def children_of_thread(pid: int, tid: int) -> list[int]:
    """The live children that thread ``tid`` of process ``pid`` forked.

    On a kernel without CONFIG_PROC_CHILDREN: every child of the process (with
    ``--concurrency`` above 1 that includes other jobs' ffmpegs, which then retry).
    """
    listing = Path(f"/proc/{pid}/task/{tid}/children")
    try:
        return [int(child) for child in listing.read_text().split()]
    except FileNotFoundError:
        if not Path(f"/proc/{pid}/task/{tid}").exists():
            return []  # the thread has ended
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # "PID (COMM) STATE PPID ...": COMM may hold spaces, so split after its ")".
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue  # exited while we looked
        if len(fields) > 1 and int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


class JobWatchdog:
    """Use around a run, in the thread that runs it: ``with JobWatchdog(...) as dog:``.

    ``fired`` tells the run, once it has failed, that the limit was the reason.
    """

    def __init__(self, limit: TimeLimit, *, label: str) -> None:
        self.limit = limit
        self.label = label
        self.fired = False
        self.killed: list[int] = []
        self._pid = os.getpid()
        self._tid = 0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="farm-time-limit", daemon=True)

    def __enter__(self) -> JobWatchdog:
        self._tid = threading.get_native_id()
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._done.set()
        self._thread.join()

    def reason(self) -> str:
        killed = ", ".join(map(str, self.killed)) or "none"
        return (
            f"{self.label}: still running after its time limit of {self.limit.describe()}: "
            f"killed its ffmpeg (pid {killed}); raise [farm] time_limit_floor_seconds or "
            "time_limit_per_source_second if the file is just slow"
        )

    def _watch(self) -> None:
        if self._done.wait(self.limit.seconds):
            return
        self.fired = True
        started = time.monotonic()
        stuck_logged = -math.inf
        while True:
            children = children_of_thread(self._pid, self._tid)
            for child in children:
                try:
                    os.kill(child, signal.SIGKILL)  # also ends a SIGSTOPped process
                except ProcessLookupError:
                    continue
                self.killed.append(child)
            overdue = self.limit.seconds + time.monotonic() - started
            if children:
                logger.error(
                    "%s: over its time limit of %s: killed pid %s",
                    self.label,
                    self.limit.describe(),
                    " ".join(map(str, children)),
                )
            elif time.monotonic() - stuck_logged >= STUCK_LOG_INTERVAL:
                stuck_logged = time.monotonic()
                logger.error(
                    "%s: %.0f s into a run limited to %s, with no ffmpeg to kill: the "
                    "worker itself is stuck (restart it; the job is then recovered)",
                    self.label,
                    overdue,
                    self.limit.describe(),
                )
            if self._done.wait(KILL_INTERVAL):
                return
