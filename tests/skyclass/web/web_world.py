"""The console's test world: a migrated database with users of every role, assets, schedules.

Assets are registered directly with fake media (the console needs metadata, QC
and attachments, not pictures). The channels file is the sample with its HLS
directories moved under the test's tmp dir, so nothing outside it is read.
Servers run on a loopback port (uvicorn in a thread), clients are httpx.
"""

from __future__ import annotations

import csv
import hashlib
import re
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import uvicorn
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from channels import SAMPLE_CHANNELS_FILE, ChannelRegistry, load_registry
from core.clock import Clock, FrozenClock
from core.timecode import FPS
from epg.context import EpgServices
from grading import GradingPolicy
from ingest import (
    AssetKind,
    AssetLibrary,
    Attachment,
    AttachmentKind,
    LessonMetadata,
    NewAsset,
)
from skyclass.database import session_factory
from skyclass.web.users import Role, UserStore

ZONE = ZoneInfo("Asia/Shanghai")
DAY = date(2026, 3, 2)  # a Monday
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=ZONE)
G03 = "g03.skyclass.cn"
G07 = "g07.skyclass.cn"
ZT = "zt.skyclass.cn"
PASSWORD = "正确 horse battery 7"
USERS = {"op": Role.OPERATOR, "rev": Role.REVIEWER, "comp": Role.COMPLIANCE, "adm": Role.ADMIN}
HEADER = ["channel", "date", "start", "type", "asset", "duration", "start_mode"]
LESSON_FRAMES = (19 * 60 + 30) * FPS + 12


def minutes(value: float) -> int:
    return round(value * 60 * FPS)


QC = {
    "passed": True,
    "findings": [
        {
            "severity": "warning",
            "code": "black",
            "message": "black 2.0 s",
            "start": 0.0,
            "end": 2.0,
        },
        {
            "severity": "warning",
            "code": "silence",
            "message": "silence 3 s",
            "start": 60,
            "end": 63,
        },
    ],
    "black": [{"start": 0.0, "end": 2.0}],
    "freeze": [{"start": 300.0, "end": 304.5}],
    "silence": [{"start": 60.0, "end": 63.0}, {"start": 900.0, "end": 905.0}],
    "loudness": {"integrated_lufs": -24.1, "true_peak_dbtp": -3.2, "lra": 6.5},
}
LOUD_BEFORE = {
    "integrated_lufs": -17.9,
    "true_peak_dbtp": 0.4,
    "lra": 8.1,
    "max_short_term_lufs": -12,
}
LOUD_AFTER = {
    "integrated_lufs": -24.1,
    "true_peak_dbtp": -3.2,
    "lra": 6.5,
    "max_short_term_lufs": -19,
}


@dataclass(frozen=True)
class Seed:
    asset_id: str
    kind: AssetKind
    frames: int
    grade: str | None = None
    subject: str | None = None
    approved: bool = True
    lesson_id: str | None = None
    attachments: bool = False


SEEDS = (
    Seed(
        "L1", AssetKind.LESSON, LESSON_FRAMES, "g03", "语文", lesson_id="YW-3-1-1", attachments=True
    ),
    Seed("L2", AssetKind.LESSON, minutes(20), "g03", "数学"),
    Seed("L3", AssetKind.LESSON, minutes(18), "g03", "英语"),
    Seed("LP", AssetKind.LESSON, minutes(18), "g03", "美术", approved=False),
    Seed("AD1", AssetKind.AD, 30 * FPS),
    Seed("PR1", AssetKind.PROMO, 15 * FPS),
    Seed("EB1", AssetKind.EYE_BREAK, minutes(5)),
)


def channels_file(tmp: Path) -> Path:
    """The sample channels with their HLS directories under tmp (nothing read outside it)."""
    text = SAMPLE_CHANNELS_FILE.read_text(encoding="utf-8")
    moved = text.replace('"hls:var/', f'"hls:{tmp.as_posix()}/var/')
    path = tmp / "channels.toml"
    path.write_text(moved, encoding="utf-8")
    return path


