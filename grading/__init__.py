"""Grades 1–12, school bands, subjects, 专题教育 topics and the per-band policies."""

from grading.errors import (
    GradingError,
    GradingInputError,
    UnknownGradeError,
    UnknownSubjectError,
)
from grading.grades import (
    GRADES,
    Band,
    Grade,
    band_of,
    grade_by_code,
    grades_in_band,
)
from grading.policy import DurationRule, GradingPolicy, ScreenTimePolicy
from grading.subjects import (
    SUBJECTS_BY_BAND,
    TOPICS,
    Topic,
    check_subject,
    is_topic,
)

__all__ = [
    "GRADES",
    "SUBJECTS_BY_BAND",
    "TOPICS",
    "Band",
    "DurationRule",
    "Grade",
    "GradingError",
    "GradingInputError",
    "GradingPolicy",
    "ScreenTimePolicy",
    "Topic",
    "UnknownGradeError",
    "UnknownSubjectError",
    "band_of",
    "check_subject",
    "grade_by_code",
    "grades_in_band",
    "is_topic",
]
