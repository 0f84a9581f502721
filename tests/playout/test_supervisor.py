"""The channel supervisor: restart on death (with backoff), standby, orphans, hot reload."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from playout_media import DAY, build_rundown

from core.clock import FrozenClock
from epg.rundown import EventType as T
from epg.rundown import rundown_path
from playout.reload import RundownWatcher, merge_future
from playout.supervisor import NOTIFY_ENV, ON_AIR, WARM, ChildSpec, Supervisor

CHANNEL = "zt.skyclass.cn"
BEIJING = ZoneInfo("Asia/Shanghai")
SLEEPER = (sys.executable, "-c", "import time; time.sleep(30)")


def wait_for(condition: object, timeout: float = 5.0, step: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(condition) and condition():
            return True
        time.sleep(step)
    return False


def polled(sup: Supervisor, check: Callable[[], bool]) -> Callable[[], bool]:
    """``check`` after a supervisor poll (for wait_for)."""

    def condition() -> bool:
        sup.poll()
        return check()

    return condition


def test_a_killed_child_is_restarted_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="playout.supervisor")
    sup = Supervisor([ChildSpec(channel_id=CHANNEL, argv=SLEEPER)], zone=BEIJING, backoff_first=0.2)
    sup.start()
    try:
        first = sup.pid(CHANNEL)
        assert first is not None
        os.kill(first, signal.SIGKILL)

        def restarted() -> bool:
            sup.poll()
            return sup.pid(CHANNEL) not in (None, first)

        assert wait_for(restarted, timeout=3.0)
        assert sup.restarts(CHANNEL) == 1
        assert "playout died (signal 9)" in caplog.text
    finally:
        sup.stop()
    assert sup.pid(CHANNEL) is None


def test_first_restart_is_immediate_then_backoff_doubles_caps_and_resets() -> None:
    clock = FrozenClock(datetime(2026, 9, 1, tzinfo=UTC))
    spec = ChildSpec(channel_id=CHANNEL, argv=(sys.executable, "-c", "raise SystemExit(3)"))
    sup = Supervisor(
        [spec], zone=BEIJING, clock=clock, backoff_first=1.0, backoff_max=4.0, stable_after=60.0
    )
    sup.start()
    delays = []
    for _ in range(5):
        child = sup._children[CHANNEL]
        assert child.process is not None
        child.process.wait(10)
        sup.poll()  # notices the exit (and restarts at once if no backoff is due)
        assert child.exits[-1] == 3
        waited = 0.0
        while sup.pid(CHANNEL) is None:
            clock.advance(0.5)
            waited += 0.5
            sup.poll()
        delays.append(waited)
    assert delays == [0.0, 1.0, 2.0, 4.0, 4.0]
    # A child that ran for longer than stable_after is restarted at once again.
    child = sup._children[CHANNEL]
    assert child.process is not None
    child.process.wait(10)
    clock.advance(61.0)
    sup.poll()
    assert sup.pid(CHANNEL) is not None and sup.restarts(CHANNEL) == 6
    sup.stop()


#: A channel process in miniature: says "warm" when imported, waits for "go", says
#: "on-air" once on air (what `playout run` does when its first bytes have left).
NOTIFYING_CHILD = textwrap.dedent(
    f"""
    import os, sys, time
    fd = int(os.environ[{NOTIFY_ENV!r}])
    os.write(fd, b"{WARM}\\n")
    if sys.stdin.readline().strip() != "go":
        sys.exit(0)
    open(sys.argv[1] + str(os.getpid()), "w").close()
    os.write(fd, b"{ON_AIR}\\n")
    time.sleep(30)
    """
)


def test_restart_uses_a_warm_standby(tmp_path: Path) -> None:
    """The standby has done its imports; "go" on stdin turns it into the channel's process."""
    argv = (sys.executable, "-c", NOTIFYING_CHILD, str(tmp_path / "went"))
    sup = Supervisor([ChildSpec(channel_id=CHANNEL, argv=argv, standby=True)], zone=BEIJING)
    sup.start()
    try:
        first = sup.pid(CHANNEL)
        assert first is not None
        # The next standby starts only once the channel is on air (no CPU contest).
        assert sup._children[CHANNEL].standby is None
        assert wait_for(polled(sup, lambda: sup.on_air(CHANNEL)))
        assert (tmp_path / f"went{first}").exists()
        assert wait_for(polled(sup, lambda: sup.standby_warm(CHANNEL)))
        standby = sup._children[CHANNEL].standby
        assert standby is not None
        os.kill(first, signal.SIGKILL)
        assert wait_for(polled(sup, lambda: sup.pid(CHANNEL) == standby.pid), timeout=3)
        assert wait_for(polled(sup, lambda: sup.on_air(CHANNEL)))
        assert sup._children[CHANNEL].standby is not None  # the next one is already warming
        assert len(sup.outages(CHANNEL)) == 1
    finally:
        sup.stop()
    assert standby.poll() is not None


