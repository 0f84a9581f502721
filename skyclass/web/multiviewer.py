"""The multiviewer's data: each channel's live status and a picture of its real output.

Plug-in points (Protocols), with defaults that read only what playout already writes:

* ``LiveStatusSource.snapshot()`` → one ``ChannelStatus`` per channel. The default,
  ``PlayoutFiles``, reads:
  - the compiled rundowns (``var/rundowns/<channel>/<date>.json``) for now and next;
  - the progress mark beside the as-run journal (``var/asrun/<channel>.onair.json``,
    rewritten about once a second while an event airs) for what is on air;
  - the as-run journal (``var/asrun/<channel>.jsonl``) for fallbacks, and the
    ``asrun`` table for how far the database copy lags behind it;
  - the channel's HLS segments (or ``file:`` output) for the output bitrate and
    whether bytes still flow;
  - a TS monitor report (``var/monitor/<channel>.json``, the JSON of
    ``compliance.tsmonitor_report.TsReport.as_json()``) for TR 101 290 counts, when
    the live monitor (compliance II) writes one.
* ``PictureSource.picture(channel_id)`` → a JPEG. The default, ``OutputPictures``,
  decodes the newest complete keyframe of the newest HLS segment (the one being
  written included) or of the tail of a ``file:`` output: the real output, never
  a stored image.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from channels import Channel, ChannelRegistry
from channels.registry import parse_output_url
from core.clock import Clock
from core.timecode import FPS
from epg.rundown import Rundown, RundownError, RundownEvent, rundown_path
from playout.asrun import AsRunOutcome, AsRunRecord, journal_path, progress_path
from playout.asrun.store import AsRunRow

logger = logging.getLogger(__name__)

STALE_SECONDS = 5.0  # no new bytes or progress mark for this long: the channel is off air
PICTURE_MAX_AGE = 2.0  # seconds a decoded picture is reused (the page asks every 4 s)
PICTURE_WIDTH = 480
TAIL_BYTES = 4 * 1024 * 1024  # at 10 Mb/s about 3 s: at least two 1 s GOPs
MONITOR_DIR = "monitor"


class OnAirState(StrEnum):
    ON_AIR = "on_air"  # the scheduled event airs
    FILLER = "filler"  # filler: a scheduled break, a gap, or a fallback for bad media
    SLATE = "slate"  # the emergency slate: nothing else to play
    OFF = "off"  # no bytes leave: the channel is off air

    @property
    def label_zh(self) -> str:
        return {"on_air": "播出中", "filler": "垫片", "slate": "应急垫片", "off": "停播"}[
            self.value
        ]


_TYPE_ZH = {
    "lesson": "课程",
    "rerun": "重播",
    "break": "课间",
    "ad": "广告",
    "promo": "宣传片",
    "filler": "垫片",
    "slate": "应急垫片",
}


def type_label(event_type: str) -> str:
    return _TYPE_ZH.get(event_type, event_type)


@dataclass(frozen=True, kw_only=True)
class EventView:
    event_id: str
    type: str
    title: str
    start: datetime  # aware UTC (actual start when known, else scheduled)
    end: datetime
    asset_id: str | None

    def as_json(self) -> dict[str, object]:
        return {
            "event_id": self.event_id,
            "type": self.type,
            "type_zh": type_label(self.type),
            "title": self.title,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "asset_id": self.asset_id,
        }


@dataclass(frozen=True, kw_only=True)
class Alarm:
    source: str  # tr101290 | fallback | output | asrun
    severity: str  # error | warning
    message: str
    at: datetime | None = None

    def as_json(self) -> dict[str, object]:
        return {
            "source": self.source,
            "severity": self.severity,
            "message": self.message,
            "at": self.at.isoformat() if self.at else None,
        }


@dataclass(frozen=True, kw_only=True)
class TrCount:
    """One TR 101 290 check's error count, from the live TS monitor."""

    check_id: str
    name: str
    priority: int
    count: int


