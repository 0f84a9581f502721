"""The report as CSV: one table, a ``section`` column saying what each row is.

Sections: ``finding``, ``asrun`` (the as-run against the schedule), ``head`` (the chain
head of each day) and ``loudness`` (each recorded hour). The file is UTF-8 with a BOM,
so Excel in a Chinese locale shows the Chinese text instead of mojibake.

Formula injection: a spreadsheet runs a cell that starts with ``=``, ``+``, ``-``,
``@``, a tab or a carriage return as a formula, and titles, reasons and messages come
from schedule files and media names that an outsider may have written. Every text
cell that starts so gets a leading ``'`` (OWASP's advice). Numbers the report computes
(offsets, LUFS) are written as plain numbers: a negative number is not a formula.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from compliance.reports.model import ComplianceReport
from core.timecode import frames_to_timecode

COLUMNS = (
    "section",
    "day",
    "time",
    "severity",
    "code",
    "event_id",
    "event_type",
    "title",
    "asset_id",
    "scheduled_start",
    "actual_start",
    "offset_s",
    "scheduled_duration",
    "aired_duration",
    "status",
    "outcome",
    "reason",
    "seq",
    "hash",
    "integrated_lufs",
    "true_peak_dbtp",
    "message",
    "id",
)
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def protect(value: Any) -> str | int | float:
    """A cell value a spreadsheet will not run: text starting a formula gets a leading '."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return value
    text = str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def _ms(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds")


def _rows(report: ComplianceReport) -> Iterator[dict[str, Any]]:
    zone = report.zone
    for finding in report.findings:
        at = finding.at.astimezone(zone)
        evidence = finding.evidence
        yield {
            "section": "finding",
            "day": at.date().isoformat(),
            "time": at.isoformat(timespec="milliseconds"),
            "severity": finding.severity.value,
            "code": finding.code,
            "event_id": evidence.get("event_id"),
            "asset_id": evidence.get("asset_id"),
            "hash": evidence.get("asrun_hash"),
            "message": finding.message,
            "id": finding.id,
        }
    for day in report.days:
        for row in day.rows:
            yield {
                "section": "asrun",
                "day": day.day.isoformat(),
                "time": (row.actual_start or row.scheduled_start).isoformat(
                    timespec="milliseconds"
                ),
                "event_id": row.event_id,
                "event_type": row.event_type,
                "title": row.title,
                "asset_id": row.asset_id,
                "scheduled_start": _ms(row.scheduled_start),
                "actual_start": _ms(row.actual_start) if row.actual_start else None,
                "offset_s": row.offset_s,
                "scheduled_duration": frames_to_timecode(row.scheduled_frames),
                "aired_duration": frames_to_timecode(row.duration_frames),
                "status": row.status,
                "outcome": row.outcome,
                "reason": row.reason,
                "seq": row.seq,
                "hash": row.hash,
            }
        if day.head is not None:
            yield {
                "section": "head",
                "day": day.day.isoformat(),
                "event_id": day.head.event_id,
                "seq": day.head.seq,
                "hash": day.head.hash,
            }
        for reading in day.loudness:
            start = reading.start.astimezone(zone)
            yield {
                "section": "loudness",
                "day": day.day.isoformat(),
                "time": start.isoformat(timespec="seconds"),
                "integrated_lufs": reading.integrated_lufs,
                "true_peak_dbtp": reading.true_peak_dbtp,
                "message": reading.key,
            }


def render_csv(report: ComplianceReport) -> str:
    """The report as CSV text (write it with encoding ``utf-8-sig``)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for row in _rows(report):
        writer.writerow([protect(row.get(column)) for column in COLUMNS])
    return out.getvalue()
