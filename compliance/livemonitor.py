"""The live TS monitor (监听监看): TR 101 290 on a channel as received, minute by minute.

It reuses the one TR 101 290 monitor (`mpegts.monitor.TsMonitor`) and adds what only a
live stream has: arrival times. Two things come of them:

* the PCR arrival clock offset (TR 101 290 5.3 PCR_FO), in ppm: the slope of PCR time
  against arrival time, fitted by least squares, minus one. A sender whose 27 MHz
  clock runs fast shows positive ppm. The arrival jitter around the fitted line is the
  overall PCR jitter (PCR_OJ) as a receiver sees it, network included. A PCR jump (a
  restart, a discontinuity) starts a new fit.
* per-interval summaries (a minute by default), even when nothing arrives (then
  ``signal`` is false): per-error counts in the interval and since the start, rate,
  PCR offset and jitter. They go to a callback; the CLI prints them and appends them
  to var/monitor/<channel>.jsonl, where the console and metrics read them.

`LiveMonitor.feed` takes the TS bytes of one datagram with its arrival time; the
recorder can hand it every datagram (``Recorder(tap=monitor.feed)``) so one socket
serves both. `run_live` is the receive loop for a monitor on its own.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from compliance.receiver import Receiver, RtpSequence, Source, unwrap_datagram
from core.clock import Clock, SystemClock
from mpegts import (
    PACKET_SIZE,
    PCR_HZ,
    PCR_MODULUS,
    packet_array,
    pcr_array,
    pid_array,
    signed_delta,
)
from mpegts.monitor import TsMonitor, TsMonitorConfig, TsReport

logger = logging.getLogger(__name__)

MONITOR_DIR = "monitor"
INTERVAL_S = 60.0
#: A PCR step this far from the arrival step is a discontinuity (restart, splice).
PCR_JUMP_S = 0.5
#: The checks an operator watches (TR 101 290 priority 1 and 2).
PRIORITIES = (1, 2)


def monitor_path(var_dir: Path, name: str) -> Path:
    """Where a channel's summaries go: var/monitor/<channel>.jsonl."""
    return var_dir / MONITOR_DIR / f"{name}.jsonl"


@dataclass(frozen=True, kw_only=True)
class ClockOffset:
    """PCR against arrival over some stretch: frequency offset (ppm) and jitter."""

    ppm: float | None  # (PCR rate / arrival rate - 1) * 1e6
    jitter_ms: float | None  # largest |arrival - fitted line|
    samples: int
    span_s: float

    def as_json(self) -> dict[str, Any]:
        return {
            "ppm": None if self.ppm is None else round(self.ppm, 2),
            "jitter_ms": None if self.jitter_ms is None else round(self.jitter_ms, 3),
            "samples": self.samples,
            "span_s": round(self.span_s, 3),
        }


NO_OFFSET = ClockOffset(ppm=None, jitter_ms=None, samples=0, span_s=0.0)


class _Fit:
    """Points (arrival s, PCR s) of one continuous stretch of PCRs."""

    def __init__(self) -> None:
        self.arrival: list[float] = []
        self.pcr: list[float] = []

    def add(self, arrival: float, pcr: float) -> None:
        self.arrival.append(arrival)
        self.pcr.append(pcr)

    def result(self) -> ClockOffset:
        n = len(self.arrival)
        if n < 3:
            return ClockOffset(ppm=None, jitter_ms=None, samples=n, span_s=0.0)
        x = np.array(self.arrival) - self.arrival[0]
        y = np.array(self.pcr) - self.pcr[0]
        span = float(x[-1])
        if span <= 0:
            return ClockOffset(ppm=None, jitter_ms=None, samples=n, span_s=0.0)
        slope, intercept = np.polyfit(x, y, 1)
        # Jitter in arrival time: how far each arrival is from when the fit expected it.
        residual = x - (y - intercept) / slope
        return ClockOffset(
            ppm=float((slope - 1.0) * 1e6),
            jitter_ms=float(np.abs(residual).max() * 1000),
            samples=n,
            span_s=span,
        )


