"""Schedule uploads: size and type checked before anything reads them, staged for publish.

A refused upload raises UploadRefused (413 too large, 415 wrong type, 400 empty)
and leaves nothing behind. An accepted one is written to
``var/web/uploads/<id>/<original name>`` (the name is what schedule versions
record as their source), so a dry run can be published later without sending
the file again. Stale stagings are pruned after a day.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
import shutil
import time
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from skyclass.web.errors import UploadRefused

logger = logging.getLogger(__name__)

MB = 1024 * 1024

#: Suffix → content types a browser or client may send for it (octet-stream: unknown).
SCHEDULE_TYPES: dict[str, tuple[str, ...]] = {
    ".xlsx": (
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "application/zip",
        "application/octet-stream",
    ),
    ".csv": ("text/csv", "text/plain", "application/vnd.ms-excel", "application/octet-stream"),
    ".txt": ("text/plain", "text/csv", "application/octet-stream"),
    ".json": ("application/json", "text/plain", "application/octet-stream"),
}
_ID = re.compile(r"^[A-Za-z0-9_-]{20,64}$")
STAGING_DAYS = 1.0


@dataclass(frozen=True, kw_only=True)
class UploadLimits:
    schedule_bytes: int = 5 * MB  # one week of 13 channels is well under 1 MB
    body_bytes: int = 1 * MB  # any other request body (forms, JSON)

    def body_limit(self, path: str) -> int:
        """The largest request body a path accepts (uploads carry multipart overhead)."""
        if path.startswith(("/api/schedule/", "/console/schedule")):
            return self.schedule_bytes + 64 * 1024
        return self.body_bytes


@dataclass(frozen=True, kw_only=True)
class StagedUpload:
    id: str
    path: Path
    name: str
    size_bytes: int
    sha256: str


def _size(n: int) -> str:
    return f"{n / MB:.1f} MB" if n >= MB / 10 else f"{n / 1024:.0f} KB"


def safe_name(filename: str | None) -> str:
    """The file's own name, without directories or control characters, at most 120 long."""
    raw = (filename or "").replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = "".join(
        c for c in unicodedata.normalize("NFC", raw) if c.isprintable() and c not in '<>:"|?*'
    ).strip(" .")
    if len(cleaned) > 120:
        stem, dot, suffix = cleaned.rpartition(".")
        cleaned = stem[:110] + dot + suffix[:9] if dot else cleaned[:120]
    return cleaned


def check_schedule(name: str, content_type: str | None, head: bytes) -> str:
    """Refuse anything that is not an XLSX, CSV or JSON schedule; return the suffix."""
    suffix = Path(name).suffix.lower()
    if suffix not in SCHEDULE_TYPES:
        known = ", ".join(SCHEDULE_TYPES)
        shown = name or "(no file name)"
        raise UploadRefused(
            f"{shown}: schedules must be {known} files (周播表须为 XLSX、CSV 或 JSON)",
            status_code=415,
        )
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media and media not in SCHEDULE_TYPES[suffix]:
        raise UploadRefused(
            f"{name}: sent as {media}, which is not a {suffix} schedule: upload the file itself",
            status_code=415,
        )
    if suffix == ".xlsx" and not head.startswith(b"PK\x03\x04"):
        raise UploadRefused(
            f"{name}: not an XLSX workbook (it does not start like one): save it from Excel "
            "as .xlsx, or export CSV",
            status_code=415,
        )
    if suffix != ".xlsx" and b"\x00" in head:
        raise UploadRefused(
            f"{name}: binary data in a {suffix} file: save it as UTF-8 text", status_code=415
        )
    return suffix


def stage_schedule(
    stream: BinaryIO,
    filename: str | None,
    content_type: str | None,
    staging: Path,
    limits: UploadLimits,
) -> StagedUpload:
    """Check and stage one uploaded schedule; raises UploadRefused with nothing written."""
    name = safe_name(filename)
    limit = limits.schedule_bytes
    data = stream.read(limit + 1)
    if len(data) > limit:
        raise UploadRefused(
            f"{name or 'the file'}: larger than {_size(limit)}, the limit for a schedule "
            "(文件过大): split it by week or by channel",
            status_code=413,
        )
    if not data:
        raise UploadRefused(f"{name or 'the file'}: empty file: choose the schedule to upload")
    check_schedule(name, content_type, data[:8192])
    prune(staging)
    upload_id = secrets.token_urlsafe(24)
    folder = staging / upload_id
    folder.mkdir(parents=True)
    path = folder / name
    path.write_bytes(data)
    return StagedUpload(
        id=upload_id,
        path=path,
        name=name,
        size_bytes=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
    )


def staged(staging: Path, upload_id: str) -> StagedUpload:
    """A staged upload by id (from a dry run), or UploadRefused if it is gone."""
    folder = staging / upload_id
    files = sorted(folder.iterdir()) if _ID.match(upload_id) and folder.is_dir() else []
    if len(files) != 1:
        raise UploadRefused(
            "that upload is no longer staged (published already, or older than a day): "
            "upload the file again",
            status_code=404,
        )
    data = files[0].read_bytes()
    return StagedUpload(
        id=upload_id,
        path=files[0],
        name=files[0].name,
        size_bytes=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
    )


def discard(upload: StagedUpload) -> None:
    shutil.rmtree(upload.path.parent, ignore_errors=True)


def prune(staging: Path, days: float = STAGING_DAYS) -> None:
    if not staging.is_dir():
        return
    cutoff = time.time() - days * 86400
    for folder in staging.iterdir():
        try:
            if folder.is_dir() and folder.stat().st_mtime < cutoff:
                shutil.rmtree(folder, ignore_errors=True)
        except OSError:
            continue
