"""Crash-loop benchmark: SIGKILL a channel under `skyclass playout up`, time each outage.

    .venv/bin/python bench/crashloop.py [--kills 10] [--spacing 30] [--channel g01.skyclass.cn]

Issue 10 acceptance: 10 SIGKILLs spaced 30 s apart give 10 outages, each under 2 s.

1. An HD house clip (20 s 1080i25 H.264 8 Mb/s CBR, MP2; bench/playout.py's recipe)
   and back-to-back lessons of it around now, as the channel's rundown for today in
   a temporary var/.
2. The real station: `skyclass playout up --channel ID --no-compile` (warm standby on),
   with a channels.toml whose only output for the channel is UDP to a loopback
   receiver (every datagram timestamped on arrival).
3. Every ``spacing`` seconds: SIGKILL the pid in var/run/playout-ID.pid. The outage
   is from the kill to the first datagram after the gap. Load average is printed at
   the start and the end (the machine is shared).

Everything runs in a temporary directory and sends only to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import imageio_ffmpeg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from channels import SAMPLE_CHANNELS_FILE, load_registry
from epg.compiler import service_of
from epg.rundown import EventType, MediaRef, Rundown, RundownEvent, StartMode, rundown_path

FFMPEG = imageio_ffmpeg.get_ffmpeg_exe()
CLIP_SECONDS = 20
CLIP_FRAMES = CLIP_SECONDS * 25
BEIJING = timedelta(hours=8)
CLI = "from skyclass.cli import run; run()"


def make_hd_clip(path: Path) -> Path:
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


def todays_rundown(channel_id: str, clip: Path, minutes: int) -> Rundown:
    """Back-to-back lessons of the clip from a little before now, for ``minutes``."""
    registry = load_registry(SAMPLE_CHANNELS_FILE)
    channel = registry.get(channel_id)
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
    frame_now = int((now - day_start).total_seconds() * 25)
    first = max(0, frame_now - CLIP_FRAMES) // CLIP_FRAMES * CLIP_FRAMES
    events = tuple(
        RundownEvent(
            event_id=f"L{n}",
            eit_event_id=1 + n,
            type=EventType.LESSON,
            start_mode=StartMode.SEQUENTIAL,
            hard=False,
            start_frame=first + n * CLIP_FRAMES,
            duration_frames=CLIP_FRAMES,
            media=media,
        )
        for n in range(minutes * 60 // CLIP_SECONDS)
    )
    return Rundown(
        service=service_of(channel, registry),
        broadcast_date=day,
        day_start=day_start,
        schedule_version=1,
        compiled_at=now,
        events=events,
    )


def channels_file(tmp: Path, channel_id: str, port: int) -> Path:
    """The sample channels.toml, the channel's outputs replaced by UDP to our receiver."""
    text = SAMPLE_CHANNELS_FILE.read_text(encoding="utf-8")
    start = text.index(f'id = "{channel_id}"')
    end = text.find("[[channel]]", start)
    end = len(text) if end < 0 else end
    block = re.sub(
        r"\[\[channel\.output\]\]\nkind = \"[^\"]*\"\nurl = \"[^\"]*\"\n\n?", "", text[start:end]
    )
    output = f'[[channel.output]]\nkind = "satellite"\nurl = "udp://127.0.0.1:{port}"\n\n'
    block = block.rstrip("\n") + "\n\n" + output
    path = tmp / "channels.toml"
    path.write_text(text[:start] + block + text[end:], encoding="utf-8")
    return path


class Receiver:
    """Loopback receiver: the arrival time (monotonic) of every datagram."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 << 20)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.port: int = self.sock.getsockname()[1]
        self.last = 0.0
        self.gaps: list[tuple[float, float]] = []  # (last datagram before, first after)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.sock.recv(2048)
            except TimeoutError:
                continue
            now = time.monotonic()
            if self.last and now - self.last > 0.1:
                self.gaps.append((self.last, now))
            self.last = now

    def first_after(self, t: float, timeout: float) -> float | None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for _, after in reversed(self.gaps):
                if after > t:
                    return after
            time.sleep(0.01)
        return None

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--spacing", type=float, default=30.0, help="seconds between kills")
    parser.add_argument("--channel", default="g01.skyclass.cn")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="crashloop-") as name:
        tmp = Path(name)
        clip = make_hd_clip(tmp / "hd20.ts")
        minutes = int(args.kills * args.spacing / 60) + 5
        rundown = todays_rundown(args.channel, clip, minutes)
        rundown.save(rundown_path(tmp / "var" / "rundowns", args.channel, rundown.broadcast_date))
        receiver = Receiver()
        env = {
            **os.environ,
            "SKYCLASS_VAR_DIR": str(tmp / "var"),
            "SKYCLASS_DATABASE_URL": f"sqlite:///{tmp / 'db.sqlite'}",
            "SKYCLASS_MEDIA_ROOT": str(tmp / "media"),
            "SKYCLASS_CHANNELS_FILE": str(channels_file(tmp, args.channel, receiver.port)),
        }
        env.pop("SKYCLASS_CONFIG", None)
        print(f"load average at start: {load()}  ({os.cpu_count()} CPUs)")
        up = subprocess.Popen(
            [sys.executable, "-c", CLI, "playout", "up", "--channel", args.channel, "--no-compile"],
            env=env,
            cwd=tmp,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        pid_file = tmp / "var" / "run" / f"playout-{args.channel}.pid"
        outages: list[float] = []
        try:
            deadline = time.monotonic() + 60
            while not receiver.last and time.monotonic() < deadline:
                time.sleep(0.1)
            if not receiver.last:
                print("never on air")
                return 1
            time.sleep(min(args.spacing, 10.0))  # the first standby finishes its imports
            for n in range(1, args.kills + 1):
                victim = int(pid_file.read_text().strip())
                os.kill(victim, signal.SIGKILL)
                killed = time.monotonic()
                back = receiver.first_after(killed, 30.0)
                outage = float("nan") if back is None else back - killed
                outages.append(outage)
                print(f"kill {n:2d} (pid {victim}): off air {outage:.2f} s   load {load()}")
                time.sleep(max(0.0, killed + args.spacing - time.monotonic()))
        finally:
            up.send_signal(signal.SIGTERM)
            try:
                up.wait(30)
            except subprocess.TimeoutExpired:
                up.kill()
            receiver.close()
        worst = max(outages)
        print(
            f"{len(outages)} kills {args.spacing:g} s apart: outages "
            f"{', '.join(f'{o:.2f}' for o in outages)} s; worst {worst:.2f} s "
            f"({'all' if worst < 2.0 else 'NOT all'} under 2 s); load at end {load()}"
        )
        return 0 if worst < 2.0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
