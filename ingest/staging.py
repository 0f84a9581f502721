"""The staging area (media/.staging): where ingest writes before a file is stored.

Every file an ingest job writes before it reaches its content address lives here,
named after the job, next to the job's lock file. The job holds an exclusive
``flock`` on that lock for as long as it runs; the kernel drops the lock when the
process dies, however it dies (SIGKILL included). ``sweep`` removes the files of
every job whose lock it can take: jobs that are gone. It runs whenever an ingest
starts, so an interrupted ingest leaves nothing behind once the next one has run,
and it never touches a job that is still running, on this machine or (with a
shared media store) on another.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

logger = logging.getLogger(__name__)

LOCK_SUFFIX = ".lock"
PREFIX = "job-"


class StagingJob:
    """One ingest job's private corner of the staging area."""

    def __init__(self, directory: Path, name: str, lock_fd: int) -> None:
        self.directory = directory
        self.name = name
        self._lock_fd = lock_fd

    def path(self, suffix: str) -> Path:
        """A file of this job, e.g. ``job.path(".mkv")`` or ``job.path("-2.mkv")``."""
        return self.directory / f"{self.name}{suffix}"

    def files(self) -> list[Path]:
        return [p for p in self.directory.glob(f"{self.name}*") if p.suffix != LOCK_SUFFIX]

    def close(self) -> None:
        """Remove what is left of the job's files, then release and remove the lock."""
        for path in self.files():
            path.unlink(missing_ok=True)
        (self.directory / f"{self.name}{LOCK_SUFFIX}").unlink(missing_ok=True)
        os.close(self._lock_fd)


class StagingArea:
    def __init__(self, media_root: Path) -> None:
        self.directory = media_root / ".staging"

    @contextlib.contextmanager
    def job(self) -> Iterator[StagingJob]:
        """A locked job; its files are removed when the block ends, however it ends."""
        self.directory.mkdir(parents=True, exist_ok=True)
        name = PREFIX + secrets.token_hex(8)
        job = StagingJob(self.directory, name, self._lock(self.directory / f"{name}{LOCK_SUFFIX}"))
        try:
            yield job
        finally:
            job.close()

    def sweep(self) -> list[Path]:
        """Remove the files of every job that is no longer running; return what went."""
        if not self.directory.is_dir():
            return []
        removed: list[Path] = []
        for entry in sorted(self.directory.iterdir()):
            if not entry.is_file() or entry.suffix == LOCK_SUFFIX:
                continue
            name = entry.name[: len(PREFIX) + 16] if entry.name.startswith(PREFIX) else None
            if name is not None and self._running(name):
                continue
            entry.unlink(missing_ok=True)  # an interrupted job's output, or a stray file
            removed.append(entry)
        for lock in self.directory.glob(f"*{LOCK_SUFFIX}"):
            self._remove_stale_lock(lock)
        if removed:
            logger.warning(
                "staging: removed %d file(s) left by interrupted ingests: %s",
                len(removed),
                ", ".join(p.name for p in removed),
            )
        return removed

    @staticmethod
    def _lock(path: Path) -> int:
        """Hold an exclusive lock on ``path``, the file that is there now (a sweep that
        took the lock for a moment may have removed it: then lock the new one)."""
        while True:
            fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                if os.fstat(fd).st_ino == os.stat(path).st_ino:
                    return fd
            except FileNotFoundError:
                pass
            except BaseException:
                os.close(fd)
                raise
            os.close(fd)

    def _running(self, name: str) -> bool:
        """True when the job's lock is held by a live process."""
        lock = self.directory / f"{name}{LOCK_SUFFIX}"
        try:
            fd = os.open(lock, os.O_RDWR)
        except FileNotFoundError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)  # closing drops the lock we may have taken
        return False

    @staticmethod
    def _remove_stale_lock(lock: Path) -> None:
        try:
            fd = os.open(lock, os.O_RDWR)
        except FileNotFoundError:
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            lock.unlink(missing_ok=True)  # removed while we hold it: see _lock
        except BlockingIOError:
            pass
        finally:
            os.close(fd)
