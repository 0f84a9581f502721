"""Playout benchmark: real-time CPU, capacity, re-encode baseline, pacing jitter, fast mode.

    .venv/bin/python bench/playout.py [--seconds S] [--max-channels N] [--fast-hours H]
        [--only all|clock|capacity] [--capacity-seconds S] [--keep-going] [--tree DIR ...]

Everything runs in a temporary directory and sends only to 127.0.0.1.

1. HD house clip: 20 s 1920x1080 H.264 8 Mb/s CBR, closed 25-frame GOPs, MP2 192k
   (made once with the imageio-ffmpeg binary), a rundown of it around now on
   g01.skyclass.cn (HD, 10 Mb/s).
2. CPU per channel in real time: `skyclass playout run --output udp://127.0.0.1:P`,
   process CPU (user+sys from wait4) over wall time, minus a 2 s run's CPU (start-up:
   imports, slate), so the figure is the steady state.
3. Pacing jitter from the loopback receiver: arrival time minus PCR time for every
   PCR, p99 − p1 (raw, and after removing a linear clock-rate fit).
4. Capacity: N channels at once (1, 8, 16, 24, 32, 40, … up to --max-channels),
   started 4 at a time; once all are on air (+2 s), for --capacity-seconds: CPU of
   the senders and, apart, of the receiving processes (the harness, 10 channels
   each, kernel arrival stamps), per channel; each stream checked with
   mpegts.monitor (priority-1 errors), datagrams the sender never sent (PCR byte
   position against bytes received), late datagrams (> 5 ms after their due time),
   jitter p99 − p1 and the RFC 4445 MDI delay factor. Side by side, a stall probe
   (a real-time process that only sleeps 1 ms at a time) records when the machine
   itself stopped running anything (the hypervisor taking the vCPUs: steal): a late
   datagram whose lateness that stall covers, to within 5 ms, is the machine's, not
   playout's. A step passes with zero P1 errors, zero lost datagrams and zero late
   datagrams of playout's own. Stops at the first failing N
   (--keep-going: all steps). --tree DIR (repeatable) runs `playout run` from
   another source tree, e.g. a `git archive` of the baseline, side by side, with
   the CPU ratio at each N. `--only capacity` runs just this.
5. Baseline (the ffplayout design): one `ffmpeg -re` decoder per clip piping its
   frames into one persistent libx264 encoder muxing CBR TS to UDP, with ffplayout's
   pipe format (intra-only MPEG-2 at 50 Mb/s + SMPTE 302M audio in MPEG-TS, which
   concatenates cleanly across clips), on the same clip; x264 at `ultrafast` (the
   cheapest setting, which favours the baseline). CPU of all processes over wall
   time, ratio to ours.
6. Fast mode: `--fast` to `check:` for H hours of the HD rundown (24 = the whole day).
7. Clock discipline (issue 9), from the first datagram of each case: a cold start, a
   restart after SIGKILL (a cold process), a warm-standby takeover (`playout up`'s
   supervisor, SIGKILL), and a run with a 200 ms stall injected (SIGSTOP/SIGCONT).
   Per case: time to the first datagram, the wall-clock alignment of the first second
   (PCR arrival against its picture's Beijing time), the arrival − PCR frequency offset
   of every 10 s window after the first second, the jitter p99 − p1 over the whole run
   and any lasting step (`playout.pacer.arrival_report`); for the stall, the as-run of
   the next fixed lesson and of the break cut for it. `--only clock` runs just this.
"""

from __future__ import annotations

import argparse
import bisect
import contextlib
import multiprocessing as mp
import os
import platform
import resource
import selectors
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from multiprocessing.connection import Connection
from multiprocessing.synchronize import Event as MpEvent
from pathlib import Path
from typing import Any

import imageio_ffmpeg
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from channels import SAMPLE_CHANNELS_FILE, load_registry
from epg.compiler import service_of
from epg.rundown import EventType, MediaRef, Rundown, RundownEvent, StartMode
from mpegts import (
    PACKET_SIZE,
    PCR_HZ,
    PCR_MODULUS,
    UDP_PAYLOAD,
    packet_array,
    pcr,
    pcr_array,
    pcr_flag_array,
)
from mpegts.monitor import TsMonitor
from playout.asrun.ledger import AsRunLedger, journal_path
from playout.engine import ORIGIN
from playout.pacer import ArrivalReport, arrival_report
from playout.supervisor import ChildSpec, Supervisor, standby_argv

FFMPEG = imageio_ffmpeg.get_ffmpeg_exe()
CHANNEL = "g01.skyclass.cn"
CLIP_SECONDS = 20
CLIP_FRAMES = CLIP_SECONDS * 25
BEIJING = timedelta(hours=8)
PY = sys.executable
CLI = "from skyclass.cli import run; run()"


def make_hd_clip(path: Path) -> Path:
    if path.exists():
        return path
    subprocess.run(
        [
            FFMPEG,
            *("-hide_banner", "-loglevel", "error", "-y"),
            *("-f", "lavfi", "-i", f"testsrc2=size=1920x1080:rate=25:duration={CLIP_SECONDS}"),
            *("-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={CLIP_SECONDS}"),
            *("-vf", "setfield=tff", "-c:v", "libx264", "-preset", "ultrafast"),
            *("-profile:v", "high", "-level", "4.0", "-pix_fmt", "yuv420p"),
            *("-g", "25", "-keyint_min", "25", "-sc_threshold", "0", "-bf", "0"),
            *("-b:v", "8M", "-minrate", "8M", "-maxrate", "8M", "-bufsize", "4M"),
            *("-x264-params", "nal-hrd=cbr:force-cfr=1"),
            *("-c:a", "mp2", "-b:a", "192k", "-ar", "48000", "-ac", "2"),
            *("-f", "mpegts", str(path)),
        ],
        check=True,
        timeout=600,
    )
    return path


