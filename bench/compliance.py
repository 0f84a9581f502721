"""Compliance benchmark: verify a 1-million-record as-run journal; audit a week of 13 channels.

    .venv/bin/python bench/compliance.py [--records N] [--database-url URL]

1. A journal of N records (default 1,000,000) is written with the ledger's chain
   (no fsync per line: generating it is not what is measured), then verified by
   ``compliance.verify.verify_channel`` (streamed, constant memory). Baseline, side by
   side: ``AsRunLedger.verify()`` (playout's own check, which builds record objects).
2. A week of the 13 sample channels (lessons, ad breaks, 眼保健操 filler, reruns:
   ~32 as-run records a channel-day) is stored through the production stores (asset
   library, schedule versions, guide log, journal synced into the table), then audited
   with every built-in auditor; each source and auditor is timed.
Everything runs in a temporary directory (and a throw-away database); nothing outside it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from channels import SAMPLE_CHANNELS_FILE, AdCategory, load_registry
from compliance.audit import AuditContext, auditors, run_audit
from compliance.verify import entry_hash, verify_channel
from core.timecode import FPS
from epg.guidelog import GuideKind, GuideLog, publications
from epg.rundown import EventType, StartMode
from epg.schedule import ScheduledEvent, frame_instant
from epg.store import ScheduleStore
from grading import GradingPolicy
from ingest import AssetKind, AssetLibrary, LessonMetadata, NewAsset
from playout.asrun.ledger import GENESIS, AsRunLedger, AsRunOutcome, AsRunRecord
from playout.asrun.store import sync_journal
from skyclass.database import make_engine, session_factory, upgrade

ZONE = ZoneInfo("Asia/Shanghai")
MONDAY = date(2026, 3, 2)
LOADED = datetime(2026, 3, 1, 12, 0, tzinfo=ZONE)
LESSON = 18 * 60 * FPS


def machine() -> str:
    load = os.getloadavg()
    return (
        f"{platform.node()} {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    )


# -- 1. verify a journal -------------------------------------------------------------------


def write_journal(path: Path, records: int) -> None:
    day_start = datetime(2026, 3, 1, 16, 0, tzinfo=UTC)
    prev = GENESIS
    with path.open("w", encoding="utf-8") as fh:
        for seq in range(1, records + 1):
            frame = (seq * 750) % (86_400 * FPS)
            at = day_start + timedelta(seconds=seq * 30)
            record = {
                "channel_id": "g03.skyclass.cn",
                "event_id": f"e{seq:08d}",
                "event_type": "lesson" if seq % 4 else "ad",
                "scheduled_frame": frame,
                "actual_frame": frame,
                "scheduled_start": at.isoformat(),
                "actual_start": at.isoformat(),
                "scheduled_frames": 750,
                "duration_frames": 750,
                "asset_id": f"A{seq % 97}",
                "sha256": "ab" * 32,
                "outcome": "aired",
                "reason": "",
                "ad_break": None,
            }
            digest = entry_hash(prev, seq, record)
            fh.write(
                json.dumps(
                    {"seq": seq, "prev": prev, "hash": digest, "record": record},
                    ensure_ascii=False,
                    sort_keys=True,
                )
                + "\n"
            )
            prev = digest


def bench_verify(tmp: Path, records: int) -> None:
    path = tmp / "g03.skyclass.cn.jsonl"
    started = time.perf_counter()
    write_journal(path, records)
    wrote = time.perf_counter() - started
    size = path.stat().st_size
    print(f"journal: {records:,} records, {size / 2**20:.0f} MiB, written in {wrote:.1f} s")
    started = time.perf_counter()
    verdict = verify_channel("g03.skyclass.cn", journal=path, table=None, now=datetime.now(UTC))
    ours = time.perf_counter() - started
    assert verdict.ok and verdict.journal_records == records, verdict.problems
    print(f"compliance verify: {ours:.2f} s, {records / ours:,.0f} records/s")
    started = time.perf_counter()
    count = AsRunLedger(path).verify()
    base = time.perf_counter() - started
    assert count == records
    print(
        f"baseline AsRunLedger.verify(): {base:.2f} s, {records / base:,.0f} records/s "
        f"(ours {base / ours:.1f}x)"
    )


# -- 2. audit a week of 13 channels --------------------------------------------------------


def register(library: AssetLibrary, asset_id: str, kind: AssetKind, frames: int,
             category: AdCategory | None = None) -> None:  # fmt: skip
    digest = hashlib.sha256(asset_id.encode()).hexdigest()
    library.register(
        NewAsset(
            asset_id=asset_id, lesson_id=None, kind=kind,
            metadata=LessonMetadata(title=f"{kind.value} {asset_id}"), profile="hd",
            path=Path(f"/media/{digest}.mkv"), sha256=digest, size_bytes=1,
            duration_frames=frames, source_name=asset_id, source_sha256=digest,
            stream_copied=True, loudness_before={},
            loudness_after={"integrated_lufs": -24.0, "true_peak_dbtp": -3.0},
            qc={}, ad_category=category,
        ),
        at=LOADED - timedelta(days=1),
    )  # fmt: skip
    library.review(asset_id, approve=True, reviewer="bench", at=LOADED)


def day_events(day: date, channel_n: int) -> tuple[ScheduledEvent, ...]:
    """6 lessons 08:00–13:00 every hour (break: 2 ads, promo, 眼保健操, filler), 2 reruns:
    144 lesson minutes, inside every band's screen-time policy, so a clean week."""
    rows: list[tuple[int, EventType, str, int]] = []
    for n in range(6):
        start = (8 * 3600 + n * 3600) * FPS
        lesson = f"L{(channel_n * 6 + n + day.toordinal()) % 40:02d}"
        rows.append((start, EventType.LESSON, lesson, LESSON))
        at = start + LESSON
        for kind, asset, frames in (
            (EventType.AD, "AD1", 30 * FPS),
            (EventType.AD, "AD2", 30 * FPS),
            (EventType.PROMO, "PR", 15 * FPS),
            (EventType.FILLER, "EB", 5 * 60 * FPS),
            (EventType.FILLER, "FILL", 30 * 60 * FPS),
        ):
            rows.append((at, kind, asset, frames))
            at += frames
    for n in range(2):
        rows.append(((18 * 3600 + n * 1800) * FPS, EventType.RERUN, f"L{n:02d}", LESSON))
    rows.sort()
    return tuple(
        ScheduledEvent(
            seq=seq, type=kind, start_mode=StartMode.FIXED, start_frame=start,
            duration_frames=frames, asset_id=asset, source_row=f"week.csv row {seq + 2}",
        )
        for seq, (start, kind, asset, frames) in enumerate(rows)
    )  # fmt: skip