@dataclass(frozen=True, kw_only=True)
class ChannelStatus:
    channel_id: str
    name_zh: str
    name_en: str
    checked_at: datetime
    state: OnAirState
    now: EventView | None
    next: EventView | None
    mux_rate_bps: int
    output_bitrate_bps: float | None
    output_age_seconds: float | None
    fallbacks_today: int
    fallbacks_total: int
    tr101290: tuple[TrCount, ...] = ()
    asrun_lag_seconds: float | None = None
    asrun_unsynced: int | None = None
    alarms: tuple[Alarm, ...] = ()
    merge: dict[str, Any] | None = None  # the ST 2022-7 receiver's counters (var/merge/ID.json)

    @property
    def remaining_seconds(self) -> float | None:
        if self.now is None:
            return None
        return max(0.0, (self.now.end - self.checked_at).total_seconds())

    def as_json(self) -> dict[str, object]:
        return {
            "channel_id": self.channel_id,
            "name_zh": self.name_zh,
            "name_en": self.name_en,
            "checked_at": self.checked_at.isoformat(),
            "state": self.state.value,
            "state_zh": self.state.label_zh,
            "now": self.now.as_json() if self.now else None,
            "next": self.next.as_json() if self.next else None,
            "remaining_seconds": self.remaining_seconds,
            "mux_rate_bps": self.mux_rate_bps,
            "output_bitrate_bps": self.output_bitrate_bps,
            "output_age_seconds": self.output_age_seconds,
            "fallbacks_today": self.fallbacks_today,
            "fallbacks_total": self.fallbacks_total,
            "tr101290": [
                {"check_id": t.check_id, "name": t.name, "priority": t.priority, "count": t.count}
                for t in self.tr101290
            ],
            "asrun_lag_seconds": self.asrun_lag_seconds,
            "asrun_unsynced": self.asrun_unsynced,
            "alarms": [a.as_json() for a in self.alarms],
        }


@dataclass(frozen=True, kw_only=True)
class Picture:
    jpeg: bytes
    taken_at: datetime  # when it was decoded
    source: str  # the output file it came from

    @property
    def etag(self) -> str:
        return '"' + hashlib.sha256(self.jpeg).hexdigest()[:32] + '"'


class LiveStatusSource(Protocol):
    """Plug-in point: the live status of every channel (see the module docstring)."""

    def snapshot(self) -> Sequence[ChannelStatus]: ...


class PictureSource(Protocol):
    """Plug-in point: a current picture of a channel's real output, or None."""

    def picture(self, channel_id: str) -> Picture | None: ...


# -- reading what playout writes ---------------------------------------------------------


def output_files(channel: Channel) -> list[Path]:
    """The channel's output files, newest first: HLS segments (by sequence) or a TS file."""
    for scheme in ("hls", "file"):
        for output in channel.outputs:
            try:
                spec = parse_output_url(output.url, output.kind)
            except ValueError:
                continue
            if spec.scheme != scheme or not spec.path:
                continue
            path = Path(spec.path)  # relative paths are relative to the station's cwd, as playout
            if scheme == "file":
                return [path] if path.is_file() else []
            try:
                names = sorted(
                    (p.name for p in os.scandir(path) if p.name.endswith(".ts")), reverse=True
                )
            except OSError:
                return []
            return [path / n for n in names]
    return []


