"""Every validation rule: a bad file is refused at the right row and column, nothing stored."""

from __future__ import annotations

from pathlib import Path

import pytest

from epg.errors import ScheduleRejected
from tests.epg.conftest import DAY, G03, G07, ZT, World, good_day

D = DAY.isoformat()


def check(world: World, rows: list[list[object]]) -> list[tuple[str, str, str]]:
    report = world.services.importer.check(world.csv(rows))
    return [(p.where, p.column, p.message) for p in report.errors]


def test_good_day_is_valid_with_gap_warnings(lite: World) -> None:
    report = lite.services.importer.check(lite.csv(good_day()))
    assert report.errors == ()
    assert [(w.where, w.column) for w in report.warnings] == [
        ("row 7", "start"),
        ("row 8", "start"),
        ("row 9", "start"),
    ]
    events = report.days[(G03, DAY)]
    assert [e.type.value for e in events] == [
        "lesson", "break", "ad", "promo", "filler", "lesson", "lesson", "rerun",
    ]  # fmt: skip
    # Sequential rows chain frame-exactly onto the 19:30.12 lesson.
    assert events[1].start_frame == events[0].end_frame == 8 * 3600 * 25 + 29262
    assert events[0].asset_id == "L1"  # lesson id resolved to the asset id


# (rows, expected row, column, message fragment)
CASES: dict[str, tuple[list[list[object]], str, str, str]] = {
    "unknown channel": (
        [
            [G03, D, "08:00:00", "lesson", "L2", "", ""],
            ["g99.skyclass.cn", D, "09:00", "lesson", "L3", "", ""],
        ],
        "row 3",
        "channel",
        "unknown channel 'g99.skyclass.cn'",
    ),
    "grade not carried": (
        [
            [G03, D, "08:00:00", "lesson", "L2", "", ""],
            [G03, D, "09:00:00", "lesson", "L7", "", ""],
        ],
        "row 3",
        "asset",
        "does not carry",
    ),
    "unknown asset": (
        [[G03, D, "08:00", "lesson", "L2", "", ""], [G03, D, "09:00", "lesson", "NOPE", "", ""]],
        "row 3",
        "asset",
        "unknown asset 'NOPE'",
    ),
    "not approved": (
        [[G03, D, "08:00", "lesson", "LP", "", ""]],
        "row 2",
        "asset",
        "not approved",
    ),
    "duration rule": (
        [[G03, D, "08:00", "lesson", "L2", "", ""], [G03, D, "10:00", "lesson", "LS", "", ""]],
        "row 3",
        "asset",
        "outside the 15–20 min rule",
    ),
    "wrong profile": (
        [[G03, D, "08:00", "lesson", "LSD", "", ""]],
        "row 2",
        "asset",
        "is sd",
    ),
    "overlap": (
        [
            [G03, D, "08:00:00", "lesson", "L2", "", ""],
            [G03, D, "08:15:00", "filler", "EB1", "", ""],
        ],
        "row 3",
        "start",
        "must not overlap",
    ),
    "off the frame grid": (
        [[G03, D, "08:00:00.020", "lesson", "L2", "", ""]],
        "row 2",
        "start",
        "not on a frame boundary",
    ),
    "ad inside a lesson": (
        [
            [G03, D, "08:00:00", "lesson", "L2", "", ""],
            [G03, D, "08:10:00", "ad", "AD1", "", ""],
            [G03, D, "09:00:00", "lesson", "L3", "", ""],
        ],
        "row 3",
        "start",
        "falls inside the lesson at row 2",
    ),
    "ad before the first lesson": (
        [[G03, D, "07:50:00", "ad", "AD1", "", ""], [G03, D, "08:00:00", "lesson", "L2", "", ""]],
        "row 2",
        "type",
        "no lesson before it",
    ),
    "ad after the last lesson": (
        [
            [G03, D, "08:00:00", "lesson", "L2", "", ""],
            [G03, "", "", "promo", "PR1", "", "sequential"],
        ],
        "row 3",
        "type",
        "no lesson after it",
    ),
    "min break": (
        [
            [G03, D, "08:00:00", "lesson", "L2", "", ""],
            [G03, D, "08:25:00", "lesson", "L3", "", ""],
        ],
        "row 3",
        "start",
        "at least 10 min between lessons",
    ),
    "max lesson minutes": (
        [[G03, D, f"{8 + i}:00:00", "lesson", "L2", "", ""] for i in range(8)],
        "row 9",
        "asset",
        "over the 150 min a day",
    ),
    "crosses midnight": (
        [[G03, D, "23:50:00", "lesson", "L2", "", ""]],
        "row 2",
        "duration",
        "runs past 24:00",
    ),
    "first event without a start": (
        [[G03, D, "", "lesson", "L2", "", "sequential"]],
        "row 2",
        "start",
        "needs a start time",
    ),
    "unknown type": (
        [[G03, D, "08:00", "news", "L2", "", ""]],
        "row 2",
        "type",
        "unknown type 'news'",
    ),
    "break without a duration": (
        [[G03, D, "08:00", "lesson", "L2", "", ""], [G03, "", "", "break", "", "", "sequential"]],
        "row 3",
        "duration",
        "needs a duration",
    ),
    "ad asset in a lesson row": (
        [[G03, D, "08:00", "lesson", "AD1", "", ""]],
        "row 2",
        "asset",
        "is a ad, but a lesson row needs a lesson",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_rule_refuses_at_the_right_row(lite: World, case: str) -> None:
    rows, where, column, fragment = CASES[case]
    errors = check(lite, rows)
    assert any(w == where and c == column and fragment in m for w, c, m in errors), errors


def test_topic_lessons_air_on_any_channel(lite: World) -> None:
    rows: list[list[object]] = [
        [G03, D, "08:00", "lesson", "LT", "", ""],
        [G07, D, "08:00", "lesson", "LT", "", ""],
        [ZT, D, "08:00", "lesson", "LTS", "", ""],  # the 专题 channel airs SD
    ]
    assert check(lite, rows) == []


def test_every_error_is_listed_and_nothing_is_stored(lite: World) -> None:
    rows = good_day()
    rows[0][4] = "NOPE"  # row 2
    rows[6][2] = "08:41:00.010"  # row 8, off the grid
    rows.append(["g99.skyclass.cn", D, "10:00", "lesson", "L4", "", ""])  # row 10
    with pytest.raises(ScheduleRejected) as caught:
        lite.services.importer.load(lite.csv(rows), created_by="t", at=lite.clock.now())
    wheres = [(p.where, p.column) for p in caught.value.errors]
    assert ("row 2", "asset") in wheres
    assert ("row 8", "start") in wheres
    assert ("row 10", "channel") in wheres
    assert "nothing was changed" in str(caught.value)
    assert lite.services.schedules.stamp() == 0


def test_sequential_warns_when_its_start_is_ignored(lite: World) -> None:
    rows = good_day()
    rows[1][2] = "08:20:00"  # a sequential row with a (wrong) start: chaining wins
    report = lite.services.importer.check(lite.csv(rows))
    assert report.ok
    assert any(w.where == "row 3" and "ignored" in w.message for w in report.warnings)


def test_json_reports_event_index(lite: World, tmp_path: Path) -> None:
    from tests.epg.conftest import write_json

    rows = good_day()
    rows[2][4] = "NOPE"
    report = lite.services.importer.check(write_json(tmp_path / "w.json", rows))
    assert [(p.where, p.row, p.column) for p in report.errors] == [("events[2]", 2, "asset")]
