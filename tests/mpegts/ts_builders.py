"""Test helpers: TS fields laid out by hand from ISO/IEC 13818-1, not with mpegts itself.

Only the CRC comes from mpegts.crc, whose own test pins it to the published check value.
"""

from __future__ import annotations

from mpegts import crc32_mpeg2


def pts_field(value: int, marker: int) -> bytes:
    """A PTS/DTS in its 5-byte marker-bit form (2.4.3.7); marker 2 PTS only, 3 PTS, 1 DTS."""
    return bytes(
        (
            (marker << 4) | (((value >> 30) & 0x07) << 1) | 1,
            (value >> 22) & 0xFF,
            (((value >> 15) & 0x7F) << 1) | 1,
            (value >> 7) & 0xFF,
            ((value & 0x7F) << 1) | 1,
        )
    )


def section(table_id: int, body: bytes, *, long_form: bool = True) -> bytes:
    """A section ending in CRC_32: ``body`` is everything between section_length and it."""
    length = len(body) + 4
    head = bytes((table_id, (0xB0 if long_form else 0x30) | (length >> 8), length & 0xFF))
    data = head + body
    return data + crc32_mpeg2(data).to_bytes(4, "big")