class WebWorld:
    """Satisfies epg.context.EpgRuntime (what create_app needs) over a seeded database."""

    def __init__(self, engine: Engine, tmp: Path, clock: Clock | None = None) -> None:
        self.engine = engine
        self.tmp = tmp
        self.channels_file = channels_file(tmp)
        self.registry: ChannelRegistry = load_registry(self.channels_file)
        self.grading_policy = GradingPolicy()
        self.zone = ZONE
        self.media_root = tmp / "media"
        self.var_dir = tmp / "var"
        self.clock: Any = clock or FrozenClock(NOW)
        self._sessions = session_factory(engine)
        self.epg = EpgServices(self)

    def sessions(self) -> sessionmaker[Session]:
        return self._sessions

    def seed(self) -> WebWorld:
        library = self.epg.assets
        for seed in SEEDS:
            register(library, seed, self.media_root)
        users = UserStore(self._sessions)
        for name, role in USERS.items():
            users.add(name, role, PASSWORD, at=self.clock.now())
        return self

    def csv(self, rows: Sequence[Sequence[object]], name: str = "week.csv") -> Path:
        path = self.tmp / name
        with path.open("w", encoding="utf-8", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(HEADER)
            for row in rows:
                writer.writerow(["" if v is None else v for v in row])
        return path


def register(library: AssetLibrary, seed: Seed, media: Path) -> None:
    digest = hashlib.sha256(seed.asset_id.encode()).hexdigest()
    attachments: tuple[Attachment, ...] = ()
    if seed.attachments:
        media.mkdir(parents=True, exist_ok=True)
        sheet = media / "任务单.pdf"
        sheet.write_bytes(b"%PDF-1.4\n% task sheet of " + seed.asset_id.encode() + b"\n%%EOF\n")
        drill = media / "练习.txt"
        drill.write_text("1. 读课文。\n2. 写生字。\n", encoding="utf-8")
        attachments = (
            Attachment(
                kind=AttachmentKind.TASK_SHEET,
                filename="学习任务单.pdf",
                media_type="application/pdf",
                sha256=hashlib.sha256(sheet.read_bytes()).hexdigest(),
                size_bytes=sheet.stat().st_size,
                path=sheet,
            ),
            Attachment(
                kind=AttachmentKind.EXERCISES,
                filename="课后练习.txt",
                media_type="text/plain",
                sha256=hashlib.sha256(drill.read_bytes()).hexdigest(),
                size_bytes=drill.stat().st_size,
                path=drill,
            ),
        )
    lesson = seed.kind is AssetKind.LESSON
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
                unit="第一单元" if lesson else None,
                lesson_number=2 if lesson else None,
                teacher="王老师" if lesson else None,
                school="北京市第一实验小学" if lesson else None,
            ),
            profile="hd",
            path=media / f"{digest}.mkv",
            sha256=digest,
            size_bytes=1000,
            duration_frames=seed.frames,
            source_name=f"{seed.asset_id}.mp4",
            source_sha256=digest,
            stream_copied=True,
            loudness_before=LOUD_BEFORE,
            loudness_after=LOUD_AFTER,
            qc=QC,
            attachments=attachments,
        ),
        at=NOW,
    )
    if seed.approved:
        library.review(seed.asset_id, approve=True, reviewer="审核员", at=NOW)


def good_day(channel: str = G03, day: date = DAY) -> list[list[object]]:
    """A valid morning: lessons with breaks, an ad break, a sequential chain."""
    d = day.isoformat()
    return [
        [channel, d, "08:00:00", "lesson", "YW-3-1-1", "", "fixed"],
        [channel, "", "", "break", "", "00:05:00", "sequential"],
        [channel, "", "", "ad", "AD1", "", "sequential"],
        [channel, "", "", "promo", "PR1", "", "sequential"],
        [channel, "", "", "filler", "EB1", "", "sequential"],
        [channel, d, "08:40:00", "lesson", "L2", "", "fixed"],
        [channel, d, "09:10:00", "lesson", "L3", "", "fixed"],
    ]


def bad_day() -> list[list[object]]:
    """good_day with an unknown asset in spreadsheet row 4 (the ad)."""
    rows = good_day()
    rows[2][4] = "NO-SUCH-AD"
    return rows


# -- a real server on a loopback port --------------------------------------------------


@contextmanager
def serve(app: Any) -> Iterator[str]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False)
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@contextmanager
def login(base: str, name: str, password: str = PASSWORD, **headers: str) -> Iterator[httpx.Client]:
    """An httpx client logged in through the JSON API, sending the CSRF header on changes."""
    with httpx.Client(base_url=base, timeout=30, headers=headers) as client:
        answer = client.post("/api/login", json={"name": name, "password": password})
        assert answer.status_code == 200, answer.text
        client.headers["X-CSRF-Token"] = answer.json()["csrf_token"]
        yield client


def form_token(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "no csrf_token field in the page"
    return found.group(1)
