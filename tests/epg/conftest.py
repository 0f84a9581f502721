"""EPG test world: a migrated database with lessons, fillers and ads registered directly.

Assets get fake paths and checksums: the EPG needs only their metadata and
frame counts, so these tests never touch media (or the ingest pipeline).
"""

from __future__ import annotations

import csv
import hashlib
import json
import shutil
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from channels import SAMPLE_CHANNELS_FILE, ChannelRegistry, load_registry
from core.clock import FrozenClock
from core.timecode import FPS
from epg.context import EpgServices
from grading import GradingPolicy
from ingest import AssetKind, AssetLibrary, LessonMetadata, NewAsset
from skyclass.database import make_engine, session_factory, upgrade

ZONE = ZoneInfo("Asia/Shanghai")
DAY = date(2026, 3, 2)  # a Monday
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=ZONE)
G03 = "g03.skyclass.cn"
G07 = "g07.skyclass.cn"
ZT = "zt.skyclass.cn"
HEADER = ["channel", "date", "start", "type", "asset", "duration", "start_mode"]
HEADER_ZH = ["频道", "日期", "开始时间", "类型", "节目编号", "时长", "起播方式"]

LESSON_FRAMES = (19 * 60 + 30) * FPS + 12  # 19:30 and 12 frames: off the second grid


def minutes(value: float) -> int:
    return round(value * 60 * FPS)


@dataclass(frozen=True)
class Seed:
    asset_id: str
    kind: AssetKind
    frames: int
    grade: str | None = None
    subject: str | None = None
    approved: bool = True
    profile: str = "hd"
    lesson_id: str | None = None


SEEDS = (
    Seed("L1", AssetKind.LESSON, LESSON_FRAMES, "g03", "语文", lesson_id="YW-3-1-1"),
    Seed("L2", AssetKind.LESSON, minutes(20), "g03", "数学"),
    Seed("L3", AssetKind.LESSON, minutes(18), "g03", "英语"),
    Seed("L4", AssetKind.LESSON, minutes(18), "g03", "科学"),
    Seed("LT", AssetKind.LESSON, minutes(18), None, "爱国主义教育"),
    Seed("LTS", AssetKind.LESSON, minutes(18), None, "宪法法治教育", profile="sd"),
    Seed("L7", AssetKind.LESSON, minutes(22), "g07", "物理"),
    Seed("LP", AssetKind.LESSON, minutes(18), "g03", "美术", approved=False),
    Seed("LS", AssetKind.LESSON, minutes(10), "g03", "音乐"),
    Seed("LSD", AssetKind.LESSON, minutes(18), "g03", "体育与健康", profile="sd"),
    Seed("AD1", AssetKind.AD, 30 * FPS),
    Seed("PR1", AssetKind.PROMO, 15 * FPS),
    Seed("EB1", AssetKind.EYE_BREAK, minutes(5)),
    Seed("ID1", AssetKind.IDENT, 10 * FPS),
)


def register(library: AssetLibrary, seed: Seed, media: Path) -> None:
    digest = hashlib.sha256(seed.asset_id.encode()).hexdigest()
    library.register(
        NewAsset(
            asset_id=seed.asset_id,
            lesson_id=seed.lesson_id,
            kind=seed.kind,
            metadata=LessonMetadata(
                title=f"{seed.subject or seed.kind.value} {seed.asset_id}",
                grade=seed.grade,
                subject=seed.subject,
                textbook_edition="人教版" if seed.grade else None,
                unit="第一单元" if seed.kind is AssetKind.LESSON else None,
                lesson_number=2 if seed.kind is AssetKind.LESSON else None,
                teacher="王老师" if seed.kind is AssetKind.LESSON else None,
                school="北京市第一实验小学" if seed.kind is AssetKind.LESSON else None,
            ),
            profile=seed.profile,
            path=media / f"{digest}.ts",
            sha256=digest,
            size_bytes=1000,
            duration_frames=seed.frames,
            source_name=f"{seed.asset_id}.mp4",
            source_sha256=digest,
            stream_copied=True,
            loudness_before={},
            loudness_after={},
            qc={},
        ),
        at=NOW,
    )
    if seed.approved:
        library.review(seed.asset_id, approve=True, reviewer="审核员", at=NOW)


class World:
    """Satisfies epg.context.EpgRuntime over a seeded database."""

    def __init__(self, engine: Engine, tmp: Path) -> None:
        self.engine = engine
        self.registry: ChannelRegistry = load_registry(SAMPLE_CHANNELS_FILE)
        self.grading_policy = GradingPolicy()
        self.zone = ZONE
        self.media_root = tmp / "media"
        self.var_dir = tmp / "var"
        self.clock = FrozenClock(NOW)
        self._sessions = session_factory(engine)
        self.services = EpgServices(self)
        self.tmp = tmp

    def sessions(self) -> sessionmaker[Session]:
        return self._sessions

    def seed(self, seeds: Sequence[Seed] = SEEDS) -> World:
        for seed in seeds:
            register(self.services.assets, seed, self.media_root)
        return self

    def csv(self, rows: Sequence[Sequence[object]], name: str = "week.csv") -> Path:
        return write_csv(self.tmp / name, rows)

    def load(self, path: Path, who: str = "tester") -> int:
        result = self.services.importer.load(path, created_by=who, at=self.clock.now())
        assert result.version is not None
        return result.version.number


def write_csv(
    path: Path, rows: Sequence[Sequence[object]], header: Sequence[str] = HEADER, **kw: str
) -> Path:
    encoding = kw.get("encoding", "utf-8")
    with path.open("w", encoding=encoding, newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        for row in rows:
            writer.writerow(["" if v is None else v for v in row])
    return path


def write_json(path: Path, rows: Sequence[Sequence[object]]) -> Path:
    events = [
        {k: v for k, v in zip(HEADER, row, strict=False) if v not in (None, "")} for row in rows
    ]
    path.write_text(json.dumps({"events": events}, ensure_ascii=False), encoding="utf-8")
    return path


def good_day(channel: str = G03, day: date = DAY) -> list[list[object]]:
    """A valid morning: 4 lessons with breaks, an ad break, a sequential chain."""
    d = day.isoformat()
    return [
        [channel, d, "08:00:00", "lesson", "YW-3-1-1", "", "fixed"],
        [channel, "", "", "break", "", "00:05:00", "sequential"],
        [channel, "", "", "ad", "AD1", "", "sequential"],
        [channel, "", "", "promo", "PR1", "", "sequential"],
        [channel, "", "", "filler", "EB1", "", "sequential"],
        [channel, d, "08:40:00", "lesson", "L2", "", "fixed"],
        [channel, d, "09:10:00", "lesson", "L3", "", "fixed"],
        [channel, d, "19:00:00", "rerun", "L1", "", "fixed"],
    ]


@pytest.fixture
def world(engine: Engine, tmp_path: Path) -> World:
    """Seeded world on SQLite and PostgreSQL (through the shared engine fixture)."""
    return World(engine, tmp_path).seed()


@pytest.fixture(scope="session")
def _lite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated, seeded SQLite file, copied per test (migrating each time is slow)."""
    folder = tmp_path_factory.mktemp("lite-template")
    path = folder / "lite.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    World(engine, folder).seed()
    engine.dispose()
    return path


@pytest.fixture
def lite(tmp_path: Path, _lite_template: Path) -> Iterator[World]:
    """Seeded world on SQLite only: for rules that do not depend on the database."""
    path = tmp_path / "lite.db"
    shutil.copyfile(_lite_template, path)
    engine = make_engine(f"sqlite:///{path}")
    yield World(engine, tmp_path)
    engine.dispose()


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]
