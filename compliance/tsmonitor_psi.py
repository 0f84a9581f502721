"""PSI/SI sections for the TS monitor: reassembly from packets, CRC_32, PAT and PMT.

Sections are small and rare (a few per second), so this part is plain Python; the
per-packet work of the monitor stays in numpy.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass

# CRC-32/MPEG-2 is zlib's CRC-32 without the bit reflection and the final inversion.
# Reversing the bits of every input byte (bytes.translate, in C) and of the result lets
# zlib do the work instead of a Python loop over a 4 KB EIT section.
_BIT_REVERSED = bytes(int(f"{i:08b}"[::-1], 2) for i in range(256))

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
# Elementary streams that carry sections rather than PES packets.
SECTION_STREAM_TYPES = frozenset({0x05, 0x86})


def stream_kind(stream_type: int) -> str:
    """ "video", "audio", "scte35", "sections" or "data" for a PMT stream_type."""
    if stream_type in VIDEO_STREAM_TYPES:
        return "video"
    if stream_type in AUDIO_STREAM_TYPES:
        return "audio"
    if stream_type == 0x86:
        return "scte35"
    if stream_type in SECTION_STREAM_TYPES:
        return "sections"
    return "data"


def crc32_mpeg(data: bytes) -> int:
    """CRC-32/MPEG-2 of `data`; over a whole section including its CRC_32 it is 0."""
    reflected = zlib.crc32(data.translate(_BIT_REVERSED)) ^ 0xFFFFFFFF
    return int(f"{reflected:032b}"[::-1], 2)


def section_has_crc(section: bytes) -> bool:
    """Long-form sections end in CRC_32, and so do TOT and SCTE-35 despite short form."""
    return bool(section[1] & 0x80) or section[0] in (0x73, 0xFC)


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
    length = 3 + (((section[1] & 0x0F) << 8) | section[2])
    programs: dict[int, int] = {}
    for at in range(8, length - 4 - 3, 4):
        number = (section[at] << 8) | section[at + 1]
        programs[number] = ((section[at + 2] & 0x1F) << 8) | section[at + 3]
    return programs


def parse_pmt(section: bytes, pmt_pid: int) -> Program | None:
    """The program a PMT section declares; None if the loops overrun the section."""
    length = 3 + (((section[1] & 0x0F) << 8) | section[2])
    if length < 16 or len(section) < length:
        return None
    program_number = (section[3] << 8) | section[4]
    version = (section[5] >> 1) & 0x1F
    pcr_pid = ((section[8] & 0x1F) << 8) | section[9]
    info_length = ((section[10] & 0x0F) << 8) | section[11]
    at = 12 + info_length
    end = length - 4
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
        pcr_pid=None if pcr_pid == 0x1FFF else pcr_pid,
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
        if tag == 0x05 and size >= 4:  # registration_descriptor: format_identifier
            registration = descriptors[at + 2 : at + 6].decode("ascii", "replace")
        at += 2 + size
    return tuple(tags), registration


SectionHandler = Callable[[bytes], None]
"""Receives each complete section, in stream order."""


class SectionAssembler:
    """Reassembles the sections of one PID from its packet payloads, in order."""

    __slots__ = ("_buffer", "_handler")

    def __init__(self, handler: SectionHandler) -> None:
        self._handler = handler
        self._buffer: bytearray | None = None  # a section in progress

    def reset(self) -> None:
        """Drop a section in progress (after a lost packet it cannot be completed)."""
        self._buffer = None

    def push(self, payload: bytes, pusi: bool) -> None:
        if pusi:
            if not payload:
                self._buffer = None
                return
            pointer = payload[0]
            if self._buffer is not None:
                self._buffer += payload[1 : 1 + pointer]
                self._drain(final=True)
            self._buffer = bytearray(payload[1 + pointer :])
            self._drain(final=False)
        elif self._buffer is not None:
            self._buffer += payload
            self._drain(final=False)

    def _drain(self, *, final: bool) -> None:
        """Emit every complete section at the front of the buffer."""
        buffer = self._buffer
        while buffer is not None:
            if not buffer or buffer[0] == 0xFF:  # stuffing: the rest of the packet is empty
                self._buffer = None
                return
            if len(buffer) < 3:
                break
            length = 3 + (((buffer[1] & 0x0F) << 8) | buffer[2])
            if len(buffer) < length:
                break
            self._handler(bytes(buffer[:length]))
            del buffer[:length]
        if final:
            self._buffer = None
