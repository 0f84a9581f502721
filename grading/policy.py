"""Per-band lesson duration rules and screen-time (用眼卫生) policy.

Defaults follow the 2020 guidance for 空中课堂: short lessons for 小学, longer for
中学, a rest between lessons (eye exercises, 眼保健操) and a cap on daily
lesson time per channel. All of it is configurable through Settings.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from grading.grades import Band, grade_by_code


class DurationRule(BaseModel):
    """A lesson's allowed length, inclusive on both ends, in seconds."""

    model_config = ConfigDict(frozen=True)

    min_seconds: int = Field(gt=0)
    max_seconds: int = Field(gt=0)

    @model_validator(mode="after")
    def _ordered(self) -> DurationRule:
        if self.min_seconds > self.max_seconds:
            raise ValueError("min_seconds must not exceed max_seconds")
        return self

    @classmethod
    def minutes(cls, low: int, high: int) -> DurationRule:
        return cls(min_seconds=low * 60, max_seconds=high * 60)

    def allows(self, seconds: float) -> bool:
        return self.min_seconds <= seconds <= self.max_seconds

    def describe(self) -> str:
        if self.min_seconds % 60 == 0 and self.max_seconds % 60 == 0:
            return f"{self.min_seconds // 60}–{self.max_seconds // 60} min"
        return f"{self.min_seconds}–{self.max_seconds} s"


class ScreenTimePolicy(BaseModel):
    """Eye-health limits for one band on one channel."""

    model_config = ConfigDict(frozen=True)

    max_lesson_minutes_per_day: int = Field(gt=0)
    min_break_minutes: int = Field(ge=0)


def _default_durations() -> dict[Band, DurationRule]:
    return {
        Band.PRIMARY: DurationRule.minutes(15, 20),
        Band.JUNIOR: DurationRule.minutes(20, 25),
        Band.SENIOR: DurationRule.minutes(20, 25),
    }


def _default_screen_time() -> dict[Band, ScreenTimePolicy]:
    # 小学 ≤ 2.5 h, 初中 ≤ 3.5 h, 高中 ≤ 4 h of lessons a day; 10 min rest between lessons.
    return {
        Band.PRIMARY: ScreenTimePolicy(max_lesson_minutes_per_day=150, min_break_minutes=10),
        Band.JUNIOR: ScreenTimePolicy(max_lesson_minutes_per_day=210, min_break_minutes=10),
        Band.SENIOR: ScreenTimePolicy(max_lesson_minutes_per_day=240, min_break_minutes=10),
    }


class GradingPolicy(BaseModel):
    """Everything per band that an operator may tune (config section `[grading]`)."""

    model_config = ConfigDict(frozen=True)

    durations: dict[Band, DurationRule] = Field(default_factory=_default_durations)
    screen_time: dict[Band, ScreenTimePolicy] = Field(default_factory=_default_screen_time)

    @model_validator(mode="after")
    def _complete(self) -> GradingPolicy:
        # A partial override in a config file keeps the defaults for the other bands.
        durations = {**_default_durations(), **self.durations}
        screen = {**_default_screen_time(), **self.screen_time}
        object.__setattr__(self, "durations", durations)
        object.__setattr__(self, "screen_time", screen)
        return self

    def duration_rule(self, grade_code: str) -> DurationRule:
        return self.durations[grade_by_code(grade_code).band]

    def screen_time_for(self, grade_code: str) -> ScreenTimePolicy:
        return self.screen_time[grade_by_code(grade_code).band]
