"""The SI tables skyclass sends: EIT p/f and schedule, SDT, TDT, TOT, as lists of sections.

Every function is pure: "now" is a parameter, nothing reads the clock or keeps
state, and the same input gives the same bytes, so playout's output is
byte-deterministic across restarts. version_number defaults to
:func:`~epg.si.sections.content_version` of the table's content.

EIT schedule layout (EN 300 468 5.2.4, TS 101 211 4.1.4): time is cut into
3-hour segments from 00:00 UTC of the day of ``now``. Each table_id from 0x50
holds 32 segments (4 days) of 8 sections each; an event goes in the segment of
its start time; a segment without events is one empty section. section_number
is segment × 8 + n within the table_id, segment_last_section_number the last
used in that segment, last_section_number the last used in that table_id, and
last_table_id the last table_id of the whole schedule.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

from epg.si.descriptors import (
    DEFAULT_COUNTRY,
    DEFAULT_LANGUAGE,
    content_descriptor,
    event_text_descriptors,
    local_time_offset_descriptor,
    parental_rating_descriptor,
    service_descriptor,
)
from epg.si.errors import SiInputError
from epg.si.events import SiEvent
from epg.si.sections import (
    CRC_BYTES,
    LONG_HEADER_BYTES,
    MAX_SDT_SECTION_BYTES,
    MAX_SECTION_BYTES,
    check_version,
    content_version,
    long_section,
    short_section,
)
from epg.si.services import RunningStatus, SiService
from epg.si.text import TextEncoding
from epg.si.time_codes import encode_duration, encode_utc_time, utc_datetime, zone_offsets

logger = logging.getLogger(__name__)

SDT_ACTUAL = 0x42
EIT_PF_ACTUAL = 0x4E
EIT_SCHEDULE_ACTUAL = 0x50  # first of 0x50..0x5F
TDT = 0x70
TOT = 0x73

SEGMENT = timedelta(hours=3)
SEGMENTS_PER_TABLE = 32
SECTIONS_PER_SEGMENT = 8
MAX_SCHEDULE_DAYS = 64  # 16 table_ids × 4 days

_EIT_HEADER_BYTES = LONG_HEADER_BYTES + 6  # + ts_id, onid, segment_last, last_table_id
EIT_EVENT_ROOM = MAX_SECTION_BYTES - _EIT_HEADER_BYTES - CRC_BYTES  # 4078
_EVENT_HEADER_BYTES = 12
EVENT_DESCRIPTOR_ROOM = EIT_EVENT_ROOM - _EVENT_HEADER_BYTES  # 4066
_SDT_HEADER_BYTES = LONG_HEADER_BYTES + 3  # + onid, reserved_future_use
SDT_SERVICE_ROOM = MAX_SDT_SECTION_BYTES - _SDT_HEADER_BYTES - CRC_BYTES  # 1009


def encode_event(
    event: SiEvent,
    *,
    running_status: int = RunningStatus.UNDEFINED,
    language: str = DEFAULT_LANGUAGE,
    encoding: TextEncoding = TextEncoding.GB2312,
    extended: bool = True,
) -> bytes:
    """One event of an EIT event loop; it always fits in one section on its own."""
    others = []
    if event.content_nibbles is not None:
        others.append(content_descriptor([event.content_nibbles]))
    if event.parental_rating is not None:
        others.append(parental_rating_descriptor(event.parental_rating))
    room = EVENT_DESCRIPTOR_ROOM - sum(map(len, others)) if extended else 0
    text = event_text_descriptors(
        event.title, event.description, language=language, encoding=encoding, max_bytes=room
    )
    loop = b"".join([*text, *others])
    flags = (running_status << 13) | (int(event.free_ca) << 12) | len(loop)
    return (
        event.event_id.to_bytes(2, "big")
        + encode_utc_time(event.start)
        + encode_duration(event.duration_seconds)
        + flags.to_bytes(2, "big")
        + loop
    )


def ordered_events(events: Iterable[SiEvent]) -> list[SiEvent]:
    """Events by start time; overlapping events or a repeated event_id are refused."""
    ordered = sorted(events, key=lambda e: (e.start, e.event_id))
    seen: set[int] = set()
    for before, after in pairwise(ordered):
        if after.start < before.end:
            raise SiInputError(
                f"SI events {before.event_id} ({before.title!r}) and {after.event_id} "
                f"({after.title!r}) overlap: {after.title!r} starts before the other ends"
            )
    for event in ordered:
        if event.event_id in seen:
            raise SiInputError(f"SI event_id {event.event_id} is used twice in one service")
        seen.add(event.event_id)
    return ordered


def _eit_section(
    *,
    table_id: int,
    service: SiService,
    version: int,
    section_number: int,
    last_section_number: int,
    segment_last_section_number: int,
    last_table_id: int,
    events: bytes,
) -> bytes:
    body = (
        service.transport_stream_id.to_bytes(2, "big")
        + service.original_network_id.to_bytes(2, "big")
        + bytes((segment_last_section_number, last_table_id))
        + events
    )
    return long_section(
        table_id=table_id,
        table_id_extension=service.service_id,
        version=version,
        section_number=section_number,
        last_section_number=last_section_number,
        body=body,
    )


def present_following(
    events: Iterable[SiEvent], now: datetime
) -> tuple[SiEvent | None, SiEvent | None]:
    """The event on air at ``now`` (None in a gap) and the next one to start (None at the end)."""
    moment = utc_datetime(now, "now")
    present: SiEvent | None = None
    for event in ordered_events(events):
        if present is None and event.start <= moment < event.end:
            present = event
        elif event.start > moment:
            return present, event
    return present, None


def eit_present_following(
    service: SiService,
    events: Iterable[SiEvent],
    now: datetime,
    *,
    version: int | None = None,
    language: str = DEFAULT_LANGUAGE,
    encoding: TextEncoding = TextEncoding.GB2312,
) -> list[bytes]:
    """EIT p/f actual (table_id 0x4E): section 0 = present event, section 1 = following.

    Either section may be empty (a gap in the schedule, or the end of it); both
    are always sent, as EN 300 468 5.2.4 asks. Playout calls this about every
    2 s per channel, so it encodes only the two events it sends.
    """
    present, following = present_following(events, now)

    def code(event: SiEvent | None, status: RunningStatus) -> bytes:
        if event is None:
            return b""
        return encode_event(event, running_status=status, language=language, encoding=encoding)

    loops = [code(present, RunningStatus.RUNNING), code(following, RunningStatus.NOT_RUNNING)]
    chosen = check_version(version) if version is not None else content_version(*loops)
    return [
        _eit_section(
            table_id=EIT_PF_ACTUAL,
            service=service,
            version=chosen,
            section_number=number,
            last_section_number=1,
            segment_last_section_number=1,
            last_table_id=EIT_PF_ACTUAL,
            events=loop,
        )
        for number, loop in enumerate(loops)
    ]


def _segment_sections(encoded: list[bytes]) -> list[bytes] | None:
    """Event loops of one segment packed greedily into sections; None if over 8 sections."""
    sections: list[bytes] = []
    current = b""
    for event in encoded:
        if current and len(current) + len(event) > EIT_EVENT_ROOM:
            sections.append(current)
            current = b""
        current += event
    sections.append(current)
    return sections if len(sections) <= SECTIONS_PER_SEGMENT else None


def eit_schedule(
    service: SiService,
    events: Iterable[SiEvent],
    now: datetime,
    *,
    days: int = 7,
    version: int | None = None,
    language: str = DEFAULT_LANGUAGE,
    encoding: TextEncoding = TextEncoding.GB2312,
) -> list[bytes]:
    """EIT schedule actual (table_id 0x50..) from 00:00 UTC today up to ``now + days``.

    Events starting in that window are sent (earlier ones today included, so a
    guide can still show the morning's lessons). ``version`` None derives one
    version per table_id from its content, so a table whose days did not change
    keeps its version. A segment whose events overflow 8 sections is re-coded
    without extended_event descriptors (logged); if that still overflows the
    schedule is refused.
    """
    if not 1 <= days <= MAX_SCHEDULE_DAYS - 1:
        raise SiInputError(f"EIT schedule days must be 1..{MAX_SCHEDULE_DAYS - 1}, got {days}")
    moment = utc_datetime(now, "now")
    day0 = datetime(moment.year, moment.month, moment.day, tzinfo=UTC)
    end = moment + timedelta(days=days)
    # Global index of the segment holding the window's last instant.
    last_segment = (end - day0 - timedelta(microseconds=1)) // SEGMENT
    by_segment: dict[int, list[SiEvent]] = {}
    for event in ordered_events(events):
        if day0 <= event.start < end:
            by_segment.setdefault((event.start - day0) // SEGMENT, []).append(event)

    def code(segment: int) -> list[bytes]:
        chosen = by_segment.get(segment, [])
        encoded = [encode_event(e, language=language, encoding=encoding) for e in chosen]
        sections = _segment_sections(encoded)
        if sections is None:
            logger.warning(
                "EIT schedule service %d segment %d: events overflow 8 sections; "
                "sending them without extended_event descriptors",
                service.service_id,
                segment,
            )
            encoded = [
                encode_event(e, language=language, encoding=encoding, extended=False)
                for e in chosen
            ]
            sections = _segment_sections(encoded)
        if sections is None:
            raise SiInputError(
                f"EIT schedule service {service.service_id}: the 3-hour segment from "
                f"{(day0 + segment * SEGMENT).isoformat()} has too many events for 8 sections"
            )
        return sections

    last_table = last_segment // SEGMENTS_PER_TABLE
    out: list[bytes] = []
    for table in range(last_table + 1):
        first = table * SEGMENTS_PER_TABLE
        stop = min(first + SEGMENTS_PER_TABLE, last_segment + 1)
        loops = {segment - first: code(segment) for segment in range(first, stop)}
        last_local = stop - 1 - first
        last_section_number = last_local * SECTIONS_PER_SEGMENT + len(loops[last_local]) - 1
        chosen = (
            check_version(version)
            if version is not None
            else content_version(*(loop for local in sorted(loops) for loop in loops[local]))
        )
        for local, segment_loops in loops.items():
            base = local * SECTIONS_PER_SEGMENT
            for n, loop in enumerate(segment_loops):
                out.append(
                    _eit_section(
                        table_id=EIT_SCHEDULE_ACTUAL + table,
                        service=service,
                        version=chosen,
                        section_number=base + n,
                        last_section_number=last_section_number,
                        segment_last_section_number=base + len(segment_loops) - 1,
                        last_table_id=EIT_SCHEDULE_ACTUAL + last_table,
                        events=loop,
                    )
                )
    return out


def _sdt_entry(service: SiService, encoding: TextEncoding) -> bytes:
    loop = service_descriptor(
        service.service_type, service.provider, service.name, encoding=encoding
    )
    flags = (service.running_status << 13) | (int(service.free_ca) << 12) | len(loop)
    eit_flags = 0xFC | (int(service.eit_schedule) << 1) | int(service.eit_present_following)
    return (
        service.service_id.to_bytes(2, "big")
        + bytes((eit_flags,))
        + flags.to_bytes(2, "big")
        + loop
    )


def sdt(
    services: Sequence[SiService],
    transport_stream_id: int,
    original_network_id: int,
    version: int | None = None,
    *,
    encoding: TextEncoding = TextEncoding.GB2312,
) -> list[bytes]:
    """SDT actual (table_id 0x42) for one transport stream, services by service_id.

    Split into sections of at most 1,024 bytes. Every service must belong to
    the given transport stream and network.
    """
    seen: set[int] = set()
    for service in services:
        if (service.transport_stream_id, service.original_network_id) != (
            transport_stream_id,
            original_network_id,
        ):
            raise SiInputError(
                f"SDT for TS {transport_stream_id}/{original_network_id}: service "
                f"{service.service_id} ({service.name!r}) belongs to TS "
                f"{service.transport_stream_id}/{service.original_network_id}"
            )
        if service.service_id in seen:
            raise SiInputError(f"SDT: service_id {service.service_id} is listed twice")
        seen.add(service.service_id)
    entries = [_sdt_entry(s, encoding) for s in sorted(services, key=lambda s: s.service_id)]
    loops: list[bytes] = []
    current = b""
    for entry in entries:
        if current and len(current) + len(entry) > SDT_SERVICE_ROOM:
            loops.append(current)
            current = b""
        current += entry
    loops.append(current)
    if len(loops) > 256:
        raise SiInputError(f"SDT: {len(services)} services do not fit in 256 sections")
    chosen = check_version(version) if version is not None else content_version(*loops)
    prefix = original_network_id.to_bytes(2, "big") + b"\xff"
    return [
        long_section(
            table_id=SDT_ACTUAL,
            table_id_extension=transport_stream_id,
            version=chosen,
            section_number=number,
            last_section_number=len(loops) - 1,
            body=prefix + loop,
            max_bytes=MAX_SDT_SECTION_BYTES,
        )
        for number, loop in enumerate(loops)
    ]


def tdt(now: datetime) -> bytes:
    """TDT (table_id 0x70): UTC time only, no CRC, 8 bytes."""
    return short_section(table_id=TDT, body=encode_utc_time(now), with_crc=False)


def tot(
    now: datetime,
    offset_minutes: int,
    *,
    country: str = DEFAULT_COUNTRY,
    time_of_change: datetime | None = None,
    next_offset_minutes: int | None = None,
) -> bytes:
    """TOT (table_id 0x73): UTC time and the local_time_offset descriptor, with CRC.

    Without ``time_of_change``, next_time_offset equals the offset and
    time_of_change is 00:00 UTC on 1 January of the year after ``now``: a date in
    the future (receivers apply local_time_offset before it), and one that changes
    once a year rather than with every section. ``tot_for_zone`` fills both in
    from the zone database.
    """
    moment = utc_datetime(now, "now")
    change = time_of_change
    if change is None:
        change = datetime(moment.year + 1, 1, 1, tzinfo=UTC)
    loop = local_time_offset_descriptor(
        offset_minutes=offset_minutes,
        time_of_change=change,
        next_offset_minutes=offset_minutes if next_offset_minutes is None else next_offset_minutes,
        country=country,
    )
    body = encode_utc_time(moment) + (0xF000 | len(loop)).to_bytes(2, "big") + loop
    return short_section(table_id=TOT, body=body, with_crc=True)


class ZoneTot:
    """TOT sections for one time zone (the settings' zone, carried by the rundown).

    The offsets come from ``zone_offsets`` and are kept until their next change,
    so a TOT every few seconds costs no zone-database scan.
    """

    def __init__(self, zone: ZoneInfo, *, country: str = DEFAULT_COUNTRY) -> None:
        self.zone = zone
        self.country = country
        self._valid: tuple[datetime, datetime, int, int] | None = None

    def __call__(self, now: datetime) -> bytes:
        moment = utc_datetime(now, "now")
        valid = self._valid
        if valid is None or not valid[0] <= moment < valid[1]:
            offset, change, following = zone_offsets(self.zone, moment)
            valid = self._valid = (moment, change, offset, following)
        _, change, offset, following = valid
        return tot(
            moment,
            offset,
            country=self.country,
            time_of_change=change,
            next_offset_minutes=following,
        )