def _playlist_bitrate(segments_dir: Path) -> float | None:
    """Bytes over EXTINF seconds of the newest (up to 3) published segments."""
    from playout.outputs.hls import PLAYLIST, parse_playlist

    try:
        playlist = parse_playlist((segments_dir / PLAYLIST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    total_bytes = 0
    total_seconds = 0.0
    for segment in playlist.segments[-3:]:
        try:
            size = (segments_dir / segment.uri).stat().st_size
        except OSError:
            continue
        total_bytes += size
        total_seconds += segment.duration
    if total_seconds <= 0:
        return None
    return total_bytes * 8 / total_seconds


class _Rundowns:
    """Compiled rundowns, parsed once per file version (path, mtime, size)."""

    def __init__(self, rundown_dir: Path) -> None:
        self.rundown_dir = rundown_dir
        self._cache: dict[Path, tuple[tuple[float, int], Rundown | None]] = {}
        self._lock = threading.Lock()

    def get(self, channel_id: str, day: date) -> Rundown | None:
        path = rundown_path(self.rundown_dir, channel_id, day)
        try:
            stat = path.stat()
        except OSError:
            return None
        key = (stat.st_mtime, stat.st_size)
        with self._lock:
            cached = self._cache.get(path)
            if cached and cached[0] == key:
                return cached[1]
        try:
            rundown: Rundown | None = Rundown.load(path)
        except RundownError as exc:
            logger.warning("multiviewer: %s", exc)
            rundown = None
        with self._lock:
            self._cache[path] = (key, rundown)
        return rundown


class JournalTail:
    """Follows one as-run journal incrementally (new complete lines only)."""

    def __init__(self, path: Path, *, keep: int = 500) -> None:
        self.path = path
        self._offset = 0
        self._inode: int | None = None
        self.seq = 0
        self.first: AsRunRecord | None = None
        self.last: AsRunRecord | None = None
        self.fallbacks_total = 0
        self.fallbacks_by_day: dict[date, int] = {}
        self.recent: deque[tuple[int, AsRunRecord]] = deque(maxlen=keep)
        self._zone: ZoneInfo | None = None
        self._lock = threading.Lock()

    def refresh(self, zone: ZoneInfo) -> None:
        with self._lock:
            self._zone = zone
            try:
                stat = self.path.stat()
            except OSError:
                return
            if stat.st_ino != self._inode or stat.st_size < self._offset:
                self._reset(stat.st_ino)  # a new or rewritten journal: read it again
            if stat.st_size == self._offset:
                return
            with self.path.open("rb") as fh:
                fh.seek(self._offset)
                while self._offset < stat.st_size:  # in chunks: a year's journal is big
                    data = fh.read(min(4 * 1024 * 1024, stat.st_size - self._offset))
                    complete = data.rfind(b"\n") + 1  # a torn last line waits for its end
                    if not complete:
                        break
                    for line in data[:complete].splitlines():
                        self._take(line, zone)
                    self._offset += complete
                    fh.seek(self._offset)

    def _reset(self, inode: int) -> None:
        self._inode = inode
        self._offset = 0
        self.seq = 0
        self.first = None
        self.last = None
        self.fallbacks_total = 0
        self.fallbacks_by_day.clear()
        self.recent.clear()

    def _take(self, line: bytes, zone: ZoneInfo) -> None:
        try:
            raw = json.loads(line)
            record = AsRunRecord.from_json(raw["record"])
            seq = int(raw["seq"])
        except (ValueError, KeyError, TypeError) as exc:
            logger.warning("%s: unreadable as-run line (%s): skipped", self.path, exc)
            return
        self.seq, self.last = seq, record
        if self.first is None:
            self.first = record
        self.recent.append((seq, record))
        if record.outcome is AsRunOutcome.SUBSTITUTED:
            self.fallbacks_total += 1
            day = record.scheduled_start.astimezone(zone).date()
            self.fallbacks_by_day[day] = self.fallbacks_by_day.get(day, 0) + 1


def record_end(record: AsRunRecord) -> datetime:
    return record.actual_start + timedelta(seconds=record.duration_frames / FPS)


@dataclass(frozen=True, kw_only=True)
class _Mark:
    record: AsRunRecord
    aired_frames: int
    age: float  # seconds since it was written


def _read_mark(path: Path, wall: float) -> _Mark | None:
    try:
        stat = path.stat()
        raw = json.loads(path.read_text(encoding="utf-8"))
        return _Mark(
            record=AsRunRecord.from_json(raw["record"]),
            aired_frames=int(raw.get("aired_frames", 0)),
            age=max(0.0, wall - stat.st_mtime),
        )
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        logger.debug("%s unreadable: %s", path, exc)
        return None


def _latest_summary(path: Path) -> object:
    """The last complete line of the live monitor's per-minute summaries (JSON lines)."""
    with path.open("rb") as fh:
        fh.seek(0, 2)
        fh.seek(max(0, fh.tell() - 65536))
        lines = [line for line in fh.read().split(b"\n") if line.strip()]
    return json.loads(lines[-1]) if lines else {}


def _monitor_counts(path: Path) -> tuple[tuple[TrCount, ...], float | None]:
    """TR 101 290 counts and the measured bitrate: a TsReport JSON if there is one, else
    the live monitor's newest per-minute summary (``var/monitor/<channel>.jsonl``)."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        try:
            raw = _latest_summary(path.with_suffix(".jsonl"))
        except FileNotFoundError:
            return (), None
        except (OSError, ValueError) as exc:
            logger.warning("%s unreadable: %s", path.with_suffix(".jsonl"), exc)
            return (), None
        if isinstance(raw, dict) and isinstance(raw.get("bitrate_bps"), int | float):
            raw["bitrate"] = {"total_bps": raw["bitrate_bps"]}
    except (OSError, ValueError) as exc:
        logger.warning("%s unreadable: %s", path, exc)
        return (), None
    counts: list[TrCount] = []
    for check in raw.get("checks", []) if isinstance(raw, dict) else []:
        try:
            priority = int(check.get("priority", 0))
            if priority not in (1, 2):
                continue
            counts.append(
                TrCount(
                    check_id=str(check.get("check_id", "")),
                    name=str(check.get("name", "")),
                    priority=priority,
                    count=int(check.get("count", 0)),
                )
            )
        except (AttributeError, TypeError, ValueError):
            continue
    bitrate = None
    if isinstance(raw, dict) and isinstance(raw.get("bitrate"), dict):
        value = raw["bitrate"].get("total_bps")
        bitrate = float(value) if isinstance(value, int | float) else None
    return tuple(counts), bitrate


def _merge_status(path: Path) -> dict[str, Any] | None:
    """The ST 2022-7 receiver's status file (compliance.receive_cli), if it runs here."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        logger.warning("%s unreadable: %s", path, exc)
        return None
    return raw if isinstance(raw, dict) else None


def _title(event: RundownEvent) -> str:
    if event.si is not None and event.si.title:
        return event.si.title
    if event.media is not None and event.media.title:
        return event.media.title
    return type_label(event.type.value)


def _view(rundown: Rundown, event: RundownEvent, start: datetime | None = None) -> EventView:
    begin = start or rundown.wall_clock(event.start_frame)
    return EventView(
        event_id=event.event_id,
        type=event.type.value,
        title=_title(event),
        start=begin,
        end=begin + timedelta(seconds=event.duration_frames / rundown.fps),
        asset_id=event.media.asset_id if event.media else None,
    )


class PlayoutFiles:
    """The default LiveStatusSource: reads the files playout writes (module docstring)."""

    def __init__(
        self,
        *,
        registry: ChannelRegistry,
        var_dir: Path,
        zone: ZoneInfo,
        clock: Clock,
        sessions: sessionmaker[Session] | None = None,
        stale_after: float = STALE_SECONDS,
        wall: Callable[[], float] = time.time,
        cache_seconds: float = 1.0,
    ) -> None:
        self.registry = registry
        self.var_dir = var_dir
        self.zone = zone
        self.clock = clock
        self._db = sessions
        self.stale_after = stale_after
        self._wall = wall
        self._rundowns = _Rundowns(var_dir / "rundowns")
        self._journals: dict[str, JournalTail] = {}
        self._cache_seconds = cache_seconds
        self._cached: tuple[float, list[ChannelStatus]] | None = None
        self._lock = threading.Lock()
        self._file_rates: dict[str, tuple[float, int, float | None]] = {}

    def snapshot(self) -> list[ChannelStatus]:
        with self._lock:
            mono = time.monotonic()
            if self._cached and mono - self._cached[0] < self._cache_seconds:
                return self._cached[1]
            heads = self._db_heads()
            result = [self._status(channel, heads.get(channel.id)) for channel in self.registry]
            self._cached = (mono, result)
            return result

    def journal(self, channel_id: str) -> JournalTail:
        tail = self._journals.get(channel_id)
        if tail is None:
            tail = JournalTail(journal_path(self.var_dir, channel_id))
            self._journals[channel_id] = tail
        tail.refresh(self.zone)
        return tail

    def _db_heads(self) -> dict[str, tuple[int, datetime]]:
        """Per channel: the newest as-run sequence number in the database and its end."""
        if self._db is None:
            return {}
        heads: dict[str, tuple[int, datetime]] = {}
        try:
            with self._db() as session:
                for channel in self.registry:
                    row = session.scalars(
                        select(AsRunRow)
                        .where(AsRunRow.channel_id == channel.id)
                        .order_by(AsRunRow.seq.desc())
                        .limit(1)
                    ).first()
                    if row is not None:
                        end = row.actual_start + timedelta(seconds=row.duration_frames / FPS)
                        heads[channel.id] = (row.seq, end)
        except Exception as exc:  # the dashboard must still show the channels
            logger.warning("multiviewer: as-run table unreadable: %s", exc)
        return heads

    def _status(self, channel: Channel, db_head: tuple[int, datetime] | None) -> ChannelStatus:
        now = self.clock.now()
        wall = self._wall()
        today = now.astimezone(self.zone).date()
        journal = self.journal(channel.id)
        mark = _read_mark(progress_path(journal.path), wall)
        fresh = mark is not None and mark.age <= self.stale_after
        files = output_files(channel)
        output_age = None
        if files:
            try:
                output_age = max(0.0, wall - files[0].stat().st_mtime)
            except OSError:
                output_age = None
        alive = fresh or (output_age is not None and output_age <= self.stale_after)

        rundown = self._rundowns.get(channel.id, today)
        current: EventView | None = None
        following: EventView | None = None
        state = OnAirState.OFF
        if alive and fresh and mark is not None:
            record = mark.record
            state = self._state_of(record, rundown)
            day = record.scheduled_start.astimezone(self.zone).date()
            source = rundown if day == today else self._rundowns.get(channel.id, day)
            event = _find(source, record.event_id) if source else None
            if source is not None and event is not None:
                current = _view(source, event, record.actual_start)
                following = self._after(source, event)
        elif alive:
            state = OnAirState.SLATE  # bytes flow but no event is open: the end slate
        if current is None and rundown is not None and state is not OnAirState.SLATE:
            event = rundown.event_at(rundown.frame_at(now))
            if event is not None:
                current = _view(rundown, event)
                following = self._after(rundown, event)
        elif current is None and rundown is not None:
            following = next(
                (
                    _view(rundown, e)
                    for e in rundown.events
                    if rundown.wall_clock(e.start_frame) > now
                ),
                None,
            )

        tr_counts, measured = _monitor_counts(self.var_dir / MONITOR_DIR / f"{channel.id}.json")
        bitrate = self._bitrate(channel, files, wall) if alive else None
        if bitrate is None and alive:
            bitrate = measured

        lag: float | None = None
        unsynced: int | None = None
        if self._db is not None and journal.seq:
            db_seq, db_end = db_head if db_head else (0, None)
            unsynced = max(0, journal.seq - db_seq)
            if unsynced == 0 or journal.last is None:
                lag = 0.0
            elif db_end is None and journal.first is not None:
                lag = (record_end(journal.last) - journal.first.actual_start).total_seconds()
            elif db_end is not None:
                lag = max(0.0, (record_end(journal.last) - db_end).total_seconds())

        alarms: list[Alarm] = []
        if not alive:
            why = f"no output for {output_age:.0f} s" if output_age is not None else "no output yet"
            alarms.append(Alarm(source="output", severity="error", message=f"停播 off air: {why}"))
        for count in tr_counts:
            if count.count:
                alarms.append(
                    Alarm(
                        source="tr101290",
                        severity="error" if count.priority == 1 else "warning",
                        message=f"TR 101 290 {count.check_id} {count.name}: {count.count}",
                    )
                )
        merge = _merge_status(self.var_dir / "merge" / f"{channel.id}.json")
        for alarm in merge.get("alarms", []) if merge else []:
            alarms.append(
                Alarm(
                    source="2022-7",
                    severity=str(alarm.get("severity", "warning")),
                    message=f"主备 main/backup: {alarm.get('message', '')}",
                )
            )
        for _seq, record in reversed(journal.recent):
            if len(alarms) >= 6:
                break
            if record.outcome is not AsRunOutcome.AIRED:
                alarms.append(
                    Alarm(
                        source="fallback",
                        severity="warning",
                        message=f"{record.event_id} {record.outcome.value}: {record.reason}",
                        at=record.actual_start,
                    )
                )
        return ChannelStatus(
            channel_id=channel.id,
            name_zh=channel.name_zh,
            name_en=channel.name_en,
            checked_at=now,
            state=state,
            now=current,
            next=following,
            mux_rate_bps=channel.mux_rate,
            output_bitrate_bps=bitrate,
            output_age_seconds=output_age,
            fallbacks_today=journal.fallbacks_by_day.get(today, 0),
            fallbacks_total=journal.fallbacks_total,
            tr101290=tr_counts,
            asrun_lag_seconds=lag,
            asrun_unsynced=unsynced,
            alarms=tuple(alarms),
            merge=merge,
        )

    @staticmethod
    def _state_of(record: AsRunRecord, rundown: Rundown | None) -> OnAirState:
        if record.event_type == "slate":
            return OnAirState.SLATE
        if record.event_type in ("filler", "break"):
            return OnAirState.FILLER
        if record.outcome is AsRunOutcome.SUBSTITUTED:
            # Playout fills bad media from the filler pool, or slate when the pool is empty.
            pool = rundown.filler_pool if rundown is not None else ()
            return OnAirState.FILLER if pool else OnAirState.SLATE
        return OnAirState.ON_AIR

    def _after(self, rundown: Rundown, event: RundownEvent) -> EventView | None:
        events = rundown.events
        for index, candidate in enumerate(events):
            if candidate.event_id == event.event_id:
                if index + 1 < len(events):
                    return _view(rundown, events[index + 1])
                break
        tomorrow = self._rundowns.get(rundown.channel_id, rundown.broadcast_date + timedelta(1))
        if tomorrow is not None and tomorrow.events:
            return _view(tomorrow, tomorrow.events[0])
        return None

    def _bitrate(self, channel: Channel, files: list[Path], wall: float) -> float | None:
        if not files:
            return None
        if files[0].parent.joinpath("index.m3u8").exists():
            return _playlist_bitrate(files[0].parent)
        # A file output: the growth rate between two looks at least 2 s apart.
        try:
            size = files[0].stat().st_size
        except OSError:
            return None
        previous = self._file_rates.get(channel.id)
        if previous is None:
            self._file_rates[channel.id] = (wall, size, None)
            return None
        then, old_size, rate = previous
        if wall - then >= 2.0:
            rate = max(0, size - old_size) * 8 / (wall - then)
            self._file_rates[channel.id] = (wall, size, rate)
        return rate


def _find(rundown: Rundown, event_id: str) -> RundownEvent | None:
    return next((e for e in rundown.events if e.event_id == event_id), None)


# -- pictures ------------------------------------------------------------------------------


def newest_keyframe(data: bytes) -> Any | None:
    """The newest complete keyframe in TS bytes as a PIL image (None if there is none).

    A keyframe counts as complete once another video packet follows it: the last
    one in a segment still being written may be cut off mid-picture.
    """
    import av

    try:
        with av.open(io.BytesIO(data), mode="r", format="mpegts") as container:
            if not container.streams.video:
                return None
            stream = container.streams.video[0]
            keys: list[list[Any]] = []
            try:
                for packet in container.demux(stream):
                    if packet.size == 0:
                        continue
                    if packet.is_keyframe:
                        keys.append([bytes(packet), False])
                    elif keys:
                        keys[-1][1] = True
            except av.FFmpegError as exc:  # a torn tail: keep what came before it
                logger.debug("demux stopped: %s", exc)
            complete = [k[0] for k in keys if k[1]]
            if not complete:
                return None
            decoder = stream.codec_context  # opened by the demuxer; nothing decoded yet
            frames = [*decoder.decode(av.Packet(complete[-1])), *decoder.decode(None)]
            aspect = decoder.display_aspect_ratio
    except av.FFmpegError as exc:
        logger.debug("no picture in these bytes: %s", exc)
        return None
    if not frames:
        return None
    image = frames[0].to_image()  # type: ignore[no-untyped-call]
    if aspect:  # show anamorphic SD at its display shape
        image.info["display_aspect"] = float(aspect)
    return image


def encode_jpeg(image: Any, width: int = PICTURE_WIDTH) -> bytes:
    aspect = image.info.get("display_aspect") or image.width / image.height
    height = max(2, round(width / aspect / 2) * 2)
    small = image.convert("RGB").resize((width, height))
    out = io.BytesIO()
    small.save(out, format="JPEG", quality=80)
    return out.getvalue()


def _tail(path: Path, size: int) -> bytes:
    with path.open("rb") as fh:
        length = fh.seek(0, os.SEEK_END)
        start = max(0, length - size)
        start -= start % 188  # the demuxer resyncs anyway; packet-aligned is cheaper
        fh.seek(start)
        return fh.read()


class OutputPictures:
    """The default PictureSource: the newest keyframe of the channel's real output."""

    def __init__(
        self,
        registry: ChannelRegistry,
        *,
        clock: Clock,
        max_age: float = PICTURE_MAX_AGE,
        width: int = PICTURE_WIDTH,
    ) -> None:
        self.registry = registry
        self.clock = clock
        self.max_age = max_age
        self.width = width
        self._cache: dict[str, tuple[float, Picture | None]] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def picture(self, channel_id: str) -> Picture | None:
        channel = self.registry.find(channel_id)
        if channel is None:
            return None
        with self._guard:
            lock = self._locks.setdefault(channel_id, threading.Lock())
        with lock:  # one decode per channel at a time; others wait and reuse it
            cached = self._cache.get(channel_id)
            if cached and time.monotonic() - cached[0] < self.max_age:
                return cached[1]
            picture = self._decode(channel)
            self._cache[channel_id] = (time.monotonic(), picture)
            return picture

    def _decode(self, channel: Channel) -> Picture | None:
        for path in output_files(channel)[:2]:  # the newest segment, else the one before it
            try:
                image = newest_keyframe(_tail(path, TAIL_BYTES))
            except OSError as exc:  # rotated away meanwhile
                logger.debug("%s: %s", path, exc)
                continue
            if image is not None:
                return Picture(
                    jpeg=encode_jpeg(image, self.width), taken_at=self.clock.now(), source=path.name
                )
        return None
