"""The EN 300 468 descriptors the skyclass guide needs, each a pure bytes builder.

Every descriptor is tag, length (≤ 255), payload. Text goes through
:mod:`epg.si.text`, so each string picks GB2312 or UTF-8 on its own.

Language codes are ISO 639-2, as EN 300 468 requires. Chinese has two valid
639-2 codes, "chi" (bibliographic) and "zho" (terminological); we send "zho",
the form ISO 639-2/T and BCP 47 tooling use, and callers may pass "chi" for a
head-end that insists on it. Decoders should (and ours does) accept both.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from epg.si.errors import SiInputError
from epg.si.text import TextEncoding, encode_text, resolve_encoding, split_text
from epg.si.time_codes import encode_offset, encode_utc_time

SERVICE_TAG = 0x48
SHORT_EVENT_TAG = 0x4D
EXTENDED_EVENT_TAG = 0x4E
CONTENT_TAG = 0x54
PARENTAL_RATING_TAG = 0x55
LOCAL_TIME_OFFSET_TAG = 0x58

DEFAULT_LANGUAGE = "zho"
DEFAULT_COUNTRY = "CHN"
# Content descriptor, EN 300 468 Table 28: 0x5 "Children's/Youth programmes",
# 0x5/0x4 "informational/educational/school programmes".
EDUCATIONAL_CONTENT = (0x5, 0x4)

MAX_PAYLOAD = 255
# A short_event payload holds 3 (language) + 1 + name + 1 + text bytes; the name may
# take at most this much so that a synopsis still fits beside a long title.
MAX_EVENT_NAME_BYTES = 128
SHORT_EVENT_TEXT_ROOM = MAX_PAYLOAD - 5
# An extended_event payload: 1 (numbers) + 3 (language) + 1 (no items) + 1 + text.
EXTENDED_EVENT_TEXT_ROOM = MAX_PAYLOAD - 6
MAX_EXTENDED_EVENT_DESCRIPTORS = 16  # descriptor_number is 4 bits


def descriptor(tag: int, payload: bytes) -> bytes:
    """Tag + length + payload; refuses a payload the 8-bit length cannot describe."""
    if len(payload) > MAX_PAYLOAD:
        raise SiInputError(f"descriptor 0x{tag:02X} payload is {len(payload)} bytes, max 255")
    return bytes((tag, len(payload))) + payload


def _code3(code: str, what: str) -> bytes:
    if len(code) != 3 or not code.isascii() or not code.isalpha():
        raise SiInputError(f"{what} must be 3 ASCII letters (ISO 639-2 / ISO 3166), got {code!r}")
    return code.encode("ascii")


def language_code(code: str) -> bytes:
    """ISO 639-2 language code as sent: 3 lower-case letters."""
    return _code3(code.lower(), "language code")


def country_code(code: str) -> bytes:
    """ISO 3166-1 alpha-3 country code as sent: 3 upper-case letters ("CHN")."""
    return _code3(code.upper(), "country code")


def short_event_descriptor(
    name: str,
    text: str,
    *,
    language: str = DEFAULT_LANGUAGE,
    encoding: TextEncoding = TextEncoding.GB2312,
) -> bytes:
    """0x4D: event title and a synopsis, cut to fit one descriptor (name first)."""
    name_bytes = encode_text(name, encoding=encoding, max_bytes=MAX_EVENT_NAME_BYTES)
    text_bytes = encode_text(
        text, encoding=encoding, max_bytes=SHORT_EVENT_TEXT_ROOM - len(name_bytes)
    )
    payload = (
        language_code(language)
        + bytes((len(name_bytes),))
        + name_bytes
        + bytes((len(text_bytes),))
        + text_bytes
    )
    return descriptor(SHORT_EVENT_TAG, payload)


def extended_event_descriptors(
    text: str,
    *,
    language: str = DEFAULT_LANGUAGE,
    encoding: TextEncoding = TextEncoding.GB2312,
    max_descriptors: int = MAX_EXTENDED_EVENT_DESCRIPTORS,
) -> list[bytes]:
    """0x4E ×n: a long description split over numbered descriptors, no item list.

    At most 16 descriptors (about 1,950 汉字 in GB2312); text beyond is dropped.
    """
    count = min(max_descriptors, MAX_EXTENDED_EVENT_DESCRIPTORS)
    chunks = split_text(
        text, encoding=encoding, chunk_bytes=EXTENDED_EVENT_TEXT_ROOM, max_chunks=count
    )
    last = len(chunks) - 1
    lang = language_code(language)
    return [
        descriptor(
            EXTENDED_EVENT_TAG,
            bytes(((number << 4) | last,)) + lang + b"\x00" + bytes((len(chunk),)) + chunk,
        )
        for number, chunk in enumerate(chunks)
    ]


def content_descriptor(nibbles: Sequence[tuple[int, int]], user_byte: int = 0) -> bytes:
    """0x54: genre as (level 1, level 2) nibble pairs, e.g. (0x5, 0x4) for school programmes."""
    payload = bytearray()
    for level_1, level_2 in nibbles:
        if not (0 <= level_1 <= 0xF and 0 <= level_2 <= 0xF):
            raise SiInputError(f"content nibbles must be 0..15, got ({level_1}, {level_2})")
        payload += bytes(((level_1 << 4) | level_2, user_byte & 0xFF))
    return descriptor(CONTENT_TAG, bytes(payload))


def parental_rating_descriptor(minimum_age: int, country: str = DEFAULT_COUNTRY) -> bytes:
    """0x55: rating byte = minimum age − 3 (EN 300 468 Table 29), for 4..18 years."""
    if not 4 <= minimum_age <= 18:
        raise SiInputError(f"parental rating minimum age must be 4..18, got {minimum_age}")
    return descriptor(PARENTAL_RATING_TAG, country_code(country) + bytes((minimum_age - 3,)))


def service_descriptor(
    service_type: int,
    provider: str,
    name: str,
    *,
    encoding: TextEncoding = TextEncoding.GB2312,
) -> bytes:
    """0x48: service type, provider name and service name (what a receiver lists)."""
    name_bytes = encode_text(name, encoding=encoding, max_bytes=MAX_EVENT_NAME_BYTES)
    provider_bytes = encode_text(
        provider, encoding=encoding, max_bytes=MAX_PAYLOAD - 3 - len(name_bytes)
    )
    payload = (
        bytes((service_type & 0xFF, len(provider_bytes)))
        + provider_bytes
        + bytes((len(name_bytes),))
        + name_bytes
    )
    return descriptor(SERVICE_TAG, payload)


def local_time_offset_descriptor(
    *,
    offset_minutes: int,
    time_of_change: datetime,
    next_offset_minutes: int,
    country: str = DEFAULT_COUNTRY,
    region_id: int = 0,
) -> bytes:
    """0x58: one country's offset from UTC (China: +08:00 and no daylight saving)."""
    if offset_minutes * next_offset_minutes < 0:
        raise SiInputError("local time offset and next offset must have the same sign")
    if not 0 <= region_id <= 0x3F:
        raise SiInputError(f"country_region_id must be 0..63, got {region_id}")
    polarity = 1 if offset_minutes < 0 or next_offset_minutes < 0 else 0
    payload = (
        country_code(country)
        + bytes(((region_id << 2) | 0b10 | polarity,))
        + encode_offset(abs(offset_minutes))
        + encode_utc_time(time_of_change)
        + encode_offset(abs(next_offset_minutes))
    )
    return descriptor(LOCAL_TIME_OFFSET_TAG, payload)


