"""The as-run ledger (播出记录): what actually aired, durable before anything else.

Playout appends one JSON line per event to a local journal and fsyncs it; it
never waits on the database. Each line carries the SHA-256 of the previous
line's hash and its own content, so a deleted or edited line breaks the chain
and ``verify()`` says where. ``playout.asrun.store`` copies new lines into the
append-only ``asrun`` table, which compliance audits read.

Every append is complete or raises: ``write_all`` loops on short writes, and a
write or fsync that fails (a full disk) cuts the file back to where it was, so
no torn line is left for the next append to glue onto. A torn tail that is
there anyway (the machine died mid-write) is set aside by the writer when it
opens the journal (``repair=True``): the bytes go to ``ID.jsonl.torn``, the
journal is cut back to its last complete entry, and a ``gap`` entry (outcome
``unrecorded``) says what was set aside and where the as-run may have a hole.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

from core.clock import Clock, SystemClock
from core.timecode import FPS
from playout.errors import LedgerError

logger = logging.getLogger(__name__)

GENESIS = "0" * 64


class AsRunOutcome(StrEnum):
    AIRED = "aired"  # played as scheduled (possibly late, as the times show)
    SUBSTITUTED = "substituted"  # its media was bad: filler or slate played instead
    TRUNCATED = "truncated"  # cut short (hard start, damaged media, end of run)
    SKIPPED = "skipped"  # did not air at all
    UNRECORDED = "unrecorded"  # a gap entry: the journal itself lost what aired here


GAP_TYPE = "gap"  # event_type of an entry that records a hole in the journal, not an event


@dataclass(frozen=True, kw_only=True)
class AsRunRecord:
    """One event as it aired; frames are channel-timeline frames at 25 fps."""

    channel_id: str
    event_id: str
    event_type: str
    scheduled_frame: int
    actual_frame: int
    scheduled_start: datetime  # aware UTC
    actual_start: datetime  # aware UTC
    scheduled_frames: int
    duration_frames: int
    asset_id: str | None
    sha256: str | None
    outcome: AsRunOutcome
    reason: str = ""
    ad_break: str | None = None

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["scheduled_start"] = self.scheduled_start.isoformat()
        data["actual_start"] = self.actual_start.isoformat()
        data["outcome"] = self.outcome.value
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AsRunRecord:
        fields = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        fields["scheduled_start"] = datetime.fromisoformat(data["scheduled_start"])
        fields["actual_start"] = datetime.fromisoformat(data["actual_start"])
        fields["outcome"] = AsRunOutcome(data["outcome"])
        return cls(**fields)


@dataclass(frozen=True, kw_only=True)
class JournalEntry:
    seq: int
    prev: str
    hash: str
    record: AsRunRecord


def _entry_hash(prev: str, seq: int, record: dict[str, Any]) -> str:
    body = json.dumps(record, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(f"{prev}|{seq}|{body}".encode()).hexdigest()


def journal_path(var_dir: Path, channel_id: str) -> Path:
    """Where a channel's journal lives: var/asrun/<channel>.jsonl."""
    return var_dir / "asrun" / f"{channel_id}.jsonl"


def torn_path(journal: Path) -> Path:
    """Where torn tails are set aside: var/asrun/<channel>.jsonl.torn."""
    return journal.with_name(journal.name + ".torn")


