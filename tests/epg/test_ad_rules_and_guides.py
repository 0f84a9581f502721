"""Issue #12 in the EPG: the ad rules at schedule load, and the log of published guides.

* a schedule that airs a banned ad category, or more ad minutes in a clock hour than
  the channel's policy, is refused (exit 2, row and column named) and nothing is stored;
* each compiled rundown logs the schedule versions its EIT carries, and each XMLTV
  served to a partner logs the partner, channels and versions shown (real HTTP).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from channels import AdCategory
from epg.guidelog import GuideKind, GuideLog
from ingest import AssetKind, LessonMetadata, NewAsset
from skyclass.database import make_engine, upgrade
from tests.epg.conftest import DAY, G03, NOW, ZONE, World, good_day, write_csv
from tests.epg.test_api import Served, served

__all__ = ["served"]  # the real-HTTP fixture of test_api

Run = Callable[..., Any]


def add_ad(world: World, asset_id: str, category: AdCategory, seconds: int = 30) -> None:
    digest = hashlib.sha256(asset_id.encode()).hexdigest()
    world.services.assets.register(
        NewAsset(
            asset_id=asset_id, lesson_id=None, kind=AssetKind.AD,
            metadata=LessonMetadata(title=f"广告 {asset_id}"), profile="hd",
            path=world.media_root / f"{digest}.ts", sha256=digest, size_bytes=1,
            duration_frames=seconds * 25, source_name=asset_id, source_sha256=digest,
            stream_copied=True, loudness_before={}, loudness_after={}, qc={},
            ad_category=category,
        ),
        at=NOW,
    )  # fmt: skip
    world.services.assets.review(asset_id, approve=True, reviewer="审核员", at=NOW)


@pytest.fixture
def run(cli: Run, tmp_path: Path) -> Run:
    engine = make_engine(f"sqlite:///{tmp_path / 'cli.db'}")
    upgrade(engine)
    world = World(engine, tmp_path).seed()
    add_ad(world, "MILK", AdCategory.FOOD)
    add_ad(world, "BOOZE", AdCategory.ALCOHOL)
    add_ad(world, "CRAM", AdCategory.TUTORING)
    add_ad(world, "LONG", AdCategory.FOOD, seconds=7 * 60)
    engine.dispose()
    return cli


def refused(run: Run, path: Path) -> set[tuple[str, str]]:
    result = run("schedule", "load", str(path), "--json")
    assert result.code == 2, (result.stdout, result.stderr)
    body = json.loads(result.stdout)
    return {(e["where"], e["column"]) for e in body["errors"]}


def nothing_stored(tmp_path: Path) -> None:
    from epg.store import ScheduleStore
    from skyclass.database import session_factory

    engine = make_engine(f"sqlite:///{tmp_path / 'cli.db'}")
    assert ScheduleStore(session_factory(engine), ZONE).stamp() == 0
    engine.dispose()


def test_banned_categories_are_refused_naming_row_and_column(run: Run, tmp_path: Path) -> None:
    rows = good_day()
    rows[2][4] = "BOOZE"  # row 4: the ad of the 08:16 break
    rows.insert(3, [G03, "", "", "ad", "CRAM", "", "sequential"])  # row 5: tutoring
    errors = refused(run, write_csv(tmp_path / "banned.csv", rows))
    assert errors == {("row 4", "asset"), ("row 5", "asset")}
    nothing_stored(tmp_path)
    shown = run("schedule", "load", str(tmp_path / "banned.csv"))
    assert shown.code == 2
    assert "alcohol (酒类)" in shown.stderr and "banned on g03.skyclass.cn" in shown.stderr


def test_ad_minutes_over_the_hourly_limit_are_refused(run: Run, tmp_path: Path) -> None:
    rows = good_day()
    # Two 7-minute ads in the 08:16 break: 14 ad minutes in 08:00–09:00, over 12.
    rows[2][4] = "LONG"
    rows.insert(3, [G03, "", "", "ad", "LONG", "", "sequential"])  # row 5 crosses the limit
    rows[6][2] = "08:55:00"  # the next fixed lesson moves after the longer break
    rows[7][2] = "09:25:00"
    errors = refused(run, write_csv(tmp_path / "minutes.csv", rows))
    assert errors == {("row 5", "start")}
    nothing_stored(tmp_path)
    message = run("schedule", "load", str(tmp_path / "minutes.csv")).stderr
    assert (
        "08:00–09:00" in message and "14.0 ad minutes" in message and "12 per clock hour" in message
    )
    # Within the policy (7 + 0.5 minutes) the same file loads.
    rows[3][4] = "MILK"
    ok = run("schedule", "load", str(write_csv(tmp_path / "ok.csv", rows)))
    assert ok.code == 0, ok.stderr


def test_compile_logs_the_versions_its_eit_carries(world: World) -> None:
    first = world.load(world.csv(good_day()))
    tomorrow = DAY + timedelta(days=1)
    second = world.load(world.csv(good_day(day=tomorrow), name="tomorrow.csv"))
    rundown = world.services.compiler.compile(G03, DAY)
    (logged,) = GuideLog(world.sessions()).covering([G03], DAY, DAY)
    assert logged.kind is GuideKind.EIT and logged.partner is None
    assert logged.versions == {DAY: first, tomorrow: second}
    assert (logged.first_day, logged.last_day) == (DAY, DAY + timedelta(days=6))
    assert logged.document == rundown.checksum() and logged.published_at == rundown.compiled_at
    ads = [e for e in rundown.events if e.media is not None and e.media.kind == "ad"]
    assert ads and all(e.media is not None and e.media.ad_category is None for e in ads)


def test_each_xmltv_served_is_logged_with_partner_and_versions(served: Served) -> None:
    headers = {"X-API-Key": served.key}
    log = GuideLog(served.world.sessions())
    assert log.covering([G03], DAY, DAY) == []
    with httpx.Client(base_url=served.base, timeout=10) as client:
        first = client.get(f"/epg/{G03}.xml", params={"from": DAY.isoformat(), "days": 2},
                           headers=headers)  # fmt: skip
        assert first.status_code == 200
        again = client.get(f"/epg/{G03}.xml", params={"from": DAY.isoformat(), "days": 2},
                           headers=headers | {"If-None-Match": first.headers["etag"]})  # fmt: skip
        assert again.status_code == 304
    served_log = log.covering([G03], DAY, DAY)
    assert len(served_log) == 2  # the 304 showed the partner the same guide again
    entry = served_log[0]
    assert (entry.kind, entry.partner, entry.channel_id) == (GuideKind.XMLTV, "湖北广电", G03)
    assert (entry.first_day, entry.last_day) == (DAY, DAY + timedelta(days=1))
    assert entry.versions == {DAY: 1}
    assert entry.document == first.headers["etag"].strip('"').removesuffix("-gzip")
