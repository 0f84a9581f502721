"""Ingest one file: probe, validate, analyze, normalize, verify, store, register.

Nothing reaches the library unless every step passed: the encode writes to a
temporary file inside the media root (same file system), and only a verified output
is renamed to its content address and registered. Any failure removes what this run
created.
"""

from __future__ import annotations

import logging
import math
import os
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from channels.ads import AdCategory
from channels.profiles import HouseProfile
from core.clock import Clock
from grading import GradingPolicy, check_subject, grade_by_code
from ingest.analysis import QcReport, analyze, judge
from ingest.asset import Asset, AssetKind, Attachment, LessonMetadata, NewAsset
from ingest.config import IngestConfig
from ingest.errors import (
    DuplicateAssetError,
    IngestError,
    IngestInputError,
    NormalizeError,
    QcRejectedError,
)
from ingest.house import conformance_problems
from ingest.library import AssetLibrary
from ingest.normalize import encode, plan_audio, reaudio, verify
from ingest.package import scan_package, sha256_of, store_attachments, store_file
from ingest.probe import MediaProbe, probe
from ingest.staging import StagingArea

__all__ = ["IngestError", "IngestOutcome", "IngestRequest", "Ingester", "QcRejectedError"]

logger = logging.getLogger(__name__)

Progress = Callable[[str, float], None]  # (stage, overall fraction 0..1)


@dataclass(frozen=True, kw_only=True)
class IngestRequest:
    source: Path
    metadata: LessonMetadata
    profile: HouseProfile
    kind: AssetKind = AssetKind.LESSON
    lesson_id: str | None = None
    package: Path | None = None
    ad_category: AdCategory | None = None  # required for ads, optional for promos


@dataclass(frozen=True, kw_only=True)
class IngestOutcome:
    asset: Asset
    qc: QcReport
    stream_copied: bool
    timings: dict[str, float] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        after = self.asset.loudness_after
        return {
            "asset_id": self.asset.asset_id,
            "path": str(self.asset.path),
            "duration_frames": self.asset.duration_frames,
            "loudness": {
                "integrated_lufs": after.get("integrated_lufs"),
                "true_peak_dbtp": after.get("true_peak_dbtp"),
                "lra": after.get("lra"),
            },
            "qc": dict(self.asset.qc),
            "stream_copied": self.stream_copied,
            "timings": {k: round(v, 3) for k, v in self.timings.items()},
        }


