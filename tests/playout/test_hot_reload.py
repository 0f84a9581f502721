"""Hot reload in the engine: a new rundown version changes future events only."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from conftest import Media
from playout_media import assert_clean, assert_continuous, build_rundown, check, ffprobe

from compliance.ledger import AsRunOutcome
from epg.rundown import EventType as T
from playout.engine import PlayoutEngine


def test_new_version_mid_lesson_changes_only_future_events(media: Media, tmp_path: Path) -> None:
    v1 = build_rundown(
        [
            ("L1", T.LESSON, media.lesson, 200),
            ("A1", T.AD, media.ad, 75),
            ("L2", T.LESSON, media.short, 100),
        ],
        ad_break={"A1": "B1"},
    )
    v2 = dataclasses.replace(
        build_rundown(
            [
                ("L1", T.LESSON, media.lesson, 200),
                ("X1", T.FILLER, media.filler, 50),
                ("L9", T.LESSON, media.short, 100),
                ("L10", T.LESSON, media.short, 25),
            ]
        ),
        schedule_version=2,
    )
    path = tmp_path / "rundown.json"
    v1.save(path)
    engine = PlayoutEngine(v1, rundown_file=path)
    data = bytearray()
    written = False
    for chunk in engine.chunks(0, duration_frames=375):
        data += chunk.data
        if not written and chunk.frame >= 100:  # L1 is on air: publish version 2
            v2.save(path)
            written = True
    assert written
    probe = ffprobe(bytes(data), tmp_path)
    assert len(probe.video) == 375
    assert_continuous(probe)
    assert_clean(check(bytes(data)))
    assert [version for _frame, version in engine.reloads] == [2]
    assert 100 <= engine.reloads[0][0] < 200  # noticed while L1 was on air
    got = {r.event_id: r for r in engine.records}
    assert list(got) == ["L1", "X1", "L9", "L10"]  # A1 and L2 of version 1 never aired
    lesson = got["L1"]
    assert (lesson.outcome, lesson.actual_frame, lesson.duration_frames) == (
        AsRunOutcome.AIRED,
        0,
        200,
    )  # the item on air finished intact
    assert "schedule version 2 loaded" in lesson.reason
    assert [(got[e].actual_frame, got[e].outcome) for e in ("X1", "L9")] == [
        (200, AsRunOutcome.AIRED),
        (250, AsRunOutcome.AIRED),
    ]


def test_unusable_or_foreign_file_keeps_the_rundown(media: Media, tmp_path: Path) -> None:
    v1 = build_rundown([("L1", T.LESSON, media.short, 100), ("L2", T.LESSON, media.short, 100)])
    path = tmp_path / "rundown.json"
    v1.save(path)
    engine = PlayoutEngine(v1, rundown_file=path)
    written = False
    for chunk in engine.chunks(0, duration_frames=200):
        if not written and chunk.frame >= 25:
            path.write_text("{ not json", encoding="utf-8")
            written = True
    assert engine.reloads == []
    assert [r.event_id for r in engine.records] == ["L1", "L2"]


def test_reload_can_be_disabled(media: Media, tmp_path: Path) -> None:
    v1 = build_rundown([("L1", T.LESSON, media.lesson, 200), ("L2", T.LESSON, media.short, 100)])
    v2 = dataclasses.replace(
        build_rundown([("L1", T.LESSON, media.lesson, 200), ("L3", T.LESSON, media.short, 100)]),
        schedule_version=2,
    )
    path = tmp_path / "rundown.json"
    v1.save(path)
    engine = PlayoutEngine(v1, rundown_file=path, hot_reload=False)
    for chunk in engine.chunks(0, duration_frames=300):
        if chunk.frame >= 50:
            v2.save(path)
    assert [r.event_id for r in engine.records] == ["L1", "L2"]