def test_a_restart_after_a_healthy_run_is_never_throttled() -> None:
    """Issue 10 defect 5: kills 26-38 s apart got 1, 2, 4, 8 s of backoff added."""
    clock = FrozenClock(datetime(2026, 9, 1, tzinfo=UTC))
    on_air_then_die = (
        f"import os; os.write(int(os.environ[{NOTIFY_ENV!r}]), b'{ON_AIR}\\n'); raise SystemExit(1)"
    )
    spec = ChildSpec(channel_id=CHANNEL, argv=(sys.executable, "-c", on_air_then_die))
    sup = Supervisor([spec], zone=BEIJING, clock=clock, backoff_first=1.0, stable_after=60.0)
    sup.start()
    try:
        for n in range(1, 8):  # dies seconds after each start: frozen time never moves
            child = sup._children[CHANNEL]
            assert child.process is not None
            child.process.wait(10)
            sup.poll()  # notices the death after a healthy run: restarts at once
            assert sup.restarts(CHANNEL) == n and sup.pid(CHANNEL) is not None
            assert child.next_start == clock.monotonic()  # no backoff, ever
    finally:
        sup.stop()


def test_an_orphan_from_a_dead_supervisor_is_killed(tmp_path: Path) -> None:
    orphan = subprocess.Popen([*SLEEPER, CHANNEL])  # its command line names the channel
    try:
        cmdline = Path(f"/proc/{orphan.pid}/cmdline")
        assert wait_for(lambda: CHANNEL.encode() in cmdline.read_bytes())  # exec'd
        (tmp_path / f"playout-{CHANNEL}.pid").write_text(f"{orphan.pid}\n")
        sup = Supervisor(
            [ChildSpec(channel_id=CHANNEL, argv=SLEEPER)], zone=BEIJING, pid_dir=tmp_path
        )
        sup.start()
        assert orphan.wait(5) == -signal.SIGKILL
        assert (tmp_path / f"playout-{CHANNEL}.pid").read_text().strip() == str(sup.pid(CHANNEL))
        sup.stop()
        assert not (tmp_path / f"playout-{CHANNEL}.pid").exists()
    finally:
        orphan.kill()
        orphan.wait()


# -- hot reload -------------------------------------------------------------------------


def test_watcher_reports_a_new_version_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = rundown_path(tmp_path, CHANNEL, DAY)
    v1 = build_rundown([("L1", T.LESSON, None, 100), ("L2", T.LESSON, None, 100)])
    v1.save(path)
    watcher = RundownWatcher(path, current=v1)
    assert watcher.changed() is None
    v1.save(path)  # same content, new inode and mtime
    assert watcher.changed() is None
    v2 = replace(v1, schedule_version=2)
    v2.save(path)
    got = watcher.changed()
    assert got is not None and got.schedule_version == 2
    assert watcher.changed() is None
    path.write_text("{ not json")
    assert watcher.changed() is None
    assert "not usable" in caplog.text


