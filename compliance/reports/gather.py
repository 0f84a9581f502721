"""Gathering a report's facts: the as-run, the off-air audit, the rundowns, other findings."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from compliance.findings import Finding
from compliance.offair import OffairConfig, audit_offair, load_asrun
from compliance.recording import recordings_root
from compliance.reports.model import ComplianceReport, build_report, period
from playout.asrun.ledger import JournalEntry


def gather_report(
    *,
    channel_id: str,
    channel_name: str,
    first: date,
    last: date,
    zone: ZoneInfo,
    var_dir: Path,
    now: datetime,
    recordings: Path | None = None,
    entries: Sequence[JournalEntry] | None = None,
    extra_findings: Sequence[Finding] = (),
    config: OffairConfig | None = None,
) -> ComplianceReport:
    """The report of local days ``first``..``last``: the off-air audit is run for the
    period (its hour loudness makes the graphs) and ``extra_findings`` (e.g. the as-run
    audit's) are added. The as-run comes from the channel's journal unless given."""
    start, end = period(first, last, zone)
    entries = load_asrun(var_dir, channel_id) if entries is None else entries
    audit = audit_offair(
        channel_id=channel_id,
        start=start,
        end=end,
        recordings=recordings or recordings_root(var_dir),
        entries=entries,
        now=now,
        config=config,
    )
    seen = {f.id for f in audit.findings}
    findings = [*audit.findings, *(f for f in extra_findings if f.id not in seen)]
    return build_report(
        channel_id=channel_id,
        channel_name=channel_name,
        first=first,
        last=last,
        zone=zone,
        entries=entries,
        findings=findings,
        loudness_hours=audit.loudness.hours,
        now=now,
        rundown_dir=var_dir / "rundowns",
    )