def hd_rundown(clip: Path, *, hours: float | None = None) -> Rundown:
    """Back-to-back lessons of the clip: around now (real time) or from 00:00 (fast)."""
    import hashlib

    registry = load_registry(SAMPLE_CHANNELS_FILE)
    channel = registry.get(CHANNEL)
    now = datetime.now(UTC)
    day = (now + BEIJING).date()
    day_start = datetime(day.year, day.month, day.day, tzinfo=UTC) - BEIJING
    media = MediaRef(
        asset_id="hd20",
        path=str(clip),
        sha256=hashlib.sha256(clip.read_bytes()).hexdigest(),
        duration_frames=CLIP_FRAMES,
        kind="lesson",
        title="HD test",
    )
    if hours is None:
        frame_now = int((now - day_start).total_seconds() * 25)
        first = max(0, frame_now - CLIP_FRAMES) // CLIP_FRAMES * CLIP_FRAMES
        count = 90  # 30 min
    else:
        first = 0
        count = int(hours * 3600 * 25 // CLIP_FRAMES)
    events = tuple(
        RundownEvent(
            event_id=f"L{n}",
            eit_event_id=1 + n % 60000,
            type=EventType.LESSON,
            start_mode=StartMode.SEQUENTIAL,
            hard=False,
            start_frame=first + n * CLIP_FRAMES,
            duration_frames=CLIP_FRAMES,
            media=media,
        )
        for n in range(count)
    )
    return Rundown(
        service=service_of(channel, registry),
        broadcast_date=day,
        day_start=day_start,
        schedule_version=1,
        compiled_at=now,
        events=events,
    )


class Receiver:
    """Loopback receiver keeping (arrival, datagram); bounded in count."""

    def __init__(self, limit: int = 400_000) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 << 20)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port: int = self.sock.getsockname()[1]
        self.arrivals: list[float] = []
        self.walls: list[float] = []  # the same instants on the wall clock
        self.data: list[bytes] = []
        self._limit = limit
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        recv, now, wall = self.sock.recv, time.monotonic, time.time
        while not self._stop.is_set() and len(self.data) < self._limit:
            try:
                d = recv(2048)
            except TimeoutError:
                continue
            self.arrivals.append(now())
            self.walls.append(wall())
            self.data.append(d)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(3)
        self.sock.close()


def env_for(tmp: Path) -> dict[str, str]:
    env = {
        **os.environ,
        "SKYCLASS_VAR_DIR": str(tmp / "var"),
        "SKYCLASS_DATABASE_URL": f"sqlite:///{tmp / 'db.sqlite'}",
        "SKYCLASS_MEDIA_ROOT": str(tmp / "media"),
    }
    env.pop("SKYCLASS_CONFIG", None)
    return env


def run_channels(
    rundown_file: Path, tmp: Path, n: int, seconds: float
) -> tuple[list[float], list[Receiver], float]:
    """n `playout run` processes for `seconds` each; (CPU seconds each, receivers, wall)."""
    receivers = [Receiver() for _ in range(n)]
    procs = []
    started = time.monotonic()
    for rx in receivers:
        procs.append(
            subprocess.Popen(
                [
                    PY,
                    "-c",
                    CLI,
                    *("playout", "run", "--channel", CHANNEL, "--rundown", str(rundown_file)),
                    *("--output", f"udp://127.0.0.1:{rx.port}", "--duration", str(seconds)),
                ],
                env=env_for(tmp),
                stderr=subprocess.DEVNULL,
            )
        )
    cpu = []
    for proc in procs:
        deadline = time.monotonic() + seconds + 60
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                cpu.append(usage.ru_utime + usage.ru_stime)
                proc.returncode = os.waitstatus_to_exitcode(status)
                break
            if time.monotonic() > deadline:
                proc.kill()
            time.sleep(0.05)
    wall = time.monotonic() - started
    time.sleep(0.3)
    for rx in receivers:
        rx.close()
    return cpu, receivers, wall


def check_stream(rx: Receiver) -> tuple[bool, int, int]:
    """(priority 1 ok, priority-1 error count, datagram sizes other than 1316)."""
    monitor = TsMonitor()
    for d in rx.data:
        monitor.feed(d)
    report = monitor.report()
    p1 = sum(r.count for r in report.errors if r.priority == 1)
    return report.ok_priority1, p1, sum(1 for d in rx.data if len(d) != UDP_PAYLOAD)


def jitter(rx: Receiver) -> tuple[float, float, int]:
    """Arrival − PCR for every PCR: (p99 − p1 raw, p99 − p1 detrended) in ms, count."""
    arr: list[float] = []
    pcrs: list[float] = []
    for t, d in zip(rx.arrivals, rx.data, strict=True):
        for pos in range(0, len(d), PACKET_SIZE):
            value = pcr(d, pos)
            if value is not None:
                arr.append(t)
                pcrs.append(value / PCR_HZ)
    a, c = np.array(arr), np.unwrap(np.array(pcrs), period=2**33 / 90_000)
    skip = len(a) // 10  # the first seconds include the start-up
    a, c = a[skip:], c[skip:]
    dev = (a - a[0]) - (c - c[0])
    raw = float(np.percentile(dev, 99) - np.percentile(dev, 1)) * 1000
    fit = np.polyval(np.polyfit(c - c[0], dev, 1), c - c[0])
    detr = float(np.percentile(dev - fit, 99) - np.percentile(dev - fit, 1)) * 1000
    return raw, detr, len(a)


