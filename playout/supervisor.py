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
  (code or signal) and restarts it. A process that got on air (it says so on
  its notify pipe, ``notify_supervisor(ON_AIR)``, when its first bytes have
  left) had a healthy run: whenever it dies, it is restarted at once, however
  often that happens. Only retries that fail at start-up (dead before getting on
  air) back off, 1 s doubling to 30 s, so a channel that cannot start does not
  spin; a minute of running also counts as healthy (a child that never notifies);
* restarts are warm: for each channel a standby process has already imported
  skyclass and waits on stdin (it says ``WARM`` when ready); the restart just
  says "go", so the channel is back on air within the engine's own start-up. The
  next standby starts once the new process is on air, so the two never compete
  for the CPU during a restart. It costs one idle interpreter per channel (~100 MB);
* deaths are noticed within a poll interval (0.1 s);
* a pid file per channel (``var/run/playout-ID.pid``) lets a new supervisor kill
  an orphaned child of a supervisor that was SIGKILLed, so two processes never
  send the same channel;
* it watches today's compiled rundown of each channel (stat, then sha256) and
  signals the channel's process (SIGHUP) when a new version lands, once that
  process is on air (a starting one has no handler yet and reads the file); the engine
  splices in future events only (``playout.reload.merge_future``) and rejects an
  unusable version with an alarm (``playout.reload``).

The child's side of the contract is here too: ``notify_supervisor`` and
``StopSignal`` (SIGTERM ends ``playout run`` cleanly: it stops after the chunk it is
sending, and the event on air is journaled as cut at the last frame sent).
"""

from __future__ import annotations

import _thread
import contextlib
import hashlib
import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import IO
from zoneinfo import ZoneInfo

from core.clock import Clock, SystemClock
from epg.rundown import RundownError, read_rundown_bytes, rundown_path
from playout.reload import RELOAD_SIGNAL

logger = logging.getLogger(__name__)

BACKOFF_FIRST = 1.0
BACKOFF_MAX = 30.0
STABLE_AFTER = 60.0
STOP_TIMEOUT = 5.0
STOP_GRACE = 2.0  # a SIGTERMed run that has not stopped by then is interrupted
POLL_INTERVAL = 0.1  # how soon a death is noticed (one waitpid and one stat per channel)
STANDBY_AFTER = 5.0  # start the next standby this long after a spawn if not on air by then
STANDBY_RETRY = 5.0  # after a standby died waiting, the next one starts this much later

#: The child's notify pipe (a file descriptor number in its environment).
NOTIFY_ENV = "SKYCLASS_PLAYOUT_NOTIFY_FD"
WARM = "warm"  # a standby has done its imports
ON_AIR = "on-air"  # the channel's first bytes have left: the run is healthy


# -- the child's side ---------------------------------------------------------------------


def notify_supervisor(state: str) -> None:
    """Tell the supervisor, if one started us, how this process is doing; never raises."""
    fd = os.environ.get(NOTIFY_ENV)
    if not fd:
        return
    with contextlib.suppress(OSError, ValueError):
        os.write(int(fd), f"{state}\n".encode())


class StopRequested(BaseException):
    """SIGTERM asked this process to stop, and a clean stop did not happen in time.

    A BaseException, so no ``except Exception`` on the way out swallows it.
    """


SignalHandler = Callable[[int, FrameType | None], object] | int | signal.Handlers | None


class StopSignal:
    """SIGTERM as a clean stop of ``playout run`` (install from the main thread).

    The first SIGTERM sets ``event``; ``checkpoint()``, called after each chunk is
    sent and journaled (``AsRunJournal(checkpoint=...)``), then raises StopRequested:
    the chunk on the wire goes out whole, nothing after it, and the event on air is
    cut there (within one GOP of the last frame that left). If no chunk is sent
    within ``grace`` seconds (a start-up, an engine stuck in a read), or on a second
    SIGTERM, StopRequested is raised in the main thread wherever it is.
    """

    def __init__(self, *, grace: float = STOP_GRACE) -> None:
        self.event = threading.Event()
        self.reason: str | None = None  # "signal 15" once asked to stop
        self._grace = grace
        self._timer: threading.Timer | None = None
        self._raised = False
        self._previous: SignalHandler = signal.SIG_DFL
        self._installed = False

    def install(self) -> StopSignal:
        self._previous = signal.signal(signal.SIGTERM, self._handler)
        self._installed = True
        return self

    def _handler(self, signum: int, frame: FrameType | None) -> None:
        if not self.event.is_set():
            self.reason = f"signal {signum}"
            self.event.set()
            self._timer = threading.Timer(self._grace, _thread.interrupt_main, (signum,))
            self._timer.daemon = True
            self._timer.start()
            return
        if not self._raised:
            self._raised = True
            raise StopRequested(self.reason or f"signal {signum}")

    def checkpoint(self) -> None:
        """Raise StopRequested if asked to stop: call where stopping leaves things whole."""
        if self.event.is_set() and not self._raised:
            self._raised = True
            raise StopRequested(self.reason or "stop")

    def restore(self) -> None:
        """Cancel the fallback and put the previous SIGTERM handler back."""
        if self._timer is not None:
            self._timer.cancel()
        if self._installed:
            signal.signal(signal.SIGTERM, self._previous)
            self._installed = False


# -- the supervisor -----------------------------------------------------------------------


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
class _Notify:
    """The read end of one process's notify pipe and the states it has reported."""

    fd: int
    states: set[str] = field(default_factory=set)
    buffer: bytes = b""

    def read(self) -> set[str]:
        while True:
            try:
                data = os.read(self.fd, 4096)
            except BlockingIOError:
                break
            except OSError:
                break
            if not data:
                break
            self.buffer += data
        *lines, self.buffer = self.buffer.split(b"\n")
        self.states.update(line.decode(errors="replace").strip() for line in lines)
        return self.states


