"""The asset library's facts about what aired: review and loudness.

| code | when |
|---|---|
| ``unreviewed`` | a lesson or rerun aired without standing approval (审核) at its air time |
| ``loudness`` | an aired item's integrated loudness is outside −24 LUFS ±2 LU (GY/T 282-2014) |
| ``true_peak`` | an aired item's true peak is above −2 dBTP (GY/T 282-2014) |

Loudness comes from each asset's measurement after normalization at ingest
(``loudness_after``, ITU-R BS.1770): playout never re-encodes, so that is what aired.
One loudness finding per asset and broadcast day, listing every airing.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import date
from typing import Any

from compliance.audit import AuditContext
from compliance.auditors.aired import LESSON_TYPES, aired_events, record_evidence, title_of
from compliance.findings import Finding, Severity
from playout.asrun.ledger import JournalEntry

TARGET_LUFS = -24.0  # GY/T 282-2014
LUFS_TOLERANCE = 2.0
MAX_TRUE_PEAK_DBTP = -2.0


def asset_findings(context: AuditContext) -> Iterator[Finding]:
    for channel_id in context.channel_ids:
        events = aired_events(context, channel_id)
        airings: dict[tuple[str, date], list[JournalEntry]] = {}
        for event in events:
            media = event.with_media
            if not media:
                continue
            first = min(media, key=lambda e: e.record.actual_start)
            if event.type in LESSON_TYPES:
                yield from _unreviewed(context, channel_id, first)
            for entry in media:
                asset_id = entry.record.asset_id
                assert asset_id is not None
                airings.setdefault((asset_id, event.key[0]), []).append(entry)
        for (asset_id, day), entries in sorted(airings.items()):
            yield from _loudness(context, channel_id, asset_id, day, entries)


def _unreviewed(context: AuditContext, channel_id: str, entry: JournalEntry) -> Iterator[Finding]:
    r = entry.record
    asset = context.assets.get(r.asset_id or "")
    if asset is not None and asset.approved_at(r.actual_start):
        return
    if asset is None:
        why = "is not in the asset library"
        history: list[dict[str, Any]] = []
    else:
        why = (
            "had no review"
            if not asset.reviews
            else f"was not approved then (review state {asset.review_state.value} now)"
        )
        history = [
            {"state": v.state.value, "reviewer": v.reviewer, "at": context.local(v.at)}
            for v in asset.reviews
        ]
    yield Finding(
        code="unreviewed",
        severity=Severity.MAJOR,
        channel_id=channel_id,
        at=r.actual_start,
        message=f"未审先播 unreviewed: {r.event_type} {title_of(context, r.asset_id)} aired at "
        f"{context.local(r.actual_start)} but {why} (政治性、科学性、规范性审核)",
        evidence=record_evidence(context, entry) | {"reviews": history},
        key=("event_id", "scheduled_start"),
    )


def _number(value: object) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def _loudness(
    context: AuditContext, channel_id: str, asset_id: str, day: date, entries: list[JournalEntry]
) -> Iterator[Finding]:
    asset = context.assets.get(asset_id)
    if asset is None:
        return
    measured = asset.loudness_after
    lufs = _number(measured.get("integrated_lufs"))
    peak = _number(measured.get("true_peak_dbtp"))
    entries = sorted(entries, key=lambda e: e.record.actual_start)
    first = entries[0]
    base = record_evidence(context, first) | {
        "title": title_of(context, asset_id),
        "day": day.isoformat(),
        "airings": [
            {"actual_start": context.local(e.record.actual_start), "asrun_hash": e.hash}
            for e in entries
        ],
        "integrated_lufs": lufs,
        "true_peak_dbtp": peak,
    }
    count = f"{len(entries)} airing(s) from {context.local(first.record.actual_start)}"
    if lufs is not None and abs(lufs - TARGET_LUFS) > LUFS_TOLERANCE:
        yield Finding(
            code="loudness",
            severity=Severity.MAJOR,
            channel_id=channel_id,
            at=first.record.actual_start,
            message=f"响度超标 loudness: {title_of(context, asset_id)} measures {lufs:.1f} LUFS, "
            f"outside {TARGET_LUFS:g} ±{LUFS_TOLERANCE:g} LU (GY/T 282): {count}",
            evidence=base,
            key=("asset_id", "day"),
        )
    if peak is not None and peak > MAX_TRUE_PEAK_DBTP:
        yield Finding(
            code="true_peak",
            severity=Severity.MAJOR,
            channel_id=channel_id,
            at=first.record.actual_start,
            message=f"真峰值超标 true peak: {title_of(context, asset_id)} peaks at {peak:.1f} "
            f"dBTP, above {MAX_TRUE_PEAK_DBTP:g} dBTP (GY/T 282): {count}",
            evidence=base,
            key=("asset_id", "day"),
        )
