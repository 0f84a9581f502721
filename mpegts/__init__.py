"""The transport stream itself (ISO/IEC 13818-1): packets, CRC-32/MPEG-2, PSI/SI
sections, PCR/PTS/PES, and the TR 101 290 monitor (`mpegts.monitor`).

The bottom of the TS stack: it imports only `core`. Table-specific DVB SI (EIT, SDT,
TDT/TOT, descriptors, text) is `epg.si`, built on these sections and packets.
"""

from mpegts.crc import crc32_mpeg2
from mpegts.errors import TsDecodeError, TsError, TsFileError, TsInputError
from mpegts.packet import (
    CAT_PID,
    EIT_PID,
    NIT_PID,
    NULL_PACKET,
    NULL_PID,
    PACKET_SIZE,
    PAT_PID,
    PAYLOAD_SIZE,
    SDT_PID,
    SI_PIDS,
    SYNC_BYTE,
    TDT_PID,
    UDP_PAYLOAD,
    has_pcr,
    packet_array,
    packet_pid,
    payload_offset,
    pcr,
    pcr_array,
    pcr_base,
    pcr_flag_array,
    pid_array,
    random_access_array,
)
from mpegts.packetizer import SectionPacketizer
from mpegts.pes import PesHeader, parse_pes_header, pes_header_size
from mpegts.psi import (
    AUDIO_STREAM_TYPES,
    SCTE35_STREAM_TYPE,
    VIDEO_STREAM_TYPES,
    ElementaryStream,
    Program,
    parse_pat,
    parse_pmt,
    stream_kind,
)
from mpegts.section import (
    SectionAssembler,
    SectionReassembler,
    section_has_crc,
    section_size,
)
from mpegts.timestamp import PCR_HZ, PCR_MODULUS, TimestampUnwrapper, signed_delta

__all__ = [
    "AUDIO_STREAM_TYPES",
    "CAT_PID",
    "EIT_PID",
    "NIT_PID",
    "NULL_PACKET",
    "NULL_PID",
    "PACKET_SIZE",
    "PAT_PID",
    "PAYLOAD_SIZE",
    "PCR_HZ",
    "PCR_MODULUS",
    "SCTE35_STREAM_TYPE",
    "SDT_PID",
    "SI_PIDS",
    "SYNC_BYTE",
    "TDT_PID",
    "UDP_PAYLOAD",
    "VIDEO_STREAM_TYPES",
    "ElementaryStream",
    "PesHeader",
    "Program",
    "SectionAssembler",
    "SectionPacketizer",
    "SectionReassembler",
    "TimestampUnwrapper",
    "TsDecodeError",
    "TsError",
    "TsFileError",
    "TsInputError",
    "crc32_mpeg2",
    "has_pcr",
    "packet_array",
    "packet_pid",
    "parse_pat",
    "parse_pes_header",
    "parse_pmt",
    "payload_offset",
    "pcr",
    "pcr_array",
    "pcr_base",
    "pcr_flag_array",
    "pes_header_size",
    "pid_array",
    "random_access_array",
    "section_has_crc",
    "section_size",
    "signed_delta",
    "stream_kind",
]
