"""The asset library: ORM rows and the repository that turns them into Asset records.

Files are content-addressed under the media root (sha256); rows hold metadata,
QC, loudness and review history. Only this module touches the rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, Integer, String, Text, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship, selectinload, sessionmaker

from channels.ads import AdCategory
from core.orm import Base, UtcDateTime
from ingest.asset import (
    Asset,
    AssetKind,
    Attachment,
    AttachmentKind,
    LessonMetadata,
    NewAsset,
    Review,
    ReviewCheck,
    ReviewState,
)
from ingest.errors import DuplicateAssetError, IngestInputError, UnknownAssetError

__all__ = [
    "AssetLibrary",
    "AssetRow",
    "AttachmentRow",
    "DuplicateAssetError",
    "ReviewRow",
    "UnknownAssetError",
    "content_path",
]


class AssetRow(Base):
    __tablename__ = "asset"

    asset_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    lesson_id: Mapped[str | None] = mapped_column(String(128), unique=True)
    kind: Mapped[str] = mapped_column(String(16), index=True)
    ad_category: Mapped[str | None] = mapped_column(String(32))  # ads and promos only
    title: Mapped[str] = mapped_column(String(256))
    grade: Mapped[str | None] = mapped_column(String(8), index=True)
    subject: Mapped[str | None] = mapped_column(String(64))
    textbook_edition: Mapped[str | None] = mapped_column(String(64))
    unit: Mapped[str | None] = mapped_column(String(128))
    lesson_number: Mapped[int | None] = mapped_column(Integer)
    teacher: Mapped[str | None] = mapped_column(String(128))
    school: Mapped[str | None] = mapped_column(String(256))
    description: Mapped[str | None] = mapped_column(Text)
    profile: Mapped[str] = mapped_column(String(8))
    path: Mapped[str] = mapped_column(String(1024))  # relative to the media root
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    duration_frames: Mapped[int] = mapped_column(Integer)
    source_name: Mapped[str] = mapped_column(String(512))
    source_sha256: Mapped[str] = mapped_column(String(64))
    stream_copied: Mapped[bool] = mapped_column(Boolean)
    loudness_before: Mapped[dict[str, Any]] = mapped_column(JSON)
    loudness_after: Mapped[dict[str, Any]] = mapped_column(JSON)
    qc: Mapped[dict[str, Any]] = mapped_column(JSON)
    review_state: Mapped[str] = mapped_column(String(16), index=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())

    reviews: Mapped[list[ReviewRow]] = relationship(
        back_populates="asset", order_by="ReviewRow.id", cascade="all, delete-orphan"
    )
    attachments: Mapped[list[AttachmentRow]] = relationship(
        back_populates="asset", order_by="AttachmentRow.id", cascade="all, delete-orphan"
    )


class ReviewRow(Base):
    """Review history: every decision is kept, the asset row holds the latest state."""

    __tablename__ = "asset_review"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    asset_id: Mapped[str] = mapped_column(ForeignKey("asset.asset_id"), index=True)
    state: Mapped[str] = mapped_column(String(16))
    reviewer: Mapped[str] = mapped_column(String(128))
    at: Mapped[datetime] = mapped_column(UtcDateTime())
    notes: Mapped[str] = mapped_column(Text)
    checks: Mapped[dict[str, bool]] = mapped_column(JSON)

    asset: Mapped[AssetRow] = relationship(back_populates="reviews")


class AttachmentRow(Base):
    __tablename__ = "asset_attachment"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    asset_id: Mapped[str] = mapped_column(ForeignKey("asset.asset_id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    filename: Mapped[str] = mapped_column(String(512))
    media_type: Mapped[str] = mapped_column(String(128))
    sha256: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    path: Mapped[str] = mapped_column(String(1024))  # relative to the media root

    asset: Mapped[AssetRow] = relationship(back_populates="attachments")


def content_path(media_root: Path, sha256: str, suffix: str) -> Path:
    """Where a file with this checksum lives: media_root/ab/cd/abcd….suffix."""
    return media_root / sha256[:2] / sha256[2:4] / f"{sha256}{suffix}"


class AssetLibrary:
    """Repository over the asset tables; returns frozen Asset records."""

    def __init__(self, sessions: sessionmaker[Session], media_root: Path) -> None:
        self._sessions = sessions
        self.media_root = media_root

    # -- reading ---------------------------------------------------------------

    def find(self, ref: str) -> Asset | None:
        """Look up by asset id or lesson id."""
        with self._sessions() as session:
            row = self._row(session, ref)
            return None if row is None else self._record(row)

    def get(self, ref: str) -> Asset:
        asset = self.find(ref)
        if asset is None:
            raise UnknownAssetError(
                f"unknown asset {ref!r}: ingest it first, or check the id "
                "(`skyclass assets list` shows asset and lesson ids)"
            )
        return asset

    def many(self, refs: Iterable[str]) -> dict[str, Asset]:
        """Resolve many ids in one query (by asset id or lesson id); unknown ones are left out."""
        wanted = sorted(set(refs))
        found: dict[str, Asset] = {}
        if not wanted:
            return found
        with self._sessions() as session:
            for chunk_start in range(0, len(wanted), 500):
                chunk = wanted[chunk_start : chunk_start + 500]
                stmt = (
                    select(AssetRow)
                    .where(AssetRow.asset_id.in_(chunk) | AssetRow.lesson_id.in_(chunk))
                    .options(selectinload(AssetRow.reviews), selectinload(AssetRow.attachments))
                )
                for row in session.scalars(stmt):
                    asset = self._record(row)
                    for key in (row.asset_id, row.lesson_id):
                        if key in chunk:
                            found[key] = asset
        return found

    def list(
        self,
        *,
        kind: AssetKind | None = None,
        grade: str | None = None,
        state: ReviewState | None = None,
    ) -> list[Asset]:
        with self._sessions() as session:
            stmt = select(AssetRow).options(
                selectinload(AssetRow.reviews), selectinload(AssetRow.attachments)
            )
            if kind is not None:
                stmt = stmt.where(AssetRow.kind == kind.value)
            if grade is not None:
                stmt = stmt.where(AssetRow.grade == grade)
            if state is not None:
                stmt = stmt.where(AssetRow.review_state == state.value)
            stmt = stmt.order_by(AssetRow.created_at, AssetRow.asset_id)
            return [self._record(row) for row in session.scalars(stmt)]

    # -- writing ---------------------------------------------------------------

    def register(self, new: NewAsset, *, at: datetime) -> Asset:
        """Insert a verified asset (review state pending)."""
        meta = new.metadata
        row = AssetRow(
            asset_id=new.asset_id,
            lesson_id=new.lesson_id,
            kind=new.kind.value,
            ad_category=new.ad_category.value if new.ad_category else None,
            title=meta.title,
            grade=meta.grade,
            subject=meta.subject,
            textbook_edition=meta.textbook_edition,
            unit=meta.unit,
            lesson_number=meta.lesson_number,
            teacher=meta.teacher,
            school=meta.school,
            description=meta.description,
            profile=new.profile,
            path=self._relative(new.path),
            sha256=new.sha256,
            size_bytes=new.size_bytes,
            duration_frames=new.duration_frames,
            source_name=new.source_name,
            source_sha256=new.source_sha256,
            stream_copied=new.stream_copied,
            loudness_before=dict(new.loudness_before),
            loudness_after=dict(new.loudness_after),
            qc=dict(new.qc),
            review_state=ReviewState.PENDING.value,
            created_at=at,
            attachments=[
                AttachmentRow(
                    kind=a.kind.value,
                    filename=a.filename,
                    media_type=a.media_type,
                    sha256=a.sha256,
                    size_bytes=a.size_bytes,
                    path=self._relative(a.path),
                )
                for a in new.attachments
            ],
        )
        try:
            with self._sessions() as session, session.begin():
                session.add(row)
        except IntegrityError:
            existing = self.find(new.lesson_id or "") or self.find(new.asset_id)
            which = (
                f"lesson id {new.lesson_id!r}"
                if existing and existing.lesson_id == new.lesson_id and new.lesson_id
                else f"content {new.sha256[:12]}…"
            )
            raise DuplicateAssetError(
                f"{new.source_name}: {which} is already in the library as asset "
                f"{existing.asset_id if existing else '?'}: use another --lesson-id, "
                "or reuse the existing asset"
            ) from None
        return self.get(new.asset_id)

    def review(
        self,
        ref: str,
        *,
        approve: bool,
        reviewer: str,
        at: datetime,
        notes: str = "",
        checks: Mapping[str, bool] | None = None,
    ) -> Asset:
        """Record a review decision (政治性, 科学性, 规范性) and move the state."""
        if not reviewer.strip():
            raise IngestInputError("a review needs --reviewer NAME")
        if checks is None:
            checks = {c.value: approve for c in ReviewCheck}
        unknown = set(checks) - {c.value for c in ReviewCheck}
        if unknown:
            raise IngestInputError(
                f"unknown review check(s) {', '.join(sorted(unknown))}: "
                "use political, scientific, normative"
            )
        if approve and not all(checks.get(c.value, False) for c in ReviewCheck):
            failed = [c.name_zh for c in ReviewCheck if not checks.get(c.value, False)]
            raise IngestInputError(
                f"asset {ref}: cannot approve while {'、'.join(failed)} is not passed"
            )
        state = ReviewState.APPROVED if approve else ReviewState.REJECTED
        with self._sessions() as session, session.begin():
            row = self._row(session, ref)
            if row is None:
                raise UnknownAssetError(f"unknown asset {ref!r}: see `skyclass assets list`")
            row.review_state = state.value
            row.reviews.append(
                ReviewRow(
                    state=state.value,
                    reviewer=reviewer.strip(),
                    at=at,
                    notes=notes,
                    checks=dict(checks),
                )
            )
            asset_id = row.asset_id
        return self.get(asset_id)

    def set_ad_category(self, ref: str, category: AdCategory) -> Asset:
        """Give an ad or promo its category (one ingested before categories were required)."""
        with self._sessions() as session, session.begin():
            row = self._row(session, ref)
            if row is None:
                raise UnknownAssetError(f"unknown asset {ref!r}: see `skyclass assets list`")
            if not AssetKind(row.kind).is_commercial:
                raise IngestInputError(
                    f"asset {row.asset_id} is a {row.kind}: only ads and promos have an ad category"
                )
            row.ad_category = category.value
            asset_id = row.asset_id
        return self.get(asset_id)

    # -- mapping ---------------------------------------------------------------

    def _row(self, session: Session, ref: str) -> AssetRow | None:
        if not ref:
            return None
        row = session.get(AssetRow, ref)
        if row is None:
            row = session.scalars(select(AssetRow).where(AssetRow.lesson_id == ref)).first()
        return row

    def _relative(self, path: Path) -> str:
        try:
            return str(path.resolve().relative_to(self.media_root.resolve()))
        except ValueError:
            return str(path.resolve())

    def _absolute(self, stored: str) -> Path:
        path = Path(stored)
        return path if path.is_absolute() else (self.media_root / path).resolve()

    def _record(self, row: AssetRow) -> Asset:
        return Asset(
            asset_id=row.asset_id,
            lesson_id=row.lesson_id,
            kind=AssetKind(row.kind),
            ad_category=AdCategory(row.ad_category) if row.ad_category else None,
            metadata=LessonMetadata(
                title=row.title,
                grade=row.grade,
                subject=row.subject,
                textbook_edition=row.textbook_edition,
                unit=row.unit,
                lesson_number=row.lesson_number,
                teacher=row.teacher,
                school=row.school,
                description=row.description,
            ),
            profile=row.profile,
            path=self._absolute(row.path),
            sha256=row.sha256,
            size_bytes=row.size_bytes,
            duration_frames=row.duration_frames,
            source_name=row.source_name,
            source_sha256=row.source_sha256,
            stream_copied=row.stream_copied,
            loudness_before=row.loudness_before,
            loudness_after=row.loudness_after,
            qc=row.qc,
            review_state=ReviewState(row.review_state),
            created_at=row.created_at,
            reviews=tuple(
                Review(
                    state=ReviewState(r.state),
                    reviewer=r.reviewer,
                    at=r.at,
                    notes=r.notes,
                    checks=r.checks,
                )
                for r in row.reviews
            ),
            attachments=tuple(
                Attachment(
                    kind=AttachmentKind(a.kind),
                    filename=a.filename,
                    media_type=a.media_type,
                    sha256=a.sha256,
                    size_bytes=a.size_bytes,
                    path=self._absolute(a.path),
                )
                for a in row.attachments
            ),
        )
