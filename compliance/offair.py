"""Audits of the off-air recording (播出录像稽核): what the signal itself proves.

Four finding codes, each read from the recorded bytes rather than from playout's word:

* ``cue_in_lesson`` (critical): a SCTE-35 cue in the recording (decoded by threefive)
  whose splice time falls inside a lesson's aired span (from the as-run);
* ``offair_loudness`` (major): BS.1770 of the recorded audio, per aired item and per
  hour, outside GY/T 282;
* ``offair_gap`` (major from 10 s, else minor): the recorder's gap journal, and
  stretches of the period that nobody recorded;
* ``ts_errors``: TR 101 290 priority 1 (major) and 2 (minor) errors in each hour file.

``audit_offair`` returns them with the measurements behind them (reports draw the
loudness graph from those); ``offair_findings`` is the list alone, for
``compliance audit``. A channel that was never recorded yields nothing unless
``require_recording`` is set (then the whole period is an ``offair_gap``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from compliance.findings import Finding, Severity
from compliance.offair_loudness import (
    AiredSpan,
    LoudnessAudit,
    LoudnessLimits,
    LoudnessReading,
    OffairLoudness,
)
from compliance.recording import Gap, RecordingStore, recordings_root
from compliance.retention import hour_of
from compliance.splices import RecordedCue, recorded_cues
from compliance.timemap import RecordingTimes
from core.timecode import FPS
from epg.rundown import EventType
from mpegts import SCTE35_STREAM_TYPE
from mpegts.monitor import TsMonitorConfig, check_file
from playout.asrun.journal import ended_by_stop
from playout.asrun.ledger import AsRunLedger, JournalEntry, journal_path

logger = logging.getLogger(__name__)

TS_CACHE_SUFFIX = ".tr101290.json"
SETTLE = timedelta(minutes=2)  # an hour file is final this long after its hour ended


@dataclass(frozen=True, kw_only=True)
class OffairConfig:
    """Tolerances of the off-air audits."""

    #: A cue within this many seconds of a lesson's edge is at the edge (arrival jitter,
    #: network delay), not inside it.
    cue_tolerance_s: float = 0.5
    gap_major_s: float = 10.0
    #: An unrecorded stretch shorter than this is not reported (the gap threshold).
    min_unrecorded_s: float = 1.0
    loudness: LoudnessLimits = field(default_factory=LoudnessLimits)
    measure_loudness: bool = True
    check_ts: bool = True
    require_recording: bool = False
    ts_config: TsMonitorConfig = field(default_factory=TsMonitorConfig)


@dataclass(frozen=True, kw_only=True)
class TsErrorSummary:
    """The failed TR 101 290 checks of one hour file (what ``ts_errors`` reports)."""

    file: Path
    checks: tuple[dict[str, Any], ...]  # check_id, name, priority, count, examples


@dataclass(frozen=True, kw_only=True)
class OffairAudit:
    """Findings of the off-air audit of one channel and period, with what they rest on."""

    channel_id: str
    start: datetime
    end: datetime
    findings: tuple[Finding, ...]
    loudness: OffairLoudness
    cues: tuple[RecordedCue, ...]
    gaps: tuple[Gap, ...]
    ts_errors: tuple[TsErrorSummary, ...]
    files: tuple[Path, ...]


def load_asrun(var_dir: Path, channel_id: str) -> list[JournalEntry]:
    """The channel's as-run journal entries (record + hash), oldest first."""
    return list(AsRunLedger(journal_path(var_dir, channel_id)).entries())


def aired_spans(entries: Sequence[JournalEntry], start: datetime, end: datetime) -> list[AiredSpan]:
    """Items that were on air during [start, end), with their as-run hashes."""
    spans = []
    for entry in entries:
        r = entry.record
        if r.duration_frames <= 0:
            continue
        span_end = r.actual_start + timedelta(seconds=r.duration_frames / FPS)
        if span_end <= start or r.actual_start >= end:
            continue
        spans.append(
            AiredSpan(
                event_id=r.event_id,
                event_type=r.event_type,
                asset_id=r.asset_id,
                start=r.actual_start,
                end=span_end,
                asrun_hash=entry.hash,
            )
        )
    spans.sort(key=lambda s: s.start)
    return spans


