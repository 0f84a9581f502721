"""The channel supervisor: restart on death (with backoff), standby, orphans, hot reload."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
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
from playout.supervisor import ChildSpec, Supervisor

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


def test_restart_uses_a_warm_standby(tmp_path: Path) -> None:
    """The standby has done its imports; "go" on stdin turns it into the channel's process."""
    script = (
        "import sys, time\n"
        "if sys.stdin.readline().strip() != 'go': sys.exit(0)\n"
        f"open({str(tmp_path / 'went')!r} + sys.argv[1], 'w').close()\n"
        "time.sleep(30)\n"
    )
    spec = ChildSpec(channel_id=CHANNEL, argv=(sys.executable, "-c", script, "x"), standby=True)
    sup = Supervisor([spec], zone=BEIJING)
    sup.start()
    try:
        first = sup.pid(CHANNEL)
        standby = sup._children[CHANNEL].standby
        assert first is not None and standby is not None
        assert wait_for(lambda: (tmp_path / "wentx").exists())
        os.kill(first, signal.SIGKILL)
        assert wait_for(lambda: (sup.poll(), sup.pid(CHANNEL) == standby.pid)[1], timeout=3)
        assert sup._children[CHANNEL].standby is not None  # the next one is already warming
    finally:
        sup.stop()
    assert standby.poll() is not None


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
    install_reload_signal()
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
        sup.poll()
        assert sup.reloads(CHANNEL) == 0
        replace(v1, schedule_version=2, compiled_at=v1.compiled_at + timedelta(hours=1)).save(path)
        sup.poll()
        assert sup.reloads(CHANNEL) == 1
        assert wait_for(lambda: marker.read_text() == "reloaded v2", timeout=5)
        assert sup.restarts(CHANNEL) == 0  # reloaded in place, never restarted
    finally:
        sup.stop()
