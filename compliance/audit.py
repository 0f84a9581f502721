"""The audit of what aired (播出稽核): the record against the rules, as findings.

``run_audit`` hands one ``AuditContext`` (channels, broadcast days, and lazily
loaded sources: the as-run table, every schedule version of those days, the asset
library, the guide log) to each auditor, a callable returning ``Finding``s:

    Auditor = Callable[[AuditContext], Iterable[Finding]]

The built-in auditors are in ``compliance.auditors``; other finding sources (the
off-air recording, the live monitor) plug in with ``register_auditor`` or by passing
their own list. A source is loaded only when an auditor first asks for it.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import cached_property
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session, sessionmaker

from channels import Channel
from compliance.asrun import AsRunTable
from compliance.errors import ComplianceInputError
from compliance.findings import Finding
from epg.guidelog import GuideLog, GuidePublication
from epg.schedule import DaySchedule
from epg.store import ScheduleStore
from grading import GradingPolicy
from ingest import Asset, AssetLibrary
from playout.asrun.ledger import JournalEntry

logger = logging.getLogger(__name__)

#: The longest window one audit covers (a quarter): keeps a typo from loading years.
MAX_DAYS = 92

Auditor = Callable[["AuditContext"], Iterable[Finding]]
_REGISTERED: list[Auditor] = []


def register_auditor(auditor: Auditor) -> Auditor:
    """Add a finding source to every audit (usable as a decorator); returns it unchanged."""
    if auditor not in _REGISTERED:
        _REGISTERED.append(auditor)
    return auditor


def auditors() -> list[Auditor]:
    """The built-in auditors, then every registered one."""
    from compliance.auditors import DEFAULT_AUDITORS

    return [*DEFAULT_AUDITORS, *_REGISTERED]


@dataclass(frozen=True, kw_only=True)
class VersionedDay:
    """One schedule version of a channel-day and when it was made (versions never change)."""

    created_at: datetime
    schedule: DaySchedule


def audit_window(first: date, last: date) -> tuple[date, date]:
    """Check --from/--to: exit 2 naming what is wrong."""
    if last < first:
        raise ComplianceInputError(
            f"--to {last} is before --from {first}: give the earlier day first"
        )
    days = (last - first).days + 1
    if days > MAX_DAYS:
        raise ComplianceInputError(
            f"--from {first} --to {last} spans {days} days: audit at most {MAX_DAYS} at once"
        )
    return first, last


def day_start(day: date, zone: ZoneInfo) -> datetime:
    """00:00 local of a broadcast day, as UTC."""
    return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)


class AuditContext:
    """What an audit looks at: channels × broadcast days, and the sources, loaded on demand."""

    def __init__(
        self,
        *,
        channels: Sequence[Channel],
        first: date,
        last: date,
        zone: ZoneInfo,
        sessions: sessionmaker[Session],
        grading: GradingPolicy,
        now: datetime,
        media_root: Path,
        var_dir: Path,
        until: datetime | None = None,
    ) -> None:
        self.channels = tuple(channels)
        #: The audit covers air up to here (a station stopped at this instant): an event
        #: still on air then is judged on its start, not as cut short, and what comes
        #: after is neither missing nor late. None: up to ``now``.
        self.until = until
        self.first, self.last = audit_window(first, last)
        self.zone = zone
        self.sessions = sessions
        self.grading = grading
        self.now = now
        self.media_root = media_root
        self.var_dir = var_dir

    # -- the window ------------------------------------------------------------------

    @property
    def days(self) -> list[date]:
        return [self.first + timedelta(days=n) for n in range((self.last - self.first).days + 1)]

    @property
    def start(self) -> datetime:
        """00:00 local of the first day, as UTC."""
        return day_start(self.first, self.zone)

    @property
    def end(self) -> datetime:
        """00:00 local after the last day, as UTC."""
        return day_start(self.last + timedelta(days=1), self.zone)

    def day_of(self, instant: datetime) -> date:
        """The broadcast day an instant belongs to (local date; the day starts at 00:00)."""
        return instant.astimezone(self.zone).date()

    def local(self, instant: datetime) -> str:
        """An instant as evidence: local time with its offset (e.g. +08:00)."""
        return instant.astimezone(self.zone).isoformat()

    @property
    def channel_ids(self) -> list[str]:
        return [c.id for c in self.channels]

    # -- sources (each loaded once, when first asked for) ----------------------------

    @cached_property
    def asrun(self) -> dict[str, list[JournalEntry]]:
        """As-run records scheduled in the window, per channel, in sequence order."""
        entries = AsRunTable(self.sessions).entries(
            self.channel_ids, scheduled_from=self.start, scheduled_to=self.end
        )
        out: dict[str, list[JournalEntry]] = {c: [] for c in self.channel_ids}
        for entry in entries:
            out.setdefault(entry.record.channel_id, []).append(entry)
        logger.info("audit: %d as-run records", len(entries))
        return out

    @cached_property
    def schedules(self) -> dict[tuple[str, date], list[VersionedDay]]:
        """Every version of every channel-day in the window, oldest first."""
        store = ScheduleStore(self.sessions, self.zone)
        out: dict[tuple[str, date], list[VersionedDay]] = {}
        for created_at, day in store.day_versions(self.channel_ids, self.first, self.last):
            out.setdefault((day.channel_id, day.broadcast_date), []).append(
                VersionedDay(created_at=created_at, schedule=day)
            )
        for versions in out.values():
            versions.sort(key=lambda v: (v.created_at, v.schedule.version))
        return out

    @cached_property
    def guides(self) -> dict[str, list[GuidePublication]]:
        """Every guide published for the window's days, per channel, oldest first."""
        out: dict[str, list[GuidePublication]] = {c: [] for c in self.channel_ids}
        for item in GuideLog(self.sessions).covering(self.channel_ids, self.first, self.last):
            out.setdefault(item.channel_id, []).append(item)
        return out

    @cached_property
    def assets(self) -> dict[str, Asset]:
        """Every asset the as-run or a schedule version of the window names, by asset id."""
        refs = {e.record.asset_id for entries in self.asrun.values() for e in entries} | {
            ev.asset_id
            for versions in self.schedules.values()
            for v in versions
            for ev in v.schedule.events
        }
        wanted = {r for r in refs if r}
        found = AssetLibrary(self.sessions, self.media_root).many(wanted)
        return {ref: asset for ref, asset in found.items() if ref == asset.asset_id}