def baseline(clip: Path, tmp: Path, seconds: float) -> tuple[float, float, int]:
    """ffplayout-style re-encode: (CPU seconds of all processes, wall, datagrams)."""
    rx = Receiver()
    encoder = subprocess.Popen(
        [
            FFMPEG,
            *("-hide_banner", "-loglevel", "error", "-f", "mpegts", "-i", "-"),
            *("-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-sc_threshold", "0"),
            *("-b:v", "8M", "-minrate", "8M", "-maxrate", "8M", "-bufsize", "4M"),
            *("-x264-params", "nal-hrd=cbr", "-flags", "+ildct+ilme"),
            *("-c:a", "mp2", "-b:a", "192k"),
            *("-f", "mpegts", "-muxrate", "10000000"),
            f"udp://127.0.0.1:{rx.port}?pkt_size=1316",
        ],
        stdin=subprocess.PIPE,
    )
    assert encoder.stdin is not None
    started = time.monotonic()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    remaining = seconds
    while remaining > 0:  # one decoder process per clip, as ffplayout does
        part = min(remaining, CLIP_SECONDS / 2)
        subprocess.run(
            [
                FFMPEG,
                *("-hide_banner", "-loglevel", "error", "-re", "-i", str(clip)),
                # ffplayout's decoder settings: intra-only MPEG-2 + SMPTE 302M in TS
                *("-t", str(part), "-pix_fmt", "yuv420p", "-c:v", "mpeg2video", "-g", "1"),
                *("-b:v", "50000k", "-minrate", "50000k", "-maxrate", "50000k"),
                *("-bufsize", "25000k", "-c:a", "s302m", "-strict", "-2"),
                *("-ar", "48000", "-ac", "2", "-f", "mpegts", "-"),
            ],
            stdout=encoder.stdin,
            check=True,
        )
        remaining -= part
    encoder.stdin.close()
    encoder.wait(120)
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    time.sleep(0.3)
    rx.close()
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return cpu, wall, len(rx.data)


def blocks_rundown(clip: Path, *, minutes: int = 30) -> Rundown:
    """Around now: 20 s fixed HD lessons, each followed by a 10 s break the compiler's way
    (the same clip as filler, cut short), so lateness has somewhere to be absorbed."""
    base = hd_rundown(clip)
    media = base.events[0].media
    assert media is not None
    filler = replace(media, asset_id="hd20-fill", kind="filler")
    now = datetime.now(UTC)
    first = (int((now - base.day_start).total_seconds() * 25) - 750) // 750 * 750
    events: list[RundownEvent] = []
    for n in range(minutes * 2):
        start = first + n * 750
        events.append(
            RundownEvent(
                event_id=f"L{n}",
                eit_event_id=1 + n,
                type=EventType.LESSON,
                start_mode=StartMode.FIXED,
                hard=True,
                start_frame=start,
                duration_frames=CLIP_FRAMES,
                media=media,
            )
        )
        events.append(
            RundownEvent(
                event_id=f"B{n}",
                eit_event_id=0,
                type=EventType.FILLER,
                start_mode=StartMode.SEQUENTIAL,
                hard=False,
                start_frame=start + CLIP_FRAMES,
                duration_frames=250,
                media=filler,
                gap_fill=True,
            )
        )
    return replace(base, events=tuple(events), filler_pool=(filler,))


def alignment_ms(rx: Receiver, day_start: datetime, start: int, seconds: float = 1.0) -> float:
    """Median of (picture's wall clock − PCR arrival) over the first second, in ms."""
    lags: list[float] = []
    t0 = rx.arrivals[start]
    for t, w, d in zip(rx.arrivals[start:], rx.walls[start:], rx.data[start:], strict=True):
        if t - t0 > seconds:
            break
        for pos in range(0, len(d), PACKET_SIZE):
            value = pcr(d, pos)
            if value is not None:
                on_air = day_start + timedelta(seconds=(value / 300 - ORIGIN) / 90_000)
                lags.append(on_air.timestamp() - w)
    return float(np.median(lags)) * 1000 if lags else float("nan")


def clock_case(
    name: str, rx: Receiver, start: int, end: int, day_start: datetime, since: tuple[str, float]
) -> ArrivalReport:
    report = arrival_report(rx.arrivals[start:end], rx.data[start:end])
    print(
        f"  {name}: first datagram {rx.arrivals[start] - since[1]:.2f} s after {since[0]}; "
        f"alignment of the first second {alignment_ms(rx, day_start, start):+.1f} ms; "
        f"windows {[round(p, 1) for p in report.window_ppm]} ppm; "
        f"jitter p99−p1 {report.jitter_ms:.2f} ms; steps {[round(s) for s in report.steps_ms]} ms"
    )
    return report


def launch_run(rundown_file: Path, tmp: Path, port: int, seconds: float) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            PY,
            "-c",
            CLI,
            *("playout", "run", "--channel", CHANNEL, "--rundown", str(rundown_file)),
            *("--output", f"udp://127.0.0.1:{port}", "--duration", str(seconds)),
        ],
        env=env_for(tmp),
        stderr=subprocess.DEVNULL,
    )