def _is_lesson(event_type: str) -> bool:
    try:
        return EventType(event_type).is_lesson
    except ValueError:
        return False


def _final(path: Path, now: datetime) -> bool:
    start = hour_of(path)
    return start is not None and start + timedelta(hours=1) + SETTLE <= now


def _rel(path: Path, store: RecordingStore) -> str:
    try:
        return path.relative_to(store.channel_dir).as_posix()
    except ValueError:
        return str(path)


# --------------------------------------------------------------------------- gaps


def _unrecorded(
    store: RecordingStore, gaps: Sequence[Gap], start: datetime, end: datetime
) -> list[tuple[datetime, datetime]]:
    """Stretches of [start, end) covered neither by a segment nor by a journaled gap."""
    covered = sorted(
        [(s.first_arrival, s.last_arrival) for s in store.segments(start, end)]
        + [(g.start, g.end) for g in gaps]
    )
    holes = []
    cursor = start
    for lo, hi in covered:
        if lo > cursor:
            holes.append((cursor, min(lo, end)))
        cursor = max(cursor, hi)
        if cursor >= end:
            break
    if cursor < end:
        holes.append((cursor, end))
    return [(a, b) for a, b in holes if b > a]


def gap_findings(
    channel_id: str,
    store: RecordingStore,
    start: datetime,
    end: datetime,
    config: OffairConfig,
    on_air: Sequence[tuple[datetime, datetime]] | None = None,
) -> tuple[list[Gap], list[Finding]]:
    """``offair_gap`` for every journaled gap and every unrecorded stretch in the period.

    With ``on_air`` (the channel's air windows, ``air_windows``), only what falls inside
    one counts: a recorder waiting for a channel that has not started yet, or that an
    operator stopped, is not a gap in the air.
    """
    gaps = store.gaps(start, end)
    windows = list(on_air) if on_air is not None else [(start, end)]
    findings = []
    for lo_air, hi_air in windows:
        for g in gaps:
            lo, hi = max(g.start, lo_air), min(g.end, hi_air)
            clipped = (lo, hi) != (g.start, g.end)
            # What is left of a gap at an air window's edge after clipping is held to
            # the same threshold as an unrecorded stretch: the last datagram of a stopped
            # channel arrives a few ms before its as-run end (one datagram carries ~7 ms).
            if hi > lo and (not clipped or (hi - lo).total_seconds() >= config.min_unrecorded_s):
                findings.append(_gap_finding(channel_id, lo, hi, g.kind, g.source, config))
        for lo, hi in _unrecorded(store, gaps, max(start, lo_air), min(end, hi_air)):
            if (hi - lo).total_seconds() >= config.min_unrecorded_s:
                findings.append(_gap_finding(channel_id, lo, hi, "not_recorded", "", config))
    return gaps, findings


def air_windows(entries: Sequence[JournalEntry]) -> list[tuple[datetime, datetime]]:
    """When the channel claims air: from an as-run start to the end of the item an
    operator's stop cut short (``playout.asrun.journal.ended_by_stop``), then from the
    next start on, and so on. A crash does not end a window: the time until the
    restart is air the channel owed, so a gap in it is reported."""
    windows: list[tuple[datetime, datetime]] = []
    lo: datetime | None = None
    hi: datetime | None = None
    for entry in sorted(entries, key=lambda e: e.record.actual_start):
        r = entry.record
        begin = r.actual_start.astimezone(UTC)
        finish = begin + timedelta(seconds=r.duration_frames / FPS)
        if lo is None:  # in start order: a window's first item is where it starts
            lo = begin
        hi = finish if hi is None else max(hi, finish)
        if ended_by_stop(r):
            windows.append((lo, hi))
            lo = hi = None
    if lo is not None and hi is not None:
        windows.append((lo, hi))
    return windows


