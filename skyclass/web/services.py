"""What the console's pages and the JSON API both call: reads, and changes that are audited.

Every change goes through one method here, which records who did it, when and
what in the audit log after it succeeded. Pages (console.py) and the API
(api.py) only translate HTTP to these calls, so they cannot drift apart.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from sqlalchemy import func, select

from core.errors import BadInputError
from epg.context import EpgRuntime, EpgServices
from epg.errors import NoScheduleError
from epg.partners import Partner
from epg.schedule import ScheduleVersion, day_start
from epg.validation import ValidationReport
from farm.jobs import IngestJob, JobState
from ingest import Asset, AssetKind, ReviewCheck, ReviewState
from playout.asrun import AsRunOutcome, AsRunRecord, journal_path
from playout.asrun.store import AsRunRow
from skyclass.web.audit import AuditLog
from skyclass.web.errors import LoginRequired, LoginThrottled
from skyclass.web.findings import ComplianceDirectory, ComplianceSource
from skyclass.web.grid import Week, build_week, monday_of
from skyclass.web.multiviewer import (
    JournalTail,
    LiveStatusSource,
    OutputPictures,
    PictureSource,
    PlayoutFiles,
)
from skyclass.web.sessions import ConsoleSession, LoginThrottle, SessionStore, ThrottlePolicy
from skyclass.web.uploads import StagedUpload, UploadLimits
from skyclass.web.users import MAX_NAME, UserStore

if TYPE_CHECKING:
    from farm.queue import IngestFarm

logger = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class Actor:
    """Who makes a change: a console user (with role and address) or the shell."""

    name: str
    role: str = ""
    address: str = ""


@dataclass(frozen=True, kw_only=True)
class AsRunLine:
    seq: int
    record: AsRunRecord
    synced: bool  # in the database copy (else only in the journal so far)
    hash: str = ""


@runtime_checkable
class FarmSource(Protocol):
    """A runtime that knows whether the ingest farm is configured (the shell's Runtime)."""

    def configured_farm(self) -> IngestFarm | None: ...


class IngestQueue:
    """Ingest jobs for /metrics and the console: the farm's queue (issue 16) when it is
    configured, else none (ingest runs in-process, `skyclass ingest`): zeros, no jobs."""

    def __init__(self, farm: IngestFarm | None = None) -> None:
        self.farm = farm

    @classmethod
    def for_runtime(cls, runtime: object) -> IngestQueue:
        return cls(runtime.configured_farm() if isinstance(runtime, FarmSource) else None)

    @property
    def configured(self) -> bool:
        return self.farm is not None

    def counts(self) -> Mapping[str, int]:
        if self.farm is None:
            return {"queued": 0, "running": 0, "failed": 0}
        try:
            counts = self.farm.counts()
        except Exception as exc:  # a scrape must not fail on the database
            logger.warning("metrics: ingest queue unreadable: %s", exc)
            return {}
        return {
            "queued": counts[JobState.QUEUED] + counts[JobState.RETRYING],
            "running": counts[JobState.RUNNING],
            "failed": counts[JobState.FAILED],
        }

    def jobs(self, limit: int = 50) -> list[IngestJob]:
        """The newest jobs, newest first (none without a queue)."""
        return [] if self.farm is None else self.farm.list(limit=limit)


class WebServices:
    def __init__(
        self,
        runtime: EpgRuntime,
        *,
        status: LiveStatusSource | None = None,
        pictures: PictureSource | None = None,
        compliance: ComplianceSource | None = None,
        ingest_queue: IngestQueue | None = None,
        limits: UploadLimits | None = None,
        throttle: ThrottlePolicy | None = None,
    ) -> None:
        self.runtime = runtime
        self.epg = EpgServices(runtime)
        sessions = runtime.sessions()
        self.users = UserStore(sessions)
        self.sessions = SessionStore(sessions)
        self.throttle = LoginThrottle(sessions, throttle)
        self.audit = AuditLog(sessions)
        self.limits = limits or UploadLimits()
        self.status: LiveStatusSource = status or PlayoutFiles(
            registry=runtime.registry,
            var_dir=runtime.var_dir,
            zone=runtime.zone,
            clock=runtime.clock,
            sessions=sessions,
        )
        self.pictures: PictureSource = pictures or OutputPictures(
            runtime.registry, clock=runtime.clock
        )
        self.compliance: ComplianceSource = compliance or ComplianceDirectory(
            runtime.var_dir / "compliance", runtime.zone
        )
        self.ingest_queue = ingest_queue or IngestQueue.for_runtime(runtime)
        self._journals: dict[str, JournalTail] = {}

    @property
    def staging(self) -> Path:
        return self.runtime.var_dir / "web" / "uploads"

    def now(self) -> datetime:
        return self.runtime.clock.now()

    def today(self) -> date:
        return self.now().astimezone(self.runtime.zone).date()

    def _audit(self, actor: Actor, action: str, target: str, **detail: object) -> None:
        try:
            self.audit.record(
                actor=actor.name,
                role=actor.role,
                address=actor.address,
                action=action,
                target=target,
                at=self.now(),
                detail=detail,
            )
        except Exception:  # the change is made: say loudly that its record is missing
            logger.exception("audit log write failed for %s %s by %s", action, target, actor.name)
            raise

    # -- logins -------------------------------------------------------------------

    def login(self, name: str, password: str, address: str) -> tuple[str, ConsoleSession]:
        """Open a session; LoginThrottled (429) after too many failures, LoginRequired (401)."""
        now = self.now()
        name = name.strip()[:MAX_NAME]
        wait = self.throttle.retry_after(name, address, at=now)
        if wait is not None:
            seconds = max(1, math.ceil(wait.total_seconds()))
            raise LoginThrottled(
                f"too many failed logins for {name!r} or from {address} (登录失败次数过多): "
                f"try again in {math.ceil(seconds / 60)} min",
                retry_after=seconds,
            )
        user = self.users.authenticate(name, password) if name and password else None
        if user is None:
            self.throttle.failed(name, address, at=now)
            raise LoginRequired("wrong user name or password (用户名或密码错误)")
        self.throttle.succeeded(name)
        token, session = self.sessions.open(user, at=now, address=address)
        self._audit(
            Actor(name=user.name, role=user.role.value, address=address), "session.login", user.name
        )
        return token, session

    def logout(self, token: str, actor: Actor) -> None:
        self.sessions.close(token)
        self._audit(actor, "session.logout", actor.name)

    # -- channels -------------------------------------------------------------------

    def channel_ids(self) -> list[str]:
        return [c.id for c in self.runtime.registry]

    def check_channel(self, channel_id: str) -> str:
        if self.runtime.registry.find(channel_id) is None:
            raise NoScheduleError(
                f"unknown channel {channel_id!r}: known channels are "
                + ", ".join(self.channel_ids())
            )
        return channel_id

    # -- schedules ------------------------------------------------------------------

    def check_schedule(self, upload: StagedUpload) -> ValidationReport:
        """Dry run: read and validate, store nothing (ScheduleFormatError if unreadable)."""
        return self.epg.importer.check(upload.path)

    def publish_schedule(self, upload: StagedUpload, actor: Actor) -> ScheduleVersion:
        """Validate and store one new version (ScheduleRejected: nothing stored)."""
        result = self.epg.importer.load(upload.path, created_by=actor.name, at=self.now())
        version = result.version
        assert version is not None
        self._audit(
            actor,
            "schedule.publish",
            f"v{version.number}",
            source=upload.name,
            sha256=upload.sha256,
            days=[d.as_json() for d in version.diffs],
        )
        return version

    def rollback(self, channel_id: str, day: date, to: int | None, actor: Actor) -> ScheduleVersion:
        self.check_channel(channel_id)
        version = self.epg.schedules.rollback(
            channel_id, day, to=to, created_by=actor.name, at=self.now()
        )
        self._audit(
            actor,
            "schedule.rollback",
            f"v{version.number}",
            channel=channel_id,
            date=day.isoformat(),
            note=version.note,
        )
        return version

    def recent_versions(self, limit: int = 20) -> list[ScheduleVersion]:
        newest = self.epg.schedules.stamp()
        out = []
        for number in range(newest, max(0, newest - limit), -1):
            try:
                out.append(self.epg.schedules.version(number))
            except NoScheduleError:
                continue
        return out

    def history(self, channel_id: str, day: date) -> list[ScheduleVersion]:
        self.check_channel(channel_id)
        return self.epg.schedules.history(channel_id, day)

    def week(self, channel_id: str, any_day: date) -> Week:
        self.check_channel(channel_id)
        monday = monday_of(any_day)
        days = self.epg.schedules.current_days([channel_id], monday, monday + timedelta(days=6))
        refs = {e.asset_id for d in days.values() for e in d.events if e.asset_id}
        assets = self.epg.assets.many(refs)
        return build_week(channel_id, monday, days, assets, self.runtime.zone)

    # -- assets ---------------------------------------------------------------------

    def search_assets(
        self,
        *,
        q: str = "",
        kind: AssetKind | None = None,
        grade: str | None = None,
        state: ReviewState | None = None,
        subject: str | None = None,
    ) -> list[Asset]:
        found = self.epg.assets.list(kind=kind, grade=grade or None, state=state)
        needle = q.strip().casefold()
        out = []
        for asset in found:
            if subject and asset.subject != subject:
                continue
            if needle:
                meta = asset.metadata
                hay = " ".join(
                    str(x or "")
                    for x in (
                        asset.asset_id,
                        asset.lesson_id,
                        meta.title,
                        meta.subject,
                        meta.teacher,
                        meta.school,
                        meta.unit,
                        meta.textbook_edition,
                    )
                ).casefold()
                if needle not in hay:
                    continue
            out.append(asset)
        return out

    def asset(self, ref: str) -> Asset:
        return self.epg.assets.get(ref)

    def review(
        self,
        ref: str,
        *,
        approve: bool,
        checks: Mapping[str, bool],
        comment: str,
        actor: Actor,
    ) -> Asset:
        """Sign off (政治性、科学性、规范性) or reject, with a comment."""
        full = {c.value: bool(checks.get(c.value, False)) for c in ReviewCheck}
        if not approve and not comment.strip():
            raise BadInputError("a rejection needs a comment saying what to fix (驳回须填写意见)")
        asset = self.epg.assets.review(
            ref, approve=approve, reviewer=actor.name, at=self.now(), notes=comment, checks=full
        )
        self._audit(
            actor,
            "asset.review",
            asset.asset_id,
            state=asset.review_state.value,
            checks=full,
            comment=comment,
        )
        return asset

    # -- as-run ---------------------------------------------------------------------

    def asrun(self, channel_id: str, day: date) -> list[AsRunLine]:
        """What aired on a channel and broadcast day: the database copy plus newer journal lines."""
        self.check_channel(channel_id)
        zone = self.runtime.zone
        first, last = day_start(zone, day), day_start(zone, day + timedelta(days=1))
        lines: list[AsRunLine] = []
        synced = 0
        with self.runtime.sessions()() as session:
            rows = session.scalars(
                select(AsRunRow)
                .where(
                    AsRunRow.channel_id == channel_id,
                    AsRunRow.scheduled_start >= first,
                    AsRunRow.scheduled_start < last,
                )
                .order_by(AsRunRow.seq)
            )
            for row in rows:
                lines.append(
                    AsRunLine(seq=row.seq, record=_record(row), synced=True, hash=row.hash)
                )
            synced = int(
                session.scalar(
                    select(func.max(AsRunRow.seq)).where(AsRunRow.channel_id == channel_id)
                )
                or 0
            )
        tail = self._journals.get(channel_id)
        if tail is None:
            tail = self._journals[channel_id] = JournalTail(
                journal_path(self.runtime.var_dir, channel_id), keep=5000
            )
        tail.refresh(zone)
        for seq, record in tail.recent:
            if seq > synced and first <= record.scheduled_start < last:
                lines.append(AsRunLine(seq=seq, record=record, synced=False))
        return lines

    # -- partners -------------------------------------------------------------------

    def partners(self) -> list[Partner]:
        return self.epg.partners.list()

    def create_partner(
        self, name: str, channels: Sequence[str], actor: Actor
    ) -> tuple[Partner, str]:
        wanted = sorted({c.strip() for c in channels if c.strip()})
        if not wanted:
            raise BadInputError("a partner key needs at least one channel it may see")
        unknown = [c for c in wanted if self.runtime.registry.find(c) is None]
        if unknown:
            raise BadInputError(f"unknown channel(s) {', '.join(unknown)}")
        partner, key = self.epg.partners.add(name, wanted, at=self.now())
        self._audit(actor, "partner.create", partner.name, channels=list(partner.channels))
        return partner, key

    def revoke_partner(self, name: str, actor: Actor) -> Partner:
        partner = self.epg.partners.revoke(name, at=self.now())
        self._audit(actor, "partner.revoke", partner.name)
        return partner


def _record(row: AsRunRow) -> AsRunRecord:
    return AsRunRecord(
        channel_id=row.channel_id,
        event_id=row.event_id,
        event_type=row.event_type,
        scheduled_frame=row.scheduled_frame,
        actual_frame=row.actual_frame,
        scheduled_start=row.scheduled_start,
        actual_start=row.actual_start,
        scheduled_frames=row.scheduled_frames,
        duration_frames=row.duration_frames,
        asset_id=row.asset_id,
        sha256=row.sha256,
        outcome=AsRunOutcome(row.outcome),
        reason=row.reason,
        ad_break=row.ad_break,
    )
