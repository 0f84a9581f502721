"""Program-specific information (ISO/IEC 13818-1 2.4.4): the PAT, the PMT and stream types."""

from __future__ import annotations

from dataclasses import dataclass

from mpegts.packet import NULL_PID
from mpegts.section import CRC_SIZE, section_size

PAT_TABLE_ID = 0x00
PMT_TABLE_ID = 0x02

STREAM_TYPE_NAMES: dict[int, str] = {
    0x01: "mpeg1video",
    0x02: "mpeg2video",
    0x03: "mp1/mp2 audio (MPEG-1)",
    0x04: "mp2 audio (MPEG-2)",
    0x05: "private sections",
    0x06: "PES private data",
    0x0F: "aac (ADTS)",
    0x11: "aac (LATM)",
    0x15: "metadata",
    0x1B: "h264",
    0x24: "hevc",
    0x81: "ac3",
    0x86: "scte35",
    0x87: "eac3",
}

VIDEO_STREAM_TYPES = frozenset({0x01, 0x02, 0x10, 0x1B, 0x24, 0x42, 0xEA})
AUDIO_STREAM_TYPES = frozenset({0x03, 0x04, 0x0F, 0x11, 0x81, 0x87})
SCTE35_STREAM_TYPE = 0x86
# Elementary streams that carry sections rather than PES packets.
SECTION_STREAM_TYPES = frozenset({0x05, SCTE35_STREAM_TYPE})
REGISTRATION_DESCRIPTOR_TAG = 0x05


def stream_kind(stream_type: int) -> str:
    """ "video", "audio", "scte35", "sections" or "data" for a PMT stream_type."""
    if stream_type in VIDEO_STREAM_TYPES:
        return "video"
    if stream_type in AUDIO_STREAM_TYPES:
        return "audio"
    if stream_type == SCTE35_STREAM_TYPE:
        return "scte35"
    if stream_type in SECTION_STREAM_TYPES:
        return "sections"
    return "data"


@dataclass(frozen=True, kw_only=True)
class ElementaryStream:
    """One entry of a PMT's elementary stream loop."""

    pid: int
    stream_type: int
    descriptor_tags: tuple[int, ...]
    registration: str | None  # format_identifier of a registration descriptor, e.g. "CUEI"

    @property
    def stream_type_name(self) -> str:
        return STREAM_TYPE_NAMES.get(self.stream_type, f"0x{self.stream_type:02X}")

    @property
    def kind(self) -> str:
        return stream_kind(self.stream_type)

    def as_json(self) -> dict[str, object]:
        return {
            "pid": self.pid,
            "stream_type": self.stream_type,
            "stream_type_name": self.stream_type_name,
            "kind": self.kind,
            "descriptor_tags": list(self.descriptor_tags),
            "registration": self.registration,
        }


@dataclass(frozen=True, kw_only=True)
class Program:
    """A program as its PMT declares it."""

    program_number: int
    pmt_pid: int
    pcr_pid: int | None
    version: int | None
    streams: tuple[ElementaryStream, ...]

    def as_json(self) -> dict[str, object]:
        return {
            "program_number": self.program_number,
            "pmt_pid": self.pmt_pid,
            "pcr_pid": self.pcr_pid,
            "version": self.version,
            "streams": [stream.as_json() for stream in self.streams],
        }


def parse_pat(section: bytes) -> dict[int, int]:
    """program_number → PMT PID (program 0 names the NIT PID); {} if malformed."""
    length = section_size(section)
    programs: dict[int, int] = {}
    for at in range(8, length - CRC_SIZE - 3, 4):
        number = (section[at] << 8) | section[at + 1]
        programs[number] = ((section[at + 2] & 0x1F) << 8) | section[at + 3]
    return programs


def parse_pmt(section: bytes, pmt_pid: int) -> Program | None:
    """The program a PMT section declares; None if the loops overrun the section."""
    length = section_size(section)
    if length < 16 or len(section) < length:
        return None
    program_number = (section[3] << 8) | section[4]
    version = (section[5] >> 1) & 0x1F
    pcr_pid = ((section[8] & 0x1F) << 8) | section[9]
    info_length = ((section[10] & 0x0F) << 8) | section[11]
    at = 12 + info_length
    end = length - CRC_SIZE
    streams = []
    while at + 5 <= end:
        stream_type = section[at]
        pid = ((section[at + 1] & 0x1F) << 8) | section[at + 2]
        es_info_length = ((section[at + 3] & 0x0F) << 8) | section[at + 4]
        descriptors = section[at + 5 : at + 5 + es_info_length]
        if at + 5 + es_info_length > end:
            return None
        tags, registration = _descriptor_summary(descriptors)
        streams.append(
            ElementaryStream(
                pid=pid,
                stream_type=stream_type,
                descriptor_tags=tags,
                registration=registration,
            )
        )
        at += 5 + es_info_length
    return Program(
        program_number=program_number,
        pmt_pid=pmt_pid,
        pcr_pid=None if pcr_pid == NULL_PID else pcr_pid,
        version=version,
        streams=tuple(streams),
    )


def _descriptor_summary(descriptors: bytes) -> tuple[tuple[int, ...], str | None]:
    tags = []
    registration = None
    at = 0
    while at + 2 <= len(descriptors):
        tag, size = descriptors[at], descriptors[at + 1]
        tags.append(tag)
        if tag == REGISTRATION_DESCRIPTOR_TAG and size >= 4:  # format_identifier
            registration = descriptors[at + 2 : at + 6].decode("ascii", "replace")
        at += 2 + size
    return tuple(tags), registration