def _gap_finding(
    channel_id: str,
    start: datetime,
    end: datetime,
    kind: str,
    source: str,
    config: OffairConfig,
) -> Finding:
    seconds = (end - start).total_seconds()
    what = {
        "reception": "信号中断 no signal received",
        "start": "录像开始时无信号 no signal when recording started",
        "stop": "录像停止时无信号 no signal when recording stopped",
        "not_recorded": "未录像 nothing was recorded",
    }.get(kind, kind)
    return Finding(
        code="offair_gap",
        severity=Severity.MAJOR if seconds >= config.gap_major_s else Severity.MINOR,
        channel_id=channel_id,
        at=start,
        message=f"录像缺失 {seconds:.1f} s: {what} ({start.isoformat()} – {end.isoformat()})",
        evidence={
            "start": start.isoformat(),
            "end": end.isoformat(),
            "seconds": round(seconds, 3),
            "kind": kind,
            "source": source,
        },
        key=("start", "end", "kind"),
    )


# --------------------------------------------------------------------------- cues


def cue_findings(
    channel_id: str,
    cues: Sequence[RecordedCue],
    entries: Sequence[JournalEntry],
    store: RecordingStore,
    config: OffairConfig,
) -> list[Finding]:
    """``cue_in_lesson``: a recorded splice whose time falls inside a lesson's aired span."""
    lessons = [
        e for e in entries if _is_lesson(e.record.event_type) and e.record.duration_frames > 0
    ]
    tolerance = timedelta(seconds=config.cue_tolerance_s)
    findings = []
    for cue in cues:
        if cue.splice_at is None or cue.cancel:
            continue
        for entry in lessons:
            r = entry.record
            lesson_end = r.actual_start + timedelta(seconds=r.duration_frames / FPS)
            if not r.actual_start + tolerance < cue.splice_at < lesson_end - tolerance:
                continue
            into = (cue.splice_at - r.actual_start).total_seconds()
            kind = "out" if cue.out_of_network else "in" if cue.out_of_network is False else "-"
            findings.append(
                Finding(
                    code="cue_in_lesson",
                    severity=Severity.CRITICAL,
                    channel_id=channel_id,
                    at=cue.splice_at,
                    message=(
                        f"课程中出现广告切点 SCTE-35 {cue.command} ({kind}) inside lesson "
                        f"{r.event_id}, {into:.1f} s after it began"
                    ),
                    evidence={
                        "event_id": r.event_id,
                        "asset_id": r.asset_id,
                        "asrun_seq": entry.seq,
                        "asrun_hash": entry.hash,
                        "lesson_start": r.actual_start.isoformat(),
                        "lesson_end": lesson_end.isoformat(),
                        "splice_at": cue.splice_at.isoformat(),
                        "seconds_into_lesson": round(into, 3),
                        "file": _rel(cue.path, store),
                        "byte_offset": cue.byte_offset,
                        "cue": {
                            k: v
                            for k, v in cue.as_json().items()
                            if k not in ("file", "byte_offset", "splice_at")
                        },
                    },
                    key=("event_id", "file", "byte_offset"),
                )
            )
    return findings


# ---------------------------------------------------------------------- loudness


def loudness_findings(
    channel_id: str, loudness: OffairLoudness, config: OffairConfig
) -> list[Finding]:
    """``offair_loudness`` for every item and hour reading outside GY/T 282."""
    findings = []
    for reading in (*loudness.items, *loudness.hours):
        problems = config.loudness.problems(reading)
        if not problems:
            continue
        what = f"{reading.event_id}" if reading.scope == "item" else f"hour {reading.key}"
        findings.append(
            Finding(
                code="offair_loudness",
                severity=Severity.MAJOR,
                channel_id=channel_id,
                at=reading.start,
                message=f"播出响度超标 {what}: {'; '.join(problems)} (measured off air)",
                evidence={**_reading_evidence(reading), "problems": problems},
                key=("scope", "key"),
            )
        )
    return findings


