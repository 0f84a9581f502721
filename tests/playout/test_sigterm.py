"""A clean stop keeps the as-run of the event on air: SIGTERM journals it, cut where it left.

Issue 10, defect 4: after SIGTERM to `playout up` the last 64 s of the lesson had no
record, after SIGTERM to `playout run` the last 88 s. Now the run unwinds and journals
the event on air as truncated at the last chunk sent: within one GOP of the last
picture that left, which is read back from the stream at a loopback receiver (the PTS
of the last video PES header received, parsed with mpegts.pes).
"""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

from conftest import Media
from onair import channels_sending_to, last_video_frame, playout_env, spawn
from test_recovery import CHANNEL, FIRST_START_TIMEOUT, Receiver, today_rundown

from epg.rundown import Rundown, rundown_path
from playout.asrun.ledger import AsRunLedger, AsRunOutcome, AsRunRecord, journal_path

GOP = 25
ON_AIR_BEFORE_STOP = 2.5  # seconds: mid-way through a 4 s lesson, most likely


def stop_and_read(
    process: subprocess.Popen[bytes], receiver: Receiver, tmp_path: Path
) -> tuple[AsRunRecord, int]:
    """Wait for air, SIGTERM, and return the last as-run record and the last frame sent."""
    try:
        assert receiver.first_after(0.0, FIRST_START_TIMEOUT) is not None, "never on air"
        time.sleep(ON_AIR_BEFORE_STOP)
        process.send_signal(signal.SIGTERM)
        out, _ = process.communicate(timeout=20)
        time.sleep(0.2)  # the last datagrams in flight
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        receiver.close()
    assert process.returncode == 0, out.decode(errors="replace")[-3000:]
    records = AsRunLedger(journal_path(tmp_path / "var", CHANNEL)).records()
    assert records, out.decode(errors="replace")[-3000:]
    return records[-1], last_video_frame(receiver.got)


def assert_cut_at_the_last_frame_sent(last: AsRunRecord, sent: int, rundown: Rundown) -> None:
    assert last.outcome is AsRunOutcome.TRUNCATED, last
    assert "stopped (signal 15)" in last.reason, last.reason
    end = last.actual_frame + last.duration_frames
    # Journaled at the start of the last chunk sent (chunks are cut at IDRs): at most one
    # GOP before the last picture that left, never after it.
    assert sent - GOP <= end <= sent + 1, (end, sent)
    assert last.duration_frames < last.scheduled_frames
    assert rundown.event_at(last.scheduled_frame) is not None


def test_sigterm_to_playout_run_journals_the_event_on_air(media: Media, tmp_path: Path) -> None:
    rundown = today_rundown(media)
    path = tmp_path / "rundown.json"
    rundown.save(path)
    receiver = Receiver()
    process = spawn(
        [
            *("playout", "run", "--channel", CHANNEL, "--rundown", str(path)),
            *("--output", f"udp://127.0.0.1:{receiver.port}"),
        ],
        playout_env(tmp_path),
        tmp_path,
    )
    last, sent = stop_and_read(process, receiver, tmp_path)
    assert_cut_at_the_last_frame_sent(last, sent, rundown)


def test_sigterm_to_playout_up_journals_the_event_on_air(media: Media, tmp_path: Path) -> None:
    rundown = today_rundown(media)
    rundown.save(rundown_path(tmp_path / "var" / "rundowns", CHANNEL, rundown.broadcast_date))
    receiver = Receiver()
    env = playout_env(tmp_path, channels_sending_to(tmp_path, receiver))
    process = spawn(["playout", "up", "--channel", CHANNEL, "--no-compile"], env, tmp_path)
    last, sent = stop_and_read(process, receiver, tmp_path)
    assert_cut_at_the_last_frame_sent(last, sent, rundown)
    assert not (tmp_path / "var" / "run" / f"playout-{CHANNEL}.pid").exists()
