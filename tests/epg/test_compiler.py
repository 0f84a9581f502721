"""The rundown compiler: frame-exact, contiguous over 00:00–24:00, gaps and breaks filled."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from core.timecode import FPS
from epg.errors import NoScheduleError
from epg.rundown import DAY_FRAMES, EventType, Rundown, rundown_path
from tests.epg.conftest import DAY, G03, LESSON_FRAMES, World, good_day, minutes


def test_rundown_tiles_the_day_frame_exactly(lite: World) -> None:
    lite.load(lite.csv(good_day()))
    rundown = lite.services.compiler.compile(G03, DAY)
    rundown.check_contiguous()
    assert rundown.events[0].start_frame == 0
    assert rundown.end_frame == DAY_FRAMES
    # 00:00 is Beijing midnight: 16:00 UTC the day before.
    assert rundown.day_start.isoformat() == "2026-03-01T16:00:00+00:00"
    lessons = [e for e in rundown.events if e.type is EventType.LESSON]
    assert [e.media.asset_id for e in lessons if e.media] == ["L1", "L2", "L3"]
    first = lessons[0]
    assert first.start_frame == 8 * 3600 * FPS and first.duration_frames == LESSON_FRAMES
    assert first.hard and first.si is not None and first.si.grade == "三年级"
    assert first.eit_event_id > 0 and first.media is not None and len(first.media.sha256) == 64
    rerun = next(e for e in rundown.events if e.type is EventType.RERUN)
    assert rerun.si is not None and "重播" in rerun.si.description


def test_breaks_and_gaps_come_from_the_filler_pool(lite: World) -> None:
    lite.load(lite.csv(good_day()))
    rundown = lite.services.compiler.compile(G03, DAY)
    pool_ids = {m.asset_id for m in rundown.filler_pool}
    assert pool_ids == {"EB1", "ID1"}  # approved hd fill assets; ads and lessons never
    lesson_end = 8 * 3600 * FPS + LESSON_FRAMES
    in_break = [e for e in rundown.events if lesson_end <= e.start_frame < lesson_end + minutes(5)]
    assert sum(e.duration_frames for e in in_break) == minutes(5)
    assert all(e.gap_fill and e.type is EventType.FILLER for e in in_break)
    assert all(e.media is not None for e in rundown.events)  # a pool exists: no slate


def test_ad_break_markers_group_one_break(lite: World) -> None:
    lite.load(lite.csv(good_day()))
    rundown = lite.services.compiler.compile(G03, DAY)
    commercials = [e for e in rundown.events if e.type.is_commercial]
    assert [e.type for e in commercials] == [EventType.AD, EventType.PROMO]
    assert commercials[0].ad_break and commercials[0].ad_break == commercials[1].ad_break
    assert all(e.ad_break is None for e in rundown.events if not e.type.is_commercial)


def test_slate_when_the_pool_is_empty(lite: World) -> None:
    for ref in ("EB1", "ID1"):
        lite.services.assets.review(ref, approve=False, reviewer="审核员", at=lite.clock.now())
    lite.load(lite.csv([[G03, DAY.isoformat(), "08:00:00", "lesson", "L2", "", ""]]))
    rundown = lite.services.compiler.compile(G03, DAY)
    assert [e.type for e in rundown.events] == [EventType.SLATE, EventType.LESSON, EventType.SLATE]


def test_midnight_belongs_to_the_day_it_starts(lite: World) -> None:
    """An 00:30 lesson of 3 March is in the 3 March rundown (16:30 UTC on 2 March)."""
    next_day = DAY + timedelta(days=1)
    lite.load(lite.csv([[G03, next_day.isoformat(), "00:30:00", "lesson", "L2", "", ""]]))
    with pytest.raises(NoScheduleError):
        lite.services.compiler.compile(G03, DAY)
    rundown = lite.services.compiler.compile(G03, next_day)
    lesson = next(e for e in rundown.events if e.type is EventType.LESSON)
    assert rundown.wall_clock(lesson.start_frame).isoformat() == "2026-03-02T16:30:00+00:00"
    assert rundown.event_at(rundown.frame_at(rundown.wall_clock(lesson.start_frame))) == lesson


def test_sequential_chain_crosses_into_the_next_day(lite: World) -> None:
    d = DAY.isoformat()
    rows: list[list[object]] = [
        [G03, d, "23:40:00", "lesson", "L2", "", ""],  # ends exactly at 24:00
        [G03, "", "", "filler", "ID1", "", "sequential"],  # so this is 00:00 next day
    ]
    lite.load(lite.csv(rows))
    nxt = lite.services.compiler.compile(G03, DAY + timedelta(days=1))
    first = nxt.events[0]
    assert first.start_frame == 0 and first.media is not None and first.media.asset_id == "ID1"
    assert not first.gap_fill


def test_horizon_rundown_file_and_compile_all(lite: World) -> None:
    for offset in range(8):
        day = DAY + timedelta(days=offset)
        lite.load(lite.csv(good_day(day=day), f"d{offset}.csv"))
    rundown = lite.services.compiler.compile(G03, DAY)
    days = {e.start.date() for e in rundown.epg_horizon}
    assert len(rundown.epg_horizon) == 7 * 4  # 7 days × (3 lessons + 1 rerun)
    assert min(days) == date(2026, 3, 2) - timedelta(days=0) and len(days) == 7
    written = lite.services.compiler.compile_all(DAY, lite.services.rundown_dir)
    path = written[G03]
    assert path == rundown_path(lite.var_dir / "rundowns", G03, DAY)
    assert sum(1 for p in written.values() if p) == 1
    loaded = Rundown.load(path)
    assert loaded.events == rundown.events and loaded.epg_horizon == rundown.epg_horizon
