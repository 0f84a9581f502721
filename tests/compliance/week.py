"""A synthetic aired week on g03 (Mon 2026-03-02 … Sun 03-08), clean or with violations.

Everything goes through the production stores: assets through the library (with
review history and loudness), schedules as immutable versions (``ScheduleStore.commit``,
bypassing validation as a legacy or hand-made version would), guides through the
guide log, and the as-run through the hash-chained journal synced into the table.

Each day: four 16-minute lessons at 08:00, 08:30, 09:00, 09:30 with 眼保健操 filler
after each, an ad break at 08:21 (two 30 s ads and a promo) and at 08:51, and a
rerun at 19:00. Screen time: 80 lesson minutes, 14 min between lessons; at most
2 ad minutes in any hour. Every injection below is one violation on one day.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from channels import SAMPLE_CHANNELS_FILE, AdCategory, load_registry
from core.clock import FrozenClock
from core.timecode import FPS
from epg.guidelog import GuideKind, GuideLog, publications
from epg.rundown import EventType, StartMode
from epg.schedule import ScheduledEvent, frame_instant
from epg.store import ScheduleStore
from grading import GradingPolicy
from ingest import AssetKind, AssetLibrary, LessonMetadata, NewAsset
from playout.asrun.ledger import AsRunLedger, AsRunOutcome, AsRunRecord, journal_path
from playout.asrun.store import sync_journal
from skyclass.database import session_factory

ZONE = ZoneInfo("Asia/Shanghai")
G03 = "g03.skyclass.cn"
MONDAY = date(2026, 3, 2)
WEEK = [MONDAY + timedelta(days=n) for n in range(7)]
LOADED = datetime(2026, 3, 1, 12, 0, tzinfo=ZONE)  # schedules and reviews, before the week
AFTER = datetime(2026, 3, 10, 12, 0, tzinfo=ZONE)  # when the audit runs
LESSON = 16 * 60 * FPS
GOOD_LOUDNESS = {"integrated_lufs": -24.0, "true_peak_dbtp": -3.0, "lra": 6.0}

INJECTIONS = (
    "ad_in_lesson",  # Tue: an ad aired at 08:10, inside lesson A (08:00–08:16)
    "late_start",  # Wed: lesson B started 2 s (50 frames) late
    "unreviewed",  # Thu: lesson C's asset was approved only on Friday
    "loudness",  # Fri: lesson D's asset measures −19.5 LUFS
    "ad_minutes",  # Sat: 13 minutes of ads from 10:00
    "ad_category",  # Sun: an alcohol ad in the 08:21 break
    "guide_mismatch",  # Mon: the 06:00 XMLTV showed v1 (another lesson at 09:00), v2 aired
)


def frames(minutes: float) -> int:
    return round(minutes * 60 * FPS)


def at(day: date, clock: str) -> int:
    """Frames from 00:00 of the day to a local HH:MM[:SS]."""
    t = time.fromisoformat(clock)
    return (t.hour * 3600 + t.minute * 60 + t.second) * FPS


@dataclass(frozen=True)
class Spec:
    asset_id: str
    kind: AssetKind
    frames: int
    title: str
    category: AdCategory | None = None
    loudness: dict[str, float] = field(default_factory=lambda: dict(GOOD_LOUDNESS))
    approved_at: datetime | None = LOADED


ASSETS = (
    Spec("LA", AssetKind.LESSON, LESSON, "语文 第1课"),
    Spec("LB", AssetKind.LESSON, LESSON, "数学 第2课"),
    Spec("LC", AssetKind.LESSON, LESSON, "英语 第3课"),
    Spec("LD", AssetKind.LESSON, LESSON, "科学 第4课"),
    Spec("LX", AssetKind.LESSON, LESSON, "美术 第5课"),
    Spec("LU", AssetKind.LESSON, LESSON, "音乐 第6课"),
    Spec("LL", AssetKind.LESSON, LESSON, "体育 第7课"),
    Spec("PS", AssetKind.AD, 30 * FPS, "公益广告 爱护眼睛", AdCategory.PUBLIC_SERVICE),
    Spec("FOOD", AssetKind.AD, 30 * FPS, "牛奶广告", AdCategory.FOOD),
    Spec("ALC", AssetKind.AD, 30 * FPS, "白酒广告", AdCategory.ALCOHOL),
    Spec("PR", AssetKind.PROMO, 15 * FPS, "空中课堂 宣传片"),
    Spec("EB", AssetKind.EYE_BREAK, 5 * 60 * FPS, "眼保健操"),
)


class World:
    """A runtime over one database: satisfies compliance.cli.ComplianceRuntime."""

    def __init__(self, engine: Engine, tmp: Path, now: datetime = AFTER) -> None:
        self.engine = engine
        self.registry = load_registry(SAMPLE_CHANNELS_FILE)
        self.grading_policy = GradingPolicy()
        self.zone = ZONE
        self.media_root = tmp / "media"
        self.var_dir = tmp / "var"
        self.clock = FrozenClock(now)
        self._sessions = session_factory(engine)

    def sessions(self) -> sessionmaker[Session]:
        return self._sessions

    @property
    def library(self) -> AssetLibrary:
        return AssetLibrary(self._sessions, self.media_root)

    @property
    def store(self) -> ScheduleStore:
        return ScheduleStore(self._sessions, ZONE)

    @property
    def guides(self) -> GuideLog:
        return GuideLog(self._sessions)

    def ledger(self, channel_id: str = G03) -> AsRunLedger:
        return AsRunLedger(journal_path(self.var_dir, channel_id))


def sha(asset_id: str) -> str:
    return hashlib.sha256(asset_id.encode()).hexdigest()


def register_assets(world: World, inject: set[str]) -> None:
    for spec in ASSETS:
        if spec.asset_id == "LU" and "unreviewed" in inject:
            spec = replace(spec, approved_at=datetime(2026, 3, 6, 12, 0, tzinfo=ZONE))
        if spec.asset_id == "LL" and "loudness" in inject:
            spec = replace(spec, loudness={**GOOD_LOUDNESS, "integrated_lufs": -19.5})
        lesson = spec.kind is AssetKind.LESSON
        world.library.register(
            NewAsset(
                asset_id=spec.asset_id,
                lesson_id=None,
                kind=spec.kind,
                metadata=LessonMetadata(
                    title=spec.title,
                    grade="g03" if lesson else None,
                    subject=spec.title.split()[0] if lesson else None,
                ),
                profile="hd",
                path=world.media_root / f"{spec.asset_id}.mkv",
                sha256=sha(spec.asset_id),
                size_bytes=1000,
                duration_frames=spec.frames,
                source_name=f"{spec.asset_id}.mp4",
                source_sha256=sha(spec.asset_id),
                stream_copied=True,
                loudness_before={},
                loudness_after=spec.loudness,
                qc={},
                ad_category=spec.category,
            ),
            at=LOADED - timedelta(days=1),
        )
        if spec.approved_at is not None:
            world.library.review(
                spec.asset_id, approve=True, reviewer="审核员", at=spec.approved_at
            )


Row = tuple[str, EventType, str | None, int, bool]  # (start, type, asset, frames, fixed)


def day_rows(day: date, inject: set[str], *, version: int = 2) -> list[Row]:
    """The day's schedule; ``version=1`` is Monday's first version (guide_mismatch)."""
    weekday = day.weekday()
    lesson_c = "LU" if weekday == 3 else "LC"  # Thursday: the lesson whose review is checked
    lesson_d = "LL" if weekday == 4 else "LD"  # Friday: the lesson whose loudness is checked
    if weekday == 0 and "guide_mismatch" in inject and version == 1:
        lesson_c = "LX"  # Monday's first version had another lesson at 09:00
    second_ad = "ALC" if weekday == 6 and "ad_category" in inject else "FOOD"
    rows: list[Row] = [
        ("08:00:00", EventType.LESSON, "LA", LESSON, True),
        ("08:16:00", EventType.FILLER, "EB", 5 * 60 * FPS, True),
        ("08:21:00", EventType.AD, "PS", 30 * FPS, True),
        ("08:21:30", EventType.AD, second_ad, 30 * FPS, False),
        ("08:22:00", EventType.PROMO, "PR", 15 * FPS, False),
        ("08:30:00", EventType.LESSON, "LB", LESSON, True),
        ("08:46:00", EventType.FILLER, "EB", 5 * 60 * FPS, True),
        ("08:51:00", EventType.AD, "PS", 30 * FPS, True),
        ("08:51:30", EventType.AD, "FOOD", 30 * FPS, False),
        ("09:00:00", EventType.LESSON, lesson_c, LESSON, True),
        ("09:16:00", EventType.FILLER, "EB", 5 * 60 * FPS, True),
        ("09:30:00", EventType.LESSON, lesson_d, LESSON, True),
        ("09:46:00", EventType.FILLER, "EB", 5 * 60 * FPS, True),
        ("19:00:00", EventType.RERUN, "LA", LESSON, True),
    ]
    if weekday == 1 and "ad_in_lesson" in inject:
        rows.append(("08:10:00", EventType.AD, "PS", 30 * FPS, True))
    if weekday == 5 and "ad_minutes" in inject:
        for n in range(26):  # 26 × 30 s = 13 min from 10:00
            rows.append(
                (f"10:{n // 2:02d}:{30 * (n % 2):02d}", EventType.AD, "PS", 30 * FPS, n == 0)
            )
    rows.sort(key=lambda r: r[0])
    return rows


def scheduled(day: date, rows: list[Row]) -> tuple[ScheduledEvent, ...]:
    return tuple(
        ScheduledEvent(
            seq=seq,
            type=kind,
            start_mode=StartMode.FIXED if fixed else StartMode.SEQUENTIAL,
            start_frame=at(day, clock),
            duration_frames=length,
            asset_id=asset,
            source_row=f"week.csv row {seq + 2}",
        )
        for seq, (clock, kind, asset, length, fixed) in enumerate(rows)
    )


def asrun_of(day: date, events: tuple[ScheduledEvent, ...], inject: set[str]) -> list[AsRunRecord]:
    out = []
    for event in events:
        actual = event.start_frame
        if day.weekday() == 2 and "late_start" in inject and event.asset_id == "LB":
            actual += 2 * FPS
        out.append(
            AsRunRecord(
                channel_id=G03,
                event_id=f"{day.isoformat()}-{event.seq:04d}",
                event_type=event.type.value,
                scheduled_frame=event.start_frame,
                actual_frame=actual,
                scheduled_start=frame_instant(ZONE, day, event.start_frame),
                actual_start=frame_instant(ZONE, day, actual),
                scheduled_frames=event.duration_frames,
                duration_frames=event.duration_frames,
                asset_id=event.asset_id,
                sha256=sha(event.asset_id) if event.asset_id else None,
                outcome=AsRunOutcome.AIRED,
                ad_break=f"{G03}/{day}/break" if event.type.is_commercial else None,
            )
        )
    return out


def build_week(world: World, inject: set[str] | frozenset[str] = frozenset()) -> None:
    """Store the week (assets, schedule versions, guides, as-run) in the world's database."""
    inject = set(inject)
    unknown = inject - set(INJECTIONS)
    assert not unknown, unknown
    register_assets(world, inject)
    days = {(G03, day): scheduled(day, day_rows(day, inject)) for day in WEEK}
    versions: dict[tuple[str, date], int] = {}
    if "guide_mismatch" in inject:
        first = {(G03, MONDAY): scheduled(MONDAY, day_rows(MONDAY, inject, version=1))}
        v1 = world.store.commit(
            first | {k: v for k, v in days.items() if k[1] != MONDAY},
            created_by="编排员",
            at=LOADED,
            source_name="week.csv",
            source_sha256="0" * 64,
        )
        v2 = world.store.commit(
            {(G03, MONDAY): days[(G03, MONDAY)]},
            created_by="编排员",
            at=datetime(2026, 3, 2, 7, 0, tzinfo=ZONE),
            source_name="monday-fix.csv",
            source_sha256="1" * 64,
        )
        versions = {key: v1.number for key in days}
        monday_v2 = v2.number
    else:
        v1 = world.store.commit(
            days, created_by="编排员", at=LOADED, source_name="week.csv", source_sha256="0" * 64
        )
        versions = {key: v1.number for key in days}
        monday_v2 = v1.number
    # Guides: each day's EIT compiled at 20:00 the evening before, XMLTV pulled at 06:00.
    for day in WEEK:
        horizon = {k: v for k, v in versions.items() if day <= k[1] <= day + timedelta(days=6)}
        evening = datetime.combine(day - timedelta(days=1), time(20, 0), tzinfo=ZONE)
        morning = datetime.combine(day, time(6, 0), tzinfo=ZONE)
        for kind, when, partner in (
            (GuideKind.EIT, evening, None),
            (GuideKind.XMLTV, morning, "湖北广电"),
        ):
            world.guides.record(
                publications(
                    kind,
                    horizon,
                    channel_ids=[G03],
                    first_day=day,
                    last_day=day + timedelta(days=6),
                    document=f"{kind.value}-{day}",
                    at=when.astimezone(UTC),
                    partner=partner,
                )
            )
    if "guide_mismatch" not in inject:
        assert monday_v2 == v1.number
    ledger = world.ledger()
    for day in WEEK:
        for record in asrun_of(day, days[(G03, day)], inject):
            ledger.append(record)
    sync_journal(ledger, world.sessions())


def expected(inject: set[str] | frozenset[str]) -> set[tuple[str, str]]:
    """(code, local time of what it is about) of the finding each injection must give."""
    table = {
        "ad_in_lesson": ("ad_in_lesson", "2026-03-03T08:10:00+08:00"),
        "late_start": ("late_start", "2026-03-04T08:30:00+08:00"),
        "unreviewed": ("unreviewed", "2026-03-05T09:00:00+08:00"),
        "loudness": ("loudness", "2026-03-06T09:30:00+08:00"),
        "ad_minutes": ("ad_minutes", "2026-03-07T10:00:00+08:00"),
        "ad_category": ("ad_category", "2026-03-08T08:21:30+08:00"),
        "guide_mismatch": ("guide_mismatch", "2026-03-02T09:00:00+08:00"),
    }
    return {table[name] for name in inject}


def found(findings: list[Any], zone: ZoneInfo = ZONE) -> set[tuple[str, str]]:
    return {(f.code, f.at.astimezone(zone).isoformat()) for f in findings}
