"""Subjects (学科) per band, from the national curriculum, and the 专题教育 topics."""

from __future__ import annotations

from enum import StrEnum

from grading.errors import UnknownSubjectError
from grading.grades import Band

# 义务教育课程方案（2022年版） and 普通高中课程方案（2017年版2020年修订）.
SUBJECTS_BY_BAND: dict[Band, tuple[str, ...]] = {
    Band.PRIMARY: (
        "语文", "数学", "英语", "道德与法治", "科学", "信息科技",
        "体育与健康", "音乐", "美术", "劳动", "综合实践活动",
    ),
    Band.JUNIOR: (
        "语文", "数学", "英语", "道德与法治", "历史", "地理", "物理", "化学",
        "生物", "信息科技", "体育与健康", "音乐", "美术", "劳动", "综合实践活动",
    ),
    Band.SENIOR: (
        "语文", "数学", "英语", "思想政治", "历史", "地理", "物理", "化学",
        "生物", "信息技术", "通用技术", "体育与健康", "音乐", "美术", "劳动",
        "综合实践活动",
    ),
}  # fmt: skip


class Topic(StrEnum):
    """专题教育: thematic lessons that may air on any channel."""

    PATRIOTISM = "爱国主义教育"
    CONSTITUTION_AND_LAW = "宪法法治教育"
    MORAL = "品德教育"
    LABOUR = "劳动教育"
    TRADITIONAL_CULTURE = "中华优秀传统文化教育"
    LIFE_AND_SAFETY = "生命与安全教育"
    MENTAL_HEALTH = "心理健康教育"
    FAMILY = "家庭教育"
    ECOLOGY = "生态文明教育"
    CLASSIC_READING = "经典阅读"
    STUDY_TRAVEL = "研学实践"
    FILM = "影视教育"


TOPICS: tuple[Topic, ...] = tuple(Topic)


def is_topic(subject: str) -> bool:
    return subject in {t.value for t in TOPICS}


def check_subject(subject: str, band: Band) -> str:
    """Return the subject if the band teaches it (or it is a 专题教育 topic)."""
    subject = subject.strip()
    if subject in SUBJECTS_BY_BAND[band] or is_topic(subject):
        return subject
    known = "、".join(SUBJECTS_BY_BAND[band])
    raise UnknownSubjectError(
        f"unknown subject {subject!r} for {band.name_zh} ({band.value}): "
        f"use one of {known}, or a 专题教育 topic"
    )
