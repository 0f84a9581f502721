"""Off-air compliance benchmark: recorder and live monitor cost per channel, audit speed.

    .venv/bin/python bench/offair.py [--seconds S]

1. An HD-like CBR transport stream (testsrc2 1920x1080 H.264 CBR 8 Mb/s, MP2 192k,
   muxed at 10 Mb/s by the imageio-ffmpeg binary), made once in a temporary directory.
2. `Recorder.feed` with every 1316-byte datagram (RTP-wrapped, as the sample channels
   send) at its real-time arrival: CPU seconds per second of stream, i.e. the share of
   one core a recorded channel costs (the socket receive itself is not included).
3. `LiveMonitor.feed` likewise (TR 101 290 + PCR arrival clock): share of a core.
4. The audit passes over the recorded hour file: the clock/cue scan, the TR 101 290
   check, the PyAV decode + BS.1770 loudness; as multiples of real time, and what an
   hour of one channel therefore takes.

CPU time (process_time) is measured, so other load on a shared machine does not lower
the figures as it lowers wall-clock rates.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import imageio_ffmpeg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from compliance.livemonitor import LiveMonitor
from compliance.offair_loudness import AiredSpan, measure_offair_loudness
from compliance.receiver import parse_source
from compliance.recording import Recorder, RecorderConfig, RecordingStore
from compliance.timemap import RecordingTimes
from mpegts import SCTE35_STREAM_TYPE, UDP_PAYLOAD
from mpegts.monitor import check_file

FFMPEG = imageio_ffmpeg.get_ffmpeg_exe()
MUX_RATE = 10_000_000


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
            *("-f", "mpegts", "-muxrate", str(MUX_RATE), str(path)),
        ],
        check=True,
        timeout=600,
    )
    return path.read_bytes()


def datagrams(data: bytes) -> list[bytes]:
    out = []
    for n in range(len(data) // UDP_PAYLOAD):
        header = bytes((0x80, 33)) + (n & 0xFFFF).to_bytes(2, "big") + bytes(8)
        out.append(header + data[n * UDP_PAYLOAD : (n + 1) * UDP_PAYLOAD])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=60, help="stream length (default 60)")
    args = parser.parse_args()
    print(f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        data = make_stream(root / "hd.ts", args.seconds)
        grams = datagrams(data)
        seconds = len(data) * 8 / MUX_RATE
        period = UDP_PAYLOAD * 8 / MUX_RATE
        start = datetime(2026, 9, 1, 2, 0, 1, tzinfo=UTC)  # 10:00:01 Beijing
        stamps = [
            datetime.fromtimestamp(start.timestamp() + n * period, UTC) for n in range(len(grams))
        ]
        print(f"stream: {seconds:.0f} s at {MUX_RATE / 1e6:.0f} Mb/s, {len(grams)} datagrams")

        config = RecorderConfig(root=root / "rec", zone=ZoneInfo("Asia/Shanghai"))
        recorder = Recorder("bench.skyclass.cn", parse_source("udp://127.0.0.1:5999"), config)
        cpu = time.process_time()
        for gram, at in zip(grams, stamps, strict=True):
            recorder.feed(gram, at)
        recorder.close(stamps[-1])
        used = time.process_time() - cpu
        print(f"recorder: {used / seconds * 100:.2f} % of a core per channel "
              f"({len(grams) / used:,.0f} datagrams/s of CPU)")  # fmt: skip

        monitor = LiveMonitor("bench", interval_s=60)
        cpu = time.process_time()
        for n, (gram, at) in enumerate(zip(grams, stamps, strict=True)):
            monitor.feed_datagram(memoryview(gram), n * period, at)
        monitor.finish()
        used = time.process_time() - cpu
        print(f"live monitor: {used / seconds * 100:.2f} % of a core per channel")

        (path,) = RecordingStore(root / "rec", "bench.skyclass.cn").files()
        cpu = time.process_time()
        times = RecordingTimes.scan(path, section_stream_types=(SCTE35_STREAM_TYPE,), audio=True)
        scan = time.process_time() - cpu
        cpu = time.process_time()
        check_file(path)
        check = time.process_time() - cpu
        span = AiredSpan(
            event_id="E", event_type="lesson", asset_id="a", start=start, end=stamps[-1]
        )
        cpu = time.process_time()
        measure_offair_loudness([(path, times, False)], [span])
        loud = time.process_time() - cpu
        total = scan + check + loud
        for name, used in (("clock/cue scan", scan), ("TR 101 290", check), ("loudness", loud)):
            print(f"audit {name}: {seconds / used:,.0f}x real time")
        print(f"audit of one recorded hour: {3600 * total / seconds:.0f} s of one core")


if __name__ == "__main__":
    main()
