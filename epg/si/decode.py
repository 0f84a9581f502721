"""Reading SI back: sections, EIT, SDT, TDT, TOT (TS packets to sections: mpegts).

Used by the round-trip tests and by the compliance TS monitor, so it accepts
what other encoders send too (any Annex A text table, "chi" or "zho", several
content pairs) and reports malformed input as :class:`SiDecodeError`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from epg.si.descriptors import (
    CONTENT_TAG,
    EXTENDED_EVENT_TAG,
    LOCAL_TIME_OFFSET_TAG,
    PARENTAL_RATING_TAG,
    SERVICE_TAG,
    SHORT_EVENT_TAG,
)
from epg.si.errors import SiDecodeError
from epg.si.text import decode_text
from epg.si.time_codes import decode_duration, decode_offset, decode_utc_time
from mpegts import crc32_mpeg2, section_has_crc
from mpegts.section import MAX_SECTION_SIZE, TOT_TABLE_ID

MAX_SECTION_LENGTH = MAX_SECTION_SIZE - 3


@dataclass(frozen=True, kw_only=True, slots=True)
class Section:
    """One section's generic header; ``body`` lies between the header and the CRC."""

    table_id: int
    section_syntax_indicator: bool
    table_id_extension: int | None
    version: int | None
    current_next: bool | None
    section_number: int | None
    last_section_number: int | None
    body: bytes
    raw: bytes


@dataclass(frozen=True, kw_only=True, slots=True)
class DecodedEvent:
    event_id: int
    start: datetime | None
    duration_seconds: int | None
    running_status: int
    free_ca: bool
    language: str | None
    name: str
    text: str
    extended_text: str
    content_nibbles: tuple[tuple[int, int], ...]
    parental_ratings: tuple[tuple[str, int], ...]
    descriptors: tuple[tuple[int, bytes], ...]


@dataclass(frozen=True, kw_only=True, slots=True)
class EitSection:
    table_id: int
    service_id: int
    transport_stream_id: int
    original_network_id: int
    version: int
    section_number: int
    last_section_number: int
    segment_last_section_number: int
    last_table_id: int
    events: tuple[DecodedEvent, ...]


@dataclass(frozen=True, kw_only=True, slots=True)
class DecodedService:
    service_id: int
    eit_schedule: bool
    eit_present_following: bool
    running_status: int
    free_ca: bool
    service_type: int | None
    provider: str
    name: str
    descriptors: tuple[tuple[int, bytes], ...]


@dataclass(frozen=True, kw_only=True, slots=True)
class SdtSection:
    transport_stream_id: int
    original_network_id: int
    version: int
    section_number: int
    last_section_number: int
    services: tuple[DecodedService, ...]


@dataclass(frozen=True, kw_only=True, slots=True)
class LocalTimeOffset:
    country: str
    region_id: int
    offset_minutes: int  # signed
    time_of_change: datetime | None
    next_offset_minutes: int  # signed


@dataclass(frozen=True, kw_only=True, slots=True)
class TotSection:
    utc: datetime | None
    offsets: tuple[LocalTimeOffset, ...]


def parse_section(data: bytes, *, verify_crc: bool = True) -> Section:
    """Split a whole section into header fields and body, checking length and CRC.

    Long sections (syntax indicator 1), the TOT and SCTE-35 end in a CRC_32; the TDT has none.
    """
    if len(data) < 3:
        raise SiDecodeError(f"section of {len(data)} bytes is shorter than its 3-byte header")
    table_id = data[0]
    syntax = bool(data[1] & 0x80)
    length = ((data[1] & 0x0F) << 8) | data[2]
    if length > MAX_SECTION_LENGTH or len(data) != 3 + length:
        raise SiDecodeError(
            f"table 0x{table_id:02X}: section_length {length} does not match {len(data)} bytes"
        )
    has_crc = section_has_crc(data)
    if has_crc and verify_crc and crc32_mpeg2(data) != 0:
        raise SiDecodeError(f"table 0x{table_id:02X}: CRC_32 mismatch")
    end = len(data) - 4 if has_crc else len(data)
    if not syntax:
        return Section(
            table_id=table_id,
            section_syntax_indicator=False,
            table_id_extension=None,
            version=None,
            current_next=None,
            section_number=None,
            last_section_number=None,
            body=data[3:end],
            raw=data,
        )
    if length < 9:
        raise SiDecodeError(f"table 0x{table_id:02X}: long section of {length} bytes is too short")
    return Section(
        table_id=table_id,
        section_syntax_indicator=True,
        table_id_extension=(data[3] << 8) | data[4],
        version=(data[5] >> 1) & 0x1F,
        current_next=bool(data[5] & 1),
        section_number=data[6],
        last_section_number=data[7],
        body=data[8:end],
        raw=data,
    )