def first_index(rx: Receiver, after: float, timeout: float = 60.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for k in range(len(rx.arrivals) - 1, -1, -1):
            if rx.arrivals[k] <= after:
                if k + 1 < len(rx.arrivals):
                    return k + 1
                break
        else:
            if rx.arrivals:
                return 0
        time.sleep(0.01)
    raise RuntimeError("no datagram arrived")


def clock_discipline(clip: Path, tmp: Path, seconds: float) -> None:
    """Section 7: the four cases of issue 9, each measured from its first datagram."""
    rundown = blocks_rundown(clip)
    rundown_file = tmp / "rundown-clock.json"
    rundown.save(rundown_file)
    day_start = rundown.day_start
    load = os.getloadavg()
    print(f"clock discipline, {seconds:.0f} s per case, load average {load[0]:.2f} at start")

    # Cold start, then SIGKILL and a cold restart.
    rx = Receiver()
    began = time.monotonic()
    proc = launch_run(rundown_file, tmp, rx.port, 600)
    first = first_index(rx, began)
    time.sleep(max(0.0, rx.arrivals[first] + seconds - time.monotonic()))
    proc.kill()
    proc.wait()
    killed = time.monotonic()
    end = len(rx.arrivals)
    clock_case("cold start", rx, first, end, day_start, ("launch", began))
    proc = launch_run(rundown_file, tmp, rx.port, seconds + 5)
    second = first_index(rx, killed)
    proc.wait(seconds + 120)
    time.sleep(0.3)
    rx.close()
    clock_case(
        "restart after SIGKILL (cold)", rx, second, len(rx.arrivals), day_start, ("kill", killed)
    )

    # Warm standby: the supervisor's preloaded process takes over after a SIGKILL.
    rx = Receiver()
    env = tuple((k, v) for k, v in env_for(tmp).items() if k.startswith("SKYCLASS_"))
    argv = (
        *standby_argv(CHANNEL),
        *("--rundown", str(rundown_file), "--output", f"udp://127.0.0.1:{rx.port}"),
    )
    sup = Supervisor(
        [
            ChildSpec(
                channel_id=CHANNEL,
                argv=argv,
                env=env,
                standby=True,
                log_path=tmp / "standby.log",
            )
        ],
        zone=rundown.zone,
        pid_dir=tmp / "run",
    )
    try:
        began = time.monotonic()
        sup.start()
        first_index(rx, began)
        time.sleep(5.0)  # on air for a while
        while not sup.standby_warm(CHANNEL):  # ... and the standby has done its imports
            sup.poll()
            time.sleep(0.05)
        victim = sup.pid(CHANNEL)
        assert victim is not None
        os.kill(victim, signal.SIGKILL)
        killed = time.monotonic()
        while sup.pid(CHANNEL) in (None, victim) and time.monotonic() - killed < 10:
            sup.poll()
            time.sleep(0.01)
        back = first_index(rx, killed + 0.02)
        while time.monotonic() < rx.arrivals[back] + seconds:
            sup.poll()
            time.sleep(0.1)
    finally:
        sup.stop()
        time.sleep(0.3)
        rx.close()
    stop = rx.arrivals[back] + seconds
    last = next((k for k, t in enumerate(rx.arrivals) if t > stop), len(rx.arrivals))
    clock_case("warm-standby takeover", rx, back, last, day_start, ("kill", killed))

    # A 200 ms stall, 3 s into a run: absorbed in the next break before a fixed lesson.
    rx = Receiver()
    var = tmp / "stall"
    began = time.monotonic()
    proc = subprocess.Popen(
        [
            PY,
            "-c",
            CLI,
            *("playout", "run", "--channel", CHANNEL, "--rundown", str(rundown_file)),
            # Long enough for the next fixed lesson after the stall to air.
            *("--output", f"udp://127.0.0.1:{rx.port}", "--duration", str(seconds + 30)),
        ],
        env=env_for(var),
        stderr=subprocess.DEVNULL,
    )
    first = first_index(rx, began)
    time.sleep(max(0.0, rx.arrivals[first] + 3.0 - time.monotonic()))
    stalled_wall = datetime.now(UTC)
    frozen = process_tree(proc.pid)  # with its pacing process: the sender stalls
    for pid in reversed(frozen):
        os.kill(pid, signal.SIGSTOP)
    time.sleep(0.2)
    for pid in frozen:
        os.kill(pid, signal.SIGCONT)
    proc.wait(seconds + 120)
    time.sleep(0.3)
    rx.close()
    clock_case("injected 200 ms stall", rx, first, len(rx.arrivals), day_start, ("launch", began))
    stall_frame = rundown.frame_at(stalled_wall)
    records = AsRunLedger(journal_path(var / "var", CHANNEL)).records()
    after = [r for r in records if r.scheduled_frame > stall_frame + 25 * 7]
    lesson = next((r for r in after if r.event_type == "lesson"), None)
    cut = next(
        (r for r in reversed(records) if lesson and r.scheduled_frame < lesson.scheduled_frame),
        None,
    )
    if lesson is None or cut is None:
        print("    (the run ended before the next fixed lesson: no as-run to show)")
        return
    off = lesson.actual_frame - lesson.scheduled_frame
    print(
        f"    next fixed lesson {lesson.event_id}: {off:+d} frames from its rundown frame; "
        f"the break before it ({cut.event_id}): {cut.outcome.value}, "
        f"{cut.duration_frames}/{cut.scheduled_frames} frames, {cut.reason!r}"
    )


# -- 4: capacity ----------------------------------------------------------------------

#: A datagram is late when it arrives more than this after its due time. Due time: its
#: byte position at the mux rate, anchored at the earliest PCR-carrying datagram (those
#: leave exactly on their deadline); the pacer's own "late send" threshold
#: (catch-up window / 10).
LATE_TOLERANCE = 0.005
CAPACITY_STEPS = (1, 8, 16, 24, 32, 40, 48, 56, 64)
CHANNELS_PER_RECEIVER = 10  # one receiving process keeps up with this many easily
START_GROUP = 4  # channels launched together
SO_TIMESTAMPNS = 35  # Linux; Python does not export it
SO_RXQ_OVFL = 40  # Linux: the socket's kernel drop count with every datagram
SO_RCVBUFFORCE = 33  # root: past net.core.rmem_max
_TIMESPEC = struct.Struct("@qq")


@dataclass(frozen=True)
class ChannelResult:
    datagrams: int
    p1_errors: int
    odd_sizes: int  # datagrams other than 1316 B
    lost: int  # datagrams the sender never sent (PCR byte position against bytes received)
    harness_drops: int  # datagrams the receiving socket dropped (the harness, not playout)
    late: int  # datagrams later than LATE_TOLERANCE
    late_own: int  # of those, the ones a machine stall (the probe's) does not explain
    max_late_ms: float
    max_late_own_ms: float  # the worst lateness left once machine stalls are taken off
    worst_own_at_ns: int  # arrival of the datagram with that lateness (CLOCK_REALTIME)
    jitter_ms: float  # arrival − PCR, p99 − p1, from the window's second second
    df_ms: float  # RFC 4445 MDI delay factor, worst 1 s interval


def unexplained_lateness(
    arrival_ns: np.ndarray, lateness_s: np.ndarray, stalls: np.ndarray
) -> np.ndarray:
    """Each datagram's lateness minus the part of [due, arrival] the machine spent stalled.

    ``stalls``: (n, 2) int64 ns, [from, to) intervals when the probe, a real-time process
    that wanted to run, could not: nothing on the machine ran then, playout included.
    """
    if len(stalls) == 0 or len(arrival_ns) == 0:
        return lateness_s
    due = arrival_ns - (lateness_s * 1e9).astype(np.int64)
    covered = np.zeros(len(arrival_ns), np.int64)
    for lo, hi in stalls.tolist():
        overlap = np.minimum(arrival_ns, hi) - np.maximum(due, lo)
        covered += np.clip(overlap, 0, None)
    result: np.ndarray = lateness_s - covered / 1e9
    return result


def analyse_channel(
    stamps: list[int],
    data: list[bytes],
    drops: int,
    rate: int,
    stalls: np.ndarray | None = None,
) -> ChannelResult:
    """One channel's datagrams with their kernel arrival times (ns); ``stalls``: the
    machine's (``stall_probe``), to tell its lateness from playout's."""
    monitor = TsMonitor()
    for d in data:
        monitor.feed(d)
    report = monitor.report()
    p1 = sum(r.count for r in report.errors if r.priority == 1)
    odd = sum(1 for d in data if len(d) != UDP_PAYLOAD)
    if len(data) < 2:
        return ChannelResult(len(data), p1, odd, 0, drops, 0, 0, 0.0, 0.0, 0, 0.0, 0.0)
    arrival = (np.asarray(stamps, np.int64) - stamps[0]) / 1e9
    sizes = np.fromiter((len(d) for d in data), np.int64, len(data))
    start = np.concatenate(([0], np.cumsum(sizes)[:-1]))  # bytes received before each
    packets = packet_array(b"".join(data))
    flags = pcr_flag_array(packets)
    pcr_at = np.flatnonzero(flags) * PACKET_SIZE  # byte position among the received
    pcr_dgram = np.searchsorted(start, pcr_at, side="right") - 1
    pcr_s = np.unwrap(pcr_array(packets[flags]).astype(np.float64), period=float(PCR_MODULUS))
    pcr_s = (pcr_s - pcr_s[0]) / PCR_HZ
    # CBR: a PCR's byte position is its value at the mux rate; fewer bytes received = lost.
    short = (pcr_s[-1] * rate / 8 + pcr_at[0]) - pcr_at[-1]
    lost = max(0, round(short / UDP_PAYLOAD))
    # Due time of each datagram = its byte position at the mux rate + one constant.
    dev = arrival - start * 8 / rate
    due0 = float(np.min(dev[pcr_dgram]))
    lateness = dev - due0
    late = int(np.count_nonzero(lateness > LATE_TOLERANCE))
    own = (
        lateness
        if stalls is None
        else unexplained_lateness(np.asarray(stamps, np.int64), lateness, stalls)
    )
    late_own = int(np.count_nonzero(own > LATE_TOLERANCE))
    pcr_dev = arrival[pcr_dgram] - pcr_s
    steady = pcr_s >= 1.0
    jit = float(np.percentile(pcr_dev[steady], 99) - np.percentile(pcr_dev[steady], 1)) * 1000
    # MDI DF: the spread of the virtual buffer (bytes in − bytes drained at the rate) per second.
    vb = (start + sizes) * 8 / rate - arrival
    second = arrival.astype(np.int64)
    df = max(float(np.ptp(vb[second == s])) for s in np.unique(second).tolist())
    return ChannelResult(
        len(data),
        p1,
        odd,
        lost,
        drops,
        late,
        late_own,
        float(lateness.max()) * 1000,
        float(own.max()) * 1000,
        int(stamps[int(np.argmax(own))]),
        jit,
        df * 1000,
    )


def receiver_process(
    count: int, ports: Connection, stop: MpEvent, on_air: Any, first: int, rate: int, window: Any
) -> None:
    """Receives `count` channels (kernel arrival stamps), then analyses them; child process."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    socks = []
    for _ in range(count):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 32 << 20)
        except OSError:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32 << 20)
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        sock.setsockopt(socket.SOL_SOCKET, SO_RXQ_OVFL, 1)
        sock.bind(("127.0.0.1", 0))
        sock.setblocking(False)
        socks.append(sock)
    ports.send([s.getsockname()[1] for s in socks])
    stamps: list[list[int]] = [[] for _ in socks]
    data: list[list[bytes]] = [[] for _ in socks]
    drops = [0] * count
    selector = selectors.DefaultSelector()
    for k, sock in enumerate(socks):
        selector.register(sock, selectors.EVENT_READ, k)
    space = socket.CMSG_SPACE(_TIMESPEC.size) + socket.CMSG_SPACE(4)
    while not stop.is_set():
        for key, _ in selector.select(0.1):
            k = key.data
            recvmsg = socks[k].recvmsg
            if not stamps[k]:
                on_air[first + k] = 1
            while True:
                try:
                    d, ancillary, _, _ = recvmsg(2048, space)
                except BlockingIOError:
                    break
                for level, kind, value in ancillary:
                    if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                        s, ns = _TIMESPEC.unpack(value)
                        stamps[k].append(s * 1_000_000_000 + ns)
                    elif level == socket.SOL_SOCKET and kind == SO_RXQ_OVFL:
                        drops[k] = int.from_bytes(value[:4], sys.byteorder)
                data[k].append(d)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    stalls = np.asarray(ports.recv(), np.int64).reshape(-1, 2)  # the probe's, once stopped
    results = []
    for k in range(count):
        skip = bisect.bisect_left(stamps[k], window.value)
        results.append(analyse_channel(stamps[k][skip:], data[k][skip:], drops[k], rate, stalls))
    ports.send((usage.ru_utime + usage.ru_stime, results))


STALL_PROBE_PERIOD_NS = 1_000_000
STALL_MIN_NS = 1_000_000  # a wake-up later than this is a stall (timer slack is ~50 µs)


def stall_probe(conn: Connection, stop: MpEvent) -> None:
    """Sleeps 1 ms at a time at real-time priority (SCHED_FIFO where allowed) and sends
    back every [expected wake-up, actual wake-up) later than STALL_MIN_NS, in
    CLOCK_REALTIME ns like the kernel's arrival stamps; child process.

    A SCHED_FIFO process that sleeps is woken before any ordinary thread: if it is late,
    nothing ran (the hypervisor took the vCPU, or the kernel would not preempt).
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with contextlib.suppress(AttributeError, OSError):
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(50))
    stalls: list[tuple[int, int]] = []
    while not stop.is_set():
        before = time.time_ns()
        time.sleep(STALL_PROBE_PERIOD_NS / 1e9)
        after = time.time_ns()
        if after - before - STALL_PROBE_PERIOD_NS > STALL_MIN_NS:
            stalls.append((before + STALL_PROBE_PERIOD_NS, after))
    conn.send(stalls)


