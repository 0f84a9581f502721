"""Holes in the as-run record itself (playout's ``gap`` entries).

``asrun_gap``: playout journaled that part of its own record was lost — a torn tail
set aside after a crash, a journal damaged mid-file, or records dropped because the
disk refused them. What aired there cannot be proven from the as-run; the off-air
recording is the evidence left.
"""

from __future__ import annotations

from collections.abc import Iterator

from compliance.audit import AuditContext
from compliance.auditors.aired import record_evidence
from compliance.findings import Finding, Severity
from playout.asrun.ledger import GAP_TYPE, AsRunOutcome


def journal_findings(context: AuditContext) -> Iterator[Finding]:
    for channel_id, entries in context.asrun.items():
        for entry in entries:
            record = entry.record
            if record.event_type != GAP_TYPE and record.outcome is not AsRunOutcome.UNRECORDED:
                continue
            yield Finding(
                code="asrun_gap",
                severity=Severity.MAJOR,
                channel_id=channel_id,
                at=record.actual_start,
                message=f"播出记录缺失 as-run gap at {context.local(record.actual_start)}: "
                f"{record.reason or 'part of the record was lost'}; "
                "check the off-air recording for what aired",
                evidence=record_evidence(context, entry),
                key=("asrun_seq", "asrun_hash"),
            )
