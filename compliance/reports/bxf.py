"""The as-run as SMPTE ST 2021 (BXF) BasicAsRun, for traffic and billing systems.

One ``AsRun/BasicAsRun`` per event, in the order of the BasicAsRun structure::

    BasicAsRun
      AsRunEventId/EventId           urn:uuid, stable per channel, event and air time
      Content
        ContentId/HouseNumber        the asset id
        Name                         the programme title (else the event id)
      AsRunDetail
        Status                       "Aired Without Discrepancy", "Aired with Duration
                                     Discrepancy", "Aired with Time Discrepancy",
                                     "Aired with Content Discrepancy", "Did Not Air"
        Type                         ProgramHeader (lessons, reruns), BreakHeader (the rest)
        StartDateTime/SmpteDateTime  broadcastDate (local date) + SmpteTimeCode (local time)
        Duration/SmpteDuration       SmpteTimeCode of the aired length
        EventNotes                   outcome, reason, as-run sequence and hash

Timecodes are HH:MM:SS:FF at 25 fps (non-drop). Built with lxml, never by string
concatenation, so titles are always escaped.
"""

from __future__ import annotations

import uuid
from datetime import datetime, time

from lxml import etree

from compliance.reports.model import AiredRow, ComplianceReport
from core.timecode import FPS, frames_to_timecode

BXF_NS = "http://smpte-ra.org/schemas/2021/2008/BXF"
ORDER = ("AsRunEventId", "Content", "AsRunDetail")
DETAIL_ORDER = ("Status", "Type", "StartDateTime", "Duration", "EventNotes")
_IDS = uuid.UUID("6f1d2a8e-8d7c-4d0b-9d55-7b8e0c6a1f00")  # namespace of our event UUIDs


def _el(parent: etree._Element, name: str, text: str | None = None, **attrs: str) -> etree._Element:
    child = etree.SubElement(parent, f"{{{BXF_NS}}}{name}", attrs)
    if text is not None:
        child.text = text
    return child


def _time_of_day(moment: datetime) -> str:
    """Local time of day as an SMPTE timecode (frames since local midnight)."""
    midnight = datetime.combine(moment.date(), time(), moment.tzinfo)
    frames = round((moment - midnight).total_seconds() * FPS)
    return frames_to_timecode(frames)


def event_uuid(channel_id: str, row: AiredRow) -> str:
    when = (row.actual_start or row.scheduled_start).isoformat()
    return f"urn:uuid:{uuid.uuid5(_IDS, f'{channel_id}|{row.event_id}|{when}')}"


def _basic_as_run(parent: etree._Element, report: ComplianceReport, row: AiredRow) -> None:
    basic = _el(_el(parent, "AsRun"), "BasicAsRun")
    _el(_el(basic, "AsRunEventId"), "EventId", event_uuid(report.channel_id, row))
    content = _el(basic, "Content")
    _el(_el(content, "ContentId"), "HouseNumber", row.asset_id or "")
    _el(content, "Name", row.title or row.event_id)
    detail = _el(basic, "AsRunDetail")
    _el(detail, "Status", row.status)
    _el(detail, "Type", "ProgramHeader" if row.is_program else "BreakHeader")
    start = (row.actual_start or row.scheduled_start).astimezone(report.zone)
    smpte = _el(
        _el(detail, "StartDateTime"),
        "SmpteDateTime",
        broadcastDate=start.date().isoformat(),
        frameRate=str(FPS),
    )
    _el(smpte, "SmpteTimeCode", _time_of_day(start))
    duration = _el(_el(detail, "Duration"), "SmpteDuration", frameRate=str(FPS))
    _el(duration, "SmpteTimeCode", frames_to_timecode(row.duration_frames))
    notes = [f"event {row.event_id}", f"outcome {row.outcome}"]
    if row.reason:
        notes.append(row.reason)
    if row.seq is not None:
        notes.append(f"as-run seq {row.seq} hash {row.hash}")
    _el(detail, "EventNotes", "; ".join(notes))


def render_bxf(report: ComplianceReport) -> bytes:
    """The period's as-run as a BXF message (UTF-8 XML bytes)."""
    message_id = uuid.uuid5(
        _IDS, f"{report.channel_id}|{report.first}|{report.last}|{report.generated_at.isoformat()}"
    )
    root = etree.Element(
        f"{{{BXF_NS}}}BxfMessage",
        {
            "id": f"urn:uuid:{message_id}",
            "dateTime": report.generated_at.isoformat(timespec="seconds"),
            "messageType": "Information",
            "origin": "skyclass",
            "originType": "Automation",
            "userName": "skyclass compliance",
            "destination": "Traffic",
        },
        nsmap={None: BXF_NS},  # type: ignore[dict-item]  # lxml: None is the default ns
    )
    data = _el(root, "BxfData", action="add")
    schedule = _el(
        data,
        "Schedule",
        type="Primary",
        scheduleStart=report.first.isoformat(),
        scheduleEnd=report.last.isoformat(),
    )
    _el(
        schedule, "Channel", shortName=report.channel_id, status="active", type="digital_television"
    )
    for day in report.days:
        for row in day.rows:
            _basic_as_run(schedule, report, row)
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True))
