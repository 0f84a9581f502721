"""The guide log (节目指南发布记录): which schedule version each published guide showed, and when.

Guides are part of the record: what a provincial broadcaster or a set-top box was
told must be provable afterwards. Two kinds are logged, one row per channel:

* ``xmltv``: each XMLTV served to a partner over the pull API (``epg.api``), with
  the partner's name, the days it covered and the schedule version of each day;
* ``eit``: each compiled rundown (``RundownCompiler.compile``), whose EPG horizon
  playout carries as EIT; logged at compile time with the version of each day of
  the horizon (playout itself never touches the database).

Schedule versions are immutable, so a version number is enough to know what a guide
said. The table is append-only (triggers in migration 0012); compliance reads it to
find "the last guide published before air".
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, Date, Integer, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from core.orm import Base, UtcDateTime

logger = logging.getLogger(__name__)


class GuideKind(StrEnum):
    XMLTV = "xmltv"  # served to a partner (GET /epg/…)
    EIT = "eit"  # carried on air from a compiled rundown


class GuideLogRow(Base):
    """One published guide for one channel (rows are never updated)."""

    __tablename__ = "guide_log"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(8))
    channel_id: Mapped[str] = mapped_column(String(128), index=True)
    partner: Mapped[str | None] = mapped_column(String(128))
    first_day: Mapped[date] = mapped_column(Date)
    last_day: Mapped[date] = mapped_column(Date)
    versions: Mapped[dict[str, int]] = mapped_column(JSON)  # ISO day → schedule version
    document: Mapped[str] = mapped_column(String(64))  # XMLTV ETag or rundown checksum
    published_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)


@dataclass(frozen=True, kw_only=True)
class GuidePublication:
    """A guide as published for one channel: which version of each day it showed."""

    kind: GuideKind
    channel_id: str
    partner: str | None  # the partner it was served to (XMLTV); None for EIT
    first_day: date
    last_day: date
    versions: Mapping[date, int]  # the days it listed → schedule version shown
    document: str
    published_at: datetime  # aware UTC

    def as_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "channel_id": self.channel_id,
            "partner": self.partner,
            "first_day": self.first_day.isoformat(),
            "last_day": self.last_day.isoformat(),
            "versions": {d.isoformat(): v for d, v in sorted(self.versions.items())},
            "document": self.document,
            "published_at": self.published_at.isoformat(),
        }


def publications(
    kind: GuideKind,
    versions: Mapping[tuple[str, date], int],
    *,
    channel_ids: Sequence[str],
    first_day: date,
    last_day: date,
    document: str,
    at: datetime,
    partner: str | None = None,
) -> list[GuidePublication]:
    """One publication per channel from the (channel, day) → version map a guide was built from."""
    return [
        GuidePublication(
            kind=kind,
            channel_id=channel_id,
            partner=partner,
            first_day=first_day,
            last_day=last_day,
            versions={d: v for (c, d), v in versions.items() if c == channel_id},
            document=document,
            published_at=at,
        )
        for channel_id in dict.fromkeys(channel_ids)
    ]


class GuideLog:
    """Repository of the guide log; returns frozen GuidePublication records."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def record(self, items: Iterable[GuidePublication]) -> int:
        """Append publications in one transaction; returns how many."""
        rows = [
            GuideLogRow(
                kind=p.kind.value,
                channel_id=p.channel_id,
                partner=p.partner,
                first_day=p.first_day,
                last_day=p.last_day,
                versions={d.isoformat(): v for d, v in sorted(p.versions.items())},
                document=p.document,
                published_at=p.published_at,
            )
            for p in items
        ]
        if rows:
            with self._sessions() as session, session.begin():
                session.add_all(rows)
        return len(rows)

    def covering(
        self, channel_ids: Iterable[str], first: date, last: date
    ) -> list[GuidePublication]:
        """Every publication of these channels that listed a day in [first, last], oldest first."""
        ids = sorted(set(channel_ids))
        if not ids:
            return []
        with self._sessions() as session:
            rows = session.scalars(
                select(GuideLogRow)
                .where(
                    GuideLogRow.channel_id.in_(ids),
                    GuideLogRow.first_day <= last,
                    GuideLogRow.last_day >= first,
                )
                .order_by(GuideLogRow.published_at, GuideLogRow.id)
            )
            return [_publication(r) for r in rows]


def _publication(row: GuideLogRow) -> GuidePublication:
    return GuidePublication(
        kind=GuideKind(row.kind),
        channel_id=row.channel_id,
        partner=row.partner,
        first_day=row.first_day,
        last_day=row.last_day,
        versions={date.fromisoformat(d): int(v) for d, v in row.versions.items()},
        document=row.document,
        published_at=row.published_at,
    )
