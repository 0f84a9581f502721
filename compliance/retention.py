"""How long off-air recordings are kept (录像保存期限), and removing the expired ones.

广播电视安全播出管理规定 (SARFT Order 62) requires the aired signal to be recorded and kept
for more than one week, so a retention below 7 days is refused (exit 2); the default is
90 days. Expiry is judged by the hour a file covers (from its name), never by its
modification time, so copying or touching a file does not change when it goes.
"""

from __future__ import annotations

import logging
import re
import shutil
from datetime import datetime, timedelta
from pathlib import Path

from compliance.errors import ComplianceInputError

logger = logging.getLogger(__name__)

DEFAULT_RETENTION_DAYS = 90
MIN_RETENTION_DAYS = 7  # SARFT Order 62: "more than one week"

#: Hourly recording file names: local start of the hour with its UTC offset.
HOUR_FILE = re.compile(r"^(\d{8}T\d{2})([+-]\d{4})\.ts$")
HOUR_FORMAT = "%Y%m%dT%H%z"
#: Sidecars that live and die with their recording (arrival marks, cached analyses).
SIDECAR_SUFFIXES = (".times", ".tr101290.json", ".loudness.json")


def check_retention(days: int) -> int:
    """The retention in days, or ComplianceInputError if it breaks the one-week minimum."""
    if days < MIN_RETENTION_DAYS:
        raise ComplianceInputError(
            f"recording retention {days} days is below the legal minimum of "
            f"{MIN_RETENTION_DAYS} days (广播电视安全播出管理规定: keep recordings more than one "
            f"week): set --retention-days to {MIN_RETENTION_DAYS} or more (default "
            f"{DEFAULT_RETENTION_DAYS})"
        )
    return days


def hour_of(path: Path) -> datetime | None:
    """The aware start of the hour a recording file covers, from its name (None if not one)."""
    match = HOUR_FILE.match(path.name)
    if match is None:
        return None
    try:
        return datetime.strptime(match[1] + match[2], HOUR_FORMAT)
    except ValueError:
        return None


def prune(channel_dir: Path, *, now: datetime, retention_days: int) -> list[Path]:
    """Delete the hour files of one channel that ended more than ``retention_days`` ago.

    Their sidecars go with them; a day folder left without recordings goes too (its
    index with it). Returns the recordings removed.
    """
    check_retention(retention_days)
    cutoff = now - timedelta(days=retention_days)
    removed: list[Path] = []
    if not channel_dir.is_dir():
        return removed
    for day in sorted(p for p in channel_dir.iterdir() if p.is_dir()):
        for path in sorted(day.glob("*.ts")):
            start = hour_of(path)
            if start is None or start + timedelta(hours=1) > cutoff:
                continue
            for suffix in SIDECAR_SUFFIXES:
                path.with_name(path.name + suffix).unlink(missing_ok=True)
            path.unlink(missing_ok=True)
            removed.append(path)
        if not any(day.glob("*.ts")):
            shutil.rmtree(day, ignore_errors=True)
    if removed:
        logger.info(
            "%s: removed %d recording hour(s) older than %d days",
            channel_dir.name,
            len(removed),
            retention_days,
        )
    return removed