def test_merge_keeps_the_item_on_air_and_takes_future_events() -> None:
    current = build_rundown(
        [("A", T.LESSON, None, 100), ("B", T.LESSON, None, 100), ("C", T.FILLER, None, 100)]
    )
    new = replace(
        build_rundown(
            [("A2", T.LESSON, None, 120), ("B2", T.LESSON, None, 100), ("D", T.LESSON, None, 80)]
        ),
        schedule_version=2,
    )
    merged = merge_future(current, new, on_air_frame=150)  # B is on air
    assert [e.event_id for e in merged.events] == ["A", "B", "reload-gap-200", "D"]
    assert merged.events[1] == current.events[1]  # the item on air, untouched
    gap = merged.events[2]
    assert (gap.start_frame, gap.end_frame, gap.gap_fill) == (200, 220, True)
    assert merged.schedule_version == 2
    merged.check_contiguous()


CHILD = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from playout.reload import RundownWatcher, install_reload_signal
    from playout.supervisor import ON_AIR, notify_supervisor
    install_reload_signal()
    notify_supervisor(ON_AIR)  # SIGHUP goes only to a process that is on air
    watcher = RundownWatcher(Path(sys.argv[1]))
    watcher.changed()
    out = Path(sys.argv[2])
    out.write_text("ready")
    for _ in range(400):
        new = watcher.changed()
        if new is not None:
            out.write_text(f"reloaded v{new.schedule_version}")
        time.sleep(0.05)
    """
)


def test_supervisor_signals_a_reload_when_todays_rundown_changes(tmp_path: Path) -> None:
    path = rundown_path(tmp_path, CHANNEL, DAY)
    v1 = build_rundown([("L1", T.LESSON, None, 100)])
    v1.save(path)
    marker = tmp_path / "marker"
    clock = FrozenClock(datetime(2026, 9, 1, 8, 0, tzinfo=BEIJING))
    spec = ChildSpec(channel_id=CHANNEL, argv=(sys.executable, "-c", CHILD, str(path), str(marker)))
    sup = Supervisor([spec], zone=BEIJING, clock=clock, rundown_dir=tmp_path)
    sup.start()
    try:
        assert wait_for(lambda: marker.exists(), timeout=10)
        assert wait_for(polled(sup, lambda: sup.on_air(CHANNEL)))
        assert sup.reloads(CHANNEL) == 0
        replace(v1, schedule_version=2, compiled_at=v1.compiled_at + timedelta(hours=1)).save(path)
        sup.poll()
        assert sup.reloads(CHANNEL) == 1
        assert wait_for(lambda: marker.read_text() == "reloaded v2", timeout=5)
        assert sup.restarts(CHANNEL) == 0  # reloaded in place, never restarted
    finally:
        sup.stop()


def test_a_standby_that_dies_waiting_is_not_respawned_in_a_spin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A broken install kills every new standby at once: one retry per STANDBY_RETRY."""
    script = textwrap.dedent(
        f"""
        import os, sys, time
        from pathlib import Path
        first = Path(sys.argv[1])
        if first.exists():
            sys.exit(3)  # every process after the first dies at once
        first.touch()
        if sys.stdin.readline().strip() != "go":
            sys.exit(0)
        os.write(int(os.environ[{NOTIFY_ENV!r}]), b"{ON_AIR}\\n")
        time.sleep(30)
        """
    )
    argv = (sys.executable, "-c", script, str(tmp_path / "first"))
    sup = Supervisor([ChildSpec(channel_id=CHANNEL, argv=argv, standby=True)], zone=BEIJING)
    started: list[bool] = []
    real_popen = sup._popen

    def counting(child: object, *, standby: bool) -> subprocess.Popen[bytes]:
        started.append(standby)
        return real_popen(child, standby=standby)  # type: ignore[arg-type]

    monkeypatch.setattr(sup, "_popen", counting)
    sup.start()
    try:
        assert wait_for(polled(sup, lambda: sup.on_air(CHANNEL)))
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            sup.poll()
            time.sleep(0.02)
        assert sup.pid(CHANNEL) is not None and sup.restarts(CHANNEL) == 0
        assert len(started) <= 3, started  # the channel, one standby, maybe one retry
    finally:
        sup.stop()