def write_all(fd: int, data: bytes) -> None:
    """Write every byte or raise: ``os.write`` may write only part (a nearly full disk)."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        if written <= 0:  # no progress and no error: treat as a full disk
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        view = view[written:]


def _parse_line(line: bytes) -> JournalEntry:
    raw = json.loads(line)
    return JournalEntry(
        seq=int(raw["seq"]),
        prev=str(raw["prev"]),
        hash=str(raw["hash"]),
        record=AsRunRecord.from_json(raw["record"]),
    )


_NOT_AN_ENTRY = (ValueError, KeyError, TypeError, AttributeError)


def _chained_prefix(path: Path) -> tuple[bytes, int]:
    """The leading complete lines of a journal that parse and chain: (bytes, count)."""
    kept: list[bytes] = []
    prev = GENESIS
    with path.open("rb") as fh:
        for line in fh:
            try:
                entry = _parse_line(line) if line.endswith(b"\n") else None
            except _NOT_AN_ENTRY:
                entry = None
            if entry is None or entry.prev != prev or entry.seq != len(kept) + 1:
                break
            if entry.hash != _entry_hash(prev, entry.seq, entry.record.as_json()):
                break
            kept.append(line)
            prev = entry.hash
    return b"".join(kept), len(kept)


class AsRunLedger:
    """Append-only, fsynced, hash-chained JSON-lines journal for one channel.

    ``repair=True`` is for the writer (``playout run``): a torn tail is set aside
    and journaled as a gap (see the module docstring) instead of blocking it.
    """

    def __init__(self, path: Path, *, repair: bool = False, clock: Clock | None = None) -> None:
        self.path = path
        self.clock: Clock = clock or SystemClock()
        self._repair = repair
        self._seq = 0
        self._last = GENESIS
        self.last: AsRunRecord | None = None  # the newest record (restart recovery reads it)
        self._torn_at: int | None = None  # byte offset of a torn tail still to set aside
        for entry in self.entries():
            self._seq, self._last, self.last = entry.seq, entry.hash, entry.record
        if repair and self._torn_at is not None:
            try:
                self._set_aside_torn_tail()
            except OSError as exc:  # a full disk: append() tries again first
                logger.error("%s: cannot set the torn tail aside yet: %s", self.path, exc)

    def append(self, record: AsRunRecord) -> JournalEntry:
        """Write one record durably (fsync) before returning, or raise OSError.

        A failed write leaves the file as it was (cut back), so nothing is torn.
        """
        if self._torn_at is not None:
            if not self._repair:
                raise LedgerError(f"{self.path}: the journal ends with a torn line")
            self._set_aside_torn_tail()
        return self._append(record)

    def _append(self, record: AsRunRecord) -> JournalEntry:
        seq, prev = self._seq + 1, self._last
        data = record.as_json()
        digest = _entry_hash(prev, seq, data)
        line = json.dumps(
            {"seq": seq, "prev": prev, "hash": digest, "record": data},
            ensure_ascii=False,
            sort_keys=True,
        )
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            size = os.fstat(fd).st_size
            try:
                write_all(fd, (line + "\n").encode())
                os.fsync(fd)
            except OSError:
                try:
                    os.ftruncate(fd, size)
                    os.fsync(fd)
                except OSError as undo:  # the next open sets the torn tail aside
                    self._torn_at = size
                    logger.error("%s: could not cut a failed write back: %s", self.path, undo)
                raise
        finally:
            os.close(fd)
        self._seq, self._last, self.last = seq, digest, record
        return JournalEntry(seq=seq, prev=prev, hash=digest, record=record)

    def _set_aside_torn_tail(self) -> None:
        """Move the bytes after the last complete entry to ``.torn`` and journal the gap."""
        at = self._torn_at
        assert at is not None
        with self.path.open("rb") as fh:
            fh.seek(at)
            tail = fh.read()
        aside = torn_path(self.path)
        fd = os.open(aside, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:  # first keep the evidence, then cut: a crash in between only repeats this
            write_all(fd, tail if tail.endswith(b"\n") else tail + b"\n")
            os.fsync(fd)
        finally:
            os.close(fd)
        fd = os.open(self.path, os.O_WRONLY)
        try:
            os.ftruncate(fd, at)
            os.fsync(fd)
        finally:
            os.close(fd)
        self._torn_at = None
        digest = hashlib.sha256(tail).hexdigest()
        reason = (
            f"journal tail torn: {len(tail)} bytes after entry {self._seq} set aside in "
            f"{aside.name} (sha256 {digest[:16]}); what aired from here to the next entry "
            "may have no as-run"
        )
        logger.warning("%s: %s", self.path, reason)
        self._append(self.gap_record(reason, sha256=digest))

    def gap_record(self, reason: str, *, sha256: str | None = None) -> AsRunRecord:
        """A ``gap`` entry starting where the newest record ends (now, in an empty journal)."""
        last = self.last
        if last is not None:
            frame = last.actual_frame + last.duration_frames
            instant = last.actual_start + timedelta(seconds=last.duration_frames / FPS)
            channel = last.channel_id
        else:
            frame, instant, channel = 0, self.clock.now(), self.path.stem
        return AsRunRecord(
            channel_id=channel,
            event_id=f"journal-gap-{self._seq + 1}",
            event_type=GAP_TYPE,
            scheduled_frame=frame,
            actual_frame=frame,
            scheduled_start=instant,
            actual_start=instant,
            scheduled_frames=0,
            duration_frames=0,
            asset_id=None,
            sha256=sha256,
            outcome=AsRunOutcome.UNRECORDED,
            reason=reason,
        )

    @classmethod
    def for_writer(cls, path: Path, *, clock: Clock | None = None) -> AsRunLedger:
        """The journal ``playout run`` appends to: never refuses to start a channel.

        A torn tail is set aside (``repair``). A journal with an unreadable line
        elsewhere (edited, corrupted) is moved aside whole, kept as evidence; its
        entries up to the damage (still chained) are copied back and a gap entry names
        the old file, so the chain and the sequence numbers go on and the channel
        stays on air.
        """
        try:
            return cls(path, repair=True, clock=clock)
        except LedgerError as exc:
            stamp = (clock or SystemClock()).now().strftime("%Y%m%dT%H%M%SZ")
            aside = path.with_name(f"{path.name}.damaged-{stamp}")
            os.replace(path, aside)
            prefix, kept = _chained_prefix(aside)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            try:
                write_all(fd, prefix)
                os.fsync(fd)
            finally:
                os.close(fd)
            logger.error("%s moved to %s (%d entries kept): %s", path, aside.name, kept, exc)
            ledger = cls(path, repair=True, clock=clock)
            ledger.append(
                ledger.gap_record(
                    f"journal damaged after entry {kept}: moved to {aside.name}, entries "
                    f"up to the damage kept: {exc}"
                )
            )
            return ledger

    def entries(self) -> Iterator[JournalEntry]:
        """Every complete entry, in order; a torn tail (crash mid-write) is left out.

        A torn tail is an incomplete last line or, for the writer (``repair``), a last
        line that is not an entry (a torn line an older version appended onto).
        """
        if not self.path.exists():
            return
        offset = 0
        bad: tuple[int, int, str] | None = None  # (line, offset, why) of an unreadable line
        with self.path.open("rb") as fh:
            for number, line in enumerate(fh, start=1):
                if bad is not None:
                    break  # the unreadable line was not the last: the journal was edited
                if not line.endswith(b"\n"):
                    logger.warning("%s: line %d is incomplete (crash?): ignored", self.path, number)
                    self._torn_at = offset
                    return
                try:
                    entry = _parse_line(line)
                except _NOT_AN_ENTRY as exc:
                    bad = (number, offset, str(exc)[:80])
                    continue
                offset += len(line)
                yield entry
            else:
                if bad is not None and self._repair:
                    logger.warning(
                        "%s: last line %d is not an entry (torn): set aside", self.path, bad[0]
                    )
                    self._torn_at = bad[1]
                    return
        if bad is not None:
            raise LedgerError(
                f"{self.path}: line {bad[0]} is not an as-run entry ({bad[2]}): the "
                "journal was edited; restore it from backup or the database"
            )

    def records(self) -> list[AsRunRecord]:
        return [entry.record for entry in self.entries()]

    def verify(self) -> int:
        """Check the hash chain; return the number of entries or raise LedgerError."""
        prev, count = GENESIS, 0
        for entry in self.entries():
            expected = _entry_hash(prev, entry.seq, entry.record.as_json())
            if entry.prev != prev or entry.hash != expected or entry.seq != count + 1:
                raise LedgerError(
                    f"{self.path}: hash chain broken at entry {entry.seq}: the journal was "
                    "altered after it was written; audit it against the database copy"
                )
            prev, count = entry.hash, count + 1
        return count
