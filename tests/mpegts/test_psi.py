"""PAT and PMT parsing, and PES headers, on sections and headers laid out by hand.

Layouts follow ISO/IEC 13818-1 tables 2-30 (PAT), 2-33 (PMT) and 2-21 (PES); the
monitor's end-to-end test (test_monitor.py) checks the same parsers against ffprobe.
"""

from __future__ import annotations

from ts_builders import pts_field, section

from mpegts import (
    PesHeader,
    parse_pat,
    parse_pes_header,
    parse_pmt,
    pes_header_size,
    stream_kind,
)


def long_section(table_id: int, extension: int, body: bytes) -> bytes:
    header = extension.to_bytes(2, "big") + b"\xc3\x00\x00"  # version 1, current, 0 of 0
    return section(table_id, header + body)


def test_pat() -> None:
    pat = long_section(0x00, 7, bytes((0, 0, 0xE0, 0x10, 0, 101, 0xF0, 0x00)))
    assert parse_pat(pat) == {0: 0x10, 101: 0x1000}


def test_pmt_with_registration_descriptor() -> None:
    body = (
        bytes((0xE1, 0x00, 0xF0, 0x00))  # PCR PID 0x100, no program descriptors
        + bytes((0x02, 0xE1, 0x00, 0xF0, 0x00))  # MPEG-2 video on 0x100
        + bytes((0x03, 0xE1, 0x01, 0xF0, 0x06, 0x0A, 0x04))
        + b"chi\x00"  # audio + language
        + bytes((0x86, 0xE1, 0xF4, 0xF0, 0x06, 0x05, 0x04))
        + b"CUEI"  # SCTE-35
    )
    program = parse_pmt(long_section(0x02, 101, body), 0x1000)
    assert program is not None
    assert (program.program_number, program.pcr_pid, program.version) == (101, 0x100, 1)
    kinds = [(s.pid, s.kind, s.descriptor_tags, s.registration) for s in program.streams]
    assert kinds == [
        (0x100, "video", (), None),
        (0x101, "audio", (0x0A,), None),
        (0x1F4, "scte35", (0x05,), "CUEI"),
    ]
    assert program.streams[0].stream_type_name == "mpeg2video"


def test_pmt_without_pcr_and_an_overrunning_loop() -> None:
    no_pcr = parse_pmt(long_section(0x02, 1, bytes((0xFF, 0xFF, 0xF0, 0x00))), 0x20)
    assert no_pcr is not None and no_pcr.pcr_pid is None and no_pcr.streams == ()
    overrun = bytes((0xE1, 0x00, 0xF0, 0x00, 0x1B, 0xE1, 0x00, 0xF0, 0x40))
    assert parse_pmt(long_section(0x02, 1, overrun), 0x20) is None


def test_stream_kinds() -> None:
    assert [stream_kind(t) for t in (0x1B, 0x04, 0x86, 0x05, 0x06)] == [
        "video",
        "audio",
        "scte35",
        "sections",
        "data",
    ]


def test_pes_headers() -> None:
    pts, dts = (1 << 33) - 1, 123_456
    both = b"\x00\x00\x01\xe0\x00\x00\x80\xc0\x0a" + pts_field(pts, 3) + pts_field(dts, 1)
    assert pes_header_size(both) == 19
    video = parse_pes_header(both)
    assert video == PesHeader(stream_id=0xE0, pts=pts, dts=dts)
    assert video is not None and video.is_video and not video.is_audio
    audio = parse_pes_header(b"\x00\x00\x01\xc0\x00\x00\x80\x80\x05" + pts_field(90_000, 2))
    assert audio == PesHeader(stream_id=0xC0, pts=90_000, dts=None)
    assert audio is not None and audio.is_audio
    padding = b"\x00\x00\x01\xbe\x00\x10"  # padding_stream: no optional header
    assert pes_header_size(padding) == 6
    assert parse_pes_header(padding) == PesHeader(stream_id=0xBE, pts=None, dts=None)
    assert pes_header_size(b"\x00\x00\x02") is None and parse_pes_header(b"\x47" * 20) is None
    assert parse_pes_header(both[:12]) is None  # not complete yet: wait for more bytes