def _reading_evidence(reading: LoudnessReading) -> dict[str, Any]:
    data = reading.as_json()
    if data.get("file"):
        data["file"] = Path(data["file"]).name
    return data


# ------------------------------------------------------------------- TS errors


def ts_summary(
    path: Path, config: OffairConfig, *, final: bool, segment_offsets: Sequence[int] = ()
) -> TsErrorSummary:
    """The failed priority 1 and 2 checks of an hour file (cached once the hour is final).

    Each recorded segment (``segment_offsets``: where the recorder's uninterrupted writes
    begin) is checked as a stream of its own: where one ends the signal stopped, which
    ``offair_gap`` reports, so the continuity counters and clocks that restart in the
    next one are not stream errors. Example byte offsets are the file's.
    """
    cache = path.with_name(path.name + TS_CACHE_SUFFIX)
    stat = path.stat()
    bounds = sorted({0, *(o for o in segment_offsets if 0 < o < stat.st_size)})
    if final:
        try:
            data = json.loads(cache.read_text(encoding="utf-8"))
            if (data["size"], data["mtime_ns"], data.get("segments")) == (
                stat.st_size,
                stat.st_mtime_ns,
                bounds,
            ):
                return TsErrorSummary(file=path, checks=tuple(data["checks"]))
        except (FileNotFoundError, ValueError, KeyError, TypeError):
            pass
    merged: dict[str, dict[str, Any]] = {}
    for lo, hi in zip(bounds, [*bounds[1:], stat.st_size], strict=True):
        report = check_file(path, config.ts_config, start=lo, stop=hi)
        for c in report.errors:
            if c.priority not in (1, 2):
                continue
            check = merged.setdefault(
                c.check_id,
                {
                    "check_id": c.check_id,
                    "name": c.name,
                    "priority": c.priority,
                    "count": 0,
                    "examples": [],
                },
            )
            check["count"] += c.count
            room = config.ts_config.max_examples - len(check["examples"])
            check["examples"] += [
                {
                    "byte_offset": None if f.byte_offset is None else lo + f.byte_offset,
                    "pid": f.pid,
                    "message": f.message,
                }
                for f in c.examples[: max(0, room)]
            ]
    checks = tuple(merged.values())
    if final:
        body = {
            "size": stat.st_size,
            "mtime_ns": stat.st_mtime_ns,
            "segments": bounds,
            "checks": list(checks),
        }
        try:
            cache.write_text(json.dumps(body, ensure_ascii=False), encoding="utf-8")
        except OSError as exc:
            logger.warning("cannot cache the TS check of %s: %s", path, exc)
    return TsErrorSummary(file=path, checks=checks)


def ts_findings(
    channel_id: str,
    summary: TsErrorSummary,
    store: RecordingStore,
    fallback_at: datetime,
) -> list[Finding]:
    """``ts_errors``: one finding per failed check per hour file, examples placed in time."""
    times = RecordingTimes.arrivals_only(summary.file)
    findings = []
    for check in summary.checks:
        examples = []
        for example in check["examples"]:
            offset = example.get("byte_offset")
            when = times.arrival(int(offset)) if offset is not None else None
            examples.append({**example, "at": when.isoformat() if when else None})
        first = next((e["at"] for e in examples if e["at"]), None)
        at = datetime.fromisoformat(first) if first else fallback_at
        priority = int(check["priority"])
        findings.append(
            Finding(
                code="ts_errors",
                severity=Severity.MAJOR if priority == 1 else Severity.MINOR,
                channel_id=channel_id,
                at=at,
                message=(
                    f"码流错误 TR 101 290 {check['check_id']} {check['name']} (priority "
                    f"{priority}) x{check['count']} in {summary.file.name}"
                ),
                evidence={
                    "file": _rel(summary.file, store),
                    "check_id": check["check_id"],
                    "name": check["name"],
                    "priority": priority,
                    "count": check["count"],
                    "examples": examples,
                },
                key=("file", "check_id"),
            )
        )
    return findings


