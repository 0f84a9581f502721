"""The live TS monitor: TR 101 290 counts per interval, the PCR arrival clock offset.

Independent judge for the error tests: the injection itself. Each test breaks a clean
playout stream in one known way (packets of a PID replaced by null packets, PCRs
removed for a stretch, the PAT silenced) and checks that exactly that is reported,
in the interval where it happened, and that the clean stream reports zero. For the
clock offset the judge is the sender: it paces the stream a known 2000 ppm fast.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from offair_media import MIDHOUR, Clips, arrival_times, build_rundown, make_clips, render

from compliance.livemonitor import (
    LiveMonitor,
    MonitorSummary,
    PcrArrivalClock,
    SummaryFile,
    monitor_path,
    read_summaries,
    run_live,
)
from compliance.receiver import parse_source
from epg.rundown import EventType
from mpegts import (
    NULL_PACKET,
    PACKET_SIZE,
    PAT_PID,
    UDP_PAYLOAD,
    packet_array,
    pcr_flag_array,
    pid_array,
)
from mpegts.monitor import TsMonitor

P1_P2 = (1, 2)


@pytest.fixture(scope="session")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Clips:
    return make_clips(tmp_path_factory.getbasetemp() / "offair-clips")


@pytest.fixture(scope="module")
def clean(clips: Clips) -> bytes:
    """12 s of real playout output: two lessons."""
    specs = [
        ("L1", EventType.LESSON, clips.lesson, 200),
        ("L2", EventType.LESSON, clips.short, 100),
    ]
    return render(build_rundown(specs, start=MIDHOUR)).data


def counts(data: bytes) -> dict[str, int]:
    monitor = TsMonitor()
    monitor.feed(data)
    return {c.name: c.count for c in monitor.report().checks if c.priority in P1_P2 and c.count}


class SimClock:
    """The receiver's clocks, moved by the test to each datagram's arrival."""

    def __init__(self, t0: float) -> None:
        self.t0 = t0
        self.mono = 0.0

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.t0 + self.mono, UTC)

    def monotonic(self) -> float:
        return self.mono


def live(data: bytes, interval_s: float = 1.0) -> list[MonitorSummary]:
    """Feed ``data`` as datagrams at their real-time arrival; one summary per interval."""
    summaries: list[MonitorSummary] = []
    times = arrival_times(data)
    clock = SimClock(float(times[0]))
    monitor = LiveMonitor("test", interval_s=interval_s, on_summary=summaries.append, clock=clock)
    for n, at in enumerate(times):
        clock.mono = float(at - times[0])
        payload = memoryview(data)[n * UDP_PAYLOAD : (n + 1) * UDP_PAYLOAD]
        monitor.feed(payload, clock.mono, clock.now())
    clock.mono += 0.001
    monitor.finish()
    return summaries


def video_pid(data: bytes) -> int:
    monitor = TsMonitor()
    monitor.feed(data)
    (program,) = monitor.report().programs
    return next(s.pid for s in program.streams if s.kind == "video")


def second_of(data: bytes, index: int) -> float:
    """Seconds from the first datagram to the arrival of packet ``index``."""
    times = arrival_times(data)
    return float(times[index * PACKET_SIZE // UDP_PAYLOAD] - times[0])


def null_out(data: bytes, indices: list[int]) -> bytes:
    out = bytearray(data)
    for i in indices:
        out[i * PACKET_SIZE : (i + 1) * PACKET_SIZE] = NULL_PACKET
    return bytes(out)


def test_a_clean_stream_reports_zero(clean: bytes) -> None:
    assert counts(clean) == {}
    summaries = live(clean)
    assert len(summaries) >= 11
    assert all(s.signal and s.ok and not s.errors for s in summaries), [s.errors for s in summaries]
    assert all(s.totals == {} for s in summaries)


def test_injected_continuity_errors_are_counted_where_they_happen(clean: bytes) -> None:
    pids = pid_array(packet_array(clean))
    video = np.flatnonzero(pids == video_pid(clean))
    lost = [int(video[len(video) // 2 + k * 40]) for k in range(3)]  # three lost packets
    broken = null_out(clean, lost)  # null packets keep the rate (and the PCRs) constant
    assert counts(broken) == {"Continuity_count_error": 3}
    summaries = live(broken)
    hit = [s for s in summaries if s.errors]
    assert sum(s.errors.get("Continuity_count_error", 0) for s in hit) == 3
    when = second_of(clean, lost[0])
    first = summaries[0].start.timestamp()
    assert any(s.start.timestamp() - first <= when <= s.end.timestamp() - first for s in hit), (
        "reported in another interval than the injection"
    )
    assert summaries[-1].totals == {"Continuity_count_error": 3}


def test_a_pcr_gap_is_a_pcr_repetition_error(clean: bytes) -> None:
    arr = packet_array(clean)
    rows = np.flatnonzero(pcr_flag_array(arr))
    middle = len(rows) // 2
    removed = rows[middle : middle + 8]  # PCRs about every 20-40 ms: ~0.2 s without one
    broken = bytearray(clean)
    for row in removed.tolist():
        broken[row * PACKET_SIZE + 5] &= ~0x10 & 0xFF  # PCR_flag off (the bytes stay stuffing)
    found = counts(bytes(broken))
    assert found.get("PCR_repetition_error") == 1, found
    assert set(found) <= {"PCR_repetition_error", "PCR_discontinuity_indicator_error"}
    summaries = live(bytes(broken))
    assert sum(s.errors.get("PCR_repetition_error", 0) for s in summaries) == 1


def test_pat_loss_is_a_pat_error(clean: bytes) -> None:
    pids = pid_array(packet_array(clean))
    pat = np.flatnonzero(pids == PAT_PID)
    silenced = [int(i) for i in pat[len(pat) // 2 : len(pat) // 2 + 12]]  # ~1.2 s of PATs
    broken = null_out(clean, silenced)
    found = counts(broken)
    assert found.get("PAT_error", 0) >= 1 and found.get("PAT_error_2", 0) >= 1, found
    assert set(found) <= {"PAT_error", "PAT_error_2", "Continuity_count_error"}
    summaries = live(broken)
    assert any("PAT_error" in s.errors for s in summaries)
    assert not any(s.errors for s in summaries[:3])  # the start was clean


def test_pcr_arrival_clock_offset_from_known_points() -> None:
    # A sender 100 ppm fast, with ±0.5 ms of arrival jitter; a restart in the middle.
    clock = PcrArrivalClock()
    rng = np.random.default_rng(7)
    for k in range(2000):
        t = k * 0.02
        clock.add(round(t * (1 + 100e-6) * 27e6), t + rng.uniform(-5e-4, 5e-4))
    first = clock.total()
    clock.add(123_456_789, 41.0)  # PCR jumps: a new stretch begins
    assert clock.discontinuities == 1 and clock.total().samples == 1
    assert first.ppm == pytest.approx(100, abs=5)
    assert first.jitter_ms is not None and 0.3 < first.jitter_ms < 0.6


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def paced_send(data: bytes, address: tuple[str, int], *, skew: float = 0.0) -> int:
    """Send at the PCRs' pace sped up by ``skew`` (2e-3: the sender's clock 2000 ppm fast)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    times = arrival_times(data)
    t0 = time.perf_counter()
    try:
        for n, at in enumerate(times):
            due = t0 + (at - times[0]) / (1 + skew)
            while (wait := due - time.perf_counter()) > 0.002:
                time.sleep(wait - 0.001)
            while time.perf_counter() < due:  # the last millisecond: spin for accuracy
                pass
            sock.sendto(data[n * UDP_PAYLOAD : (n + 1) * UDP_PAYLOAD], address)
    finally:
        sock.close()
    return len(times)


