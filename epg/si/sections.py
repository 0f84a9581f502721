"""Section framing shared by every table: headers, section_length, CRC, version numbers."""

from __future__ import annotations

import hashlib

from epg.si.errors import SiError, SiInputError
from mpegts import crc32_mpeg2

CRC_BYTES = 4
LONG_HEADER_BYTES = 8  # table_id .. last_section_number
MAX_SECTION_BYTES = 4096  # EIT (and the 12-bit section_length ceiling of SI)
MAX_SDT_SECTION_BYTES = 1024  # EN 300 468 5.1.1: every SI table except the EIT


def long_section(
    *,
    table_id: int,
    table_id_extension: int,
    version: int,
    section_number: int,
    last_section_number: int,
    body: bytes,
    current_next: bool = True,
    max_bytes: int = MAX_SECTION_BYTES,
) -> bytes:
    """A section with section_syntax_indicator = 1: 8-byte header, body, CRC_32.

    The reserved_future_use bit after the syntax indicator is 1, as EN 300 468
    wants for SI tables (PSI tables such as the PAT use 0 instead).
    """
    check_version(version)
    if not 0 <= section_number <= last_section_number <= 0xFF:
        raise SiError(f"section {section_number} of {last_section_number} is out of range")
    section_length = 5 + len(body) + CRC_BYTES
    if 3 + section_length > max_bytes:
        raise SiError(
            f"table 0x{table_id:02X} section is {3 + section_length} bytes, max {max_bytes}"
        )
    head = bytes(
        (
            table_id,
            0xF0 | (section_length >> 8),
            section_length & 0xFF,
            table_id_extension >> 8,
            table_id_extension & 0xFF,
            0xC0 | (version << 1) | int(current_next),
            section_number,
            last_section_number,
        )
    )
    data = head + body
    return data + crc32_mpeg2(data).to_bytes(4, "big")


def short_section(*, table_id: int, body: bytes, with_crc: bool) -> bytes:
    """A section with section_syntax_indicator = 0 (TDT without CRC, TOT with one)."""
    section_length = len(body) + (CRC_BYTES if with_crc else 0)
    data = bytes((table_id, 0x70 | (section_length >> 8), section_length & 0xFF)) + body
    if not with_crc:
        return data
    return data + crc32_mpeg2(data).to_bytes(4, "big")


def check_version(version: int) -> int:
    """version_number is 5 bits; a caller's value outside 0..31 is a bug upstream."""
    if not 0 <= version <= 31:
        raise SiInputError(f"version_number must be 0..31, got {version}")
    return version


def content_version(*parts: bytes) -> int:
    """A 5-bit version_number derived from a table's content.

    The same content gives the same number on every run and machine (playout is
    byte-deterministic and keeps no state across restarts); changed content
    gives a different number except with probability 1/32. A caller that keeps
    state and must guarantee a change can pass ``(previous + 1) % 32`` instead.
    """
    digest = hashlib.blake2s(digest_size=4, person=b"skySIver")
    for part in parts:
        digest.update(len(part).to_bytes(4, "big"))
        digest.update(part)
    return int.from_bytes(digest.digest(), "big") % 32
