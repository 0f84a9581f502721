"""Keeping channel processes alive: one process per channel, restarted if it dies.

The station (``skyclass up`` / ``skyclass playout up``, in the shell) composes this
with the daily rundown compile and the as-run sync. Hot reload contract: see
``playout.reload`` (the engine polls ``RundownWatcher.changed()`` between items and
installs a SIGHUP handler so our signal makes it look at once).

Why one process per channel: a crash, a leak or a stuck PyAV call takes one
channel off air for the restart (< 2 s: ``playout run`` resumes at the
wall-clock position), never all of them, and each channel gets its own core
when there are several. The supervisor itself does no media work:

* it starts ``skyclass playout run --channel ID`` per channel, logs each exit
  (code or signal) and restarts it: at once the first time, then with backoff
  (1 s doubling to 30 s, reset after a minute of stable running), so a channel
  that cannot start does not spin;
* restarts are warm: for each channel a standby process has already imported
  skyclass and waits on stdin; the restart just says "go", so the channel is
  back on air within the engine's own start-up. It costs one idle interpreter
  per channel (~100 MB);
* a pid file per channel (``var/run/playout-ID.pid``) lets a new supervisor kill
  an orphaned child of a supervisor that was SIGKILLed, so two processes never
  send the same channel;
* it watches today's compiled rundown of each channel (stat, then sha256) and
  signals the channel's process (SIGHUP) when a new version lands; the engine
  splices in future events only (``playout.reload.merge_future``).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO
from zoneinfo import ZoneInfo

from core.clock import Clock, SystemClock
from epg.rundown import rundown_path
from playout.reload import RELOAD_SIGNAL

logger = logging.getLogger(__name__)

BACKOFF_FIRST = 1.0
BACKOFF_MAX = 30.0
STABLE_AFTER = 60.0
STOP_TIMEOUT = 5.0


@dataclass(frozen=True, kw_only=True)
class ChildSpec:
    """How to run one channel's playout process."""

    channel_id: str
    argv: tuple[str, ...]
    log_path: Path | None = None  # stdout+stderr, appended; None inherits ours
    env: tuple[tuple[str, str], ...] = ()
    #: argv is a standby command (``standby_argv``): it imports everything, then waits
    #: for "go" on stdin. The supervisor keeps one ready per channel.
    standby: bool = False


@dataclass
class _Child:
    spec: ChildSpec
    process: subprocess.Popen[bytes] | None = None
    log: IO[bytes] | None = None
    started_at: float = 0.0
    standby: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    failures: int = 0  # consecutive deaths without a stable run in between
    next_start: float = 0.0
    rundown_key: tuple[int, int, int] | None = None
    rundown_sha: str | None = None
    rundown_path: Path | None = None
    reloads: int = 0
    exits: list[int] = field(default_factory=list)


