"""EPG storage: immutable schedule versions and partner keys. Only this module touches rows.

schedule_version   one row per load or rollback: who, when, source file and checksum
schedule_day       the events of one channel-day in one version, plus the diff against
                   the version before it; the newest version of a channel-day is current
epg_partner        provincial broadcasters' API keys (hashed) and the channels they see
"""

from __future__ import annotations

import difflib
import hmac
import logging
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import JSON, Date, ForeignKey, Index, Integer, String, Text, func, select
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from core.orm import Base, UtcDateTime
from epg.errors import NoScheduleError, PartnerError, StorageFullError
from epg.partners import Partner, hash_key, new_key
from epg.schedule import DayDiff, DaySchedule, ScheduledEvent, ScheduleVersion

logger = logging.getLogger(__name__)


class ScheduleVersionRow(Base):
    __tablename__ = "schedule_version"

    number: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    source_name: Mapped[str] = mapped_column(String(512))
    source_sha256: Mapped[str] = mapped_column(String(64))
    note: Mapped[str] = mapped_column(Text, default="")


class ScheduleDayRow(Base):
    __tablename__ = "schedule_day"
    __table_args__ = (
        Index("ix_schedule_day_channel_date", "channel_id", "broadcast_date", "version"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    version: Mapped[int] = mapped_column(ForeignKey("schedule_version.number"), index=True)
    channel_id: Mapped[str] = mapped_column(String(128))
    broadcast_date: Mapped[date] = mapped_column(Date)
    events: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    diff: Mapped[dict[str, Any]] = mapped_column(JSON)


class PartnerRow(Base):
    __tablename__ = "epg_partner"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    key_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    channels: Mapped[list[str]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)


def _day(row: ScheduleDayRow) -> DaySchedule:
    return DaySchedule(
        channel_id=row.channel_id,
        broadcast_date=row.broadcast_date,
        version=row.version,
        events=tuple(ScheduledEvent.from_json(e) for e in row.events),
    )


def _diff(
    zone: ZoneInfo,
    channel_id: str,
    day: date,
    previous: DaySchedule | None,
    events: tuple[ScheduledEvent, ...],
) -> DayDiff:
    old = [e.signature(zone, day) for e in previous.events] if previous else []
    new = [e.signature(zone, day) for e in events]
    added: list[str] = []
    removed: list[str] = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(a=old, b=new, autojunk=False).get_opcodes():
        if tag in ("replace", "delete"):
            removed.extend(old[i1:i2])
        if tag in ("replace", "insert"):
            added.extend(new[j1:j2])
    return DayDiff(
        channel_id=channel_id,
        broadcast_date=day,
        previous_version=previous.version if previous else None,
        added=tuple(added),
        removed=tuple(removed),
    )


def _diff_from_json(data: Mapping[str, Any]) -> DayDiff:
    return DayDiff(
        channel_id=str(data["channel"]),
        broadcast_date=date.fromisoformat(data["date"]),
        previous_version=data.get("previous_version"),
        added=tuple(data.get("added", ())),
        removed=tuple(data.get("removed", ())),
    )


_SQLITE_FULL = 13  # sqlite3 result codes (the low byte of an extended code)
_SQLITE_IOERR = 10
_PG_DISK_FULL = "53100"


def _database_place(sessions: sessionmaker[Session]) -> str:
    """Where the database lives, for a message: its folder for SQLite, host/name otherwise."""
    bind = sessions.kw.get("bind")
    url = getattr(bind, "url", None)
    if url is None:
        return "the database"
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        path = Path(url.database).resolve()
        return f"{path.parent} (database {path.name})"
    return f"the database server {url.host or 'localhost'}, database {url.database}"


@contextmanager
def storage_errors(sessions: sessionmaker[Session]) -> Iterator[None]:
    """Turn "disk full" from any database into one line that says so and where.

    SQLAlchemy's own message quotes the statement and its parameters (a KB of SQL);
    the transaction was rolled back, so nothing was stored.
    """
    try:
        yield
    except DBAPIError as exc:
        orig = exc.orig
        code = getattr(orig, "sqlite_errorcode", None)
        full = (
            (code is not None and code & 0xFF == _SQLITE_FULL)
            or getattr(orig, "sqlstate", None) == _PG_DISK_FULL
            or "disk is full" in str(orig)
        )
        io_error = code is not None and code & 0xFF == _SQLITE_IOERR
        if not (full or io_error):
            raise
        what = "is full" if full else f"failed a write ({orig}; a full disk does this)"
        raise StorageFullError(
            f"the disk under {_database_place(sessions)} {what}: nothing was stored; free "
            "space there and run the command again"
        ) from None


class ScheduleStore:
    """Repository of schedule versions; returns frozen records."""

    def __init__(self, sessions: sessionmaker[Session], zone: ZoneInfo) -> None:
        self._sessions = sessions
        self.zone = zone

    # -- reading ---------------------------------------------------------------

    def current(self, channel_id: str, day: date) -> DaySchedule | None:
        with self._sessions() as session:
            row = session.scalars(
                select(ScheduleDayRow)
                .where(
                    ScheduleDayRow.channel_id == channel_id,
                    ScheduleDayRow.broadcast_date == day,
                )
                .order_by(ScheduleDayRow.version.desc())
                .limit(1)
            ).first()
            return _day(row) if row else None

    def current_days(
        self, channel_ids: Iterable[str], first: date, last: date
    ) -> dict[tuple[str, date], DaySchedule]:
        """The current schedule of every listed channel-day in [first, last]."""
        ids = sorted(set(channel_ids))
        if not ids:
            return {}
        with self._sessions() as session:
            newest = (
                select(
                    ScheduleDayRow.channel_id,
                    ScheduleDayRow.broadcast_date,
                    func.max(ScheduleDayRow.version).label("version"),
                )
                .where(
                    ScheduleDayRow.channel_id.in_(ids),
                    ScheduleDayRow.broadcast_date >= first,
                    ScheduleDayRow.broadcast_date <= last,
                )
                .group_by(ScheduleDayRow.channel_id, ScheduleDayRow.broadcast_date)
                .subquery()
            )
            rows = session.scalars(
                select(ScheduleDayRow).join(
                    newest,
                    (ScheduleDayRow.channel_id == newest.c.channel_id)
                    & (ScheduleDayRow.broadcast_date == newest.c.broadcast_date)
                    & (ScheduleDayRow.version == newest.c.version),
                )
            )
            return {(r.channel_id, r.broadcast_date): _day(r) for r in rows}

    def day_versions(
        self, channel_ids: Iterable[str], first: date, last: date
    ) -> list[tuple[datetime, DaySchedule]]:
        """Every version of each listed channel-day in [first, last] with when it was made,
        oldest first: the compliance audit replays which version was in force when."""
        ids = sorted(set(channel_ids))
        if not ids:
            return []
        with self._sessions() as session:
            pairs = session.execute(
                select(ScheduleVersionRow.created_at, ScheduleDayRow)
                .join(ScheduleVersionRow, ScheduleDayRow.version == ScheduleVersionRow.number)
                .where(
                    ScheduleDayRow.channel_id.in_(ids),
                    ScheduleDayRow.broadcast_date >= first,
                    ScheduleDayRow.broadcast_date <= last,
                )
                .order_by(ScheduleDayRow.version)
            ).all()
            return [(created_at, _day(row)) for created_at, row in pairs]

    def stamp(self) -> int:
        """The newest version number (0 when empty): any load or rollback changes it."""
        with self._sessions() as session:
            return int(session.scalar(select(func.max(ScheduleVersionRow.number))) or 0)

    def version(self, number: int) -> ScheduleVersion:
        with self._sessions() as session:
            row = session.get(ScheduleVersionRow, number)
            if row is None:
                raise NoScheduleError(
                    f"no schedule version {number}: `skyclass schedule history` lists them"
                )
            days = session.scalars(
                select(ScheduleDayRow)
                .where(ScheduleDayRow.version == number)
                .order_by(ScheduleDayRow.channel_id, ScheduleDayRow.broadcast_date)
            )
            return self._version(row, [_diff_from_json(d.diff) for d in days])

    def history(self, channel_id: str, day: date) -> list[ScheduleVersion]:
        """Every version that touched a channel-day, newest first."""
        with self._sessions() as session:
            pairs = session.execute(
                select(ScheduleVersionRow, ScheduleDayRow)
                .join(ScheduleDayRow, ScheduleDayRow.version == ScheduleVersionRow.number)
                .where(
                    ScheduleDayRow.channel_id == channel_id,
                    ScheduleDayRow.broadcast_date == day,
                )
                .order_by(ScheduleVersionRow.number.desc())
            ).all()
            return [self._version(v, [_diff_from_json(d.diff)]) for v, d in pairs]

    # -- writing ---------------------------------------------------------------

    def commit(
        self,
        days: Mapping[tuple[str, date], tuple[ScheduledEvent, ...]],
        *,
        created_by: str,
        at: datetime,
        source_name: str,
        source_sha256: str,
        note: str = "",
    ) -> ScheduleVersion:
        """Store one new version holding every given channel-day, in one transaction."""
        with storage_errors(self._sessions), self._sessions() as session, session.begin():
            version = ScheduleVersionRow(
                created_by=created_by,
                created_at=at,
                source_name=source_name,
                source_sha256=source_sha256,
                note=note,
            )
            session.add(version)
            session.flush()
            diffs = []
            for (channel_id, day), events in sorted(days.items()):
                previous = self._current_in(session, channel_id, day)
                diff = _diff(self.zone, channel_id, day, previous, events)
                diffs.append(diff)
                session.add(
                    ScheduleDayRow(
                        version=version.number,
                        channel_id=channel_id,
                        broadcast_date=day,
                        events=[e.as_json() for e in events],
                        diff=diff.as_json(),
                    )
                )
            record = self._version(version, diffs)
        logger.info("schedule version %d by %s: %d day(s)", record.number, created_by, len(diffs))
        return record

    def rollback(
        self, channel_id: str, day: date, *, to: int | None, created_by: str, at: datetime
    ) -> ScheduleVersion:
        """Make an earlier version current again by storing a copy of it as a new version."""
        versions = self.history(channel_id, day)
        if not versions:
            raise NoScheduleError(f"no schedule for {channel_id} on {day}: nothing to roll back")
        if to is None:
            if len(versions) < 2:
                raise NoScheduleError(
                    f"{channel_id} on {day} has only version {versions[0].number}: "
                    "there is no earlier version to roll back to"
                )
            target = versions[1]
        else:
            matches = [v for v in versions if v.number == to]
            if not matches:
                numbers = ", ".join(str(v.number) for v in versions)
                raise NoScheduleError(
                    f"version {to} never held {channel_id} on {day}: choose one of {numbers}"
                )
            target = matches[0]
        with self._sessions() as session:
            row = session.scalars(
                select(ScheduleDayRow).where(
                    ScheduleDayRow.version == target.number,
                    ScheduleDayRow.channel_id == channel_id,
                    ScheduleDayRow.broadcast_date == day,
                )
            ).one()
            events = _day(row).events
        return self.commit(
            {(channel_id, day): events},
            created_by=created_by,
            at=at,
            source_name=target.source_name,
            source_sha256=target.source_sha256,
            note=f"rollback of {channel_id} {day} from v{versions[0].number} to v{target.number}",
        )

    def _current_in(self, session: Session, channel_id: str, day: date) -> DaySchedule | None:
        row = session.scalars(
            select(ScheduleDayRow)
            .where(ScheduleDayRow.channel_id == channel_id, ScheduleDayRow.broadcast_date == day)
            .order_by(ScheduleDayRow.version.desc())
            .limit(1)
        ).first()
        return _day(row) if row else None

    @staticmethod
    def _version(row: ScheduleVersionRow, diffs: list[DayDiff]) -> ScheduleVersion:
        return ScheduleVersion(
            number=row.number,
            created_by=row.created_by,
            created_at=row.created_at,
            source_name=row.source_name,
            source_sha256=row.source_sha256,
            note=row.note,
            diffs=tuple(diffs),
        )


class PartnerStore:
    """Repository of partner API keys (hashed)."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def add(self, name: str, channels: Iterable[str], *, at: datetime) -> tuple[Partner, str]:
        """Create a partner; returns it with its key (shown once, stored only hashed)."""
        name = name.strip()
        if not name:
            raise PartnerError("a partner needs a NAME, e.g. 湖北广电")
        key = new_key()
        try:
            with storage_errors(self._sessions), self._sessions() as session, session.begin():
                row = session.scalars(select(PartnerRow).where(PartnerRow.name == name)).first()
                if row is not None and row.revoked_at is None:
                    raise PartnerError(
                        f"partner {name!r} already has an active key: revoke it first "
                        "(`skyclass epg partners revoke`) to issue a new one"
                    )
                if row is None:
                    row = PartnerRow(name=name)
                    session.add(row)
                # A revoked partner gets a fresh key; the old hash is overwritten.
                row.key_sha256 = hash_key(key)
                row.channels = sorted(set(channels))
                row.created_at = at
                row.revoked_at = None
        except IntegrityError:
            raise PartnerError(f"partner {name!r} was added concurrently: list partners") from None
        return self._record(row), key

    def list(self) -> list[Partner]:
        with self._sessions() as session:
            return [
                self._record(r)
                for r in session.scalars(select(PartnerRow).order_by(PartnerRow.name))
            ]

    def revoke(self, name: str, *, at: datetime) -> Partner:
        with storage_errors(self._sessions), self._sessions() as session, session.begin():
            row = session.scalars(select(PartnerRow).where(PartnerRow.name == name)).first()
            if row is None:
                raise PartnerError(f"no partner {name!r}: `skyclass epg partners list` shows them")
            if row.revoked_at is None:
                row.revoked_at = at
            return self._record(row)

    def authenticate(self, key: str) -> Partner | None:
        """The active partner holding this key, or None."""
        digest = hash_key(key)
        with self._sessions() as session:
            row = session.scalars(select(PartnerRow).where(PartnerRow.key_sha256 == digest)).first()
            if row is None or not hmac.compare_digest(row.key_sha256, digest):
                return None
            partner = self._record(row)
        return partner if partner.active else None

    @staticmethod
    def _record(row: PartnerRow) -> Partner:
        return Partner(
            name=row.name,
            channels=tuple(row.channels),
            created_at=row.created_at,
            revoked_at=row.revoked_at,
        )
