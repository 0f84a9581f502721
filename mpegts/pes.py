"""PES packet headers (ISO/IEC 13818-1 2.4.3.6): stream_id, PTS and DTS."""

from __future__ import annotations

from dataclasses import dataclass

# stream_ids whose PES packets have no optional header (ISO/IEC 13818-1 table 2-22).
_NO_OPTIONAL_HEADER = frozenset({0xBC, 0xBE, 0xBF, 0xF0, 0xF1, 0xF2, 0xF8, 0xFF})
START_CODE_PREFIX = b"\x00\x00\x01"


@dataclass(frozen=True, kw_only=True, slots=True)
class PesHeader:
    """The fields of a PES header the monitor checks."""

    stream_id: int
    pts: int | None
    dts: int | None

    @property
    def is_video(self) -> bool:
        return 0xE0 <= self.stream_id <= 0xEF

    @property
    def is_audio(self) -> bool:
        return 0xC0 <= self.stream_id <= 0xDF


def pes_header_size(payload: bytes) -> int | None:
    """Bytes needed to parse the header at the start of `payload`; None if not a PES start."""
    if len(payload) >= 3 and payload[:3] != START_CODE_PREFIX:
        return None
    if len(payload) >= 4 and payload[3] in _NO_OPTIONAL_HEADER:
        return 6
    if len(payload) < 9:
        return 9
    return 9 + payload[8]


def parse_pes_header(payload: bytes) -> PesHeader | None:
    """Parse stream_id, PTS and DTS; None if `payload` is not a (complete) PES header."""
    needed = pes_header_size(payload)
    if needed is None or len(payload) < needed or len(payload) < 6:
        return None
    stream_id = payload[3]
    if stream_id in _NO_OPTIONAL_HEADER or (payload[6] & 0xC0) != 0x80:
        return PesHeader(stream_id=stream_id, pts=None, dts=None)
    flags = payload[7] >> 6
    pts = dts = None
    if flags & 0b10 and len(payload) >= 14:
        pts = _timestamp(payload, 9)
    if flags == 0b11 and len(payload) >= 19:
        dts = _timestamp(payload, 14)
    return PesHeader(stream_id=stream_id, pts=pts, dts=dts)


def _timestamp(data: bytes, at: int) -> int:
    """A 33-bit PTS/DTS from its 5-byte marker-bit encoding."""
    return (
        ((data[at] >> 1) & 0x07) << 30
        | data[at + 1] << 22
        | (data[at + 2] >> 1) << 15
        | data[at + 3] << 7
        | data[at + 4] >> 1
    )
