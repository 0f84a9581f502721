"""The built-in auditors, one module per concern; each is ``(AuditContext) -> findings``.

| module | codes |
|---|---|
| ``schedule`` | late_start, early_start, missing, substituted, truncated, extra |
| ``ads`` | ad_in_lesson, ad_minutes, ad_category |
| ``assets`` | unreviewed, loudness, true_peak |
| ``guides`` | guide_mismatch |
| ``screen_time`` | screen_time |
| ``journal`` | asrun_gap |
"""

from compliance.audit import Auditor
from compliance.auditors.ads import ad_findings
from compliance.auditors.assets import asset_findings
from compliance.auditors.guides import guide_findings
from compliance.auditors.journal import journal_findings
from compliance.auditors.schedule import schedule_findings
from compliance.auditors.screen_time import screen_time_findings

DEFAULT_AUDITORS: tuple[Auditor, ...] = (
    schedule_findings,
    ad_findings,
    asset_findings,
    guide_findings,
    screen_time_findings,
    journal_findings,
)

__all__ = [
    "DEFAULT_AUDITORS",
    "ad_findings",
    "asset_findings",
    "guide_findings",
    "journal_findings",
    "schedule_findings",
    "screen_time_findings",
]
