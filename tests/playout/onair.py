"""Helpers for real-time channel tests: the channel's process, its config, what it sent.

The receiver and today's rundown come from test_recovery (a loopback UDP socket that
timestamps every datagram; ten minutes of 4 s lessons around now).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from test_recovery import CHANNEL, Receiver

from channels import SAMPLE_CHANNELS_FILE
from mpegts import PACKET_SIZE
from mpegts.packet import packet_pid, payload_offset
from mpegts.pes import parse_pes_header
from playout.engine import ORIGIN

CLI = "from skyclass.cli import run; run()"
FRAME_TICKS = 3600
VIDEO_PID = 256  # the engine's video PID (mpegts.monitor: "PCR PID 256")


def playout_env(tmp_path: Path, channels_file: Path | None = None) -> dict[str, str]:
    """The environment of a channel process: its own var/ and database under tmp_path."""
    env = {
        **os.environ,
        "SKYCLASS_VAR_DIR": str(tmp_path / "var"),
        "SKYCLASS_DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite'}",
        "SKYCLASS_MEDIA_ROOT": str(tmp_path / "media"),
    }
    env.pop("SKYCLASS_CONFIG", None)
    if channels_file is not None:
        env["SKYCLASS_CHANNELS_FILE"] = str(channels_file)
    return env


def channels_sending_to(tmp_path: Path, receiver: Receiver) -> Path:
    """The sample channels.toml with the test channel's outputs replaced by our receiver."""
    text = SAMPLE_CHANNELS_FILE.read_text(encoding="utf-8")
    start = text.index(f'id = "{CHANNEL}"')
    end = text.find("[[channel]]", start)
    end = len(text) if end < 0 else end
    block = re.sub(
        r"\[\[channel\.output\]\]\nkind = \"[^\"]*\"\nurl = \"[^\"]*\"\n\n?",
        "",
        text[start:end],
    )
    block = block.rstrip("\n") + (
        f'\n\n[[channel.output]]\nkind = "satellite"\nurl = "udp://127.0.0.1:{receiver.port}"\n\n'
    )
    path = tmp_path / "channels.toml"
    path.write_text(text[:start] + block + text[end:], encoding="utf-8")
    return path


def spawn(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.Popen[bytes]:
    """`skyclass ARGS` as its own process (stdout and stderr kept for the failure message)."""
    return subprocess.Popen(
        [sys.executable, "-c", CLI, *args],
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def last_video_frame(datagrams: list[tuple[float, float, bytes]]) -> int:
    """The timeline frame of the last picture whose PES header was sent (highest PTS)."""
    best: int | None = None
    for _, _, data in datagrams:
        for at in range(0, len(data) - PACKET_SIZE + 1, PACKET_SIZE):
            if packet_pid(data, at) != VIDEO_PID or not data[at + 1] & 0x40:  # PUSI
                continue
            header = parse_pes_header(data[at + payload_offset(data, at) : at + PACKET_SIZE])
            if header is None or header.pts is None:
                continue
            frame = ((header.pts - ORIGIN) % (1 << 33)) // FRAME_TICKS
            best = frame if best is None else max(best, frame)
    assert best is not None, "no video PES header received"
    return best
