"""Reading the as-run where playout left it: the ``asrun`` table and the local journals.

Playout owns both (``playout.asrun``); compliance only reads. Every record comes back
as a ``JournalEntry`` (sequence number, previous hash, own hash, record), so the
audit's evidence can always name the record's hash, and ``verify`` can recompute it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from playout.asrun.ledger import AsRunOutcome, AsRunRecord, JournalEntry
from playout.asrun.store import AsRunRow

logger = logging.getLogger(__name__)

#: The fields of a record, in the order the ledger hashes them (sorted keys in JSON).
RECORD_FIELDS: tuple[str, ...] = tuple(AsRunRecord.__dataclass_fields__)
_TIMES = ("scheduled_start", "actual_start")


def record_body(row: AsRunRow) -> dict[str, Any]:
    """A table row as the JSON object the journal hashed (``AsRunRecord.as_json``)."""
    body = {name: getattr(row, name) for name in RECORD_FIELDS}
    for name in _TIMES:
        body[name] = body[name].isoformat()
    return body


def record_of(row: AsRunRow) -> AsRunRecord:
    fields = {name: getattr(row, name) for name in RECORD_FIELDS}
    fields["outcome"] = AsRunOutcome(row.outcome)
    return AsRunRecord(**fields)


def entry_of(row: AsRunRow) -> JournalEntry:
    return JournalEntry(seq=row.seq, prev=row.prev_hash, hash=row.hash, record=record_of(row))


@dataclass(frozen=True, kw_only=True)
class StoredRow:
    """One raw table row for verification: its place, its chain fields and its content."""

    row_id: int
    seq: int
    prev: str
    hash: str
    body: dict[str, Any]


class AsRunTable:
    """Read-only access to the append-only ``asrun`` table."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def channels(self) -> list[str]:
        with self._sessions() as session:
            return sorted(session.scalars(select(AsRunRow.channel_id).distinct()))

    def entries(
        self,
        channel_ids: Iterable[str],
        *,
        scheduled_from: datetime | None = None,
        scheduled_to: datetime | None = None,
    ) -> list[JournalEntry]:
        """Records of these channels scheduled in [from, to), by channel and sequence."""
        ids = sorted(set(channel_ids))
        if not ids:
            return []
        stmt = select(AsRunRow).where(AsRunRow.channel_id.in_(ids))
        if scheduled_from is not None:
            stmt = stmt.where(AsRunRow.scheduled_start >= scheduled_from)
        if scheduled_to is not None:
            stmt = stmt.where(AsRunRow.scheduled_start < scheduled_to)
        stmt = stmt.order_by(AsRunRow.channel_id, AsRunRow.seq)
        with self._sessions() as session:
            return [entry_of(row) for row in session.scalars(stmt)]

    def rows(self, channel_id: str, *, batch: int = 5000) -> Iterator[StoredRow]:
        """Every row of a channel in sequence order, streamed (a year is millions)."""
        stmt = (
            select(AsRunRow)
            .where(AsRunRow.channel_id == channel_id)
            .order_by(AsRunRow.seq, AsRunRow.id)
            .execution_options(yield_per=batch)
        )
        with self._sessions() as session:
            for row in session.scalars(stmt):
                yield StoredRow(
                    row_id=row.id,
                    seq=row.seq,
                    prev=row.prev_hash,
                    hash=row.hash,
                    body=record_body(row),
                )
                session.expunge(row)


def torn_tail(path: Path) -> bool:
    """Whether the journal ends in an incomplete line (a crash during a write)."""
    with path.open("rb") as fh:
        try:
            fh.seek(-1, 2)
        except OSError:
            return False
        return fh.read(1) != b"\n"
