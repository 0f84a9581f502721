"""The as-run ledger (播出记录): what actually aired, durable before anything else.

Playout appends one JSON line per event to a local journal and fsyncs it; it
never waits on the database. Each line carries the SHA-256 of the previous
line's hash and its own content, so a deleted or edited line breaks the chain
and ``verify()`` says where. ``playout.asrun.store`` copies new lines into the
append-only ``asrun`` table, which compliance audits read.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from playout.errors import LedgerError

logger = logging.getLogger(__name__)

GENESIS = "0" * 64


class AsRunOutcome(StrEnum):
    AIRED = "aired"  # played as scheduled (possibly late, as the times show)
    SUBSTITUTED = "substituted"  # its media was bad: filler or slate played instead
    TRUNCATED = "truncated"  # cut short (hard start, damaged media, end of run)
    SKIPPED = "skipped"  # did not air at all


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


class AsRunLedger:
    """Append-only, fsynced, hash-chained JSON-lines journal for one channel."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._seq = 0
        self._last = GENESIS
        self.last: AsRunRecord | None = None  # the newest record (restart recovery reads it)
        for entry in self.entries():
            self._seq, self._last, self.last = entry.seq, entry.hash, entry.record

    def append(self, record: AsRunRecord) -> JournalEntry:
        """Write one record durably (fsync) before returning."""
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
            os.write(fd, (line + "\n").encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        self._seq, self._last, self.last = seq, digest, record
        return JournalEntry(seq=seq, prev=prev, hash=digest, record=record)

    def entries(self) -> Iterator[JournalEntry]:
        """Every complete line, in order; a torn last line (crash mid-write) is ignored."""
        if not self.path.exists():
            return
        with self.path.open(encoding="utf-8") as fh:
            for number, line in enumerate(fh, start=1):
                if not line.endswith("\n"):
                    logger.warning("%s: line %d is incomplete (crash?): ignored", self.path, number)
                    return
                try:
                    raw = json.loads(line)
                    yield JournalEntry(
                        seq=int(raw["seq"]),
                        prev=str(raw["prev"]),
                        hash=str(raw["hash"]),
                        record=AsRunRecord.from_json(raw["record"]),
                    )
                except (ValueError, KeyError, TypeError) as exc:
                    raise LedgerError(
                        f"{self.path}: line {number} is not an as-run entry ({exc}): the "
                        "journal was edited; restore it from backup or the database"
                    ) from None

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