class PcrArrivalClock:
    """Fits PCR against arrival, per interval and over the longest continuous stretch."""

    def __init__(self) -> None:
        self.pid: int | None = None
        self._last: tuple[float, int] | None = None  # (arrival, raw PCR)
        self._unwrapped = 0
        self._run = _Fit()  # since the last discontinuity
        self._interval = _Fit()
        self.discontinuities = 0

    def add_datagram(self, payload: memoryview, arrival: float) -> None:
        """The PCRs of one datagram's packets (all arrived at ``arrival``)."""
        whole = len(payload) // PACKET_SIZE * PACKET_SIZE
        if whole == 0:
            return
        arr = packet_array(payload[:whole])
        flags = (
            ((arr[:, 3] & 0x20) != 0)
            & (arr[:, 4] >= 7)
            & ((arr[:, 5] & 0x10) != 0)
            & ((arr[:, 1] & 0x80) == 0)
        )
        rows = np.flatnonzero(flags)
        if not len(rows):
            return
        pids: list[int] = pid_array(arr[rows]).tolist()
        pcrs: list[int] = pcr_array(arr[rows]).tolist()
        for pid, value in zip(pids, pcrs, strict=True):
            if self.pid is None:
                self.pid = pid
            if pid == self.pid:
                self.add(value, arrival)

    def add(self, pcr: int, arrival: float) -> None:
        if self._last is not None:
            last_arrival, last_pcr = self._last
            step = signed_delta(pcr, last_pcr, PCR_MODULUS)
            if abs(step / PCR_HZ - (arrival - last_arrival)) > PCR_JUMP_S:
                self.discontinuities += 1
                self._run = _Fit()
                self._interval = _Fit()
            self._unwrapped += step
        self._last = (arrival, pcr)
        seconds = self._unwrapped / PCR_HZ
        self._run.add(arrival, seconds)
        self._interval.add(arrival, seconds)

    def interval(self) -> ClockOffset:
        """The fit over the interval just ended; starts the next interval."""
        result = self._interval.result()
        self._interval = _Fit()
        return result

    def total(self) -> ClockOffset:
        return self._run.result()


@dataclass(frozen=True, kw_only=True)
class MonitorSummary:
    """One interval of a live stream (a JSON line in var/monitor/<channel>.jsonl)."""

    name: str
    source: str
    start: datetime  # aware UTC
    end: datetime
    signal: bool  # anything received in the interval
    datagrams: int
    packets: int
    bitrate_bps: float | None
    rtp_lost: int
    errors: dict[str, int]  # TR 101 290 P1/P2 check name → count in this interval
    totals: dict[str, int]  # … since the monitor started
    #: Every P1/P2 check with its id and cumulative count (what the console shows).
    checks: tuple[tuple[str, str, int, int], ...] = ()  # (check_id, name, priority, count)
    pcr_offset: ClockOffset  # this interval
    pcr_offset_total: ClockOffset  # since the last PCR discontinuity
    ok: bool  # no priority 1 or 2 error in the interval (and a signal)

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "source": self.source,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "signal": self.signal,
            "ok": self.ok,
            "datagrams": self.datagrams,
            "packets": self.packets,
            "bitrate_bps": None if self.bitrate_bps is None else round(self.bitrate_bps),
            "rtp_lost": self.rtp_lost,
            "errors": self.errors,
            "totals": self.totals,
            "checks": [
                {"check_id": check_id, "name": name, "priority": priority, "count": count}
                for check_id, name, priority, count in self.checks
            ],
            "pcr_offset_ppm": self.pcr_offset.as_json()["ppm"],
            "pcr_jitter_ms": self.pcr_offset.as_json()["jitter_ms"],
            "pcr_offset": self.pcr_offset.as_json(),
            "pcr_offset_total": self.pcr_offset_total.as_json(),
        }


@dataclass
class _Interval:
    start: datetime
    start_mono: float
    datagrams: int = 0
    packets: int = 0
    bytes: int = 0
    rtp_lost_at_start: int = 0
    counts_at_start: dict[str, int] = field(default_factory=dict)


