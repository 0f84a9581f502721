"""SIGKILL recovery with the warm standby: back on air at the wall clock, at the mux rate.

The real command runs as a subprocess of the supervisor (as `playout up` runs it, with
a warm standby), sending UDP to a receiver socket on loopback.
Where the stream is, is read from its own clock: the PCR is the decoder's presentation
clock, and frame f is on screen when it reaches ``ORIGIN + f * 3600``, so at each PCR's
arrival the picture on air is known and can be compared with the wall clock. The rate
is read from arrivals against PCRs (``playout.pacer.arrival_report``). Margins are what a
loaded 2-core CI machine meets; bench/playout.py measures the outage and the rate.
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from conftest import Media
from playout_media import (
    CHANNEL,
    MEASURE,
    Receiver,
    beijing_day_start,
    build_rundown,
    check_case,
    pcr_positions,
)

from epg.rundown import EventType, Rundown
from mpegts import UDP_PAYLOAD
from playout.asrun.journal import RESTART_NOTE
from playout.asrun.ledger import AsRunLedger, AsRunOutcome, journal_path
from playout.supervisor import ChildSpec, Supervisor, standby_argv

__all__ = ["CHANNEL", "FIRST_START_TIMEOUT", "Receiver", "today_rundown"]  # other tests use them

FIRST_START_TIMEOUT = 20.0  # the first launch may be slow (cold imports on a busy CI box)
OUTAGE_MARGIN = 5.0  # seconds: a behaviour bound a loaded CI box meets (bench: the figure)
LEAD_FRAMES = 25  # bytes leave ~0.6 s before their picture shows (T-STD delay), plus slack


def today_rundown(media: Media) -> Rundown:
    """Ten minutes of 4 s lessons around now, on today's Beijing broadcast day."""
    now = datetime.now(UTC)
    beijing_day, day_start = beijing_day_start(now)
    frame_now = int((now - day_start).total_seconds() * 25)
    start = max(0, frame_now - 50) // 100 * 100
    rundown = build_rundown(
        [(f"E{n}", EventType.LESSON, media.short, 100) for n in range(150)], start=start
    )
    return replace(rundown, broadcast_date=beijing_day, day_start=day_start)


def test_sigkill_restart_with_the_warm_standby_is_on_air_at_the_wall_clock(
    media: Media, tmp_path: Path
) -> None:
    rundown = today_rundown(media)
    path = tmp_path / "rundown.json"
    rundown.save(path)
    receiver = Receiver()
    env = (
        ("SKYCLASS_VAR_DIR", str(tmp_path / "var")),
        ("SKYCLASS_DATABASE_URL", f"sqlite:///{tmp_path / 'db.sqlite'}"),
        ("SKYCLASS_MEDIA_ROOT", str(tmp_path / "media")),
    )
    # `skyclass playout run`, as `playout up` runs it: preloaded, started by "go".
    argv = (
        *standby_argv(CHANNEL),
        *("--rundown", str(path), "--output", f"udp://127.0.0.1:{receiver.port}"),
    )
    sup = Supervisor(
        [ChildSpec(channel_id=CHANNEL, argv=argv, env=env, standby=True)],
        zone=ZoneInfo("Asia/Shanghai"),
        pid_dir=tmp_path / "run",
    )
    try:
        launched = time.monotonic()
        sup.start()
        assert receiver.first_after(launched, FIRST_START_TIMEOUT) is not None, "never on air"
        time.sleep(3.0)  # on air for a while
        warm_by = time.monotonic() + FIRST_START_TIMEOUT
        while not sup.standby_warm(CHANNEL) and time.monotonic() < warm_by:
            sup.poll()  # a takeover by a standby still importing is not a warm one
            time.sleep(0.05)
        assert sup.standby_warm(CHANNEL), "the standby never finished its imports"
        victim = sup.pid(CHANNEL)
        assert victim is not None
        os.kill(victim, signal.SIGKILL)
        killed = time.monotonic()
        killed_wall = time.time()
        before = len(receiver.got)
        while sup.pid(CHANNEL) in (None, victim) and time.monotonic() - killed < 5:
            sup.poll()
            time.sleep(0.02)
        back = receiver.first_after(killed + 0.05, 10.0)
        assert back is not None, "not back on air"
        outage = back - killed
        # Past the end of the 4 s event on air at the kill, and one whole rate window.
        end = back + MEASURE
        while time.monotonic() < end:
            sup.poll()
            time.sleep(0.1)
        assert sup.restarts(CHANNEL) == 1
    finally:
        sup.stop()
        receiver.close()

    print(f"\nwarm-standby takeover after SIGKILL: first datagram after {outage:.2f} s")
    assert outage < OUTAGE_MARGIN, f"back on air after {outage:.2f} s"
    # From its first datagram the takeover is on the wall clock and at the mux rate.
    check_case("warm-standby takeover", receiver.between(back, end), rundown.day_start)
    after = receiver.got[before:]
    assert {len(d) for _, _, d in after} == {UDP_PAYLOAD}
    # The restarted stream is at the wall-clock position (mid-item, from the next IDR,
    # so within a GOP), not replaying the item from its start.
    lag = pcr_positions(after, rundown.day_start)
    assert lag, "no PCR after the restart"
    settled = lag[len(lag) // 2 :]
    assert max(abs(x) for x in settled) < 1.5, (min(settled), max(settled))

    # The as-run follows the bytes: nothing journaled by the killed process claims air
    # time past the kill (the bytes lead the picture by the T-STD delay, ~0.6 s).
    records = AsRunLedger(journal_path(tmp_path / "var", CHANNEL)).records()
    kill_frame = rundown.frame_at(datetime.fromtimestamp(killed_wall, UTC))
    cut = [r for r in records if "interrupted" in r.reason]
    assert len(cut) == 1, [(r.event_id, r.actual_frame, r.reason) for r in records]
    interrupted = cut[0]
    before_kill = records[: records.index(interrupted) + 1]
    for record in before_kill:
        assert record.actual_frame + record.duration_frames <= kill_frame + LEAD_FRAMES, record
    # The interrupted event: truncated at the last progress mark (at most a second plus
    # a GOP before the bytes stopped), never past the kill.
    assert interrupted.outcome is AsRunOutcome.TRUNCATED
    aired_to = interrupted.actual_frame + interrupted.duration_frames
    assert kill_frame - 3 * 25 <= aired_to <= kill_frame + LEAD_FRAMES, (aired_to, kill_frame)
    assert interrupted.duration_frames < interrupted.scheduled_frames
    # The join: what the restarted process played is recorded from where it joined
    # (mid-event: later than scheduled and shorter), with the reason; the gap lies between.
    resumed = records[records.index(interrupted) + 1 :]
    assert resumed, [(r.event_id, r.actual_frame, r.reason) for r in records]
    first = resumed[0]
    assert first.actual_frame > aired_to
    if first.actual_frame > first.scheduled_frame:  # joined mid-event (almost always)
        assert first.reason.startswith(RESTART_NOTE), first.reason
        assert first.duration_frames < first.scheduled_frames
