"""Hot reload in the engine: a new rundown version changes future events only."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from conftest import Media
from playout_media import assert_clean, assert_continuous, build_rundown, check, ffprobe

from epg.rundown import EventType as T
from playout.asrun.ledger import AsRunOutcome, AsRunRecord
from playout.engine import PlayoutEngine


def test_new_version_mid_lesson_changes_only_future_events(media: Media, tmp_path: Path) -> None:
    v1 = build_rundown(
        [
            ("F0", T.FILLER, media.filler, 50),
            ("L1", T.LESSON, media.lesson, 200),
            ("A1", T.AD, media.ad, 75),
            ("L2", T.LESSON, media.short, 100),
        ],
        ad_break={"A1": "B1"},
    )
    v2 = dataclasses.replace(
        build_rundown(
            [
                ("F0", T.FILLER, media.filler, 50),
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

    def publish(record: AsRunRecord) -> None:
        if record.event_id == "F0":  # L1 goes on air now: version 2 is published
            v2.save(path)

    engine = PlayoutEngine(v1, rundown_file=path, on_record=publish)
    data = b"".join(c.data for c in engine.chunks(0, duration_frames=425))
    probe = ffprobe(data, tmp_path)
    assert len(probe.video) == 425
    assert_continuous(probe)
    assert_clean(check(data))
    assert [version for _frame, version in engine.reloads] == [2]
    assert 50 < engine.reloads[0][0] < 250  # noticed while L1 was on air
    got = {r.event_id: r for r in engine.records}
    assert list(got) == ["F0", "L1", "X1", "L9", "L10"]  # A1, L2 of version 1 never aired
    lesson = got["L1"]
    assert (lesson.outcome, lesson.actual_frame, lesson.duration_frames) == (
        AsRunOutcome.AIRED,
        50,
        200,
    )  # the item on air finished intact
    assert "schedule version 2 loaded" in lesson.reason
    assert [(got[e].actual_frame, got[e].outcome) for e in ("X1", "L9")] == [
        (250, AsRunOutcome.AIRED),
        (300, AsRunOutcome.AIRED),
    ]


def test_unusable_file_keeps_the_rundown(media: Media, tmp_path: Path) -> None:
    v1 = build_rundown([("L1", T.LESSON, media.short, 100), ("L2", T.LESSON, media.short, 100)])
    path = tmp_path / "rundown.json"
    v1.save(path)

    def spoil(record: AsRunRecord) -> None:
        path.write_text("{ not json", encoding="utf-8")

    engine = PlayoutEngine(v1, rundown_file=path, on_record=spoil)
    for _chunk in engine.chunks(0, duration_frames=200):
        pass
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
    engine = PlayoutEngine(
        v1, rundown_file=path, hot_reload=False, on_record=lambda _r: v2.save(path)
    )
    for _chunk in engine.chunks(0, duration_frames=300):
        pass
    assert [r.event_id for r in engine.records] == ["L1", "L2"]
