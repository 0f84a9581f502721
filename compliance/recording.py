"""The off-air recorder (播出录像): what left the building, kept hour by hour.

It receives a channel's real output off the network (``compliance.receiver``) and
writes it as hourly transport stream files, on local hour boundaries of the station's
time zone, with everything an auditor needs to place a byte in time::

    recordings/<channel>/
        gaps.jsonl                          reception gaps (journal, one line per gap)
        status.json                         the recorder's state, replaced every few seconds
        2026-09-01/                         local date
            index.jsonl                     one line per recorded segment: file, byte range,
                                            first/last arrival (UTC), packets, RTP losses
            20260901T08+0800.ts             08:00-09:00 local, TS packets as received
            20260901T08+0800.ts.times       arrival marks: "byte_offset unix_time" lines,
                                            one a second and on both sides of every gap

A segment is one uninterrupted write into one file: a file gets a second segment when
the recorder restarts within the hour (it appends). The index line of a segment is
written when it closes; a recorder killed mid-segment leaves its marks, and the next
start indexes the tail from them (``recovered``). A gap is journaled when reception
resumes (or the recorder stops during one): no datagram for ``gap_seconds``.

``Recorder`` is the core: ``feed(datagram, arrival)`` does all the work without a
socket (tests feed it directly); ``run(stop)`` receives until ``stop`` is set and
closes the files cleanly; ``start()`` runs that in a thread (the station runs one per
channel). Given a ``tap`` (a ``compliance.livemonitor.LiveMonitor``), the same socket
feeds the live monitor too. ``RecordingStore`` reads it all back.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import IO, Any, Protocol
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from compliance.errors import ComplianceInputError
from compliance.receiver import Datagram, Receiver, RtpSequence, Source, unwrap_datagram
from compliance.retention import (
    DEFAULT_RETENTION_DAYS,
    HOUR_FORMAT,
    check_retention,
    hour_of,
    prune,
)
from core.clock import Clock, SystemClock
from mpegts import PACKET_SIZE

logger = logging.getLogger(__name__)

RECORDINGS_DIR = "recordings"
INDEX_FILE = "index.jsonl"
GAPS_FILE = "gaps.jsonl"
STATUS_FILE = "status.json"
TIMES_SUFFIX = ".times"
GAP_SECONDS = 1.0  # no datagram for this long is a reception gap
MARK_SECONDS = 1.0  # arrival marks (and flushes) at least this often
STATUS_SECONDS = 2.0
FILE_BUFFER = 1 << 20


class DatagramTap(Protocol):
    """Something that watches the same datagrams (a live monitor sharing the socket)."""

    def feed(self, payload: memoryview, arrival_mono: float, arrival_utc: datetime) -> None:
        """The TS bytes of one datagram (RTP stripped) and when it arrived."""

    def tick(self, now_mono: float | None = None, now_utc: datetime | None = None) -> None:
        """Called while nothing arrives, so the watcher can report the silence."""


def recordings_root(var_dir: Path) -> Path:
    """The default place for recordings: var/recordings."""
    return var_dir / RECORDINGS_DIR


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat(timespec="microseconds")


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


@dataclass(frozen=True, kw_only=True)
class RecorderConfig:
    """Where and how one station records; ``retention_days`` below 7 is refused."""

    root: Path
    zone: ZoneInfo
    retention_days: int = DEFAULT_RETENTION_DAYS
    gap_seconds: float = GAP_SECONDS
    mark_seconds: float = MARK_SECONDS

    def __post_init__(self) -> None:
        check_retention(self.retention_days)
        if self.gap_seconds <= 0 or self.mark_seconds <= 0:
            raise ComplianceInputError(
                f"gap {self.gap_seconds} s, mark {self.mark_seconds} s: both must be positive"
            )


@dataclass(frozen=True, kw_only=True)
class Segment:
    """One uninterrupted write into an hour file: the bytes and the times they arrived."""

    channel_id: str
    path: Path
    hour_start: datetime  # aware UTC: start of the local hour the file covers
    offset: int  # first byte of the segment in the file
    bytes: int
    packets: int
    datagrams: int
    first_arrival: datetime  # aware UTC
    last_arrival: datetime
    source: str
    rtp: bool
    rtp_lost: int
    foreign: int  # datagrams that were neither TS nor RTP
    recovered: bool = False  # indexed from its arrival marks after the recorder died

    @property
    def end_offset(self) -> int:
        return self.offset + self.bytes

    def as_json(self, base: Path) -> dict[str, Any]:
        return {
            "file": self.path.relative_to(base).as_posix(),
            "hour_start": _iso(self.hour_start),
            "offset": self.offset,
            "bytes": self.bytes,
            "packets": self.packets,
            "datagrams": self.datagrams,
            "first_arrival": _iso(self.first_arrival),
            "last_arrival": _iso(self.last_arrival),
            "source": self.source,
            "rtp": self.rtp,
            "rtp_lost": self.rtp_lost,
            "foreign": self.foreign,
            "recovered": self.recovered,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any], *, base: Path, channel_id: str) -> Segment:
        return cls(
            channel_id=channel_id,
            path=base / data["file"],
            hour_start=_utc(data["hour_start"]),
            offset=int(data["offset"]),
            bytes=int(data["bytes"]),
            packets=int(data["packets"]),
            datagrams=int(data["datagrams"]),
            first_arrival=_utc(data["first_arrival"]),
            last_arrival=_utc(data["last_arrival"]),
            source=str(data.get("source", "")),
            rtp=bool(data.get("rtp", False)),
            rtp_lost=int(data.get("rtp_lost", 0)),
            foreign=int(data.get("foreign", 0)),
            recovered=bool(data.get("recovered", False)),
        )


@dataclass(frozen=True, kw_only=True)
class Gap:
    """Nothing received from ``start`` (last datagram, or the recorder's start) to ``end``."""

    channel_id: str
    start: datetime  # aware UTC
    end: datetime
    kind: str  # "reception" (between datagrams), "start" (before the first), "stop" (at stop)
    source: str = ""

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()

    def as_json(self) -> dict[str, Any]:
        return {
            "channel_id": self.channel_id,
            "start": _iso(self.start),
            "end": _iso(self.end),
            "seconds": round(self.seconds, 3),
            "kind": self.kind,
            "source": self.source,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Gap:
        return cls(
            channel_id=str(data["channel_id"]),
            start=_utc(data["start"]),
            end=_utc(data["end"]),
            kind=str(data["kind"]),
            source=str(data.get("source", "")),
        )


@dataclass(frozen=True, kw_only=True)
class RecorderStatus:
    """A snapshot for the console and metrics: is the channel being received and kept?"""

    channel_id: str
    source: str
    receiving: bool
    file: str | None
    bytes: int  # written since the recorder started
    datagrams: int
    gaps: int  # journaled since the recorder started
    gap_since: datetime | None  # no datagram since then (an open gap), else None
    last_arrival: datetime | None
    rtp_lost: int
    foreign: int

    def as_json(self) -> dict[str, Any]:
        return {
            "channel_id": self.channel_id,
            "source": self.source,
            "receiving": self.receiving,
            "file": self.file,
            "bytes": self.bytes,
            "datagrams": self.datagrams,
            "gaps": self.gaps,
            "gap_since": _iso(self.gap_since) if self.gap_since else None,
            "last_arrival": _iso(self.last_arrival) if self.last_arrival else None,
            "rtp_lost": self.rtp_lost,
            "foreign": self.foreign,
        }


def hour_bounds(t: datetime, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """The UTC start and end of the local clock hour that contains ``t``."""
    local = t.astimezone(zone)
    start = local.replace(minute=0, second=0, microsecond=0).astimezone(UTC)
    if start > t:  # a zone offset that is not whole hours: fold into the previous hour
        start -= timedelta(hours=1)
    return start, start + timedelta(hours=1)


def hour_path(channel_dir: Path, hour_start: datetime, zone: ZoneInfo) -> Path:
    """recordings/<channel>/<local date>/<YYYYmmddTHH+ZZZZ>.ts for the hour at ``hour_start``."""
    local = hour_start.astimezone(zone)
    return channel_dir / local.date().isoformat() / f"{local.strftime(HOUR_FORMAT)}.ts"


def _append_line(path: Path, data: dict[str, Any], *, sync: bool = True) -> None:
    """One JSON line, appended and (by default) fsynced: journals survive a crash."""
    path.parent.mkdir(parents=True, exist_ok=True)
    line = (json.dumps(data, ensure_ascii=False, sort_keys=True) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
        if sync:
            os.fsync(fd)
    finally:
        os.close(fd)


def _read_lines(path: Path) -> Iterator[dict[str, Any]]:
    """Complete JSON lines of a journal; a torn last line (crash mid-write) is skipped."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return
    for number, line in enumerate(text.splitlines(keepends=True), start=1):
        if not line.endswith("\n"):
            logger.warning("%s: line %d is incomplete (crash?): ignored", path, number)
            return
        try:
            yield json.loads(line)
        except ValueError:
            logger.warning("%s: line %d is not JSON: ignored", path, number)


def read_marks(ts_path: Path) -> npt.NDArray[np.float64]:
    """Arrival marks of a recording as an (n, 2) array of (byte offset, unix time)."""
    path = ts_path.with_name(ts_path.name + TIMES_SUFFIX)
    rows: list[tuple[float, float]] = []
    try:
        with path.open(encoding="ascii") as fh:
            for line in fh:
                parts = line.split()
                if len(parts) == 2 and line.endswith("\n"):
                    rows.append((float(parts[0]), float(parts[1])))
    except FileNotFoundError:
        pass
    return np.array(rows, dtype=np.float64).reshape(-1, 2)


class _HourFile:
    """The hour file being written, its arrival marks and the segment being recorded."""

    def __init__(
        self, path: Path, hour_start: datetime, hour_end: datetime, *, channel_id: str, source: str
    ) -> None:
        self.path = path
        self.hour_start = hour_start
        self.hour_end = hour_end
        self.channel_id = channel_id
        self.source = source
        path.parent.mkdir(parents=True, exist_ok=True)
        self.offset = _aligned_size(path)  # append after what an earlier segment wrote
        self._ts: IO[bytes] = path.open("ab", buffering=FILE_BUFFER)
        self._times: IO[str] = path.with_name(path.name + TIMES_SUFFIX).open(
            "a", encoding="ascii", buffering=1 << 16
        )
        self.bytes = 0
        self.datagrams = 0
        self.rtp = False
        self.rtp_lost = 0
        self.foreign = 0
        self.first: datetime | None = None
        self.last: datetime | None = None
        self._last_offset = 0  # file offset of the last datagram written
        self._last_marked = -1
        self._next_mark = 0.0

    def write(self, payload: memoryview, arrival: datetime, *, mark_every: float) -> None:
        at = self.offset + self.bytes
        self._ts.write(payload)
        self.bytes += len(payload)
        self.datagrams += 1
        self._last_offset = at
        if self.first is None:
            self.first = arrival
        self.last = arrival
        t = arrival.timestamp()
        if t >= self._next_mark:
            self._next_mark = t + mark_every
            self.mark_last()
            self.flush()

    def mark_last(self) -> None:
        """An arrival mark for the last datagram written (before and after gaps, every second)."""
        if self.last is None or self._last_marked == self._last_offset:
            return
        self._times.write(f"{self._last_offset} {self.last.timestamp():.6f}\n")
        self._last_marked = self._last_offset

    def mark_next(self) -> None:
        self._next_mark = 0.0

    def flush(self) -> None:
        # Data before marks: a mark never points past what is on disk.
        self._ts.flush()
        self._times.flush()

    def close(self) -> Segment | None:
        self.mark_last()
        self.flush()
        os.fsync(self._ts.fileno())
        os.fsync(self._times.fileno())
        self._ts.close()
        self._times.close()
        if self.first is None or self.last is None:
            return None
        return Segment(
            channel_id=self.channel_id,
            path=self.path,
            hour_start=self.hour_start,
            offset=self.offset,
            bytes=self.bytes,
            packets=self.bytes // PACKET_SIZE,
            datagrams=self.datagrams,
            first_arrival=self.first,
            last_arrival=self.last,
            source=self.source,
            rtp=self.rtp,
            rtp_lost=self.rtp_lost,
            foreign=self.foreign,
        )


def _aligned_size(path: Path) -> int:
    """The file's size, first cut back to whole packets (a crash can leave half of one)."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return 0
    whole = size - size % PACKET_SIZE
    if whole != size:
        os.truncate(path, whole)
        logger.warning("%s: cut a torn packet (%d bytes) before appending", path, size - whole)
    return whole


@dataclass
class _Counters:
    bytes: int = 0
    datagrams: int = 0
    gaps: int = 0
    rtp_lost: int = 0
    foreign: int = 0
    segments: list[Segment] = field(default_factory=list)


class Recorder:
    """Records one channel; see the module docstring. Not thread-safe: one feeder."""

    def __init__(
        self,
        channel_id: str,
        source: Source,
        config: RecorderConfig,
        *,
        clock: Clock | None = None,
        tap: DatagramTap | None = None,
    ) -> None:
        self.channel_id = channel_id
        self.source = source
        self.config = config
        self.clock: Clock = clock or SystemClock()
        self.tap = tap
        self.channel_dir = config.root / channel_id
        self._file: _HourFile | None = None
        self._rtp = RtpSequence()
        self._started: datetime | None = None
        self._last: datetime | None = None
        self._gap_since: datetime | None = None
        self._next_status = 0.0
        self.counters = _Counters()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._closed = False

    # ----------------------------------------------------------------- lifecycle

    def open(self, now: datetime | None = None) -> None:
        """Index what a killed recorder left, drop expired hours, start the clock for gaps."""
        now = now or self.clock.now()
        self._started = now
        self.channel_dir.mkdir(parents=True, exist_ok=True)
        repair_index(self.channel_dir, self.channel_id)
        prune(self.channel_dir, now=now, retention_days=self.config.retention_days)
        self._write_status(now, force=True)

    def feed(
        self,
        data: bytes | bytearray | memoryview,
        arrival: datetime,
        arrival_mono: float | None = None,
    ) -> None:
        """One received datagram (RTP or plain TS) that arrived at ``arrival`` (aware UTC)."""
        if self._started is None:
            self.open(arrival)
        datagram = unwrap_datagram(memoryview(data))
        if datagram.foreign:
            self.counters.foreign += 1
            if self._file is not None:
                self._file.foreign += 1
            return
        self._check_gap(arrival)
        hour = self._file
        if hour is None or not hour.hour_start <= arrival < hour.hour_end:
            hour = self._rotate(arrival)
        self._count_rtp(datagram, hour)
        hour.write(datagram.payload, arrival, mark_every=self.config.mark_seconds)
        self.counters.bytes += len(datagram.payload)
        self.counters.datagrams += 1
        self._last = arrival
        if self.tap is not None:
            mono = self.clock.monotonic() if arrival_mono is None else arrival_mono
            self.tap.feed(datagram.payload, mono, arrival)
        if arrival.timestamp() >= self._next_status:
            self._write_status(arrival)

    def idle(self, now: datetime) -> None:
        """Nothing arrived lately: notice an open gap (for the status), flush the file."""
        since = self._last or self._started
        silent = since is not None and (now - since).total_seconds() > self.config.gap_seconds
        if since is not None and silent and self._gap_since is None:
            self._gap_since = since
            logger.warning("%s: nothing received since %s", self.channel_id, _iso(since))
            self._write_status(now, force=True)
        if self._file is not None:
            self._file.mark_last()
            self._file.flush()
        if self.tap is not None:
            self.tap.tick(self.clock.monotonic(), now)
        if now.timestamp() >= self._next_status:
            self._write_status(now)

    def close(self, now: datetime | None = None) -> None:
        """Close the hour file (fsynced, indexed) and journal a gap still open."""
        if self._closed:
            return
        self._closed = True
        now = now or self.clock.now()
        since = self._last or self._started
        if since is not None and (now - since).total_seconds() > self.config.gap_seconds:
            self._journal_gap(since, now, "start" if self._last is None else "stop")
        self._close_file()
        self._gap_since = None
        self._write_status(now, force=True, receiving=False)

    def run(self, stop: threading.Event | None = None) -> None:
        """Receive until ``stop`` is set (SIGTERM/SIGINT in the CLI), then close cleanly."""
        stop = stop or self._stop
        receiver = Receiver(self.source)
        try:
            self.open()
            while not stop.is_set():
                got = receiver.receive()
                now = self.clock.now()
                if got is None:
                    self.idle(now)
                else:
                    # The datagram's own arrival (kernel time), not when we got to it.
                    waited = max(0.0, time.monotonic() - got[1])
                    self.feed(got[0], now - timedelta(seconds=waited), got[1])
        finally:
            receiver.close()
            self.close()

    def start(self) -> threading.Thread:
        """Run in a daemon thread (the station: one per channel); ``stop()`` ends it."""
        self._thread = threading.Thread(
            target=self.run, args=(self._stop,), name=f"recorder {self.channel_id}", daemon=True
        )
        self._thread.start()
        return self._thread

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    # ------------------------------------------------------------------ status

    def status(self) -> RecorderStatus:
        return self._status(receiving=self._gap_since is None and self._last is not None)

    def _status(self, *, receiving: bool) -> RecorderStatus:
        return RecorderStatus(
            channel_id=self.channel_id,
            source=self.source.url,
            receiving=receiving,
            file=str(self._file.path) if self._file else None,
            bytes=self.counters.bytes,
            datagrams=self.counters.datagrams,
            gaps=self.counters.gaps,
            gap_since=self._gap_since,
            last_arrival=self._last,
            rtp_lost=self.counters.rtp_lost,
            foreign=self.counters.foreign,
        )

    def _write_status(
        self, now: datetime, *, force: bool = False, receiving: bool | None = None
    ) -> None:
        if not force and now.timestamp() < self._next_status:
            return
        self._next_status = now.timestamp() + STATUS_SECONDS
        status = self.status() if receiving is None else self._status(receiving=receiving)
        body = {**status.as_json(), "updated": _iso(now)}
        path = self.channel_dir / STATUS_FILE
        tmp = path.with_suffix(".tmp")
        try:
            tmp.write_text(json.dumps(body, ensure_ascii=False), encoding="utf-8")
            os.replace(tmp, path)
        except OSError as exc:  # the status is a convenience; the recording matters
            logger.warning("%s: cannot write %s: %s", self.channel_id, path, exc)

    # ----------------------------------------------------------------- internals

    def _check_gap(self, arrival: datetime) -> None:
        since = self._last or self._started
        if since is None:
            return
        if (arrival - since).total_seconds() > self.config.gap_seconds:
            if self._file is not None:
                self._file.mark_last()  # the last byte before the gap keeps its time
            self._journal_gap(since, arrival, "reception" if self._last else "start")
            self._rtp.restart()
            if self._file is not None:
                self._file.mark_next()  # ... and so does the first byte after it
        self._gap_since = None

    def _journal_gap(self, start: datetime, end: datetime, kind: str) -> None:
        gap = Gap(
            channel_id=self.channel_id, start=start, end=end, kind=kind, source=self.source.url
        )
        _append_line(self.channel_dir / GAPS_FILE, gap.as_json())
        self.counters.gaps += 1
        logger.warning(
            "%s: reception gap of %.2f s (%s) from %s",
            self.channel_id,
            gap.seconds,
            kind,
            _iso(start),
        )

    def _count_rtp(self, datagram: Datagram, hour: _HourFile) -> None:
        if datagram.rtp_seq is None:
            return
        hour.rtp = True
        before = self._rtp.lost
        self._rtp.see(datagram.rtp_seq)
        lost = self._rtp.lost - before
        if lost:
            hour.rtp_lost += lost
            self.counters.rtp_lost += lost

    def _rotate(self, arrival: datetime) -> _HourFile:
        self._close_file()
        start, end = hour_bounds(arrival, self.config.zone)
        path = hour_path(self.channel_dir, start, self.config.zone)
        self._file = _HourFile(path, start, end, channel_id=self.channel_id, source=self.source.url)
        logger.info("%s: recording into %s", self.channel_id, path)
        prune(self.channel_dir, now=arrival, retention_days=self.config.retention_days)
        return self._file

    def _close_file(self) -> None:
        if self._file is None:
            return
        segment = self._file.close()
        self._file = None
        if segment is not None:
            _append_line(segment.path.parent / INDEX_FILE, segment.as_json(self.channel_dir))
            self.counters.segments.append(segment)


def repair_index(channel_dir: Path, channel_id: str) -> list[Segment]:
    """Index the tails a killed recorder wrote but never indexed, from their arrival marks."""
    added: list[Segment] = []
    if not channel_dir.is_dir():
        return added
    for day in sorted(p for p in channel_dir.iterdir() if p.is_dir()):
        covered: dict[str, int] = {}
        for raw in _read_lines(day / INDEX_FILE):
            end = int(raw["offset"]) + int(raw["bytes"])
            covered[raw["file"]] = max(covered.get(raw["file"], 0), end)
        for path in sorted(day.glob("*.ts")):
            rel = path.relative_to(channel_dir).as_posix()
            size = path.stat().st_size
            done = covered.get(rel, 0)
            if size <= done:
                continue
            marks = read_marks(path)
            tail = marks[marks[:, 0] >= done] if len(marks) else marks
            start = hour_of(path)
            if not len(tail) or start is None:
                logger.warning("%s: %d unindexed bytes without arrival marks", path, size - done)
                continue
            segment = Segment(
                channel_id=channel_id,
                path=path,
                hour_start=start.astimezone(UTC),
                offset=done,
                bytes=size - done,
                packets=(size - done) // PACKET_SIZE,
                datagrams=0,
                first_arrival=datetime.fromtimestamp(float(tail[0, 1]), UTC),
                last_arrival=datetime.fromtimestamp(float(tail[-1, 1]), UTC),
                source="",
                rtp=False,
                rtp_lost=0,
                foreign=0,
                recovered=True,
            )
            _append_line(day / INDEX_FILE, segment.as_json(channel_dir))
            added.append(segment)
            logger.warning("%s: indexed %d bytes a stopped recorder left", path, segment.bytes)
    return added


class RecordingStore:
    """Reads one channel's recordings back: segments, gaps, files and arrival marks."""

    def __init__(self, root: Path, channel_id: str) -> None:
        self.root = root
        self.channel_id = channel_id
        self.channel_dir = root / channel_id

    @property
    def exists(self) -> bool:
        return self.channel_dir.is_dir()

    def days(self) -> list[date]:
        if not self.exists:
            return []
        out = []
        for p in self.channel_dir.iterdir():
            try:
                out.append(date.fromisoformat(p.name))
            except ValueError:
                continue
        return sorted(out)

    def segments(self, start: datetime | None = None, end: datetime | None = None) -> list[Segment]:
        """Segments whose arrivals overlap [start, end), in arrival order."""
        found: list[Segment] = []
        if not self.exists:
            return found
        for day in sorted(p for p in self.channel_dir.iterdir() if p.is_dir()):
            for raw in _read_lines(day / INDEX_FILE):
                segment = Segment.from_json(raw, base=self.channel_dir, channel_id=self.channel_id)
                if start is not None and segment.last_arrival < start:
                    continue
                if end is not None and segment.first_arrival >= end:
                    continue
                found.append(segment)
        found.sort(key=lambda s: (s.first_arrival, s.offset))
        return found

    def gaps(self, start: datetime | None = None, end: datetime | None = None) -> list[Gap]:
        """Journaled gaps overlapping [start, end)."""
        out = []
        for raw in _read_lines(self.channel_dir / GAPS_FILE):
            gap = Gap.from_json(raw)
            if start is not None and gap.end <= start:
                continue
            if end is not None and gap.start >= end:
                continue
            out.append(gap)
        out.sort(key=lambda g: g.start)
        return out

    def files(self, start: datetime | None = None, end: datetime | None = None) -> list[Path]:
        """The hour files with bytes that arrived in [start, end), in time order."""
        seen: dict[Path, datetime] = {}
        for segment in self.segments(start, end):
            if segment.path.exists():
                seen.setdefault(segment.path, segment.first_arrival)
        return sorted(seen, key=lambda p: seen[p])

    def status(self) -> dict[str, Any] | None:
        """The recorder's last status.json (None if it never ran)."""
        try:
            data: dict[str, Any] = json.loads(
                (self.channel_dir / STATUS_FILE).read_text(encoding="utf-8")
            )
        except (FileNotFoundError, ValueError):
            return None
        return data