@dataclass(frozen=True, kw_only=True)
class AuditReport:
    channels: tuple[str, ...]
    first: date
    last: date
    findings: tuple[Finding, ...]

    @property
    def counts(self) -> dict[str, int]:
        return dict(sorted(Counter(f.code for f in self.findings).items()))

    def as_json(self) -> dict[str, Any]:
        return {
            "channels": list(self.channels),
            "from": self.first.isoformat(),
            "to": self.last.isoformat(),
            "counts": self.counts,
            "findings": [f.as_json() for f in self.findings],
        }


def run_audit(context: AuditContext, chosen: Sequence[Auditor] | None = None) -> AuditReport:
    """Run every auditor over the context; findings deduplicated by id, in time order."""
    seen: dict[str, Finding] = {}
    for auditor in auditors() if chosen is None else chosen:
        for finding in auditor(context):
            seen.setdefault(finding.id, finding)
    findings = tuple(sorted(seen.values(), key=lambda f: (f.at, f.channel_id, f.code, f.id)))
    logger.info(
        "audit %s..%s of %d channel(s): %d finding(s)",
        context.first,
        context.last,
        len(context.channels),
        len(findings),
    )
    return AuditReport(
        channels=tuple(context.channel_ids),
        first=context.first,
        last=context.last,
        findings=findings,
    )