def _section(data: bytes | Section) -> Section:
    return data if isinstance(data, Section) else parse_section(data)


def iter_descriptors(data: bytes) -> list[tuple[int, bytes]]:
    """(tag, payload) pairs of a descriptor loop."""
    out = []
    index = 0
    while index < len(data):
        if index + 2 > len(data) or index + 2 + data[index + 1] > len(data):
            raise SiDecodeError(f"descriptor loop overruns its length at byte {index}")
        tag, size = data[index], data[index + 1]
        out.append((tag, data[index + 2 : index + 2 + size]))
        index += 2 + size
    return out


def _length_prefixed(data: bytes, index: int) -> tuple[bytes, int]:
    size = data[index]
    return data[index + 1 : index + 1 + size], index + 1 + size


def _event(data: bytes, index: int) -> tuple[DecodedEvent, int]:
    if index + 12 > len(data):
        raise SiDecodeError(f"EIT event at byte {index} is truncated")
    loop_length = ((data[index + 10] & 0x0F) << 8) | data[index + 11]
    end = index + 12 + loop_length
    if end > len(data):
        raise SiDecodeError(f"EIT event at byte {index} overruns the section")
    descriptors = iter_descriptors(data[index + 12 : end])
    language: str | None = None
    name = text = ""
    extended: list[str] = []
    content: list[tuple[int, int]] = []
    ratings: list[tuple[str, int]] = []
    for tag, payload in descriptors:
        if tag == SHORT_EVENT_TAG and len(payload) >= 5:
            language = payload[:3].decode("latin-1")
            name_bytes, at = _length_prefixed(payload, 3)
            text_bytes, _ = _length_prefixed(payload, at)
            name, text = decode_text(name_bytes), decode_text(text_bytes)
        elif tag == EXTENDED_EVENT_TAG and len(payload) >= 6:
            at = 5 + payload[4]  # skip the item loop
            text_bytes, _ = _length_prefixed(payload, at)
            extended.append(decode_text(text_bytes))
        elif tag == CONTENT_TAG:
            content.extend((b >> 4, b & 0x0F) for b in payload[::2])
        elif tag == PARENTAL_RATING_TAG:
            ratings.extend(
                (payload[i : i + 3].decode("latin-1"), payload[i + 3])
                for i in range(0, len(payload) - 3, 4)
            )
    event = DecodedEvent(
        event_id=(data[index] << 8) | data[index + 1],
        start=decode_utc_time(data[index + 2 : index + 7]),
        duration_seconds=decode_duration(data[index + 7 : index + 10]),
        running_status=data[index + 10] >> 5,
        free_ca=bool(data[index + 10] & 0x10),
        language=language,
        name=name,
        text=text,
        extended_text="".join(extended),
        content_nibbles=tuple(content),
        parental_ratings=tuple(ratings),
        descriptors=tuple(descriptors),
    )
    return event, end