TRUNCATION_MARK = "…"  # in GB2312 (0xA1AD) and UTF-8 alike


def event_text_descriptors(
    title: str,
    description: str,
    *,
    language: str = DEFAULT_LANGUAGE,
    encoding: TextEncoding = TextEncoding.GB2312,
    max_bytes: int = 4066,
) -> list[bytes]:
    """The short_event descriptor, plus extended_event descriptors if the synopsis overflows.

    A description that fits beside the title goes in the short_event alone.
    Otherwise the short_event carries its opening, cut at a character and marked
    "…", and extended_event descriptors carry the whole text, as many as fit in
    ``max_bytes`` (the event's room in an EIT section).
    """
    short = short_event_descriptor(title, description, language=language, encoding=encoding)
    name_bytes = short[5]
    text_room = SHORT_EVENT_TEXT_ROOM - name_bytes
    full = encode_text(description, encoding=encoding, max_bytes=1 << 20)
    if len(full) <= text_room:
        return [short]
    mark = TRUNCATION_MARK.encode(resolve_encoding(description, encoding).value)
    cut = encode_text(description, encoding=encoding, max_bytes=text_room - len(mark))
    cut = cut + mark if cut else b""
    name = short[6 : 6 + name_bytes]
    payload = language_code(language) + bytes((name_bytes,)) + name + bytes((len(cut),)) + cut
    short = descriptor(SHORT_EVENT_TAG, payload)
    room = max_bytes - len(short)
    count = min(MAX_EXTENDED_EVENT_DESCRIPTORS, max(0, room // (2 + MAX_PAYLOAD)))
    extended = extended_event_descriptors(
        description, language=language, encoding=encoding, max_descriptors=count
    )
    return [short, *extended]
