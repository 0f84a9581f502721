"""The database copy of the as-run: the append-only ``asrun`` table and the journal sync.

Channels only append to their fsynced journals (``playout.asrun.ledger``) and never
wait on the database. ``sync_asrun`` (run on an interval by the station) copies what
the table lacks, keyed by channel and sequence number, so it is idempotent and a
database outage is caught up on the next run. Compliance reads the table.

Append-only twice over: the ORM refuses to flush a change or a delete of an
``AsRunRow`` and any bulk UPDATE/DELETE statement on it (below), and the database
refuses them whatever the client (triggers, migration 0012). Nothing here changes a
record; ``skyclass compliance verify`` finds a change made anyway (hash chain).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    BigInteger,
    Connection,
    Integer,
    String,
    Text,
    UniqueConstraint,
    event,
    func,
    select,
)
from sqlalchemy.orm import Mapped, Mapper, ORMExecuteState, Session, mapped_column, sessionmaker

from core.orm import Base, UtcDateTime
from playout.asrun.ledger import AsRunLedger, JournalEntry, journal_path
from playout.errors import LedgerError

logger = logging.getLogger(__name__)


class AsRunRow(Base):
    """The append-only database copy of the journal (rows are never updated)."""

    __tablename__ = "asrun"
    __table_args__ = (UniqueConstraint("channel_id", "seq", name="uq_asrun_channel_seq"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    channel_id: Mapped[str] = mapped_column(String(64), index=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    event_id: Mapped[str] = mapped_column(String(128))
    event_type: Mapped[str] = mapped_column(String(16))
    scheduled_frame: Mapped[int] = mapped_column(BigInteger)
    actual_frame: Mapped[int] = mapped_column(BigInteger)
    scheduled_start: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
    actual_start: Mapped[datetime] = mapped_column(UtcDateTime())
    scheduled_frames: Mapped[int] = mapped_column(BigInteger)
    duration_frames: Mapped[int] = mapped_column(BigInteger)
    asset_id: Mapped[str | None] = mapped_column(String(64))
    sha256: Mapped[str | None] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text)
    ad_break: Mapped[str | None] = mapped_column(String(64))
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)

    @classmethod
    def from_entry(cls, entry: JournalEntry) -> AsRunRow:
        r = entry.record
        return cls(
            channel_id=r.channel_id,
            seq=entry.seq,
            event_id=r.event_id,
            event_type=r.event_type,
            scheduled_frame=r.scheduled_frame,
            actual_frame=r.actual_frame,
            scheduled_start=r.scheduled_start,
            actual_start=r.actual_start,
            scheduled_frames=r.scheduled_frames,
            duration_frames=r.duration_frames,
            asset_id=r.asset_id,
            sha256=r.sha256,
            outcome=r.outcome.value,
            reason=r.reason,
            ad_break=r.ad_break,
            prev_hash=entry.prev,
            hash=entry.hash,
        )


_APPEND_ONLY = "the as-run is append-only: a record is never changed or removed"


@event.listens_for(AsRunRow, "before_update")
@event.listens_for(AsRunRow, "before_delete")
def _refuse_change(mapper: Mapper[Any], connection: Connection, target: AsRunRow) -> None:
    raise LedgerError(f"{_APPEND_ONLY} (channel {target.channel_id}, seq {target.seq})")


@event.listens_for(Session, "do_orm_execute")
def _refuse_bulk_change(state: ORMExecuteState) -> None:
    if (state.is_update or state.is_delete) and any(
        m.class_ is AsRunRow for m in state.all_mappers
    ):
        raise LedgerError(_APPEND_ONLY)


def sync_journal(ledger: AsRunLedger, sessions: sessionmaker[Session]) -> int:
    """Copy entries the database lacks into ``asrun``; return how many were added.

    The journal must extend what the database holds: the hash chain makes one check
    enough (the journal's entry at the database's last sequence number, or its own
    last one, has the same hash there). A journal that went another way (replaced,
    repaired after damage) raises LedgerError instead of being skipped in silence.
    """
    entries = list(ledger.entries())
    if not entries:
        return 0
    channel = entries[0].record.channel_id
    with sessions() as session, session.begin():
        done = session.scalar(select(func.max(AsRunRow.seq)).where(AsRunRow.channel_id == channel))
        if done is not None:
            mine = next((e for e in reversed(entries) if e.seq <= done), None)
            theirs = (
                None
                if mine is None
                else session.scalar(
                    select(AsRunRow.hash).where(
                        AsRunRow.channel_id == channel, AsRunRow.seq == mine.seq
                    )
                )
            )
            if mine is not None and theirs != mine.hash:
                raise LedgerError(
                    f"{ledger.path}: entry {mine.seq} differs from the database's copy: the "
                    "journal was replaced or repaired; audit both (the database keeps its rows)"
                )
        added = 0
        for entry in entries:
            if done is not None and entry.seq <= done:
                continue
            session.add(AsRunRow.from_entry(entry))
            added += 1
    return added


def sync_asrun(var_dir: Path, channel_ids: Sequence[str], sessions: sessionmaker[Session]) -> int:
    """Copy new as-run journal entries of every channel into the database.

    A failing channel (database down, journal damaged) is logged and skipped; its
    journal keeps the records for the next run.
    """
    added = 0
    for channel_id in channel_ids:
        path = journal_path(var_dir, channel_id)
        if not path.exists():
            continue
        try:
            added += sync_journal(AsRunLedger(path), sessions)
        except Exception:
            logger.exception("as-run sync of %s failed; the journal keeps the records", channel_id)
    return added
