from __future__ import annotations

import json

import pytest

from grading import (
    GRADES,
    Band,
    DurationRule,
    GradingPolicy,
    UnknownGradeError,
    UnknownSubjectError,
    check_subject,
    grade_by_code,
    is_topic,
)


def test_twelve_grades_in_order_with_bands() -> None:
    assert [g.code for g in GRADES] == [f"g{n:02d}" for n in range(1, 13)]
    assert [g.name_zh for g in GRADES][:1] == ["一年级"]
    assert GRADES[6].name_zh == "七年级" and GRADES[9].name_zh == "高一"
    assert GRADES[11].name_zh == "高三"
    bands = [g.band for g in GRADES]
    assert bands == [Band.PRIMARY] * 6 + [Band.JUNIOR] * 3 + [Band.SENIOR] * 3


def test_grade_lookup_by_code_or_chinese_name() -> None:
    assert grade_by_code("G03").name_zh == "三年级"
    assert grade_by_code("高二").code == "g11"
    with pytest.raises(UnknownGradeError, match="g13"):
        grade_by_code("g13")


def test_default_duration_rules_are_inclusive() -> None:
    policy = GradingPolicy()
    primary = policy.duration_rule("g01")
    assert primary.allows(15 * 60) and primary.allows(20 * 60)
    assert not primary.allows(15 * 60 - 1) and not primary.allows(20 * 60 + 0.04)
    senior = policy.duration_rule("g12")
    assert senior.allows(20 * 60) and senior.allows(25 * 60) and not senior.allows(19 * 60)


def test_policy_override_keeps_other_bands() -> None:
    policy = GradingPolicy.model_validate(
        {"durations": {"primary": {"min_seconds": 5, "max_seconds": 30}}}
    )
    assert policy.duration_rule("g02") == DurationRule(min_seconds=5, max_seconds=30)
    assert policy.duration_rule("g08") == DurationRule.minutes(20, 25)
    assert policy.screen_time_for("g08").min_break_minutes == 10


def test_duration_rule_rejects_inverted_range() -> None:
    with pytest.raises(ValueError, match="min_seconds"):
        DurationRule(min_seconds=100, max_seconds=10)


def test_subjects_per_band_and_topics() -> None:
    assert check_subject("物理", Band.JUNIOR) == "物理"
    assert check_subject("思想政治", Band.SENIOR) == "思想政治"
    assert check_subject("心理健康教育", Band.PRIMARY) == "心理健康教育"  # 专题 anywhere
    assert is_topic("影视教育") and not is_topic("数学")
    with pytest.raises(UnknownSubjectError, match="物理"):
        check_subject("物理", Band.PRIMARY)


def test_grades_cli_json_shape(cli) -> None:  # type: ignore[no-untyped-def]
    result = cli("grades", "--json")
    assert result.code == 0, result.stderr
    rows = json.loads(result.stdout)
    assert [r["code"] for r in rows] == [f"g{n:02d}" for n in range(1, 13)]
    first = rows[0]
    assert {"code", "name_zh", "band", "lesson_minutes"} <= first.keys()
    assert first["lesson_minutes"] == {"min": 15, "max": 20}
    assert rows[8]["band"] == "junior" and rows[8]["lesson_minutes"] == {"min": 20, "max": 25}


def test_grades_cli_table(cli) -> None:  # type: ignore[no-untyped-def]
    result = cli("grades")
    assert result.code == 0
    assert "高三" in result.stdout and "专题教育" in result.stdout
