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
``os.replace``), so a half-written file is never read. Anything else written
there (garbage, a truncated copy, another channel's rundown, a directory, a
FIFO) is rejected (``Rundown.load`` raises only ``RundownError``): the channel
keeps playing what it has, the rejection is logged, counted
(``RundownWatcher.rejections``) and raised as an alarm file beside the rundown,
``var/rundowns/ID/DATE.rejected.json`` (``alarm_path``: when, why, the file's
SHA-256, how many rejections), which the console and metrics read; it is removed
when a valid version is accepted.

A channel started with no readable rundown plays the slate on an empty
placeholder (``slate_rundown``) and keeps watching; the first valid version
replaces it whole (``merge_future``) and the engine joins the event on air.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import queue
import signal
import threading
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, date, datetime, time
from functools import partial
from pathlib import Path
from types import FrameType
from zoneinfo import ZoneInfo

from core.clock import Clock, SystemClock
from epg.rundown import (
    EventType,
    Rundown,
    RundownError,
    RundownEvent,
    RundownService,
    StartMode,
    read_rundown_bytes,
)

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


def alarm_path(rundown_file: Path) -> Path:
    """The alarm raised while a channel's rundown file is unusable: DATE.rejected.json."""
    return rundown_file.with_suffix(".rejected.json")


def raise_alarm(
    rundown_file: Path, reason: str, *, keeping: str, sha256: str | None, clock: Clock
) -> int:
    """Write (atomically) or update the alarm beside a rejected rundown; return its count.

    The count adds up rejections across restarts until a valid version clears it.
    Failing to write the alarm (full disk) is logged: it must never stop the channel.
    """
    path = alarm_path(rundown_file)
    count = 1
    with contextlib.suppress(OSError, ValueError, RundownError):
        previous = json.loads(read_rundown_bytes(path, limit=64 << 10))
        if isinstance(previous, dict) and type(previous.get("rejections")) is int:
            count = previous["rejections"] + 1
    body = {
        "alarm": "rundown rejected",
        "file": str(rundown_file),
        "at": clock.now().astimezone(UTC).isoformat(),
        "reason": reason,
        "sha256": sha256,
        "keeping": keeping,
        "rejections": count,
    }
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(body, ensure_ascii=False, indent=1), encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        logger.error("%s: cannot write the alarm file (%s)", path, exc)
    return count


def clear_alarm(rundown_file: Path) -> None:
    path = alarm_path(rundown_file)
    with contextlib.suppress(OSError):
        path.unlink()
        logger.info("%s: a valid rundown is in use again: alarm cleared", path)


# A running channel writes its alarms on a thread of their own: on a busy disk a rename
# can wait seconds for the filesystem journal, and the engine must never wait on it.
_alarm_jobs: queue.SimpleQueue[Callable[[], object]] = queue.SimpleQueue()
_alarm_thread: threading.Thread | None = None
_alarm_start = threading.Lock()


def _in_background(job: Callable[[], object]) -> None:
    global _alarm_thread
    with _alarm_start:
        if _alarm_thread is None:
            _alarm_thread = threading.Thread(
                target=_alarm_worker, name="rundown alarms", daemon=True
            )
            _alarm_thread.start()
    _alarm_jobs.put(job)


def _alarm_worker() -> None:
    while True:
        job = _alarm_jobs.get()
        try:
            job()
        except Exception:  # an alarm that cannot be written must not end the thread
            logger.exception("rundown alarm file")


def flush_alarms(timeout: float = 10.0) -> bool:
    """Wait until the alarm files written so far are on disk (tests, a clean exit)."""
    done = threading.Event()
    _in_background(done.set)
    return done.wait(timeout)


def slate_rundown(service: RundownService, day: date, zone: ZoneInfo) -> Rundown:
    """An empty rundown of a channel and day: what plays (the slate) until a valid one lands."""
    day_start = datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)
    return Rundown(
        service=service,
        broadcast_date=day,
        day_start=day_start,
        schedule_version=0,
        compiled_at=day_start,
        events=(),
        timezone=zone.key,
    )


def slate_start(
    path: Path, reason: str, *, service: RundownService, day: date, zone: ZoneInfo, clock: Clock
) -> Rundown:
    """A start with no readable rundown: alarm, and the slate until a valid version lands.

    The engine watches ``path`` (``RundownWatcher``) and joins the valid version's
    event on air as soon as it appears.
    """
    count = raise_alarm(path, reason, keeping="the slate", sha256=None, clock=clock)
    logger.error(
        "ALARM no readable rundown (%d so far): %s; playing the slate and watching %s "
        "for a valid one",
        count,
        reason,
        path,
    )
    return slate_rundown(service, day, zone)


