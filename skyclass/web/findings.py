"""Compliance findings and reports for the console: a plug-in point for compliance I and II.

The console shows findings with filters, opens each one's evidence, and offers
the reports for download. It depends only on ``ComplianceSource``. The default,
``ComplianceDirectory``, reads files under ``var/compliance/``:

* ``findings/*.json``: a JSON list of findings (or ``{"findings": [...]}``) in the shape
  of ``compliance.findings.Finding.as_json()``: ``id``, ``channel_id`` (or ``channel``),
  ``code``, ``severity`` (critical, major, minor), ``at`` (ISO 8601 with offset),
  ``message`` and ``evidence`` (an object); any other keys are shown as evidence too;
* ``reports/``: report files (HTML, CSV, BXF XML, JSON, PDF) offered for download.

So `skyclass compliance audit --json > var/compliance/findings/<name>.json` and
`skyclass compliance report … -o var/compliance/reports/<file>` appear in the console
as they are written; a richer source (e.g. the audit store itself) can replace it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from compliance.findings import Severity

logger = logging.getLogger(__name__)

REPORT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".csv": "text/csv; charset=utf-8",
    ".xml": "application/xml",
    ".json": "application/json",
    ".pdf": "application/pdf",
}
SEVERITIES = tuple(s.value for s in Severity)


@dataclass(frozen=True, kw_only=True)
class FindingView:
    id: str
    channel_id: str
    code: str
    severity: str
    at: datetime | None
    message: str
    evidence: Mapping[str, Any] = field(default_factory=dict)
    source: str = ""  # the file or store it came from

    def as_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "channel_id": self.channel_id,
            "code": self.code,
            "severity": self.severity,
            "at": self.at.isoformat() if self.at else None,
            "message": self.message,
            "evidence": dict(self.evidence),
            "source": self.source,
        }


@dataclass(frozen=True, kw_only=True)
class FindingQuery:
    channel_id: str | None = None
    code: str | None = None
    severity: str | None = None
    first: date | None = None  # local broadcast dates, inclusive
    last: date | None = None

    def matches(self, finding: FindingView, zone: ZoneInfo) -> bool:
        if self.channel_id and finding.channel_id != self.channel_id:
            return False
        if self.code and finding.code != self.code:
            return False
        if self.severity and finding.severity != self.severity:
            return False
        if self.first or self.last:
            if finding.at is None:
                return False
            day = finding.at.astimezone(zone).date()
            if (self.first and day < self.first) or (self.last and day > self.last):
                return False
        return True


@dataclass(frozen=True, kw_only=True)
class ReportFile:
    name: str
    path: Path
    size_bytes: int
    modified: datetime
    media_type: str

    def as_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "size_bytes": self.size_bytes,
            "modified": self.modified.isoformat(),
            "media_type": self.media_type,
        }


class ComplianceSource(Protocol):
    """Plug-in point: where the console gets compliance findings and reports."""

    @property
    def available(self) -> bool:
        """False until compliance has produced anything (the page says so)."""
        ...

    def findings(self, query: FindingQuery) -> Sequence[FindingView]: ...

    def finding(self, finding_id: str) -> FindingView | None: ...

    def reports(self) -> Sequence[ReportFile]: ...


def _time(raw: Mapping[str, Any]) -> datetime | None:
    for key in ("at", "start", "scheduled_start", "actual_start", "time"):
        value = raw.get(key)
        if isinstance(value, str):
            try:
                parsed = datetime.fromisoformat(value)
            except ValueError:
                continue
            if parsed.tzinfo is None:
                continue  # a time without an offset is ambiguous: not shown as a time
            return parsed.astimezone(UTC)
    return None


_KNOWN = {"id", "channel", "channel_id", "code", "severity", "message", "evidence"}


def finding_from_json(raw: Mapping[str, Any], source: str, index: int) -> FindingView:
    evidence = dict(raw["evidence"]) if isinstance(raw.get("evidence"), Mapping) else {}
    evidence.update({k: v for k, v in raw.items() if k not in _KNOWN})
    return FindingView(
        id=str(raw.get("id") or f"{Path(source).stem}-{index}"),
        channel_id=str(raw.get("channel") or raw.get("channel_id") or ""),
        code=str(raw.get("code") or ""),
        severity=str(raw.get("severity") or Severity.MINOR.value).lower(),
        at=_time(raw),
        message=str(raw.get("message") or raw.get("code") or ""),
        evidence=evidence,
        source=source,
    )


class ComplianceDirectory:
    """The default ComplianceSource: findings and reports as files (module docstring)."""

    def __init__(self, root: Path, zone: ZoneInfo) -> None:
        self.root = root
        self.zone = zone

    @property
    def findings_dir(self) -> Path:
        return self.root / "findings"

    @property
    def reports_dir(self) -> Path:
        return self.root / "reports"

    @property
    def available(self) -> bool:
        return self.findings_dir.is_dir() or self.reports_dir.is_dir()

    def _all(self) -> list[FindingView]:
        found: list[FindingView] = []
        if not self.findings_dir.is_dir():
            return found
        for path in sorted(self.findings_dir.glob("*.json")):
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                logger.warning("%s unreadable: %s", path, exc)
                continue
            items = data.get("findings", []) if isinstance(data, dict) else data
            if not isinstance(items, list):
                continue
            for index, item in enumerate(items):
                if isinstance(item, Mapping):
                    found.append(finding_from_json(item, path.name, index))
        return found

    def findings(self, query: FindingQuery) -> list[FindingView]:
        epoch = datetime.min.replace(tzinfo=UTC)
        matches = [f for f in self._all() if query.matches(f, self.zone)]
        return sorted(matches, key=lambda f: (f.at or epoch, f.id), reverse=True)

    def finding(self, finding_id: str) -> FindingView | None:
        return next((f for f in self._all() if f.id == finding_id), None)

    def reports(self) -> list[ReportFile]:
        if not self.reports_dir.is_dir():
            return []
        out = []
        for path in sorted(self.reports_dir.iterdir()):
            media_type = REPORT_TYPES.get(path.suffix.lower())
            if media_type is None or not path.is_file():
                continue
            stat = path.stat()
            out.append(
                ReportFile(
                    name=path.name,
                    path=path,
                    size_bytes=stat.st_size,
                    modified=datetime.fromtimestamp(stat.st_mtime, UTC),
                    media_type=media_type,
                )
            )
        return out
