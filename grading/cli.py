"""`skyclass grades`: the grade model as operators and partners see it."""

from __future__ import annotations

import json
from typing import Annotated, Protocol, cast

import typer
from rich.console import Console
from rich.table import Table

from grading.grades import GRADES
from grading.policy import GradingPolicy
from grading.subjects import SUBJECTS_BY_BAND, TOPICS


class GradingRuntime(Protocol):
    @property
    def grading_policy(self) -> GradingPolicy: ...


def grades_as_json(policy: GradingPolicy) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for grade in GRADES:
        rule = policy.durations[grade.band]
        screen = policy.screen_time[grade.band]
        rows.append(
            {
                "code": grade.code,
                "name_zh": grade.name_zh,
                "band": grade.band.value,
                "band_zh": grade.band.name_zh,
                "lesson_minutes": {
                    "min": rule.min_seconds / 60,
                    "max": rule.max_seconds / 60,
                },
                "screen_time": {
                    "max_lesson_minutes_per_day": screen.max_lesson_minutes_per_day,
                    "min_break_minutes": screen.min_break_minutes,
                },
                "subjects": list(SUBJECTS_BY_BAND[grade.band]),
            }
        )
    return rows


def register(app: typer.Typer) -> None:
    @app.command("grades")
    def grades(
        ctx: typer.Context,
        as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    ) -> None:
        """List the grades (年级) with band, lesson length and screen-time policy."""
        policy = cast(GradingRuntime, ctx.obj).grading_policy
        rows = grades_as_json(policy)
        if as_json:
            typer.echo(json.dumps(rows, ensure_ascii=False, indent=2))
            return
        table = Table(title="年级 grades")
        for column in ("code", "年级", "学段", "课时 lesson", "每日上限 per day", "课间 break"):
            table.add_column(column)
        for row in rows:
            minutes = cast(dict[str, float], row["lesson_minutes"])
            screen = cast(dict[str, int], row["screen_time"])
            table.add_row(
                str(row["code"]),
                str(row["name_zh"]),
                f"{row['band_zh']} {row['band']}",
                f"{minutes['min']:g}–{minutes['max']:g} min",
                f"{screen['max_lesson_minutes_per_day']} min",
                f"≥ {screen['min_break_minutes']} min",
            )
        Console().print(table)
        Console().print("专题教育: " + "、".join(t.value for t in TOPICS))
