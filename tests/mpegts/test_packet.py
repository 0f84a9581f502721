"""Packet header helpers: scalar and numpy forms agree, on packets built from the spec.

The adaptation field, PCR and random_access_indicator bits are laid out by hand here
from ISO/IEC 13818-1 2.4.3.4/2.4.3.5, not with the code under test.
"""

from __future__ import annotations

import numpy as np

from mpegts import (
    NULL_PACKET,
    NULL_PID,
    PACKET_SIZE,
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


def pcr_field(base: int, extension: int) -> bytes:
    """program_clock_reference: 33-bit base, 6 reserved bits (1), 9-bit extension."""
    value = (base << 15) | (0x3F << 9) | extension
    return value.to_bytes(6, "big")


def packet(pid: int, *, pusi: bool = False, af: bytes | None = None, cc: int = 0) -> bytes:
    control = 0x30 if af is not None else 0x10
    head = bytes((0x47, (0x40 if pusi else 0) | (pid >> 8), pid & 0xFF, control | cc))
    body = b"" if af is None else bytes((len(af),)) + af
    return (head + body).ljust(PACKET_SIZE, b"\xff")


def with_pcr(pid: int, base: int, extension: int, *, random_access: bool = False) -> bytes:
    flags = 0x10 | (0x40 if random_access else 0)
    return packet(pid, pusi=random_access, af=bytes((flags,)) + pcr_field(base, extension))


def test_constants() -> None:
    assert PACKET_SIZE == 188 and UDP_PAYLOAD == 7 * 188 == 1316
    assert len(NULL_PACKET) == 188 and packet_pid(NULL_PACKET) == NULL_PID == 0x1FFF
    assert NULL_PACKET[3] == 0x10 and set(NULL_PACKET[4:]) == {0xFF}


def test_pcr_of_one_packet() -> None:
    base, extension = (1 << 33) - 1, 299  # the largest PCR there is
    data = with_pcr(0x100, base, extension)
    assert has_pcr(data)
    assert pcr_base(data) == base
    assert pcr(data) == base * 300 + extension
    plain = packet(0x100)
    assert not has_pcr(plain) and pcr_base(plain) is None and pcr(plain) is None
    short = packet(0x100, af=b"\x10\x00\x00")  # PCR_flag set but the field is too short
    assert not has_pcr(short) and pcr(short) is None


def test_helpers_read_at_an_offset_of_a_larger_buffer() -> None:
    stream = NULL_PACKET + with_pcr(0x1FF, 12345, 7) + packet(0x21, pusi=True)
    assert packet_pid(stream, 188) == 0x1FF and packet_pid(stream, 376) == 0x21
    assert pcr(stream, 188) == 12345 * 300 + 7 and pcr(stream, 0) is None
    assert payload_offset(stream, 376) == 4
    assert payload_offset(stream, 188) == 4 + 1 + 7  # length byte + flags + PCR


def test_array_helpers_agree_with_the_scalar_ones() -> None:
    rng = np.random.default_rng(20260901)
    packets = []
    for k in range(200):
        pid = int(rng.integers(0, 0x1FFF))
        if k % 3 == 0:
            base, ext = int(rng.integers(0, 1 << 33)), int(rng.integers(0, 300))
            packets.append(with_pcr(pid, base, ext, random_access=bool(k % 2)))
        else:
            packets.append(packet(pid, pusi=bool(k % 2)))
    data = b"".join(packets)
    arr = packet_array(data)
    assert arr.shape == (200, 188)
    assert pid_array(arr).tolist() == [packet_pid(data, k * 188) for k in range(200)]
    flags = pcr_flag_array(arr)
    assert flags.tolist() == [has_pcr(data, k * 188) for k in range(200)]
    assert pcr_array(arr[flags]).tolist() == [
        pcr(data, k * 188) for k in range(200) if has_pcr(data, k * 188)
    ]
    expected_ra = [k % 3 == 0 and k % 2 == 1 for k in range(200)]
    assert random_access_array(arr).tolist() == expected_ra


def test_packet_array_ignores_a_partial_packet() -> None:
    assert packet_array(NULL_PACKET * 3 + b"\x47\x00").shape == (3, 188)
    assert packet_array(b"").shape == (0, 188)