def steal_ms() -> float:
    """The machine's stolen time so far (/proc/stat, all CPUs), in ms."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    return int(fields[8]) * 1000 / os.sysconf("SC_CLK_TCK") if len(fields) > 8 else 0.0


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (``playout run`` paces from a child process)."""
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except FileNotFoundError:
        return [pid]
    return [pid, *(q for child in children for q in process_tree(int(child)))]


def proc_cpu(pid: int) -> float:
    """user + system CPU seconds of a live process (all its threads) and of its live
    children (a tree whose playout forks a pacing process is measured whole)."""
    total = 0.0
    for member in process_tree(pid):
        try:
            fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:  # gone meanwhile
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


@dataclass(frozen=True)
class CapacityStep:
    tree: str
    channels: int
    load: tuple[float, float]  # 1-min load average at start, at the end
    sender_cpu: float  # % of one core, all senders, steady window
    receiver_cpu: float  # % of one core, all receiving processes, same window
    startup_s: float  # launch → every channel on air
    results: list[ChannelResult]
    reanchors: int  # "re-anchored" warnings in the senders' logs (start-up included)
    stalls_ms: list[float]  # the machine's stalls in the window (stall probe)
    steal_ms: float  # CPU time the hypervisor took in the window, all vCPUs

    @property
    def ok(self) -> bool:
        r = self.results
        return bool(r) and all(
            c.datagrams > 0 and c.p1_errors == 0 and c.lost == 0 and c.late_own == 0 for c in r
        )