# ------------------------------------------------------------------------ audit


def audit_offair(
    *,
    channel_id: str,
    start: datetime,
    end: datetime,
    recordings: Path,
    entries: Sequence[JournalEntry],
    now: datetime,
    config: OffairConfig | None = None,
) -> OffairAudit:
    """Every off-air audit of one channel over [start, end) (aware datetimes).

    ``recordings`` is the recordings root (``recording.recordings_root(var_dir)``),
    ``entries`` the channel's as-run (``load_asrun``), ``now`` bounds the period (what
    has not happened yet cannot be missing) and tells finished hours from the one
    being recorded.
    """
    config = config or OffairConfig()
    start, end = start.astimezone(UTC), min(end, now).astimezone(UTC)
    store = RecordingStore(recordings, channel_id)
    empty = OffairLoudness(items=(), hours=())
    if not store.exists and not config.require_recording:
        return OffairAudit(
            channel_id=channel_id,
            start=start,
            end=end,
            findings=(),
            loudness=empty,
            cues=(),
            gaps=(),
            ts_errors=(),
            files=(),
        )
    findings: list[Finding] = []
    gaps, found = (
        gap_findings(channel_id, store, start, end, config, air_windows(entries))
        if end > start
        else ([], [])
    )
    findings += found
    files = store.files(start, end)
    recorded = store.segments() if config.check_ts else []
    cues: list[RecordedCue] = []
    summaries: list[TsErrorSummary] = []
    loudness_audit = LoudnessAudit(aired_spans(entries, start, end))
    for path in files:  # one file at a time: an hour of audio is ~90 MB in memory
        final = _final(path, now)
        times = RecordingTimes.scan(
            path, section_stream_types=(SCTE35_STREAM_TYPE,), audio=config.measure_loudness
        )
        cues += [
            c for c in recorded_cues(times) if c.splice_at is None or start <= c.splice_at < end
        ]
        if config.measure_loudness:
            loudness_audit.add_file(path, times, complete=final)
        if config.check_ts:
            # where each indexed segment starts and ends: the one being recorded (not
            # indexed until it closes) starts where the last indexed one ended
            offsets = [
                o for seg in recorded if seg.path == path for o in (seg.offset, seg.end_offset)
            ]
            summary = ts_summary(path, config, final=final, segment_offsets=offsets)
            summaries.append(summary)
            hour = hour_of(path)
            fallback = hour.astimezone(UTC) if hour else start
            findings += [
                f for f in ts_findings(channel_id, summary, store, fallback) if start <= f.at < end
            ]
    findings += cue_findings(channel_id, cues, entries, store, config)
    loudness = loudness_audit.result() if config.measure_loudness else empty
    findings += loudness_findings(channel_id, loudness, config)
    findings.sort(key=lambda f: (f.at, f.code))
    return OffairAudit(
        channel_id=channel_id,
        start=start,
        end=end,
        findings=tuple(findings),
        loudness=loudness,
        cues=tuple(cues),
        gaps=tuple(gaps),
        ts_errors=tuple(summaries),
        files=tuple(files),
    )


def offair_findings(
    *,
    channel_id: str,
    start: datetime,
    end: datetime,
    var_dir: Path,
    now: datetime,
    recordings: Path | None = None,
    entries: Sequence[JournalEntry] | None = None,
    config: OffairConfig | None = None,
) -> list[Finding]:
    """The off-air findings of a channel and period, for ``compliance audit``.

    Defaults: recordings under ``var_dir/recordings``, as-run from the channel's journal.
    """
    audit = audit_offair(
        channel_id=channel_id,
        start=start,
        end=end,
        recordings=recordings or recordings_root(var_dir),
        entries=load_asrun(var_dir, channel_id) if entries is None else entries,
        now=now,
        config=config,
    )
    return list(audit.findings)
