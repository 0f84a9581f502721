"""Crash loops: every SIGKILL after a healthy run is back on air in under 2 s.

Issue 10, defect 5: under `playout up`, kills 26-38 s apart gave outages of 1.4, 2.2,
3.2, 5.2 and 9.0 s: each death counted as a failure, so backoff grew although every
run had been on air. Now a restart after a healthy run (the child said it was on air)
is never throttled, and the warm standby takes over every time.

The real command runs under the supervisor's own loop (`Supervisor.run`, as `playout
up` runs it) and sends to a loopback receiver; each outage is from the kill to the
first datagram after the gap, as in test_recovery. The spacing is shorter than the
acceptance's 30 s (bench/crashloop.py runs 10 kills 30 s apart and reports each):
the rule is the same whatever the spacing, because the backoff only looks at whether
the dead process had got on air.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path
from zoneinfo import ZoneInfo

from conftest import Media
from onair import playout_env
from test_recovery import CHANNEL, FIRST_START_TIMEOUT, Receiver, today_rundown

from playout.supervisor import ChildSpec, Supervisor, standby_argv

KILLS = 10
SPACING = 4.5  # seconds between kills (each after the channel is back and healthy)
OUTAGE_LIMIT = 2.0  # the rule; measured ~1 s on a loaded 2-core machine


def wait_for(condition: object, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(condition) and condition():
            return True
        time.sleep(0.05)
    return False


def test_ten_sigkills_in_a_row_each_back_on_air_in_under_2_s(media: Media, tmp_path: Path) -> None:
    rundown = today_rundown(media)
    path = tmp_path / "rundown.json"
    rundown.save(path)
    receiver = Receiver()
    argv = (
        *standby_argv(CHANNEL),
        *("--rundown", str(path), "--output", f"udp://127.0.0.1:{receiver.port}"),
    )
    env = tuple((k, v) for k, v in playout_env(tmp_path).items() if k.startswith("SKYCLASS_"))
    sup = Supervisor(
        [
            ChildSpec(
                channel_id=CHANNEL,
                argv=argv,
                env=env,
                standby=True,
                log_path=tmp_path / "playout.log",
            )
        ],
        zone=ZoneInfo("Asia/Shanghai"),
        pid_dir=tmp_path / "run",
    )
    stop = threading.Event()
    loop = threading.Thread(target=sup.run, args=(stop,), daemon=True)
    outages: list[float] = []
    try:
        launched = time.monotonic()
        loop.start()
        assert receiver.first_after(launched, FIRST_START_TIMEOUT) is not None, "never on air"
        last_kill = time.monotonic()
        for _ in range(KILLS):
            # Healthy: on air, and the standby ready to take over.
            assert wait_for(lambda: sup.on_air(CHANNEL) and sup.standby_warm(CHANNEL), 20), (
                "no warm standby"
            )
            time.sleep(max(0.0, last_kill + SPACING - time.monotonic()))
            victim = sup.pid(CHANNEL)
            assert victim is not None
            os.kill(victim, signal.SIGKILL)
            last_kill = killed = time.monotonic()
            back = receiver.first_after(killed + 0.05, 10.0)
            assert back is not None, f"not back on air after kill #{len(outages) + 1}"
            outages.append(back - killed)
        assert wait_for(lambda: sup.on_air(CHANNEL), 10)
    finally:
        stop.set()
        loop.join(15)
        receiver.close()
    log = (tmp_path / "playout.log").read_text(errors="replace")[-3000:]
    assert sup.restarts(CHANNEL) == KILLS, log
    assert sup._children[CHANNEL].exits == [-signal.SIGKILL] * KILLS
    # Never throttled: every outage is the same short restart, not a growing backoff.
    assert max(outages) < OUTAGE_LIMIT, [round(o, 2) for o in outages]
    assert len(sup.outages(CHANNEL)) == KILLS  # the supervisor saw each one back on air