def capacity_step(
    rundown_file: Path, tmp: Path, tree: Path, n: int, seconds: float, rate: int
) -> CapacityStep:
    """n `playout run` processes of `tree`'s code on air together; CPU over `seconds` once
    all are on air (after 2 s more), every datagram of that window checked."""
    ctx = mp.get_context("fork")
    stop = ctx.Event()
    probe_stop = ctx.Event()
    probe_conn, probe_end = ctx.Pipe()
    probe = ctx.Process(target=stall_probe, args=(probe_end, probe_stop))
    on_air = ctx.Array("b", n, lock=False)
    window = ctx.Value("q", 0, lock=False)
    receivers = []
    ports: list[int] = []
    for first in range(0, n, CHANNELS_PER_RECEIVER):
        count = min(CHANNELS_PER_RECEIVER, n - first)
        ours, theirs = ctx.Pipe()
        proc = ctx.Process(
            target=receiver_process, args=(count, theirs, stop, on_air, first, rate, window)
        )
        proc.start()
        ports += ours.recv()
        receivers.append((proc, ours))
    load0 = os.getloadavg()[0]
    logs = [tmp / f"sender-{n}-{k}.log" for k in range(n)]
    launched = time.monotonic()
    senders: list[subprocess.Popen[bytes]] = []
    try:
        # A few at a time, each group on air before the next starts: the steady state is
        # measured, not a start-up storm (a process's start is ~1.4 s of CPU).
        for first in range(0, n, START_GROUP):
            group = range(first, min(n, first + START_GROUP))
            for k in group:
                senders.append(
                    subprocess.Popen(
                        [
                            PY,
                            "-c",
                            CLI,
                            *("playout", "run", "--channel", CHANNEL),
                            *("--rundown", str(rundown_file), "--duration", "3600"),
                            *("--output", f"udp://127.0.0.1:{ports[k]}"),
                        ],
                        cwd=tree,  # `-c` puts the cwd first on sys.path: that tree's code
                        env=env_for(tmp),
                        stderr=logs[k].open("wb"),
                    )
                )
            while not all(on_air[k] for k in group) and time.monotonic() - launched < 300:
                time.sleep(0.1)
        startup = time.monotonic() - launched
        time.sleep(2.0)
        probe.start()
        time.sleep(0.1)
        window.value = time.time_ns()  # P1, loss, lateness and jitter from here
        pids = [p.pid for p in senders] + [p.pid for p, _ in receivers if p.pid]
        cpu0 = [proc_cpu(pid) for pid in pids]
        steal0 = steal_ms()
        t0 = time.monotonic()
        time.sleep(seconds)
        cpu1 = [proc_cpu(pid) for pid in pids]
        stolen = steal_ms() - steal0
        wall = time.monotonic() - t0
        stop.set()
        probe_stop.set()
    finally:
        for sender in senders:
            sender.terminate()
        for sender in senders:
            try:
                sender.wait(20)
            except subprocess.TimeoutExpired:
                sender.kill()
                sender.wait()
    used = [(b - a) / wall * 100 for a, b in zip(cpu0, cpu1, strict=True)]
    stalls = [(a, b) for a, b in probe_conn.recv() if b > window.value]
    probe.join(10)
    results: list[ChannelResult] = []
    for _, conn in receivers:
        conn.send(stalls)
    for proc, conn in receivers:
        _, part = conn.recv()
        results += part
        proc.join(30)
    reanchors = sum(log.read_text(errors="replace").count("re-anchored") for log in logs)
    return CapacityStep(
        tree=tree.name,
        channels=n,
        load=(load0, os.getloadavg()[0]),
        sender_cpu=sum(used[:n]),
        receiver_cpu=sum(used[n:]),
        startup_s=startup,
        results=results,
        reanchors=reanchors,
        stalls_ms=[(b - a) / 1e6 for a, b in stalls],
        steal_ms=stolen,
    )


