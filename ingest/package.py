"""Resource packages (资源包): the 学习任务单 and 课后练习 that go with a lesson video.

A package is a folder; documents are recognised by name (学习任务单 / 任务单 / task,
课后练习 / 练习 / exercise) and checked by content (a PDF must start with %PDF, a DOCX
must be a zip holding word/document.xml, an HTML file must contain <html), so a
misnamed file is refused rather than stored.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from ingest.asset import Attachment, AttachmentKind
from ingest.errors import PackageError
from ingest.library import content_path
from ingest.staging import StagingJob

__all__ = ["PackageError", "PackageFile", "scan_package", "store_file"]

MEDIA_TYPES = {
    ".pdf": "application/pdf",
    ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ".html": "text/html",
    ".htm": "text/html",
}
_TASK_WORDS = ("学习任务单", "任务单", "task")
_EXERCISE_WORDS = ("课后练习", "练习", "exercise", "homework")


@dataclass(frozen=True, kw_only=True)
class PackageFile:
    kind: AttachmentKind
    path: Path
    media_type: str


def _kind(name: str) -> AttachmentKind | None:
    lowered = name.lower()
    if any(word in lowered for word in _TASK_WORDS):
        return AttachmentKind.TASK_SHEET
    if any(word in lowered for word in _EXERCISE_WORDS):
        return AttachmentKind.EXERCISES
    return None


def _check_content(path: Path) -> None:
    suffix = path.suffix.lower()
    head = path.read_bytes()[:4096]
    if suffix == ".pdf" and not head.startswith(b"%PDF-"):
        raise PackageError(f"{path}: named .pdf but is not a PDF: export it again as PDF")
    if suffix == ".docx":
        try:
            with zipfile.ZipFile(path) as archive:
                if "word/document.xml" not in archive.namelist():
                    raise PackageError(f"{path}: not a Word document (no word/document.xml)")
        except zipfile.BadZipFile:
            raise PackageError(f"{path}: named .docx but is not a DOCX: save it as .docx") from None
    if suffix in (".html", ".htm") and b"<html" not in head.lower():
        raise PackageError(f"{path}: named {suffix} but holds no <html> document")


def scan_package(folder: Path) -> list[PackageFile]:
    """The attachments in a package folder; refuses unknown or broken documents."""
    if not folder.is_dir():
        raise PackageError(f"--package {folder}: not a folder: give the resource package folder")
    found: list[PackageFile] = []
    for path in sorted(folder.iterdir()):
        suffix = path.suffix.lower()
        if not path.is_file() or suffix not in MEDIA_TYPES:
            continue  # the video itself, thumbnails, notes: not attachments
        kind = _kind(path.stem)
        if kind is None:
            raise PackageError(
                f"{path}: cannot tell whether this is a 学习任务单 or a 课后练习: put one "
                "of those words (or 'task' / 'exercise') in the file name"
            )
        _check_content(path)
        found.append(PackageFile(kind=kind, path=path, media_type=MEDIA_TYPES[suffix]))
    if not found:
        raise PackageError(
            f"--package {folder}: no 学习任务单 or 课后练习 (PDF, DOCX or HTML) in the folder"
        )
    return found


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def store_file(
    source: Path,
    media_root: Path,
    suffix: str,
    *,
    move: bool = False,
    sha: str | None = None,
    staging: StagingJob | None = None,
) -> tuple[Path, str, bool]:
    """Put a file at its content address; returns (path, sha256, created_now).

    Copies go through a temporary file and an atomic rename, so a crash never leaves
    a partial file under a content address; with ``staging`` the temporary file is
    the job's, which the next ingest sweeps if this one is killed. `sha` is the
    digest of `source` when the caller has already computed it.
    """
    sha = sha or sha256_of(source)
    target = content_path(media_root, sha, suffix)
    if target.exists():
        if move:
            source.unlink()
        return target, sha, False
    target.parent.mkdir(parents=True, exist_ok=True)
    if move:
        os.replace(source, target)
        return target, sha, True
    if staging is not None:
        tmp_name = str(staging.path(f"-part-{sha[:16]}{suffix}"))
    else:
        fd, tmp_name = tempfile.mkstemp(prefix=".part-", dir=target.parent)
        os.close(fd)
    try:
        shutil.copyfile(source, tmp_name)
        os.replace(tmp_name, target)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return target, sha, True


def store_attachments(
    files: list[PackageFile], media_root: Path, *, staging: StagingJob | None = None
) -> tuple[list[Attachment], list[Path]]:
    """Store package files; returns the records and the files created by this call."""
    records: list[Attachment] = []
    created: list[Path] = []
    for item in files:
        path, sha, new = store_file(
            item.path, media_root, item.path.suffix.lower(), staging=staging
        )
        if new:
            created.append(path)
        records.append(
            Attachment(
                kind=item.kind,
                filename=item.path.name,
                media_type=item.media_type,
                sha256=sha,
                size_bytes=path.stat().st_size,
                path=path,
            )
        )
    return records, created
