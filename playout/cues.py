"""SCTE-35 splice_insert cues at ad-break edges, and the PMT that declares their PID.

Cues are encoded with threefive (a maintained SCTE-35 library), never by hand.
FFmpeg's mpegts muxer cannot carry SCTE-35 sections, so the engine declares the
cue PID itself: each PMT packet FFmpeg writes is rewritten to add a
registration descriptor ("CUEI", as SCTE 35 section 8.1 asks) and an
elementary stream of stream_type 0x86 on ``SCTE35_PID``. The section stays in
one packet and keeps FFmpeg's continuity counter.
"""

from __future__ import annotations

import io
import logging
import zlib
from contextlib import redirect_stdout

import threefive

from core.timecode import PTS_MODULUS
from mpegts import SCTE35_STREAM_TYPE, crc32_mpeg2
from mpegts.psi import REGISTRATION_DESCRIPTOR_TAG
from playout.stream import PlayoutError

logger = logging.getLogger(__name__)

SCTE35_PID = 0x01F4
CUEI = b"CUEI"


def splice_event_id(ad_break: str, out_of_network: bool) -> int:
    """A stable 32-bit splice_event_id for a break edge (same rundown, same id)."""
    return zlib.crc32(f"{ad_break}|{'out' if out_of_network else 'in'}".encode()) & 0x7FFFFFFF


def splice_insert(*, event_id: int, pts_90k: int, out_of_network: bool) -> bytes:
    """A splice_info_section with splice_insert at ``pts_90k`` (taken modulo 2^33)."""
    pts = pts_90k % PTS_MODULUS or 1  # threefive treats a pts_time of 0 as unset
    command = threefive.SpliceInsert()
    command.splice_event_id = event_id
    command.splice_event_cancel_indicator = False
    command.out_of_network_indicator = out_of_network
    command.program_splice_flag = True
    command.duration_flag = False
    command.splice_immediate_flag = False
    command.event_id_compliance_flag = True
    command.time_specified_flag = True
    command.pts_time = pts / 90_000
    command.unique_program_id = 0
    command.avail_num = 0
    command.avails_expected = 0
    cue = threefive.Cue()
    cue.command = command
    with redirect_stdout(io.StringIO()):  # threefive reports unset fields on stdout
        cue.encode()
    data = cue.bites
    if not isinstance(data, bytes | bytearray) or data[0] != 0xFC:
        raise PlayoutError(f"threefive did not encode splice_insert {event_id}: got {data!r}")
    return bytes(data)


def splice_null() -> bytes:
    """A splice_null heartbeat: keeps the cue PID alive (TR 101 290 1.6) without a cue."""
    cue = threefive.Cue()
    cue.command = threefive.SpliceNull()
    with redirect_stdout(io.StringIO()):
        cue.encode()
    return bytes(cue.bites)


def patch_pmt(section: bytes) -> bytes:
    """FFmpeg's PMT section with the CUEI registration and the SCTE-35 stream added."""
    if section[0] != 0x02:
        raise PlayoutError(f"not a PMT section (table_id 0x{section[0]:02X})")
    length = ((section[1] & 0x0F) << 8) | section[2]
    body = section[3 : 3 + length - 4]  # from program_number to before the CRC
    fixed = body[:7]  # program_number, version, section numbers, PCR_PID
    info_len = ((body[7] & 0x0F) << 8) | body[8]
    info = body[9 : 9 + info_len]
    streams = body[9 + info_len :]
    if CUEI in info:
        return section
    info = info + bytes((REGISTRATION_DESCRIPTOR_TAG, len(CUEI))) + CUEI
    streams = streams + bytes(
        (SCTE35_STREAM_TYPE, 0xE0 | (SCTE35_PID >> 8), SCTE35_PID & 0xFF, 0xF0, 0x00)
    )
    new_body = fixed + (0xF000 | len(info)).to_bytes(2, "big") + info + streams
    new_length = len(new_body) + 4
    head = bytes((0x02, (section[1] & 0xF0) | (new_length >> 8), new_length & 0xFF))
    without_crc = head + new_body
    return without_crc + crc32_mpeg2(without_crc).to_bytes(4, "big")