def print_step(step: CapacityStep) -> None:
    r = step.results
    n = step.channels
    print(
        f"capacity {step.tree} N={n}: load {step.load[0]:.1f}→{step.load[1]:.1f}, "
        f"on air in {step.startup_s:.1f} s; senders {step.sender_cpu:.0f} % of a core "
        f"({step.sender_cpu / n:.2f} %/channel), receivers {step.receiver_cpu:.0f} %; "
        f"P1 errors {sum(c.p1_errors for c in r)}, lost {sum(c.lost for c in r)} "
        f"(harness drops {sum(c.harness_drops for c in r)}), "
        f"late >{LATE_TOLERANCE * 1000:.0f} ms {sum(c.late for c in r)} "
        f"(worst {max(c.max_late_ms for c in r):.1f} ms; "
        f"re-anchors incl. start-up {step.reanchors}), of them playout's own "
        f"{sum(c.late_own for c in r)} (worst {max(c.max_late_own_ms for c in r):.1f} ms); "
        f"machine stalls {len(step.stalls_ms)} (worst "
        f"{max(step.stalls_ms, default=0.0):.1f} ms), steal {step.steal_ms:.0f} ms; "
        f"jitter p99−p1 median {np.median([c.jitter_ms for c in r]):.2f} / worst "
        f"{max(c.jitter_ms for c in r):.2f} ms, MDI DF worst {max(c.df_ms for c in r):.1f} ms, "
        f"{sum(c.datagrams for c in r)} datagrams ({sum(c.odd_sizes for c in r)} not 1316 B): "
        f"{'ok' if step.ok else 'FAILED'}",
        flush=True,
    )
    own = [c for c in r if c.late_own]
    if own:  # when each channel's worst came: all at once = the machine, not a channel
        first = min(c.worst_own_at_ns for c in own)
        print(
            "    playout's own late per channel (count @ worst, s into the window): "
            + ", ".join(
                f"{c.late_own} @ {(c.worst_own_at_ns - first) / 1e9:.3f}"
                for c in sorted(own, key=lambda c: c.worst_own_at_ns)
            ),
            flush=True,
        )


def capacity(
    rundown_file: Path,
    tmp: Path,
    trees: list[Path],
    steps: list[int],
    seconds: float,
    *,
    keep_going: bool = False,
) -> None:
    """Section 4: each N in turn for every tree (side by side), until a tree fails
    (``keep_going``: all steps anyway, for CPU figures on a machine too loaded to pass)."""
    print(f"capacity: steps {steps}, {seconds:.0f} s each once all are on air, trees {trees}")
    rate = load_registry(SAMPLE_CHANNELS_FILE).get(CHANNEL).mux_rate
    alive = list(trees)
    done: dict[tuple[str, int], CapacityStep] = {}
    for n in steps:
        for tree in alive:
            step = capacity_step(rundown_file, tmp, tree, n, seconds, rate)
            print_step(step)
            done[(tree.name, n)] = step
        alive = [t for t in alive if keep_going or done[(t.name, n)].ok]
        if not alive:
            break
    for tree in trees:
        passed = 0
        for n in steps:  # the largest N with every N up to it passing
            result = done.get((tree.name, n))
            if result is None or not result.ok:
                break
            passed = n
        print(f"capacity {tree.name}: {passed} HD channel(s) pass")
    first = trees[0].name
    for tree in trees[1:]:  # CPU per channel against the first tree, at the same N
        for n in steps:
            if (first, n) in done and (tree.name, n) in done:
                ratio = done[(tree.name, n)].sender_cpu / max(done[(first, n)].sender_cpu, 0.01)
                print(f"capacity N={n}: sender CPU {tree.name}/{first} = {ratio:.2f}")