@dataclass
class _Child:
    spec: ChildSpec
    process: subprocess.Popen[bytes] | None = None
    log: IO[bytes] | None = None
    started_at: float = 0.0
    standby: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    failures: int = 0  # consecutive deaths at start-up (before getting on air)
    healthy: bool = False  # the running process got on air
    outages: list[float] = field(default_factory=list)  # death noticed → restarted on air
    died_at: float | None = None
    standby_not_before: float = 0.0  # after a standby died waiting: no new one before
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
        self._notify: dict[int, _Notify] = {}  # pid → its notify pipe
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
        read_end, write_end = os.pipe()
        os.set_blocking(read_end, False)
        try:
            process = subprocess.Popen(
                spec.argv,
                stdin=subprocess.PIPE if standby else subprocess.DEVNULL,
                stdout=child.log,
                stderr=subprocess.STDOUT if child.log is not None else None,
                env={**os.environ, **dict(spec.env), NOTIFY_ENV: str(write_end)},
                pass_fds=(write_end,),
                start_new_session=True,  # a terminal's ^C or hangup reaches the supervisor only
            )
        except BaseException:
            os.close(read_end)
            raise
        finally:
            os.close(write_end)
        self._notify[process.pid] = _Notify(fd=read_end)
        return process

    def _states(self, process: subprocess.Popen[bytes] | None) -> set[str]:
        link = None if process is None else self._notify.get(process.pid)
        return set() if link is None else link.read()

    def _forget(self, process: subprocess.Popen[bytes]) -> None:
        link = self._notify.pop(process.pid, None)
        if link is not None:
            os.close(link.fd)

    def _prepare_standby(self, child: _Child) -> None:
        """Start the channel's next process now, so a restart skips the imports."""
        if not child.spec.standby or child.standby is not None:
            return
        if self.clock.monotonic() < child.standby_not_before:
            return  # the last one died waiting (a broken config?): do not spin
        try:
            child.standby = self._popen(child, standby=True)
        except OSError as exc:
            logger.error("%s: cannot start a standby: %s", child.spec.channel_id, exc)

    def _spawn(self, child: _Child) -> None:
        spec = child.spec
        standby, child.standby = child.standby, None
        if standby is not None and standby.poll() is not None:
            self._forget(standby)
            standby = None  # it died waiting (logged in its own log file)
            child.standby_not_before = self.clock.monotonic() + STANDBY_RETRY
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
        child.healthy = False
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

    def _schedule_restart(self, child: _Child, now: float | None = None) -> None:
        """A death after a healthy run restarts at once, always; start-up failures back off.

        ``now`` is the poll's own time, so "at once" means in this poll.
        """
        now = self.clock.monotonic() if now is None else now
        if child.healthy or (child.started_at and now - child.started_at >= self.stable_after):
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
                    if not child.healthy and ON_AIR in self._states(process):
                        child.healthy = True
                        child.failures = 0
                        if child.died_at is not None:
                            child.outages.append(now - child.died_at)
                            child.died_at = None
                        logger.info(
                            "%s: on air %.2f s after the start (pid %d)",
                            channel_id,
                            now - child.started_at,
                            process.pid,
                        )
                    if code is None:
                        if child.standby is not None and child.standby.poll() is not None:
                            logger.warning(
                                "%s: standby died waiting; the next in %.0f s",
                                channel_id,
                                STANDBY_RETRY,
                            )
                            self._forget(child.standby)
                            child.standby = None
                            child.standby_not_before = now + STANDBY_RETRY
                        if child.healthy or now - child.started_at >= STANDBY_AFTER:
                            self._prepare_standby(child)
                        self._watch_rundown(child, notify=True)
                        continue
                    child.process = None
                    child.exits.append(code)
                    self._forget(process)
                    if child.died_at is None:
                        child.died_at = now
                    self._schedule_restart(child, now)
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

    def run(self, stop: threading.Event, *, interval: float = POLL_INTERVAL) -> None:
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
                self._forget(child.process)
                child.process = None
                pid_file = self._pid_file(child.spec.channel_id)
                if pid_file is not None:
                    pid_file.unlink(missing_ok=True)
            for child in self._children.values():
                if child.standby is not None:
                    child.standby.kill()  # it is only waiting on stdin
                    child.standby.wait()
                    self._forget(child.standby)
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
            key = (st.st_ino, st.st_size, st.st_mtime_ns)
        except FileNotFoundError:
            return
        except OSError as exc:  # e.g. a symlink loop: the channel rejects it (and alarms)
            key = (-1, exc.errno or 0, 0)
        if key == child.rundown_key:
            return
        child.rundown_key = key
        try:
            # Bounded and non-blocking: a FIFO or a huge file put there must not stall us.
            sha = hashlib.sha256(read_rundown_bytes(path)).hexdigest()
        except RundownError:
            sha = f"unreadable {key}"  # still a change: the channel rejects it with an alarm
        if sha == child.rundown_sha:
            return
        first = child.rundown_sha is None
        child.rundown_sha = sha
        # Only a process that is on air has its SIGHUP handler (a starting one would die of
        # it); one still starting reads the file itself.
        if not notify or first or child.process is None or not child.healthy:
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

    def on_air(self, channel_id: str) -> bool:
        """The channel's current process has reported that its first bytes left."""
        return self._children[channel_id].healthy

    def standby_warm(self, channel_id: str) -> bool:
        """The channel's standby has done its imports (it would take over at once)."""
        with self._lock:
            return WARM in self._states(self._children[channel_id].standby)

    def outages(self, channel_id: str) -> list[float]:
        """Seconds from each death being noticed to the restarted process being on air."""
        return list(self._children[channel_id].outages)


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
#: It starts while the channel's new process is on air: its imports run 10 nice values
#: lower, where it may raise its priority back after "go" (root, or RLIMIT_NICE allows).
STANDBY_BOOTSTRAP = (
    "import os, resource, sys\n"
    "base = os.getpriority(os.PRIO_PROCESS, 0)\n"
    "polite = os.geteuid() == 0 or resource.getrlimit(resource.RLIMIT_NICE)[0] >= 20 - base\n"
    "if polite:\n"
    "    os.setpriority(os.PRIO_PROCESS, 0, base + 10)\n"
    "from skyclass.cli import main\n"
    "import playout.outputs, playout.pacer\n"
    "from playout.supervisor import WARM, notify_supervisor\n"
    "notify_supervisor(WARM)\n"
    "if sys.stdin.readline().strip() != 'go':\n"
    "    sys.exit(0)\n"
    "if polite:\n"
    "    os.setpriority(os.PRIO_PROCESS, 0, base)\n"
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
