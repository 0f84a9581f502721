"""Audit findings (稽核发现): what a compliance officer files, with its evidence.

Every audit (of the as-run, of the recording, of the guides) yields ``Finding``s of
one shape. A finding's ``id`` is stable: the same fact found again on a later run
of the audit gets the same id (a hash of its code, channel and evidence keys), so
findings can be tracked, filtered and referenced in reports.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class Severity(StrEnum):
    CRITICAL = "critical"  # a regulation was broken on air (ad in a lesson, banned ad)
    MAJOR = "major"  # the schedule or a standard was not met (late, loud, unreviewed)
    MINOR = "minor"  # worth a look (small timing drift, a short recording gap)


@dataclass(frozen=True, kw_only=True)
class Finding:
    """One thing wrong with what aired, and the evidence for it."""

    code: str  # e.g. "ad_in_lesson", "late_start", "offair_gap"
    severity: Severity
    channel_id: str
    at: datetime  # aware UTC: when it happened on air
    message: str  # one line, Chinese first where it helps
    #: The facts: times, the event, the asset, the as-run record's hash, file offsets…
    evidence: Mapping[str, Any] = field(default_factory=dict)
    #: Which evidence keys identify the fact (the rest may change between runs).
    key: tuple[str, ...] = ()

    @property
    def id(self) -> str:
        keyed = {k: self.evidence.get(k) for k in self.key} if self.key else dict(self.evidence)
        body = json.dumps(
            [self.code, self.channel_id, self.at.isoformat(), keyed],
            sort_keys=True,
            default=str,
            ensure_ascii=False,
        )
        return hashlib.sha256(body.encode()).hexdigest()[:16]

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "code": self.code,
            "severity": self.severity.value,
            "channel_id": self.channel_id,
            "at": self.at.isoformat(),
            "message": self.message,
            "evidence": json.loads(json.dumps(dict(self.evidence), default=str)),
        }
