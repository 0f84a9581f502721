"""Hot reload of a channel's rundown: notice a new compiled file, splice in future events.

Contract with the engine (``playout run``), agreed here so neither side imports
the other's internals:

* The engine builds ``RundownWatcher(rundown_path(...))`` for the day on air and
  calls ``changed()`` between items (and at least every few seconds while a long
  item plays). It costs one ``stat()`` unless the file changed; a changed file is
  hashed and parsed, and a valid new rundown is returned once.
* The engine then calls ``merge_future(current, new, on_air_frame=...)`` and keeps
  playing the result: everything up to the end of the item on air is unchanged
  (the item on air is never interrupted), the new version applies from there.
* ``playout up`` (the supervisor) watches the same files and sends ``RELOAD_SIGNAL``
  (SIGHUP) to the channel's process when one changes. A process that called
  ``install_reload_signal()`` then re-reads the file at its next ``changed()``
  even if mtime and size look unchanged; the supervisor itself ignores SIGHUP
  and its children inherit that, so a child without the handler is not killed
  by the signal (polling alone still picks the change up).

The compiler writes rundowns atomically (``Rundown.save``: temp file then
``os.replace``), so a half-written file is never read.
"""

from __future__ import annotations

import hashlib
import logging
import os
import signal
import threading
from dataclasses import replace
from pathlib import Path
from types import FrameType

from epg.rundown import EventType, Rundown, RundownError, RundownEvent, StartMode

logger = logging.getLogger(__name__)

RELOAD_SIGNAL = signal.SIGHUP

_forced = threading.Event()


def install_reload_signal() -> None:
    """Make SIGHUP force every watcher in this process to re-read its file.

    Call from the main thread of ``playout run`` (Python installs handlers only there).
    """

    def _handler(signum: int, frame: FrameType | None) -> None:
        _forced.set()

    signal.signal(RELOAD_SIGNAL, _handler)


class RundownWatcher:
    """Notices when a rundown file was replaced with a different, valid version."""

    def __init__(self, path: Path, *, current: Rundown | None = None) -> None:
        self.path = path
        self._stat: tuple[int, int, int] | None = None
        self._sha: str | None = None
        if current is not None:
            self._stat = self._stat_key()
            self._sha = self._hash()

    def _stat_key(self) -> tuple[int, int, int] | None:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return None
        return (st.st_ino, st.st_size, st.st_mtime_ns)

    def _hash(self) -> str | None:
        try:
            return hashlib.sha256(self.path.read_bytes()).hexdigest()
        except FileNotFoundError:
            return None

    def changed(self) -> Rundown | None:
        """The new rundown if the file now holds a different valid version, else None."""
        forced = _forced.is_set()
        if forced:
            _forced.clear()
        key = self._stat_key()
        if key == self._stat and not forced:
            return None
        self._stat = key
        if key is None:
            return None
        sha = self._hash()
        if sha == self._sha:
            return None
        self._sha = sha
        try:
            rundown = Rundown.load(self.path)
        except RundownError as exc:
            logger.error(
                "%s changed but is not usable, keeping the current rundown: %s", self.path, exc
            )
            return None
        logger.info(
            "%s: new rundown (schedule version %d, sha256 %s)",
            self.path,
            rundown.schedule_version,
            (sha or "")[:12],
        )
        return rundown


def merge_future(current: Rundown, new: Rundown, *, on_air_frame: int) -> Rundown:
    """``new`` from the end of the item on air; ``current`` up to it.

    If an event of the new version straddles that boundary it is left out (it
    would have to start late or be cut) and the gap up to the next new event
    is filled with a filler event (``gap_fill``: the engine plays the filler
    pool, then the slate), which is what a hard start after it would cut anyway.
    The result tiles the timeline like any compiled rundown.
    """
    on_air = current.event_at(on_air_frame)
    boundary = on_air.end_frame if on_air is not None else on_air_frame
    kept = [e for e in current.events if e.end_frame <= boundary]
    future = [e for e in new.events if e.start_frame >= boundary]
    events: list[RundownEvent] = list(kept)
    position = (
        kept[-1].end_frame if kept else (current.events[0].start_frame if current.events else 0)
    )
    next_start = future[0].start_frame if future else new.end_frame
    if next_start > position:
        events.append(
            RundownEvent(
                event_id=f"reload-gap-{position}",
                eit_event_id=0,
                type=EventType.FILLER if new.filler_pool else EventType.SLATE,
                start_mode=StartMode.SEQUENTIAL,
                hard=False,
                start_frame=position,
                duration_frames=next_start - position,
                media=new.filler_pool[0] if new.filler_pool else None,
                gap_fill=True,
            )
        )
    events.extend(future)
    merged = replace(new, events=tuple(events))
    merged.check_contiguous()
    return merged