class LiveMonitor:
    """TR 101 290 plus arrival-clock measurements over a live stream; see the module doc."""

    def __init__(
        self,
        name: str,
        *,
        source: str = "",
        config: TsMonitorConfig | None = None,
        interval_s: float = INTERVAL_S,
        on_summary: Callable[[MonitorSummary], None] | None = None,
        clock: Clock | None = None,
    ) -> None:
        if interval_s <= 0:
            raise ValueError("interval_s must be positive")
        self.name = name
        self.source = source
        self.monitor = TsMonitor(config)
        self.clock: Clock = clock or SystemClock()
        self.interval_s = interval_s
        self.on_summary = on_summary
        self.pcr_clock = PcrArrivalClock()
        self.rtp = RtpSequence()
        self.summaries = 0
        self._lock = threading.Lock()  # feed (receiving thread) vs tick (a timer)
        self._interval = _Interval(start=self.clock.now(), start_mono=self.clock.monotonic())

    def feed(self, payload: memoryview, arrival_mono: float, arrival_utc: datetime) -> None:
        """The TS bytes of one datagram (RTP already stripped) and when it arrived."""
        with self._lock:
            self.monitor.feed(payload)
            self.pcr_clock.add_datagram(payload, arrival_mono)
            self._interval.datagrams += 1
            self._interval.packets += len(payload) // PACKET_SIZE
            self._interval.bytes += len(payload)
        self.tick(arrival_mono, arrival_utc)

    def feed_datagram(self, data: memoryview, arrival_mono: float, arrival_utc: datetime) -> None:
        """A datagram as received (RTP or plain TS)."""
        datagram = unwrap_datagram(data)
        if datagram.foreign:
            return
        if datagram.rtp_seq is not None:
            self.rtp.see(datagram.rtp_seq)
        self.feed(datagram.payload, arrival_mono, arrival_utc)

    def tick(self, now_mono: float | None = None, now_utc: datetime | None = None) -> None:
        """Emit the summary if the interval is over (call it even when nothing arrives)."""
        now_mono = self.clock.monotonic() if now_mono is None else now_mono
        if now_mono - self._interval.start_mono < self.interval_s:
            return
        self.emit(now_mono, now_utc or self.clock.now())

    def emit(self, now_mono: float, now_utc: datetime) -> MonitorSummary:
        """Close the interval now and report it."""
        with self._lock:
            summary = self._summarise(now_mono, now_utc)
        self.summaries += 1
        if self.on_summary is not None:
            self.on_summary(summary)
        return summary

    def finish(self) -> MonitorSummary | None:
        """Report the last, partial interval (if any time has passed in it)."""
        now = self.clock.monotonic()
        if now - self._interval.start_mono < 0.05:
            return None
        return self.emit(now, self.clock.now())

    def report(self) -> TsReport:
        """The cumulative TR 101 290 report since the monitor started."""
        with self._lock:
            return self.monitor.report()

    def _summarise(self, now_mono: float, now_utc: datetime) -> MonitorSummary:
        report = self.monitor.report()
        totals = {c.name: c.count for c in report.checks if c.priority in PRIORITIES}
        before = self._interval.counts_at_start
        errors = {
            name: max(0, count - before.get(name, 0))
            for name, count in totals.items()
            if count - before.get(name, 0) > 0
        }
        interval = self._interval
        seconds = now_mono - interval.start_mono
        signal = interval.datagrams > 0
        summary = MonitorSummary(
            name=self.name,
            source=self.source,
            start=interval.start.astimezone(UTC),
            end=now_utc.astimezone(UTC),
            signal=signal,
            datagrams=interval.datagrams,
            packets=interval.packets,
            bitrate_bps=interval.bytes * 8 / seconds if seconds > 0 and signal else None,
            rtp_lost=self.rtp.lost - interval.rtp_lost_at_start,
            errors=errors,
            totals={name: count for name, count in totals.items() if count},
            checks=tuple(
                (c.check_id, c.name, c.priority, c.count)
                for c in report.checks
                if c.priority in PRIORITIES
            ),
            pcr_offset=self.pcr_clock.interval(),
            pcr_offset_total=self.pcr_clock.total(),
            ok=signal and not errors,
        )
        self._interval = _Interval(
            start=now_utc,
            start_mono=now_mono,
            rtp_lost_at_start=self.rtp.lost,
            counts_at_start=totals,
        )
        return summary


class SummaryFile:
    """Appends summaries as JSON lines (the file the console and metrics read)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)

    def __call__(self, summary: MonitorSummary) -> None:
        line = json.dumps(summary.as_json(), ensure_ascii=False, sort_keys=True)
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(line + "\n")


def read_summaries(path: Path, last: int | None = None) -> list[dict[str, Any]]:
    """The summaries in a monitor file (the last ``last`` of them), for the console."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    out = []
    for line in lines[-last:] if last else lines:
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out


def run_live(
    monitor: LiveMonitor,
    source: Source,
    stop: threading.Event,
    *,
    seconds: float | None = None,
) -> TsReport:
    """Receive ``source`` into ``monitor`` until ``stop`` (or ``seconds``); final summary."""
    receiver = Receiver(source, timeout=min(0.2, monitor.interval_s / 4))
    clock = monitor.clock
    deadline = None if seconds is None else clock.monotonic() + seconds
    try:
        while not stop.is_set():
            got = receiver.receive()
            if got is None:
                monitor.tick()
            else:
                data, arrived = got
                monitor.feed_datagram(data, arrived, clock.now())
            if deadline is not None and clock.monotonic() >= deadline:
                break
    finally:
        receiver.close()
    monitor.finish()
    return monitor.report()