def decode_eit(data: bytes | Section) -> EitSection:
    """An EIT section (p/f or schedule, actual or other) with its events."""
    section = _section(data)
    if not 0x4E <= section.table_id <= 0x6F or not section.section_syntax_indicator:
        raise SiDecodeError(f"table 0x{section.table_id:02X} is not an EIT")
    body = section.body
    if len(body) < 6:
        raise SiDecodeError("EIT section is too short for its header")
    events = []
    index = 6
    while index < len(body):
        event, index = _event(body, index)
        events.append(event)
    assert section.version is not None and section.table_id_extension is not None
    assert section.section_number is not None and section.last_section_number is not None
    return EitSection(
        table_id=section.table_id,
        service_id=section.table_id_extension,
        transport_stream_id=(body[0] << 8) | body[1],
        original_network_id=(body[2] << 8) | body[3],
        version=section.version,
        section_number=section.section_number,
        last_section_number=section.last_section_number,
        segment_last_section_number=body[4],
        last_table_id=body[5],
        events=tuple(events),
    )


def decode_sdt(data: bytes | Section) -> SdtSection:
    """An SDT section (actual 0x42 or other 0x46) with its services."""
    section = _section(data)
    if section.table_id not in (0x42, 0x46) or not section.section_syntax_indicator:
        raise SiDecodeError(f"table 0x{section.table_id:02X} is not an SDT")
    body = section.body
    if len(body) < 3:
        raise SiDecodeError("SDT section is too short for its header")
    services = []
    index = 3
    while index < len(body):
        if index + 5 > len(body):
            raise SiDecodeError(f"SDT service at byte {index} is truncated")
        loop_length = ((body[index + 3] & 0x0F) << 8) | body[index + 4]
        end = index + 5 + loop_length
        if end > len(body):
            raise SiDecodeError(f"SDT service at byte {index} overruns the section")
        descriptors = iter_descriptors(body[index + 5 : end])
        service_type: int | None = None
        provider = name = ""
        for tag, payload in descriptors:
            if tag == SERVICE_TAG and len(payload) >= 3:
                service_type = payload[0]
                provider_bytes, at = _length_prefixed(payload, 1)
                name_bytes, _ = _length_prefixed(payload, at)
                provider, name = decode_text(provider_bytes), decode_text(name_bytes)
        services.append(
            DecodedService(
                service_id=(body[index] << 8) | body[index + 1],
                eit_schedule=bool(body[index + 2] & 0x02),
                eit_present_following=bool(body[index + 2] & 0x01),
                running_status=body[index + 3] >> 5,
                free_ca=bool(body[index + 3] & 0x10),
                service_type=service_type,
                provider=provider,
                name=name,
                descriptors=tuple(descriptors),
            )
        )
        index = end
    assert section.version is not None and section.table_id_extension is not None
    assert section.section_number is not None and section.last_section_number is not None
    return SdtSection(
        transport_stream_id=section.table_id_extension,
        original_network_id=(body[0] << 8) | body[1],
        version=section.version,
        section_number=section.section_number,
        last_section_number=section.last_section_number,
        services=tuple(services),
    )


def decode_tdt(data: bytes | Section) -> datetime | None:
    """The UTC time a TDT carries."""
    section = _section(data)
    if section.table_id != 0x70 or len(section.body) != 5:
        raise SiDecodeError(f"table 0x{section.table_id:02X} is not a 5-byte TDT")
    return decode_utc_time(section.body)


def decode_tot(data: bytes | Section) -> TotSection:
    """The UTC time and local time offsets a TOT carries."""
    section = _section(data)
    body = section.body
    if section.table_id != TOT_TABLE_ID or len(body) < 7:
        raise SiDecodeError(f"table 0x{section.table_id:02X} is not a TOT")
    loop_length = ((body[5] & 0x0F) << 8) | body[6]
    offsets = []
    for tag, payload in iter_descriptors(body[7 : 7 + loop_length]):
        if tag != LOCAL_TIME_OFFSET_TAG:
            continue
        for i in range(0, len(payload) - 12, 13):
            entry = payload[i : i + 13]
            sign = -1 if entry[3] & 0x01 else 1
            offsets.append(
                LocalTimeOffset(
                    country=entry[:3].decode("latin-1"),
                    region_id=entry[3] >> 2,
                    offset_minutes=sign * decode_offset(entry[4:6]),
                    time_of_change=decode_utc_time(entry[6:11]),
                    next_offset_minutes=sign * decode_offset(entry[11:13]),
                )
            )
    return TotSection(utc=decode_utc_time(body[:5]), offsets=tuple(offsets))