def test_live_udp_summaries_and_clock_offset(clean: bytes, tmp_path: Path) -> None:
    port = _free_port()
    source = parse_source(f"udp://127.0.0.1:{port}")
    got: list[MonitorSummary] = []
    log = SummaryFile(monitor_path(tmp_path / "var", "zt.skyclass.cn"))

    def emit(summary: MonitorSummary) -> None:
        got.append(summary)
        log(summary)

    monitor = LiveMonitor("zt.skyclass.cn", source=source.url, interval_s=1.0, on_summary=emit)
    stop = threading.Event()
    result: dict[str, Any] = {}
    thread = threading.Thread(
        target=lambda: result.setdefault("report", run_live(monitor, source, stop)), daemon=True
    )
    thread.start()
    time.sleep(0.3)
    first_half = clean[: len(clean) // 2 // UDP_PAYLOAD * UDP_PAYLOAD]  # ~6 s
    sent = paced_send(first_half, ("127.0.0.1", port), skew=2e-3)
    time.sleep(2.3)  # silence: the monitor keeps reporting, "no signal"
    stop.set()
    thread.join(5)
    assert not thread.is_alive()

    assert sum(s.datagrams for s in got) == sent
    assert all(not s.errors for s in got), [s.errors for s in got]
    on_air = [s for s in got if s.signal]
    assert len(on_air) >= 5
    assert not got[-1].signal and not got[-2].signal  # the silence after the stream
    # Judge: the sender ran 2000 ppm fast; loopback adds only jitter.
    total = max((s.pcr_offset_total for s in on_air), key=lambda o: o.samples)
    # Generous bounds: sender and receiver share a process (and the GIL) on a busy box.
    assert total.ppm == pytest.approx(2000, abs=500), total
    assert total.jitter_ms is not None and 0 < total.jitter_ms < 250
    # The console/metrics file holds the same summaries, one JSON line each.
    lines = read_summaries(monitor_path(tmp_path / "var", "zt.skyclass.cn"))
    assert lines == [json.loads(json.dumps(s.as_json())) for s in got]
    assert {"signal", "errors", "totals", "pcr_offset_ppm", "bitrate_bps"} <= set(lines[0])
    assert result["report"].ok_priority1


def test_monitor_cli_on_files(cli: Any, clean: bytes, tmp_path: Path) -> None:
    good = tmp_path / "clean.ts"
    good.write_bytes(clean)
    result = cli("compliance", "monitor", str(good), "--json")
    assert result.code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["ok_priority1"] and report["ok_priority2"]
    pids = pid_array(packet_array(clean))
    video = np.flatnonzero(pids == video_pid(clean))
    bad = tmp_path / "bad.ts"
    bad.write_bytes(null_out(clean, [int(video[100]), int(video[900])]))
    result = cli("compliance", "monitor", str(bad))
    assert result.code == 1  # priority 1 errors
    assert "Continuity_count_error" in result.stdout and " 2" in result.stdout
    missing = cli("compliance", "monitor", str(tmp_path / "nope.ts"))
    assert missing.code == 2 and "nope.ts" in missing.stderr
    assert cli("compliance", "monitor").code == 2  # nothing to monitor: one clear line


def test_monitor_cli_live_writes_summaries_for_the_console(
    cli: Any, clean: bytes, tmp_path: Path
) -> None:
    port = _free_port()
    part = clean[: len(clean) // 4 // UDP_PAYLOAD * UDP_PAYLOAD]  # ~3 s

    def send() -> None:
        time.sleep(0.5)
        paced_send(part, ("127.0.0.1", port))

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    result = cli(
        "compliance", "monitor", f"udp://127.0.0.1:{port}", "--json",
        "--interval", "1", "--minutes", str(4.5 / 60),
    )  # fmt: skip
    sender.join(5)
    assert result.code == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(lines) >= 4 and all("pcr_offset_ppm" in line for line in lines)
    assert any(line["signal"] for line in lines)
    assert sum(line["datagrams"] for line in lines) == len(part) // UDP_PAYLOAD
    assert all(line["errors"] == {} for line in lines)
    saved = read_summaries(tmp_path / "var" / "monitor" / f"udp-127.0.0.1-{port}.jsonl")
    assert saved == lines