def check_rundown_for(rundown: Rundown, *, channel_id: str, day: date | None, source: str) -> None:
    """Raise RundownError unless ``rundown`` is the one of ``channel_id`` (and ``day``)."""
    if rundown.channel_id != channel_id:
        raise RundownError(
            f"{source} is the rundown of {rundown.channel_id}, not {channel_id}: "
            "put the channel's own rundown there"
        )
    if day is not None and rundown.broadcast_date != day:
        raise RundownError(
            f"{source} is the rundown of {rundown.broadcast_date}, not {day}: "
            "put that day's rundown there"
        )


class RundownWatcher:
    """Notices when a rundown file was replaced with a different, valid version.

    ``current`` is what the channel plays for the file's day: a new version must be of
    the same channel and day. A version that is not usable is rejected with an alarm
    (see the module docstring) and the channel keeps ``current``.
    """

    def __init__(
        self, path: Path, *, current: Rundown | None = None, clock: Clock | None = None
    ) -> None:
        self.path = path
        self.clock: Clock = clock or SystemClock()
        self.rejections = 0
        self._expect = None if current is None else (current.channel_id, current.broadcast_date)
        self._keeping = (
            "nothing"
            if current is None
            else (f"schedule version {current.schedule_version}" if current.events else "the slate")
        )
        self._stat: tuple[int, int, int] | None = None
        self._sha: str | None = None  # of the last version looked at, valid or not
        self._good: str | None = None  # of the version in use
        if current is not None:
            self._stat = self._stat_key()
            self._sha = self._hash()
            if current.events:  # not a placeholder: the file holds what plays
                self._good = self._sha
            elif self._valid_now():  # it became valid since the start found it unusable
                self._stat = self._sha = None  # so the first changed() returns it

    def _stat_key(self) -> tuple[int, int, int] | None:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return None
        except OSError as exc:  # a symlink loop, a name too long: a change we must look at
            return (-1, exc.errno or 0, 0)
        return (st.st_ino, st.st_size, st.st_mtime_ns)

    def _hash(self) -> str | None:
        try:
            return hashlib.sha256(read_rundown_bytes(self.path)).hexdigest()
        except RundownError:
            return None

    def _valid_now(self) -> bool:
        assert self._expect is not None
        try:
            rundown = Rundown.load(self.path)
            check_rundown_for(
                rundown, channel_id=self._expect[0], day=self._expect[1], source=str(self.path)
            )
        except RundownError:
            return False
        return True

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
            logger.warning("%s: removed; the channel keeps %s", self.path, self._keeping)
            return None
        try:
            raw = read_rundown_bytes(self.path)
        except RundownError as exc:
            self._sha = None
            self._reject(str(exc), None)
            return None
        sha = hashlib.sha256(raw).hexdigest()
        if sha == self._sha:
            return None
        self._sha = sha
        if sha == self._good:
            _in_background(partial(clear_alarm, self.path))  # the version in use is back
            return None
        try:
            rundown = Rundown.loads(raw, source=str(self.path))
            if self._expect is not None:
                check_rundown_for(
                    rundown,
                    channel_id=self._expect[0],
                    day=self._expect[1],
                    source=str(self.path),
                )
        except RundownError as exc:
            self._reject(str(exc), sha)
            return None
        self._good = sha
        self._keeping = f"schedule version {rundown.schedule_version}"
        _in_background(partial(clear_alarm, self.path))
        logger.info(
            "%s: new rundown (schedule version %d, sha256 %s)",
            self.path,
            rundown.schedule_version,
            sha[:12],
        )
        return rundown

    def _reject(self, reason: str, sha: str | None) -> None:
        self.rejections += 1
        _in_background(
            partial(
                raise_alarm, self.path, reason, keeping=self._keeping, sha256=sha, clock=self.clock
            )
        )
        logger.error(
            "ALARM rundown rejected (%d by this process): %s changed but is not usable, the "
            "channel keeps %s: %s",
            self.rejections,
            self.path,
            self._keeping,
            reason,
        )


def merge_future(current: Rundown, new: Rundown, *, on_air_frame: int) -> Rundown:
    """``new`` from the end of the item on air; ``current`` up to it.

    If an event of the new version straddles that boundary it is left out (it
    would have to start late or be cut) and the gap up to the next new event
    is filled with a filler event (``gap_fill``: the engine plays the filler
    pool, then the slate), which is what a hard start after it would cut anyway.
    The result tiles the timeline like any compiled rundown. A ``current`` with no
    events (``slate_rundown``) is replaced by ``new`` whole.
    """
    if not current.events:
        # A placeholder (start with no readable rundown): nothing aired from it to keep;
        # the engine joins the new version's event on air as a start would.
        return new
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
