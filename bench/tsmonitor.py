"""MPEG-TS benchmark: TR 101 290 monitor throughput and CRC-32/MPEG-2 speed, on one core.

    .venv/bin/python bench/tsmonitor.py [--seconds S] [--repeat N]

1. An HD-like CBR transport stream: testsrc2 1920x1080 H.264 CBR 8 Mb/s (closed
   25-frame GOPs) + MP2 192k, muxed at 10 Mb/s by the imageio-ffmpeg binary, made once
   in a temporary directory.
2. `TsMonitor` fed as 1316-byte datagrams (what the `check:` output and the capacity
   receivers do) and as 1 MiB reads (what `check_file` does): MB/s of process CPU time
   (the monitor is single-threaded, so this is one core, and other load on a shared
   machine does not lower it as it lowers a wall-clock rate), best and median of N runs.
3. `crc32_mpeg2` on 4 KiB sections (the largest EIT section).

The tests assert only a generous floor; the figure lives here (docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import imageio_ffmpeg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mpegts import UDP_PAYLOAD, crc32_mpeg2
from mpegts.monitor import TsMonitor

FFMPEG = imageio_ffmpeg.get_ffmpeg_exe()


def make_stream(path: Path, seconds: int) -> bytes:
    subprocess.run(
        [
            FFMPEG,
            *("-hide_banner", "-loglevel", "error", "-y"),
            *("-f", "lavfi", "-i", f"testsrc2=size=1920x1080:rate=25:duration={seconds}"),
            *("-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={seconds}"),
            *("-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"),
            *("-g", "25", "-keyint_min", "25", "-sc_threshold", "0", "-bf", "0"),
            *("-b:v", "8M", "-minrate", "8M", "-maxrate", "8M", "-bufsize", "4M"),
            *("-x264-params", "nal-hrd=cbr"),
            *("-c:a", "mp2", "-b:a", "192k"),
            *("-f", "mpegts", "-muxrate", "10000000", str(path)),
        ],
        check=True,
        timeout=600,
    )
    return path.read_bytes()


def monitor_rate(data: bytes, piece: int) -> tuple[float, bool]:
    """(MB/s, priority 1 ok) for one pass over `data` fed in `piece`-byte writes."""
    monitor = TsMonitor()
    started = time.process_time()
    for at in range(0, len(data), piece):
        monitor.feed(data[at : at + piece])
    report = monitor.report()
    return len(data) / (time.process_time() - started) / 1e6, report.ok_priority1


def crc_rate(repeat: int) -> float:
    section = bytes(range(256)) * 16  # 4 KiB
    count = 2000
    best = 0.0
    for _ in range(repeat):
        started = time.process_time()
        for _ in range(count):
            crc32_mpeg2(section)
        best = max(best, count * len(section) / (time.process_time() - started) / 1e6)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--seconds", type=int, default=20, help="stream length (default 20)")
    parser.add_argument("--repeat", type=int, default=5, help="runs per figure, best kept")
    args = parser.parse_args()
    print(
        f"MPEG-TS benchmark: {platform.node()} {platform.machine()}, {os.cpu_count()} cpu, "
        f"Python {platform.python_version()}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        data = make_stream(Path(tmp) / "hd.ts", args.seconds)
    print(f"stream: {len(data) / 1e6:.1f} MB ({args.seconds} s at 10 Mb/s)")
    for label, piece in (("1316-byte datagrams", UDP_PAYLOAD), ("1 MiB reads", 1 << 20)):
        runs = [monitor_rate(data, piece) for _ in range(args.repeat)]
        rates = sorted(rate for rate, _ in runs)
        clean = all(ok for _, ok in runs)
        print(
            f"  TsMonitor, {label:<20} best {rates[-1]:7.1f} MB/s  median "
            f"{rates[len(rates) // 2]:7.1f} MB/s  (priority 1 {'ok' if clean else 'FAILED'})"
        )
    print(f"  crc32_mpeg2, 4 KiB sections       {crc_rate(args.repeat):7.1f} MB/s")


if __name__ == "__main__":
    main()