def capacity_of(args: argparse.Namespace, rundown_file: Path, tmp: Path) -> None:
    trees = [Path(t).resolve() for t in args.tree] or [Path(__file__).resolve().parents[1]]
    steps = [n for n in CAPACITY_STEPS if n <= args.max_channels] or [args.max_channels]
    capacity(rundown_file, tmp, trees, steps, args.capacity_seconds, keep_going=args.keep_going)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="real-time run length")
    parser.add_argument(
        "--max-channels", type=int, default=40, help=f"capacity steps {CAPACITY_STEPS} up to this"
    )
    parser.add_argument(
        "--capacity-seconds", type=float, default=15.0, help="per capacity step, all on air"
    )
    parser.add_argument(
        "--tree",
        action="append",
        default=[],
        help="capacity: run `playout run` from this source tree (repeat: side by side, "
        "e.g. a `git archive` of the baseline commit, then this checkout); default: this one",
    )
    parser.add_argument("--fast-hours", type=float, default=24.0, help="0 skips fast mode")
    parser.add_argument(
        "--clock-seconds", type=float, default=31.0, help="per clock case (0 skips them)"
    )
    parser.add_argument(
        "--keep-going", action="store_true", help="capacity: every step even after a failure"
    )
    parser.add_argument("--only", choices=["all", "clock", "capacity"], default="all")
    args = parser.parse_args()
    print(f"machine: {platform.node()} {os.cpu_count()} cores, Python {platform.python_version()}")
    with tempfile.TemporaryDirectory(prefix="skyclass-bench-playout-") as tmpdir:
        tmp = Path(tmpdir)
        t = time.monotonic()
        clip = make_hd_clip(tmp / "hd20.ts")
        print(f"HD clip (20 s, 1080, 8 Mb/s): {time.monotonic() - t:.1f} s to encode")
        rundown_file = tmp / "rundown.json"
        hd_rundown(clip).save(rundown_file)

        # 7: clock discipline
        if args.clock_seconds > 0 and args.only != "capacity":
            clock_discipline(clip, tmp, args.clock_seconds)
        if args.only == "clock":
            return

        if args.only == "capacity":  # 4 alone
            capacity_of(args, rundown_file, tmp)
            return

        # 2 + 3: one channel, CPU and jitter
        short_cpu, _, _ = run_channels(rundown_file, tmp, 1, 2.0)
        cpu, (rx,), _ = run_channels(rundown_file, tmp, 1, args.seconds)
        per_core = (cpu[0] - short_cpu[0]) / (args.seconds - 2.0) * 100
        ok, p1, odd = check_stream(rx)
        raw, detr, n_pcr = jitter(rx)
        print(
            f"one HD channel, 10 Mb/s, {args.seconds:.0f} s: CPU {cpu[0]:.2f} s total, "
            f"start-up {short_cpu[0]:.2f} s, steady {per_core:.1f} % of a core; "
            f"{len(rx.data)} datagrams ({odd} not 1316 B), P1 {'ok' if ok else p1}"
        )
        print(
            f"pacing jitter (arrival − PCR, {n_pcr} PCRs): p99−p1 {raw:.2f} ms raw, "
            f"{detr:.2f} ms detrended"
        )

        # 5: baseline
        b_cpu, b_wall, b_dgrams = baseline(clip, tmp, args.seconds)
        b_per_core = b_cpu / b_wall * 100
        print(
            f"baseline re-encode per clip (ffmpeg decoder → persistent x264 ultrafast): "
            f"{b_per_core:.0f} % of a core over {b_wall:.1f} s ({b_dgrams} datagrams); "
            f"ratio {b_per_core / max(per_core, 0.01):.1f}× ours"
        )

        # 4: capacity
        capacity_of(args, rundown_file, tmp)

        # 6: fast mode
        if args.fast_hours > 0:
            fast_file = tmp / "rundown-day.json"
            day = hd_rundown(clip, hours=args.fast_hours)
            day = replace(day, broadcast_date=day.broadcast_date)
            day.save(fast_file)
            t = time.monotonic()
            result = subprocess.run(
                [
                    PY,
                    "-c",
                    CLI,
                    *("playout", "run", "--channel", CHANNEL, "--rundown", str(fast_file)),
                    *("--start", day.wall_clock(0).isoformat(), "--fast"),
                    *("--duration", str(args.fast_hours * 3600), "--output", "check:"),
                ],
                env=env_for(tmp),
                capture_output=True,
                text=True,
            )
            took = time.monotonic() - t
            print(
                f"fast mode, {args.fast_hours:g} h HD 10 Mb/s to check: {took:.0f} s "
                f"({args.fast_hours * 3600 / took:.0f}× real time), exit {result.returncode}: "
                f"{result.stdout.strip().splitlines()[:1]}"
            )


if __name__ == "__main__":
    main()
