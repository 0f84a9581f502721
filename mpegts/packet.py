"""TS packets (ISO/IEC 13818-1 2.4.3): sizes, well-known PIDs, header fields and the PCR.

Scalar helpers read one packet at a byte offset of a larger buffer, so callers never
slice a copy out first; the ``*_array`` helpers do the same for every packet of a
buffer at once with numpy (a 10 Mb/s stream is 6,650 packets a second).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

PACKET_SIZE = 188
HEADER_SIZE = 4
PAYLOAD_SIZE = PACKET_SIZE - HEADER_SIZE  # 184 bytes after a header without adaptation field
SYNC_BYTE = 0x47
STUFFING_BYTE = 0xFF
MAX_PID = 0x1FFF
UDP_PAYLOAD = 7 * PACKET_SIZE  # 1316 bytes: the most whole packets in a 1500-byte MTU

PAT_PID = 0x0000
CAT_PID = 0x0001
NIT_PID = 0x0010
SDT_PID = 0x0011  # SDT and BAT
EIT_PID = 0x0012
RST_PID = 0x0013
TDT_PID = 0x0014  # TDT and TOT share it
NULL_PID = 0x1FFF
# PIDs that carry PSI/SI sections by definition (13818-1 table 2-3, EN 300 468 table 1).
SI_PIDS = frozenset({PAT_PID, CAT_PID, NIT_PID, SDT_PID, EIT_PID, RST_PID, TDT_PID})

NULL_PACKET = bytes((SYNC_BYTE, NULL_PID >> 8, NULL_PID & 0xFF, 0x10)) + bytes((STUFFING_BYTE,)) * (
    PACKET_SIZE - HEADER_SIZE
)

U8 = npt.NDArray[np.uint8]
I64 = npt.NDArray[np.int64]
Bools = npt.NDArray[np.bool_]
Ints = npt.NDArray[np.integer[Any]]


def packet_pid(data: bytes | bytearray | memoryview, at: int = 0) -> int:
    """The PID of the packet starting at byte ``at``."""
    return ((data[at + 1] & 0x1F) << 8) | data[at + 2]


def payload_offset(data: bytes | bytearray | memoryview, at: int = 0) -> int:
    """Where the payload of the packet at byte ``at`` starts, counted from ``at``.

    4 after a plain header, or past the adaptation field; 188 or more means no payload.
    """
    if data[at + 3] & 0x20:  # adaptation_field_control: adaptation field present
        return HEADER_SIZE + 1 + data[at + 4]
    return HEADER_SIZE


def has_pcr(data: bytes | bytearray | memoryview, at: int = 0) -> bool:
    """Whether the packet at byte ``at`` has an adaptation field with PCR_flag set."""
    return bool(data[at + 3] & 0x20) and data[at + 4] >= 7 and bool(data[at + 5] & 0x10)


def pcr_base(data: bytes | bytearray | memoryview, at: int = 0) -> int | None:
    """The 33-bit PCR base (90 kHz) of the packet at byte ``at``; None if it has no PCR."""
    if not has_pcr(data, at):
        return None
    return (
        data[at + 6] << 25
        | data[at + 7] << 17
        | data[at + 8] << 9
        | data[at + 9] << 1
        | data[at + 10] >> 7
    )


def pcr(data: bytes | bytearray | memoryview, at: int = 0) -> int | None:
    """The full PCR (27 MHz: base * 300 + extension) of the packet at byte ``at``, or None."""
    base = pcr_base(data, at)
    if base is None:
        return None
    return base * 300 + (((data[at + 10] & 1) << 8) | data[at + 11])


def packet_array(data: bytes | bytearray | memoryview) -> U8:
    """The whole packets of ``data`` as an (n, 188) uint8 view (no copy)."""
    count = len(data) // PACKET_SIZE
    return np.frombuffer(data, np.uint8, count=count * PACKET_SIZE).reshape(count, PACKET_SIZE)


def pid_array(packets: U8) -> I64:
    """The PID of every packet of an (n, 188) array."""
    return ((packets[:, 1] & 0x1F).astype(np.int64) << 8) | packets[:, 2]


def pcr_flag_array(packets: U8) -> Bools:
    """Which packets of an (n, 188) array carry a PCR (as `has_pcr`)."""
    flags: Bools = (
        ((packets[:, 3] & 0x20) != 0) & (packets[:, 4] >= 7) & ((packets[:, 5] & 0x10) != 0)
    )
    return flags


def random_access_array(packets: U8) -> Bools:
    """Which packets of an (n, 188) array start a PES at a random access point (an IDR).

    payload_unit_start_indicator and the adaptation field's random_access_indicator.
    """
    flags: Bools = (
        ((packets[:, 1] & 0x40) != 0)
        & ((packets[:, 3] & 0x20) != 0)
        & (packets[:, 4] > 0)
        & ((packets[:, 5] & 0x40) != 0)
    )
    return flags


def pcr_array(packets: U8) -> I64:
    """The full 27 MHz PCR of every packet of an (n, 188) array that carries one."""
    raw = packets[:, 6:12].astype(np.int64)
    base = (raw[:, 0] << 25) | (raw[:, 1] << 17) | (raw[:, 2] << 9) | (raw[:, 3] << 1)
    base |= raw[:, 4] >> 7
    result: I64 = base * 300 + (((raw[:, 4] & 1) << 8) | raw[:, 5])
    return result