def bench_audit(tmp: Path, url: str | None) -> None:
    url = url or f"sqlite:///{tmp / 'audit.db'}"
    engine = make_engine(url)
    upgrade(engine)
    sessions = session_factory(engine)
    registry = load_registry(SAMPLE_CHANNELS_FILE)
    library = AssetLibrary(sessions, tmp / "media")
    started = time.perf_counter()
    for n in range(40):
        register(library, f"L{n:02d}", AssetKind.LESSON, LESSON)
    register(library, "AD1", AssetKind.AD, 30 * FPS, AdCategory.PUBLIC_SERVICE)
    register(library, "AD2", AssetKind.AD, 30 * FPS, AdCategory.FOOD)
    register(library, "PR", AssetKind.PROMO, 15 * FPS)
    register(library, "EB", AssetKind.EYE_BREAK, 5 * 60 * FPS)
    register(library, "FILL", AssetKind.FILLER, 30 * 60 * FPS)
    days = [MONDAY + timedelta(days=d) for d in range(7)]
    week = {
        (channel.id, day): day_events(day, n) for n, channel in enumerate(registry) for day in days
    }
    version = ScheduleStore(sessions, ZONE).commit(
        week, created_by="bench", at=LOADED, source_name="week.csv", source_sha256="0" * 64
    )
    guides = GuideLog(sessions)
    ids = [c.id for c in registry]
    for day in days:
        horizon = {k: version.number for k in week if day <= k[1] <= day + timedelta(days=6)}
        for kind, hour, partner in ((GuideKind.EIT, -4, None), (GuideKind.XMLTV, 6, "湖北广电")):
            guides.record(
                publications(
                    kind, horizon, channel_ids=ids, first_day=day,
                    last_day=day + timedelta(days=6), document=f"{kind.value}-{day}",
                    at=datetime.combine(day, datetime.min.time(), tzinfo=ZONE)
                    + timedelta(hours=hour),
                    partner=partner,
                )
            )  # fmt: skip
    records = 0
    for channel in registry:
        ledger = AsRunLedger(tmp / "asrun" / f"{channel.id}.jsonl")
        for day in days:
            for event in week[(channel.id, day)]:
                instant = frame_instant(ZONE, day, event.start_frame)
                ledger.append(
                    AsRunRecord(
                        channel_id=channel.id, event_id=f"{day}-{event.seq:04d}",
                        event_type=event.type.value, scheduled_frame=event.start_frame,
                        actual_frame=event.start_frame, scheduled_start=instant,
                        actual_start=instant, scheduled_frames=event.duration_frames,
                        duration_frames=event.duration_frames, asset_id=event.asset_id,
                        sha256=None, outcome=AsRunOutcome.AIRED,
                    )
                )  # fmt: skip
                records += 1
        sync_journal(ledger, sessions)
    built = time.perf_counter() - started
    print(
        f"week: {len(registry)} channels x 7 days, {sum(len(v) for v in week.values()):,} "
        f"scheduled events, {records:,} as-run records, stored in {built:.1f} s "
        f"({engine.dialect.name})"
    )
    context = AuditContext(
        channels=list(registry), first=days[0], last=days[-1], zone=ZONE, sessions=sessions,
        grading=GradingPolicy(), now=datetime(2026, 3, 10, tzinfo=ZONE),
        media_root=tmp / "media", var_dir=tmp,
    )  # fmt: skip
    started = time.perf_counter()
    for name in ("asrun", "schedules", "assets", "guides"):
        t0 = time.perf_counter()
        getattr(context, name)
        print(f"  load {name}: {(time.perf_counter() - t0) * 1000:.0f} ms")
    for auditor in auditors():
        t0 = time.perf_counter()
        count = len(list(auditor(context)))
        print(f"  {auditor.__name__}: {(time.perf_counter() - t0) * 1000:.0f} ms, {count} findings")
    staged = time.perf_counter() - started
    fresh = AuditContext(
        channels=list(registry), first=days[0], last=days[-1], zone=ZONE, sessions=sessions,
        grading=GradingPolicy(), now=datetime(2026, 3, 10, tzinfo=ZONE),
        media_root=tmp / "media", var_dir=tmp,
    )  # fmt: skip
    started = time.perf_counter()
    report = run_audit(fresh)
    whole = time.perf_counter() - started
    print(
        f"audit --all, one week: {whole:.2f} s ({records / whole:,.0f} as-run records/s), "
        f"{len(report.findings)} findings {report.counts}; staged run {staged:.2f} s"
    )
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--database-url", default=None, help="default: SQLite in a temp dir")
    args = parser.parse_args()
    print(machine())
    with tempfile.TemporaryDirectory(prefix="bench-compliance-") as folder:
        tmp = Path(folder)
        bench_verify(tmp, args.records)
        bench_audit(tmp, args.database_url)


if __name__ == "__main__":
    main()