class Supervisor:
    """Keeps one process per channel running; see the module docstring."""

    def __init__(
        self,
        specs: Sequence[ChildSpec],
        *,
        zone: ZoneInfo,
        clock: Clock | None = None,
        rundown_dir: Path | None = None,
        pid_dir: Path | None = None,
        backoff_first: float = BACKOFF_FIRST,
        backoff_max: float = BACKOFF_MAX,
        stable_after: float = STABLE_AFTER,
        stop_timeout: float = STOP_TIMEOUT,
    ) -> None:
        self.clock: Clock = clock or SystemClock()
        self.zone = zone
        self.rundown_dir = rundown_dir
        self.pid_dir = pid_dir
        self.backoff_first = backoff_first
        self.backoff_max = backoff_max
        self.stable_after = stable_after
        self.stop_timeout = stop_timeout
        self._children = {s.channel_id: _Child(spec=s) for s in specs}
        self._lock = threading.Lock()

    # -- processes ---------------------------------------------------------------

    def _pid_file(self, channel_id: str) -> Path | None:
        return None if self.pid_dir is None else self.pid_dir / f"playout-{channel_id}.pid"

    def _kill_orphan(self, channel_id: str) -> None:
        """Kill a child left running by a supervisor that died without stopping it."""
        pid_file = self._pid_file(channel_id)
        if pid_file is None:
            return
        try:
            pid = int(pid_file.read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except (FileNotFoundError, ValueError, ProcessLookupError):
            return
        if channel_id.encode() not in cmdline or pid == os.getpid():
            return  # the pid was reused by something else
        logger.warning("%s: killing orphaned playout process %d", channel_id, pid)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)

    def _popen(self, child: _Child, *, standby: bool) -> subprocess.Popen[bytes]:
        spec = child.spec
        if child.log is None and spec.log_path is not None:
            spec.log_path.parent.mkdir(parents=True, exist_ok=True)
            child.log = spec.log_path.open("ab")
        return subprocess.Popen(
            spec.argv,
            stdin=subprocess.PIPE if standby else subprocess.DEVNULL,
            stdout=child.log,
            stderr=subprocess.STDOUT if child.log is not None else None,
            env={**os.environ, **dict(spec.env)},
            start_new_session=True,  # a terminal's ^C or hangup reaches the supervisor only
        )

    def _prepare_standby(self, child: _Child) -> None:
        """Start the channel's next process now, so a restart skips the imports."""
        if not child.spec.standby or child.standby is not None:
            return
        try:
            child.standby = self._popen(child, standby=True)
        except OSError as exc:
            logger.error("%s: cannot start a standby: %s", child.spec.channel_id, exc)

    def _spawn(self, child: _Child) -> None:
        spec = child.spec
        standby, child.standby = child.standby, None
        if standby is not None and standby.poll() is not None:
            standby = None  # it died waiting (logged in its own log file)
        try:
            if spec.standby:
                process = standby or self._popen(child, standby=True)
                assert process.stdin is not None
                process.stdin.write(b"go\n")
                process.stdin.close()
            else:
                process = self._popen(child, standby=False)
        except OSError as exc:
            logger.error("%s: cannot start playout (%s): %s", spec.channel_id, spec.argv[0], exc)
            self._schedule_restart(child)
            return
        child.process = process
        child.started_at = self.clock.monotonic()
        pid_file = self._pid_file(spec.channel_id)
        if pid_file is not None:
            pid_file.parent.mkdir(parents=True, exist_ok=True)
            pid_file.write_text(f"{process.pid}\n")
        logger.info(
            "%s: playout started, pid %d%s",
            spec.channel_id,
            process.pid,
            " (warm standby)" if standby is not None else "",
        )
        self._prepare_standby(child)

    def _schedule_restart(self, child: _Child) -> None:
        """The first death after a stable run restarts at once; a crash loop backs off."""
        now = self.clock.monotonic()
        if child.started_at and now - child.started_at >= self.stable_after:
            child.failures = 0
        child.failures += 1
        delay = (
            0.0
            if child.failures == 1
            else min(self.backoff_first * 2 ** (child.failures - 2), self.backoff_max)
        )
        child.next_start = now + delay

    def start(self) -> None:
        with self._lock:
            for channel_id, child in self._children.items():
                self._kill_orphan(channel_id)
                self._spawn(child)
                self._watch_rundown(child, notify=False)

    def poll(self) -> None:
        """Restart exited children whose backoff is over; notice new rundowns."""
        with self._lock:
            now = self.clock.monotonic()
            for channel_id, child in self._children.items():
                process = child.process
                if process is not None:
                    code = process.poll()
                    if code is None:
                        if child.standby is not None and child.standby.poll() is not None:
                            logger.warning("%s: standby died, starting another", channel_id)
                            child.standby = None
                            self._prepare_standby(child)
                        self._watch_rundown(child, notify=True)
                        continue
                    child.process = None
                    child.exits.append(code)
                    self._schedule_restart(child)
                    how = f"signal {-code}" if code < 0 else f"exit code {code}"
                    logger.warning(
                        "%s: playout died (%s); restart #%d in %.1f s",
                        channel_id,
                        how,
                        child.restarts + 1,
                        child.next_start - now,
                    )
                if now >= child.next_start:
                    child.restarts += 1
                    self._spawn(child)

    def run(self, stop: threading.Event, *, interval: float = 0.5) -> None:
        """Start everything, then poll until ``stop`` is set; stop the children at the end."""
        self.start()
        try:
            while not stop.wait(interval):
                self.poll()
        finally:
            self.stop()

    def stop(self) -> None:
        """SIGTERM every child, then SIGKILL what is still running after stop_timeout."""
        with self._lock:
            running = [c for c in self._children.values() if c.process is not None]
            for child in running:
                assert child.process is not None
                child.process.terminate()
            for child in running:
                assert child.process is not None
                try:
                    child.process.wait(self.stop_timeout)
                except subprocess.TimeoutExpired:
                    logger.error("%s: did not stop, killing it", child.spec.channel_id)
                    child.process.kill()
                    child.process.wait()
                child.process = None
                pid_file = self._pid_file(child.spec.channel_id)
                if pid_file is not None:
                    pid_file.unlink(missing_ok=True)
            for child in self._children.values():
                if child.standby is not None:
                    child.standby.kill()  # it is only waiting on stdin
                    child.standby.wait()
                    child.standby = None
                if child.log is not None:
                    child.log.close()
                    child.log = None

    # -- hot reload ---------------------------------------------------------------

    def _watch_rundown(self, child: _Child, *, notify: bool) -> None:
        """Signal the child when today's compiled rundown is replaced by a new version."""
        if self.rundown_dir is None:
            return
        today = self.clock.now().astimezone(self.zone).date()
        path = rundown_path(self.rundown_dir, child.spec.channel_id, today)
        if path != child.rundown_path:
            # A new broadcast day: the engine opens it itself; start watching afresh.
            child.rundown_path, child.rundown_key, child.rundown_sha = path, None, None
            notify = False
        try:
            st = path.stat()
        except FileNotFoundError:
            return
        key = (st.st_ino, st.st_size, st.st_mtime_ns)
        if key == child.rundown_key:
            return
        child.rundown_key = key
        try:
            sha = hashlib.sha256(path.read_bytes()).hexdigest()
        except FileNotFoundError:
            return
        if sha == child.rundown_sha:
            return
        first = child.rundown_sha is None
        child.rundown_sha = sha
        if not notify or first or child.process is None:
            return
        child.reloads += 1
        logger.info(
            "%s: new rundown %s (sha256 %s): asking playout to reload future events",
            child.spec.channel_id,
            path.name,
            sha[:12],
        )
        with contextlib.suppress(ProcessLookupError):
            child.process.send_signal(RELOAD_SIGNAL)

    # -- introspection (operators' status, tests) ----------------------------------

    def pid(self, channel_id: str) -> int | None:
        process = self._children[channel_id].process
        return None if process is None else process.pid

    def restarts(self, channel_id: str) -> int:
        return self._children[channel_id].restarts

    def reloads(self, channel_id: str) -> int:
        return self._children[channel_id].reloads


# -- how a channel process is started ------------------------------------------------


def playout_argv(channel_id: str) -> tuple[str, ...]:
    """The command that runs one channel: the same skyclass installation as ours."""
    script = Path(sys.executable).with_name("skyclass")
    if script.exists():
        return (str(script), "playout", "run", "--channel", channel_id)
    return (
        sys.executable,
        "-c",
        "import sys; from skyclass.cli import run; sys.argv[0] = 'skyclass'; run()",
        "playout",
        "run",
        "--channel",
        channel_id,
    )


#: What a standby runs: import everything now, run ``skyclass ARGS`` when told "go".
STANDBY_BOOTSTRAP = (
    "import sys\n"
    "from skyclass.cli import main\n"
    "import playout.outputs, playout.pacer\n"
    "if sys.stdin.readline().strip() != 'go':\n"
    "    sys.exit(0)\n"
    "sys.exit(main(sys.argv[1:]))\n"
)


def standby_argv(channel_id: str) -> tuple[str, ...]:
    """``skyclass playout run --channel ID``, preloaded and waiting for "go" on stdin."""
    return (
        sys.executable,
        "-c",
        STANDBY_BOOTSTRAP,
        *("playout", "run", "--channel", channel_id),
    )