class Ingester:
    def __init__(
        self,
        library: AssetLibrary,
        *,
        policy: GradingPolicy,
        config: IngestConfig,
        clock: Clock,
    ) -> None:
        self.library = library
        self.policy = policy
        self.config = config
        self.clock = clock
        StagingArea(library.media_root).sweep()  # what interrupted ingests left behind

    # -- validation ------------------------------------------------------------------

    def check_metadata(self, request: IngestRequest) -> LessonMetadata:
        meta = request.metadata
        name = request.source.name
        if not meta.title.strip():
            raise IngestInputError(f"{name}: --title is empty: give the lesson's title")
        grade = meta.grade
        subject = meta.subject
        if request.kind is AssetKind.LESSON and (not grade or not subject):
            raise IngestInputError(f"{name}: a lesson needs --grade and --subject")
        if request.kind is AssetKind.AD and request.ad_category is None:
            raise IngestInputError(
                f"{name}: an ad needs --ad-category (what it sells, e.g. public_service, food): "
                "channels for minors ban some categories"
            )
        if request.ad_category is not None and not request.kind.is_commercial:
            raise IngestInputError(
                f"{name}: --ad-category is for ads and promos, not a {request.kind.value}"
            )
        if grade:
            grade = grade_by_code(grade).code
            if subject:
                subject = check_subject(subject, grade_by_code(grade).band)
        if request.lesson_id and self.library.find(request.lesson_id) is not None:
            raise DuplicateAssetError(
                f"{name}: lesson id {request.lesson_id!r} is already in the library: "
                "use another --lesson-id"
            )
        return replace(meta, grade=grade, subject=subject, title=meta.title.strip())

    def check_media(self, request: IngestRequest, media: MediaProbe, meta: LessonMetadata) -> None:
        name = request.source.name
        if media.video is None:
            raise IngestInputError(f"{name}: no video stream: a lesson needs picture")
        if media.audio is None:
            raise IngestInputError(f"{name}: no audio stream: a lesson needs its sound track")
        seconds = media.video.duration_seconds or media.duration_seconds
        if request.kind is AssetKind.LESSON:
            assert meta.grade is not None
            rule = self.policy.duration_rule(meta.grade)
            if not rule.allows(seconds):
                band = grade_by_code(meta.grade).band
                raise IngestInputError(
                    f"{name}: duration {seconds:.1f} s is outside the {band.name_zh} rule "
                    f"({rule.describe()}): trim or re-cut the lesson"
                )
        elif seconds > self.config.max_other_seconds or seconds <= 0:
            raise IngestInputError(
                f"{name}: duration {seconds:.1f} s is outside 0–{self.config.max_other_seconds} s "
                f"for a {request.kind.value}"
            )

    # -- the run ---------------------------------------------------------------------

    def ingest(self, request: IngestRequest, *, progress: Progress | None = None) -> IngestOutcome:
        def report(stage: str, low: float, high: float) -> Callable[[float], None]:
            def inner(fraction: float) -> None:
                if progress is not None:
                    progress(stage, low + (high - low) * fraction)

            return inner

        timings: dict[str, float] = {}
        clock = time.monotonic()

        def lap(stage: str) -> None:
            nonlocal clock
            now = time.monotonic()
            timings[stage] = now - clock
            clock = now

        meta = self.check_metadata(request)
        package_files = scan_package(request.package) if request.package else []
        media = probe(request.source)
        self.check_media(request, media, meta)
        lap("probe")
        report("probe", 0.0, 0.05)(1.0)
        # The two sha256 digests (source and output, about 1 GB each for an HD lesson)
        # are computed in threads while ffmpeg works: hashlib and file reads release
        # the GIL, so they cost no wall time when a core is free.
        hasher = ThreadPoolExecutor(max_workers=2, thread_name_prefix="ingest-sha256")
        source_hash = hasher.submit(sha256_of, request.source)
        try:
            profile = request.profile
            problems = conformance_problems(media, profile)
            copy_video = not problems
            analysis = analyze(
                media,
                self.config.qc,
                keyframes_only=copy_video and self.config.qc.keyframes_only_for_conforming,
                progress=report("analyze", 0.05, 0.45),
            )
            qc = judge(analysis, media, self.config.qc)
            lap("analyze")
            if not qc.passed:
                reasons = "; ".join(f.message for f in qc.errors)
                raise QcRejectedError(f"{request.source.name}: rejected by QC: {reasons}", qc)
            if problems:
                logger.info("%s: re-encoding video: %s", request.source.name, "; ".join(problems))
            field_order = (
                qc.detected_field_order if qc.detected_field_order in ("tff", "bff") else None
            )
            plan = plan_audio(qc.loudness, self.config)
            media_root = self.library.media_root
            # The job's files live under a lock in media/.staging until stored; a
            # killed ingest's are swept by the next one (ingest.staging).
            with StagingArea(media_root).job() as job:
                tmp = job.path(".mkv")
                created: list[Path] = []
                try:
                    frames = encode(
                        media,
                        tmp,
                        profile=profile,
                        plan=plan,
                        copy_video=copy_video,
                        config=self.config,
                        field_order=field_order,
                        progress=report("encode", 0.45, 0.9),
                    )
                    lap("encode")
                    output_sha = hasher.submit(sha256_of, tmp)
                    checked = verify(tmp, profile=profile, frames=frames, config=self.config)
                    trim = 0.0
                    for _attempt in range(2):
                        if checked.ok or not math.isfinite(checked.loudness.integrated_lufs):
                            break
                        # Corrective audio passes: trim by the measured residual error.
                        trim += self.config.target_lufs - checked.loudness.integrated_lufs
                        peak_over = checked.loudness.true_peak_dbtp - self.config.max_true_peak_dbtp
                        corrected = replace(
                            plan_audio(qc.loudness, self.config, trim_db=trim),
                            limit=plan.limit or peak_over > 0,
                            ceiling_dbtp=self.config.limiter_ceiling_dbtp - max(0.0, peak_over),
                        )
                        logger.info("%s: corrective audio pass %s", request.source.name, corrected)
                        second = tmp.with_name(tmp.stem + "-2.mkv")
                        try:
                            reaudio(
                                tmp, media, second, profile=profile, plan=corrected, frames=frames
                            )
                            os.replace(second, tmp)
                        finally:
                            second.unlink(missing_ok=True)
                        output_sha = hasher.submit(sha256_of, tmp)
                        plan = corrected
                        checked = verify(tmp, profile=profile, frames=frames, config=self.config)
                    lap("verify")
                    if not checked.ok:
                        raise NormalizeError(
                            f"{request.source.name}: the house-format output failed verification: "
                            + "; ".join(checked.problems)
                        )
                    report("store", 0.9, 1.0)(0.0)
                    source_sha = source_hash.result()
                    stored, sha, new = store_file(
                        tmp, media_root, ".mkv", move=True, sha=output_sha.result()
                    )
                    if new:
                        created.append(stored)
                    attachments: list[Attachment] = []
                    if package_files:
                        attachments, made = store_attachments(
                            package_files, media_root, staging=job
                        )
                        created += made
                    qc_json = qc.as_json() | {
                        "audio_plan": plan.as_json(),
                        "conformance": list(problems),
                        "source": media.as_json(),
                    }
                    new_asset = NewAsset(
                        asset_id=uuid.uuid4().hex[:16],
                        lesson_id=request.lesson_id,
                        kind=request.kind,
                        metadata=meta,
                        profile=profile.name,
                        path=stored,
                        sha256=sha,
                        size_bytes=stored.stat().st_size,
                        duration_frames=frames,
                        source_name=request.source.name,
                        source_sha256=source_sha,
                        stream_copied=copy_video,
                        loudness_before=qc.loudness.as_json()
                        | {"measured_on": "48 kHz stereo mix"},
                        loudness_after=checked.loudness.as_json(),
                        qc=qc_json,
                        attachments=tuple(attachments),
                        ad_category=request.ad_category,
                    )
                    asset = self.library.register(new_asset, at=self.clock.now())
                    lap("store")
                except BaseException:
                    for path in created:
                        path.unlink(missing_ok=True)
                    raise
            report("done", 1.0, 1.0)(1.0)
            return IngestOutcome(asset=asset, qc=qc, stream_copied=copy_video, timings=timings)
        finally:
            hasher.shutdown(wait=False, cancel_futures=True)
