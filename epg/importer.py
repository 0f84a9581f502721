"""Schedule import: read a file, validate all of it, store one version or nothing."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from channels import ChannelRegistry
from epg.errors import ScheduleRejected
from epg.formats import reader_for
from epg.schedule import ScheduleVersion
from epg.store import ScheduleStore
from epg.validation import AssetLookup, ProgressCallback, ValidationReport, validate
from grading import GradingPolicy

logger = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class LoadResult:
    report: ValidationReport
    version: ScheduleVersion | None  # None for a dry run

    def as_json(self) -> dict[str, object]:
        return {
            **self.report.as_json(),
            "version": self.version.as_json() if self.version else None,
        }


class ScheduleImporter:
    def __init__(
        self,
        *,
        registry: ChannelRegistry,
        assets: AssetLookup,
        policy: GradingPolicy,
        zone: ZoneInfo,
        store: ScheduleStore,
    ) -> None:
        self.registry = registry
        self.assets = assets
        self.policy = policy
        self.zone = zone
        self.store = store

    def check(self, path: Path, progress: ProgressCallback | None = None) -> ValidationReport:
        """Read and validate without storing anything."""
        source = reader_for(path).read(path)
        if progress:
            progress("read", len(source.rows), len(source.rows))
        return validate(
            source,
            registry=self.registry,
            assets=self.assets,
            policy=self.policy,
            zone=self.zone,
            progress=progress,
        )

    def load(
        self,
        path: Path,
        *,
        created_by: str,
        at: datetime,
        dry_run: bool = False,
        progress: ProgressCallback | None = None,
    ) -> LoadResult:
        """Validate the whole file; store it as one new version only if it has no error.

        Raises ScheduleRejected (exit code 2) listing every error; then nothing changed.
        """
        report = self.check(path, progress)
        if not report.ok:
            # info, not warning: the CLI prints the refusal itself, once.
            logger.info("%s refused: %d error(s)", path, len(report.errors))
            raise ScheduleRejected(report.source.name, report.errors, report.warnings)
        if dry_run:
            return LoadResult(report=report, version=None)
        version = self.store.commit(
            report.days,
            created_by=created_by,
            at=at,
            source_name=report.source.name,
            source_sha256=report.source.sha256,
        )
        if progress:
            progress("store", report.event_count, report.event_count)
        return LoadResult(report=report, version=version)
