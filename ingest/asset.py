"""Asset records: a lesson (or filler, ad, …) stored in its channel's house format.

These frozen records are what other packages see; ORM rows stay in library.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from channels.ads import AdCategory
from core.timecode import FPS


class AssetKind(StrEnum):
    LESSON = "lesson"  # 微课: a graded lesson, subject to the band's duration rule
    FILLER = "filler"  # 垫片: generic filler
    IDENT = "ident"  # channel ident
    PSA = "psa"  # public service announcement
    EYE_BREAK = "eye_break"  # 眼保健操
    AD = "ad"  # 广告
    PROMO = "promo"  # 宣传片

    @property
    def is_lesson(self) -> bool:
        return self is AssetKind.LESSON

    @property
    def is_commercial(self) -> bool:
        """Ads and promos: legal only in a break between two lessons."""
        return self in (AssetKind.AD, AssetKind.PROMO)


class ReviewState(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"


class ReviewCheck(StrEnum):
    """The three 审核 aspects every lesson passes before it may air."""

    POLITICAL = "political"  # 政治性
    SCIENTIFIC = "scientific"  # 科学性
    NORMATIVE = "normative"  # 规范性

    @property
    def name_zh(self) -> str:
        return {"political": "政治性", "scientific": "科学性", "normative": "规范性"}[self.value]


class AttachmentKind(StrEnum):
    TASK_SHEET = "task_sheet"  # 学习任务单
    EXERCISES = "exercises"  # 课后练习


@dataclass(frozen=True, kw_only=True)
class Attachment:
    kind: AttachmentKind
    filename: str
    media_type: str
    sha256: str
    size_bytes: int
    path: Path


@dataclass(frozen=True, kw_only=True)
class Review:
    state: ReviewState
    reviewer: str
    at: datetime
    notes: str
    checks: Mapping[str, bool]  # ReviewCheck value → passed


@dataclass(frozen=True, kw_only=True)
class LessonMetadata:
    """Who and what a lesson is about (grade and subject are required for lessons)."""

    title: str
    grade: str | None = None
    subject: str | None = None
    textbook_edition: str | None = None  # 教材版本, e.g. 人教版
    unit: str | None = None
    lesson_number: int | None = None
    teacher: str | None = None
    school: str | None = None
    description: str | None = None


@dataclass(frozen=True, kw_only=True)
class NewAsset:
    """What ingest hands to the library once the house-format file is verified."""

    asset_id: str
    lesson_id: str | None
    kind: AssetKind
    metadata: LessonMetadata
    profile: str  # "hd" | "sd"
    path: Path  # the stored house-format file (inside the media root)
    sha256: str
    size_bytes: int
    duration_frames: int
    source_name: str
    source_sha256: str
    stream_copied: bool  # video taken as-is from a conforming source
    loudness_before: Mapping[str, Any]
    loudness_after: Mapping[str, Any]
    qc: Mapping[str, Any]  # QcReport.as_json()
    attachments: tuple[Attachment, ...] = ()
    ad_category: AdCategory | None = None  # what an ad (or promo) sells: required for ads


@dataclass(frozen=True, kw_only=True)
class Asset:
    asset_id: str
    lesson_id: str | None
    kind: AssetKind
    metadata: LessonMetadata
    profile: str
    path: Path
    sha256: str
    size_bytes: int
    duration_frames: int
    source_name: str
    source_sha256: str
    stream_copied: bool
    loudness_before: Mapping[str, Any]
    loudness_after: Mapping[str, Any]
    qc: Mapping[str, Any]
    review_state: ReviewState
    created_at: datetime
    reviews: tuple[Review, ...] = ()
    attachments: tuple[Attachment, ...] = field(default_factory=tuple)
    ad_category: AdCategory | None = None

    def approved_at(self, instant: datetime) -> bool:
        """Whether the asset stood approved at an instant: its latest review by then approved it.

        The compliance audit asks this of every lesson that aired (a later approval does
        not clear an earlier airing).
        """
        decided = [r for r in self.reviews if r.at <= instant]
        return bool(decided) and max(decided, key=lambda r: r.at).state is ReviewState.APPROVED

    @property
    def title(self) -> str:
        return self.metadata.title

    @property
    def grade(self) -> str | None:
        return self.metadata.grade

    @property
    def subject(self) -> str | None:
        return self.metadata.subject

    @property
    def approved(self) -> bool:
        return self.review_state is ReviewState.APPROVED

    @property
    def duration_seconds(self) -> float:
        return self.duration_frames / FPS

    @property
    def qc_warnings(self) -> list[str]:
        findings = self.qc.get("findings", [])
        return [str(f.get("message")) for f in findings if f.get("severity") == "warning"]

    def as_json(self) -> dict[str, Any]:
        meta = self.metadata
        return {
            "asset_id": self.asset_id,
            "lesson_id": self.lesson_id,
            "kind": self.kind.value,
            "ad_category": self.ad_category.value if self.ad_category else None,
            "title": meta.title,
            "grade": meta.grade,
            "subject": meta.subject,
            "textbook_edition": meta.textbook_edition,
            "unit": meta.unit,
            "lesson_number": meta.lesson_number,
            "teacher": meta.teacher,
            "school": meta.school,
            "description": meta.description,
            "profile": self.profile,
            "path": str(self.path),
            "sha256": self.sha256,
            "size_bytes": self.size_bytes,
            "duration_frames": self.duration_frames,
            "duration_seconds": self.duration_seconds,
            "source_name": self.source_name,
            "source_sha256": self.source_sha256,
            "stream_copied": self.stream_copied,
            "loudness": {"before": dict(self.loudness_before), "after": dict(self.loudness_after)},
            "qc": dict(self.qc),
            "review_state": self.review_state.value,
            "reviews": [
                {
                    "state": r.state.value,
                    "reviewer": r.reviewer,
                    "at": r.at.isoformat(),
                    "notes": r.notes,
                    "checks": dict(r.checks),
                }
                for r in self.reviews
            ],
            "attachments": [
                {
                    "kind": a.kind.value,
                    "filename": a.filename,
                    "media_type": a.media_type,
                    "sha256": a.sha256,
                    "size_bytes": a.size_bytes,
                    "path": str(a.path),
                }
                for a in self.attachments
            ],
            "created_at": self.created_at.isoformat(),
        }
