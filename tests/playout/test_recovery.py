"""SIGKILL recovery: `playout run` restarted is back on air within 2 s, at the wall clock.

The real command runs as a subprocess of the supervisor (as `playout up` runs it, with
a warm standby: a cold start spends 1.5–2 s importing before the engine starts),
sending UDP to a receiver socket on loopback.
Where the stream is, is read from its own clock: the PCR is the decoder's presentation
clock, and frame f is on screen when it reaches ``ORIGIN + f * 3600``, so at each PCR's
arrival the picture on air is known and can be compared with the wall clock.
"""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from conftest import Media
from playout_media import build_rundown

from epg.rundown import EventType, Rundown
from mpegts import PACKET_SIZE, UDP_PAYLOAD
from playout.asrun.journal import RESTART_NOTE
from playout.asrun.ledger import AsRunLedger, AsRunOutcome, journal_path
from playout.engine import ORIGIN
from playout.supervisor import ChildSpec, Supervisor, standby_argv

CHANNEL = "zt.skyclass.cn"  # SD, 5 Mb/s: the engine's test clips
BEIJING_OFFSET = timedelta(hours=8)
FIRST_START_TIMEOUT = 20.0  # the first launch may be slow (cold imports on a busy CI box)
ALIGN_TOLERANCE = 0.050  # seconds between a PCR's arrival and its picture's wall clock
LEAD_FRAMES = 25  # bytes leave ~0.6 s before their picture shows (T-STD delay), plus slack


class Receiver:
    """Loopback UDP receiver: (wall time, datagram), bounded in count."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.port: int = self.sock.getsockname()[1]
        self.got: list[tuple[float, float, bytes]] = []  # (wall, monotonic, datagram)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set() and len(self.got) < 200_000:
            try:
                data = self.sock.recv(2048)
            except TimeoutError:
                continue
            self.got.append((time.time(), time.monotonic(), data))

    def first_after(self, t: float, timeout: float) -> float | None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for _, mono, _ in reversed(self.got):
                if mono <= t:
                    break
            after = [mono for _, mono, _ in self.got if mono > t]
            if after:
                return after[0]
            time.sleep(0.01)
        return None

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()


def pcr_positions(datagrams: list[tuple[float, float, bytes]], day_start: datetime) -> list[float]:
    """For each PCR: (wall clock of the picture on air) − (arrival time), in seconds."""
    out = []
    for wall, _, data in datagrams:
        for pos in range(0, len(data), PACKET_SIZE):
            p = data[pos : pos + PACKET_SIZE]
            if p[3] & 0x20 and p[4] >= 7 and p[5] & 0x10:
                base = p[6] << 25 | p[7] << 17 | p[8] << 9 | p[9] << 1 | p[10] >> 7
                on_air = day_start + timedelta(seconds=(base - ORIGIN) / 90_000)
                out.append(on_air.timestamp() - wall)
    return out


def today_rundown(media: Media) -> Rundown:
    """Ten minutes of 4 s lessons around now, on today's Beijing broadcast day."""
    now = datetime.now(UTC)
    beijing_day = (now + BEIJING_OFFSET).date()
    day_start = datetime(beijing_day.year, beijing_day.month, beijing_day.day, tzinfo=UTC)
    day_start -= BEIJING_OFFSET
    frame_now = int((now - day_start).total_seconds() * 25)
    start = max(0, frame_now - 50) // 100 * 100
    rundown = build_rundown(
        [(f"E{n}", EventType.LESSON, media.short, 100) for n in range(150)], start=start
    )
    return replace(rundown, broadcast_date=beijing_day, day_start=day_start)


def test_sigkill_restart_is_on_air_within_2_s_at_the_wall_clock(
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
        time.sleep(3.0)  # on air for a while; the standby has finished its imports
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
        end = time.monotonic() + 5.0  # past the end of the 4 s event on air at the kill
        while time.monotonic() < end:
            sup.poll()
            time.sleep(0.1)
        assert sup.restarts(CHANNEL) == 1
    finally:
        sup.stop()
        receiver.close()

    assert outage < 2.0, f"back on air after {outage:.2f} s"
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


def test_playout_run_presents_each_frame_at_its_wall_clock(
    cli: Any, media: Media, tmp_path: Path
) -> None:
    """Byte 0 is tied to the wall clock: every PCR arrives when its picture is due on air.

    Frame f is presented when the PCR reaches ``ORIGIN + f * 3600``; it is scheduled at
    ``day_start + f / 25``. So a datagram carrying PCR p must arrive at
    ``day_start + (p - ORIGIN) / 90 kHz``: the PCR arrival plus the decode delay is then
    the frame's Beijing time.
    """
    rundown = today_rundown(media)
    path = tmp_path / "rundown.json"
    rundown.save(path)
    receiver = Receiver()
    try:
        result = cli(
            *("playout", "run", "--channel", CHANNEL, "--rundown", str(path)),
            *("--output", f"udp://127.0.0.1:{receiver.port}", "--duration", "4"),
        )
        time.sleep(0.2)
    finally:
        receiver.close()
    assert result.code == 0, result.stderr
    lag = pcr_positions(receiver.got, rundown.day_start)
    assert len(lag) > 100, len(lag)
    lag.sort()
    p1, p99 = lag[len(lag) // 100], lag[-1 - len(lag) // 100]
    assert max(abs(p1), abs(p99)) < ALIGN_TOLERANCE, (p1, p99)
